package io.vetcd.server;

import io.vertx.core.Vertx;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.raft.RaftNode;
import io.vetcd.raft.Snapshot;
import io.vetcd.wal.Wal;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * When the log is cut (on the Raft loop): every {@code --snapshot-count} applied entries a snapshot
 * point makes the keyspace durable (LMDB runs without its own fsync), marks the log before it void and
 * deletes the files that hold only void records; in between, applied entries leave memory early.
 */
final class SnapshotPolicy {

  private static final Logger LOG = LoggerFactory.getLogger(SnapshotPolicy.class);

  /** Applied entries kept in memory below the applied index (see {@link #trimMemory}). */
  private static final long KEPT_APPLIED_ENTRIES = 2000;
  private static final long TRIM_STEP_ENTRIES = 500;

  private final Vertx vertx;
  private final RaftNode node;
  private final MvccStore store;
  private final Wal wal;
  private final AppendThread appendThread;
  private final FailStop failStop;
  private final long snapshotCount;
  /** The other voters, whose progress a leader keeps in memory for. */
  private final Set<Long> peers;
  /**
   * The last snapshot point: the keyspace is synced up to it, and the log files before it are gone
   * (entries leave memory earlier, see {@link #trimMemory}).
   */
  private long snapshotIndex;
  private boolean snapshotting;

  SnapshotPolicy(Vertx vertx, RaftNode node, MvccStore store, Wal wal, AppendThread appendThread, FailStop failStop,
      long snapshotCount, Set<Long> peers) {
    this.vertx = vertx;
    this.node = node;
    this.store = store;
    this.wal = wal;
    this.appendThread = appendThread;
    this.failStop = failStop;
    this.snapshotCount = snapshotCount;
    this.peers = peers;
    this.snapshotIndex = node.firstIndex() - 1;
  }

  /** A snapshot from the leader was installed at {@code index}: the next point counts from there. */
  void installed(long index) {
    snapshotIndex = index;
  }

  /**
   * The keyspace applied up to {@code appliedIndex}: takes a snapshot point if {@code --snapshot-count}
   * entries were applied since the last, or else trims memory.
   */
  void applied(long appliedIndex) {
    // Only what the apply thread has written (and the core has handed out) can be left behind.
    long applied = Math.min(appliedIndex, node.appliedIndex());
    if (snapshotting || applied - snapshotIndex < snapshotCount) {
      trimMemory(applied);
      return;
    }
    snapshotting = true;
    // Taken now, while the entry is surely still in memory (trimMemory may pass it during the sync).
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
      if (applied > node.firstIndex() - 1) {
        node.compact(point);
      }
      snapshotIndex = applied;
      // On the append thread, after the point is synced: the files it makes void can go.
      appendThread.submit(point, false, null, List.of(), () -> {
        int deleted = wal.release(applied);
        LOG.debug("compacted the log up to index {}; {} old log files deleted", applied, deleted);
      });
    });
  }

  /**
   * Drops from memory the applied entries that nobody should need again, long before the next snapshot
   * point: the log since that point was young heap that every young collection copied (3-4 MB at
   * 10,000 puts/s, the pauses that set the put p99). Nothing changes on disk: the log files keep them
   * until the snapshot point, a restart replays them from there. The leader keeps what a voter has not
   * acknowledged; every member keeps {@link #KEPT_APPLIED_ENTRIES} below its applied index for a
   * follower a little behind should it lead. A follower further behind gets a snapshot, as it would
   * after a snapshot point.
   */
  private void trimMemory(long applied) {
    long upTo = applied - KEPT_APPLIED_ENTRIES;
    if (node.isLeader()) {
      for (long id : peers) {
        upTo = Math.min(upTo, node.matchIndex(id));
      }
    }
    // In steps: each trim moves the rest of the in-memory log down.
    if (upTo - (node.firstIndex() - 1) >= TRIM_STEP_ENTRIES) {
      node.compact(node.createSnapshot(upTo, new byte[0]));
    }
  }
}
