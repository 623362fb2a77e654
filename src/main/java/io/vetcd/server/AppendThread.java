package io.vetcd.server;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.wal.Wal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one thread that writes the log. It takes everything queued, appends it, fsyncs once (group
 * commit: one sync covers every batch that arrived while the previous sync ran) and reports the last
 * index now on disk. Nothing that depends on these records may be acknowledged before that report.
 */
final class AppendThread implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(AppendThread.class);

  private record Batch(HardState hardState, List<Entry> entries) {}

  private static final Batch STOP = new Batch(null, List.of());

  private final Wal wal;
  private final LongConsumer persisted;
  private final LinkedBlockingQueue<Batch> queue = new LinkedBlockingQueue<>();
  private final Thread thread;

  /** {@code persisted} is called on this thread with the last index synced; it must hand off at once. */
  AppendThread(Wal wal, LongConsumer persisted) {
    this.wal = wal;
    this.persisted = persisted;
    this.thread = new Thread(this::run, "vetcd-append");
    this.thread.start();
  }

  /** Queues records to persist; a null hard state means unchanged. */
  void submit(HardState hardState, List<Entry> entries) {
    queue.add(new Batch(hardState, entries));
  }

  private void run() {
    List<Batch> batches = new ArrayList<>();
    try {
      while (true) {
        batches.clear();
        batches.add(queue.take());
        queue.drainTo(batches);
        long last = -1;
        boolean stop = false;
        for (Batch b : batches) {
          if (b == STOP) {
            stop = true;
            continue;
          }
          if (b.hardState() != null) {
            wal.append(b.hardState());
          }
          for (Entry e : b.entries()) {
            wal.append(e);
            last = e.index();
          }
        }
        wal.sync();
        if (last >= 0) {
          persisted.accept(last);
        }
        if (stop) {
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      // A log that cannot be written must stop the member: acknowledging anything now could lose it.
      LOG.error("writing the log failed; the member stops accepting writes", e);
    }
  }

  /** Writes and syncs what is queued, then stops. */
  @Override
  public void close() throws InterruptedException {
    queue.add(STOP);
    thread.join();
  }
}
