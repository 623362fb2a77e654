package io.vetcd.server;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vetcd.raft.RaftMessage;
import io.vetcd.raft.Snapshot;
import io.vetcd.transport.PeerTransport;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The keyspace moving between members: a leader sends a follower far behind a consistent copy of it,
 * and a follower replaces its keyspace with the leader's.
 */
final class SnapshotTransfer {

  private static final Logger LOG = LoggerFactory.getLogger(SnapshotTransfer.class);

  private final Vertx vertx;
  private final Keyspace keyspace;
  private final FailStop failStop;

  SnapshotTransfer(Vertx vertx, Keyspace keyspace, FailStop failStop) {
    this.vertx = vertx;
    this.keyspace = keyspace;
    this.failStop = failStop;
  }

  /**
   * Sends the SNAP message {@code m} with a consistent LMDB copy taken now (at an applied index at or
   * past the snapshot's, off the event loop), on its own stream; completes when it was sent.
   */
  Future<Void> send(RaftMessage m, PeerTransport transport) {
    return vertx.executeBlocking(keyspace.store()::snapshotBytes, false)
        .compose(bytes -> transport.sendSnapshot(m.to(),
            RaftCodec.encode(m.toBuilder().snapshot(m.snapshot().withData(bytes)).build())))
        .onFailure(e -> LOG.warn("sending a snapshot to {} failed: {}", Long.toHexString(m.to()), e.toString()));
  }

  /**
   * Replaces the keyspace with the leader's {@code snapshot} on the apply thread (after the entries
   * queued before it) and syncs it; {@code installed} then hears, on that thread, the keyspace's applied
   * index. Entries the snapshot already covers are skipped when applied. A failure stops the member.
   */
  void install(ApplyThread applyThread, Snapshot snapshot, LongConsumer installed) {
    applyThread.submit(() -> {
      try {
        Failpoints.check("snapshot-install");
        if (!keyspace.store().install(snapshot.data())) {
          LOG.info("the snapshot from the leader is not newer than the keyspace: kept the keyspace");
        }
        keyspace.store().sync();
      } catch (java.io.IOException | RuntimeException e) {
        failStop.stop("installing a snapshot from the leader failed", e);
        throw new IllegalStateException("snapshot install failed", e);
      }
      long applied = keyspace.store().appliedIndex();
      keyspace.reloaded();
      LOG.info("applying snapshot at index {} (term {}): the keyspace is now at applied index {}",
          snapshot.index(), snapshot.term(), applied);
      installed.accept(applied);
    });
  }
}
