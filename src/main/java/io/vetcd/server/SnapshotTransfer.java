package io.vetcd.server;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vetcd.raft.RaftMessage;
import io.vetcd.raft.Snapshot;
import io.vetcd.transport.PeerTransport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.TreeMap;
import java.util.function.LongConsumer;
import java.util.function.LongUnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The keyspace moving between members, as files: a leader sends a follower behind its log a consistent
 * copy (LMDB's compacting copy into the snapshot directory, streamed from there), and a follower
 * installs the copy it received there. Neither side holds the copy in memory. The SNAP message's
 * snapshot says exactly what the copy holds: its applied index and that entry's term, whatever
 * compaction point made the leader send one. Raft loop only, but for what runs off it.
 */
final class SnapshotTransfer {

  private static final Logger LOG = LoggerFactory.getLogger(SnapshotTransfer.class);

  private final Vertx vertx;
  private final Keyspace keyspace;
  private final FailStop failStop;
  /** Where copies are made (sender) and received (receiver): member/snap. */
  private final Path dir;
  /** The term of an entry, or -1 if the log no longer has it (the core's {@code term}). */
  private final LongUnaryOperator termOf;
  /** Copies received and not yet installed or discarded, by the index their snapshot says. */
  private final TreeMap<Long, Path> received = new TreeMap<>();
  /**
   * For each copy being made or sent, the keyspace's applied index when it started (a copy holds at
   * least that much): the log must not be cut past it, or the copy's own entry, whose term the SNAP
   * message needs, could be gone by the time the copy is done. A multiset: index → copies.
   */
  private final TreeMap<Long, Integer> sendingFrom = new TreeMap<>();

  SnapshotTransfer(Vertx vertx, Keyspace keyspace, FailStop failStop, Path dir, LongUnaryOperator termOf) {
    this.vertx = vertx;
    this.keyspace = keyspace;
    this.failStop = failStop;
    this.dir = dir;
    this.termOf = termOf;
  }

  /**
   * Sends the SNAP message {@code m} with a consistent copy of the keyspace taken now (off the event
   * loop), on its own stream; completes when it was sent. The copy's directory goes afterwards.
   */
  Future<Void> send(RaftMessage m, PeerTransport transport) {
    record Copy(Path dir, long applied, io.vetcd.raft.ConfState conf) {}
    long floor = keyspace.store().appliedIndex();
    sendingFrom.merge(floor, 1, Integer::sum);
    return vertx.executeBlocking(() -> {
      Path out = Files.createTempDirectory(dir, "out-");
      try {
        long applied = keyspace.store().copyTo(out);
        Failpoints.check("snapshot-send");
        // The membership as of the copy, which the receiver's core adopts with it: the record the copy
        // holds, not the sender's membership now (a change may have applied since).
        byte[] record = io.vetcd.mvcc.MvccStore.recordOf(out.resolve("data.mdb"), LocalMember.CLUSTER_RECORD);
        return new Copy(out, applied, ClusterMembers.confState(Keyspace.clusterRecordOf(record)));
      } catch (IOException | RuntimeException e) {
        deleteTree(out); // a copy cut short (a full disk) must not stay behind
        throw e;
      }
    }, false).compose(copy -> {
      long term = termOf.applyAsLong(copy.applied());
      Future<Void> sent;
      if (term < 0) {
        sent = Future.failedFuture("the entry at the copy's applied index " + copy.applied() + " is compacted");
      } else {
        Snapshot s = new Snapshot(copy.applied(), term, copy.conf().voters(), copy.conf().learners(), new byte[0]);
        LOG.info("sending a snapshot at index {} (term {}) to {}", s.index(), s.term(), Long.toHexString(m.to()));
        sent = transport.sendSnapshot(m.to(), RaftCodec.encode(m.toBuilder().snapshot(s).build()),
            copy.dir().resolve("data.mdb"));
      }
      return sent.eventually(() -> vertx.executeBlocking(() -> deleteTree(copy.dir()), false));
    }).onComplete(ar -> sendingFrom.computeIfPresent(floor, (k, n) -> n == 1 ? null : n - 1))
        .onFailure(e -> LOG.warn("sending a snapshot to {} failed: {}", Long.toHexString(m.to()), e.toString()));
  }

  /** The highest index the log may be cut at while copies are made and sent (no limit: none are). */
  long cutLimit() {
    return sendingFrom.isEmpty() ? Long.MAX_VALUE : sendingFrom.firstKey();
  }

  /** A copy arrived for {@code snapshot}: kept until the core hands the snapshot out, or discards it. */
  void received(Snapshot snapshot, Path file) {
    Path replaced = received.put(snapshot.index(), file);
    if (replaced != null) {
      delete(replaced);
    }
  }

  /** A copy that came with a message that is not a snapshot for us: void. */
  void discard(Path file) {
    delete(file);
  }

  /**
   * The core stepped the SNAP message of {@code snapshot}: if it restored it ({@code restored}), copies
   * older than it are void; if not (it had the entries already), its copy is.
   */
  void stepped(Snapshot snapshot, boolean restored) {
    var stale = restored ? received.headMap(snapshot.index(), false) : received.subMap(snapshot.index(), true,
        snapshot.index(), true);
    stale.values().forEach(SnapshotTransfer::delete);
    stale.clear();
  }

  /**
   * Replaces the keyspace with the copy received for {@code snapshot} on the apply thread (after the
   * entries queued before it) and syncs it; {@code installed} then hears, on that thread, the keyspace's
   * applied index. A failure, or no copy for it, stops the member.
   */
  void install(ApplyThread applyThread, Snapshot snapshot, LongConsumer installed) {
    Path file = received.remove(snapshot.index());
    applyThread.submit(() -> {
      try {
        if (file == null) {
          throw new IOException("no copy of the keyspace was received for it");
        }
        Failpoints.check("snapshot-install");
        if (!keyspace.store().install(file)) {
          LOG.info("the snapshot from the leader is not newer than the keyspace: kept the keyspace");
        }
        keyspace.store().sync();
      } catch (IOException | RuntimeException e) {
        failStop.stop("installing a snapshot from the leader failed", e);
        throw new IllegalStateException("snapshot install failed", e);
      } finally {
        if (file != null) {
          delete(file);
        }
      }
      long applied = keyspace.store().appliedIndex();
      keyspace.reloaded();
      LOG.info("applying snapshot at index {} (term {}): the keyspace is now at applied index {}",
          snapshot.index(), snapshot.term(), applied);
      installed.accept(applied);
    });
  }

  /** Empties the snapshot directory: copies half made or half received by an earlier run are void. */
  static void clear(Path dir) throws IOException {
    Files.createDirectories(dir);
    try (var entries = Files.list(dir)) {
      for (Path p : entries.toList()) {
        deleteTree(p);
      }
    }
  }

  private static void delete(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      LOG.warn("cannot delete the snapshot copy {}: {}", file, e.toString());
    }
  }

  static Void deleteTree(Path root) throws IOException {
    try (var paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
    return null;
  }
}
