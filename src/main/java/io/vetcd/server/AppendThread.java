package io.vetcd.server;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.raft.Snapshot;
import io.vetcd.wal.Wal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The one thread that writes the log. It takes everything queued, appends it, fsyncs once (group
 * commit: one sync covers every batch that arrived while the previous sync ran), then runs each
 * batch's completion. Nothing that depends on these records may be sent or acknowledged before that.
 * If anything fails — a write, the sync, a full disk — no completion of that group runs, nothing is
 * written after it, and the member stops ({@link FailStop}).
 */
final class AppendThread implements AutoCloseable {

  /** What one Ready (or one compaction) persists; a null snapshot or hard state: none. */
  private record Batch(Snapshot snapshot, boolean replace, HardState hardState, List<Entry> entries,
      boolean sync, Runnable persisted) {}

  private static final Batch STOP = new Batch(null, false, null, List.of(), true, () -> { });

  /** Bytes a record takes beside an entry's data (its fields, checksum and Chronicle's header). */
  private static final int RECORD_OVERHEAD = 64;

  private final Wal wal;
  private final FailStop failStop;
  private final LinkedBlockingQueue<Batch> queue = new LinkedBlockingQueue<>();
  private final Thread thread;

  AppendThread(Wal wal, FailStop failStop) {
    this.wal = wal;
    this.failStop = failStop;
    this.thread = new Thread(this::run, "vetcd-append");
    this.thread.start();
  }

  /**
   * Queues records to persist (a null hard state: unchanged); {@code persisted} runs on this thread
   * once they are written — and, if {@code sync}, on disk — and must hand off at once. Records that
   * need no sync of their own are synced with the next batch that does.
   */
  void submit(HardState hardState, List<Entry> entries, boolean sync, Runnable persisted) {
    queue.add(new Batch(null, false, hardState, entries, sync, persisted));
  }

  /**
   * Queues a snapshot point (see {@link Wal#append(Snapshot, boolean)}) ahead of the entries and hard
   * state that follow it.
   */
  void submit(Snapshot snapshot, boolean replace, HardState hardState, List<Entry> entries, Runnable persisted) {
    queue.add(new Batch(snapshot, replace, hardState, entries, true, persisted));
  }

  private void run() {
    List<Batch> batches = new ArrayList<>();
    wal.takeOver();
    try {
      while (true) {
        batches.clear();
        batches.add(queue.take());
        queue.drainTo(batches);
        boolean stop = false;
        boolean sync = false;
        long bytes = 0;
        for (Batch b : batches) {
          for (Entry e : b.entries()) {
            bytes += e.data().length + RECORD_OVERHEAD;
          }
        }
        wal.reserve(bytes + RECORD_OVERHEAD * 4L);
        for (Batch b : batches) {
          sync |= b.sync();
          if (b == STOP) {
            stop = true;
            continue;
          }
          if (b.snapshot() != null) {
            wal.append(b.snapshot(), b.replace());
          }
          // Entries before the hard state: its commit index never points past what the log holds.
          for (Entry e : b.entries()) {
            wal.append(e);
          }
          if (b.hardState() != null) {
            wal.append(b.hardState());
          }
        }
        if (sync) {
          long syncStart = System.nanoTime();
          Failpoints.check("append"); // inside the timing: a slow disk shows in the fsync histogram
          wal.sync();
          io.vetcd.metrics.EtcdMetrics.WAL_FSYNC.record(System.nanoTime() - syncStart,
              java.util.concurrent.TimeUnit.NANOSECONDS);
          Failpoints.check("after-sync");
        }
        batches.forEach(b -> b.persisted().run());
        if (stop) {
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable e) {
      // A log that cannot be written must stop the member: acknowledging anything now could lose it.
      failStop.stop("writing the log failed", e);
    }
  }

  /** Writes and syncs what is queued, then stops. */
  @Override
  public void close() throws InterruptedException {
    queue.add(STOP);
    thread.join();
  }
}
