package io.vetcd.server;

import io.vertx.core.Vertx;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.raft.RaftNode;
import io.vetcd.raft.Snapshot;
import io.vetcd.wal.Wal;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * When the log is cut (on the Raft loop). Every {@code --snapshot-count} applied entries a snapshot
 * point makes the keyspace durable (LMDB syncs its pages, not its meta page, at each commit), records
 * in the log that replay may start there, and cuts the log {@link #CATCH_UP_ENTRIES} before it: the
 * core's compaction point (a follower behind it gets a snapshot) and the files holding only older
 * entries, which are deleted. In between, applied entries leave memory early: the core reads them back
 * from the log when a follower needs them.
 */
final class SnapshotPolicy {

  private static final Logger LOG = LoggerFactory.getLogger(SnapshotPolicy.class);

  /**
   * Entries kept in the log below a snapshot point, for followers a little behind (etcd's
   * SnapshotCatchUpEntries): one behind by fewer catches up from the log instead of a snapshot.
   */
  static final long CATCH_UP_ENTRIES = 5000;
  /**
   * Applied entries kept in memory below the applied index (see {@link #trimMemory}): at most this many,
   * holding at most this many bytes. The bytes bound is small because what it keeps is old-generation
   * heap: at 64 MiB, puts of 64 KiB values kept ~60 MiB alive past young collections and filled the old
   * generation every second (a full collection of 35-125 ms each time, 16-20 in 40 s per member). A
   * follower that needs older entries is served from the log files (the page cache, most often).
   */
  private static final long KEPT_APPLIED_ENTRIES = 2000;
  private static final long KEPT_APPLIED_BYTES = 8L << 20;
  private static final long TRIM_STEP_ENTRIES = 500;

  private final Vertx vertx;
  private final RaftNode node;
  private final MvccStore store;
  private final Wal wal;
  private final AppendThread appendThread;
  private final FailStop failStop;
  private final long snapshotCount;
  /** The highest index the log may be cut at now (copies of the keyspace being sent hold it back). */
  private final java.util.function.LongSupplier cutLimit;
  /** The last snapshot point: the keyspace is synced up to it, and the log may be replayed from it. */
  private long snapshotIndex;
  private boolean snapshotting;

  SnapshotPolicy(Vertx vertx, RaftNode node, MvccStore store, Wal wal, AppendThread appendThread, FailStop failStop,
      long snapshotCount, java.util.function.LongSupplier cutLimit) {
    this.cutLimit = cutLimit;
    this.vertx = vertx;
    this.node = node;
    this.store = store;
    this.wal = wal;
    this.appendThread = appendThread;
    this.failStop = failStop;
    this.snapshotCount = snapshotCount;
    this.snapshotIndex = node.firstIndex() - 1;
    // After a restart the core starts from the last point, but the files still hold the entries before
    // it down to the last cut: a follower that far behind catches up from them, as before the restart.
    long oldest = wal.oldestEntry();
    if (oldest > 0 && oldest < snapshotIndex && node.reachBack(oldest)) {
      LOG.debug("the log files hold entries from index {}, before the snapshot point {}", oldest + 1, snapshotIndex);
    }
  }

  /** A snapshot from the leader was installed at {@code index}: the next point counts from there. */
  void installed(long index) {
    snapshotIndex = index;
  }

  /**
   * The keyspace applied up to {@code appliedIndex}: trims memory, and takes a snapshot point if
   * {@code --snapshot-count} entries were applied since the last.
   */
  void applied(long appliedIndex) {
    // Only what the apply thread has written (and the core has handed out) can be left behind.
    long applied = Math.min(appliedIndex, node.appliedIndex());
    trimMemory(applied);
    if (snapshotting || applied - snapshotIndex < snapshotCount) {
      return;
    }
    snapshotting = true;
    Snapshot point = node.createSnapshot(applied, new byte[0]);
    vertx.executeBlocking(() -> {
      store.sync();
      return null;
    }, false).onComplete(ar -> {
      snapshotting = false;
      if (ar.failed()) {
        // The log before the point stays (nothing was marked void), but a keyspace that cannot sync
        // cannot be trusted either.
        failStop.stop("syncing the keyspace at a snapshot point failed", ar.cause());
        return;
      }
      if (applied <= snapshotIndex) {
        return; // a snapshot from the leader got there first
      }
      snapshotIndex = applied;
      long cut = Math.min(applied - CATCH_UP_ENTRIES, cutLimit.getAsLong());
      if (cut > node.snapshot().index() && node.term(cut) >= 0) {
        node.compact(node.createSnapshot(cut, new byte[0]));
      }
      // On the append thread, after the point is synced: the files it makes void can go.
      appendThread.submit(point, false, null, List.of(), () -> {
        int deleted = wal.release(cut);
        LOG.debug("snapshot point at index {}; log cut at {}, {} old log files deleted", applied, cut, deleted);
      });
    });
  }

  /**
   * Drops from memory the applied entries a follower a little behind will not need, long before the
   * next snapshot point: the log since that point was young heap that every young collection copied
   * (3-4 MB at 10,000 puts/s, the pauses that set the put p99), and a follower away for long would
   * have held all it missed in the leader's heap. Every member keeps {@link #KEPT_APPLIED_ENTRIES}
   * below its applied index, and no more than {@link #KEPT_APPLIED_BYTES} of them; older ones are read
   * back from the log files when needed.
   */
  private void trimMemory(long applied) {
    long trimmed = node.firstInMemory() - 1;
    long bySize = node.trimPointKeeping(applied, KEPT_APPLIED_BYTES);
    long upTo = Math.min(Math.max(applied - KEPT_APPLIED_ENTRIES, bySize), node.persistedIndex());
    // In steps (each trim moves the rest of the in-memory log down), unless large entries are due.
    if (upTo - trimmed >= TRIM_STEP_ENTRIES || (bySize > trimmed && upTo > trimmed)) {
      node.trimMemory(upTo);
    }
  }
}
