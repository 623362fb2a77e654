package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.internal.LeaseForward;
import io.vetcd.raft.HardState;
import io.vetcd.raft.MessageType;
import io.vetcd.raft.RaftNode;
import io.vetcd.raft.ReadState;
import io.vetcd.raft.Ready;
import io.vetcd.transport.PeerTransport;
import io.vetcd.wal.Wal;
import io.vetcd.watch.WatchHub;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The member's consensus loop, on one event loop: it drives the pure Raft core ({@link RaftNode})
 * with ticks, peer messages, proposals and read requests, and carries out its Ready values
 * (ARCHITECTURE §3):
 * <ol>
 *   <li>the leader's appends and heartbeats go to the followers at once, in parallel with its own
 *       disk write (Raft thesis §10.2.1);
 *   <li>new entries and hard state go to the append thread, which fsyncs them;
 *   <li>once they are on disk: responses and votes are sent, committed entries go to the apply
 *       thread, and the core is told ({@code advance}), which for a leader counts its own copy.
 * </ol>
 * One Ready is in flight at a time; proposals arriving meanwhile gather in the core and leave in the
 * next Ready together (group commit). A proposal's caller is answered when the apply thread has
 * applied the entry carrying its request id.
 */
final class RaftVerticle extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(RaftVerticle.class);

  private record Waiter(Handler<AsyncResult<Message>> handler, long deadlineNanos) {}

  private record PendingRead(Promise<Void> promise, long deadlineNanos) {}

  private record PendingForward(Promise<LeaseForward> promise, long deadlineNanos) {}

  /** How long a follower waits for the leader's answer to a forwarded lease request before asking again. */
  private static final long LEASE_FORWARD_TIMEOUT_MS = 1000;
  /** Applied entries kept in memory below the applied index (see {@link #trimMemory}). */
  private static final long KEPT_APPLIED_ENTRIES = 2000;
  private static final long TRIM_STEP_ENTRIES = 500;

  /** Where the other members are, and where this one listens for them. */
  record Peers(long clusterId, long selfId, Map<Long, List<String>> urls, List<String> listenUrls) {
    boolean alone() {
      return urls.keySet().stream().allMatch(id -> id == selfId);
    }
  }

  private final RaftNode node;
  private final Wal wal;
  private final MvccStore store;
  private final WatchHub watches;
  private final Lessor lessor;
  private final Alarms alarms;
  private final long electionTimeoutMs;
  private final long heartbeatMs;
  private final long requestTimeoutMs;
  private final long snapshotCount;
  private final Peers peers;
  private final FailStop failStop;
  /**
   * The last snapshot point: the keyspace is synced up to it, and the log files before it are gone
   * (entries leave memory earlier, see {@link #trimMemory}).
   */
  private long snapshotIndex;
  private boolean snapshotting;

  private AppendThread appendThread;
  private ApplyThread applyThread;
  private PeerTransport transport;
  private Context context;

  /** Whether a Ready is being persisted; the next one waits for it. */
  private boolean readyInFlight;
  /** The hard state last written with a sync (null: none yet in this process). */
  private HardState synced;
  private boolean readyScheduled;
  /** The leader as last seen by the core (0: none); read by API threads. */
  private volatile long leader;
  private volatile long term;
  private volatile long commitIndex;
  /** The highest index the keyspace reflects. */
  private volatile long appliedIndex;
  /**
   * The highest index whose requests were answered (written by the apply thread just before its
   * answers leave, which is before their transaction commits): appliedIndex catches up within a commit.
   */
  private volatile long answeredIndex;
  /** Proposals of this loop turn, not yet handed to the core. */
  private final List<byte[]> proposed = new ArrayList<>();
  private final List<Long> proposedIds = new ArrayList<>();
  /**
   * Callers waiting for their request's entry to apply, by request id: added by this loop, answered
   * by the apply thread straight away (one thread hand-off less per write than through this loop),
   * or by this loop when it refuses or times out the request. Whoever removes a waiter answers it.
   */
  private final Map<Long, Waiter> waiting = new java.util.concurrent.ConcurrentHashMap<>();
  /** Reads of this loop turn, waiting to be sent as one ReadIndex request. */
  private final List<PendingRead> readBatch = new ArrayList<>();
  /** ReadIndex requests sent, by their context, until the core answers with a read index. */
  private final Map<Long, List<PendingRead>> readsAsked = new HashMap<>();
  /** Reads with a read index, waiting for the applied index to reach it. */
  private final TreeMap<Long, List<PendingRead>> readsWaiting = new TreeMap<>();
  private long nextReadContext;
  /** Lease requests forwarded to the leader, by sequence number, until it answers. */
  private final Map<Long, PendingForward> forwarded = new HashMap<>();
  private long nextForwardSeq;
  /** Answers lease requests forwarded to this member while it leads (set by the member). */
  private Function<LeaseForward, Future<LeaseForward>> leaseRequests =
      r -> Future.failedFuture(EtcdError.NOT_LEADER.exception());
  /** etcd's request id scheme: low 16 bits of the member id, then a time-seeded counter. */
  private final java.util.concurrent.atomic.AtomicLong requestIds;

  RaftVerticle(RaftNode node, Wal wal, MvccStore store, WatchHub watches, Lessor lessor, Alarms alarms,
      long electionTimeoutMs, long heartbeatMs, long requestTimeoutMs, long snapshotCount,
      long appliedIndex, Peers peers, FailStop failStop) {
    this.node = node;
    this.wal = wal;
    this.store = store;
    this.watches = watches;
    this.lessor = lessor;
    this.alarms = alarms;
    this.electionTimeoutMs = electionTimeoutMs;
    this.heartbeatMs = heartbeatMs;
    this.requestTimeoutMs = requestTimeoutMs;
    this.appliedIndex = appliedIndex;
    this.peers = peers;
    this.snapshotCount = snapshotCount;
    this.failStop = failStop;
    this.snapshotIndex = node.firstIndex() - 1;
    this.term = node.term();
    this.commitIndex = node.commitIndex();
    this.requestIds = new java.util.concurrent.atomic.AtomicLong(
        ((node.id() & 0xFFFFL) << 48) | ((System.currentTimeMillis() << 8) & 0xFFFF_FFFF_FFFFL));
  }

  @Override
  public Future<?> start() {
    context = vertx.getOrCreateContext();
    appendThread = new AppendThread(wal, failStop);
    applyThread = new ApplyThread(store, watches, lessor, alarms, new ApplyThread.Sink() {
      @Override
      public void answering(long index, List<ApplyThread.Result> results) {
        answeredIndex = Math.max(answeredIndex, index); // before any answer leaves: see answeredBarrier
        answer(results);
      }

      @Override
      public void applied(long index) {
        post(() -> onApplied(index));
      }
    }, failStop);
    failStop.onStop(this::answerEveryoneStopped);
    transport = new PeerTransport(vertx, peers.clusterId(), peers.selfId(), peers.urls(), new PeerTransport.Receiver() {
      @Override
      public void message(long from, byte[] payload) {
        try {
          node.step(RaftCodec.decode(payload));
        } catch (InvalidProtocolBufferException e) {
          LOG.warn("dropped an undecodable message from {}", Long.toHexString(from));
          return;
        }
        scheduleReady();
      }

      @Override
      public void snapshot(long from, byte[] payload) {
        message(from, payload); // a SNAP message whose snapshot carries the keyspace
      }

      @Override
      public void lease(long from, byte[] payload) {
        onLeaseFrame(from, payload);
      }

      @Override
      public void unreachable(long peer) {
        node.reportUnreachable(peer);
      }
    });
    vertx.setPeriodic(heartbeatMs, id -> {
      node.tick();
      scheduleReady();
    });
    vertx.setPeriodic(200, id -> expireWaiters());
    if (peers.alone()) {
      node.campaign(); // nobody to wait for: lead at once, as etcd's single member does
    }
    scheduleReady();
    return transport.listen(peers.listenUrls());
  }

  /**
   * Lets the append and apply threads finish what is queued, then stops them. Blocking: called by the
   * member's shutdown, off the event loop. Completions posted to this context afterwards are dropped.
   */
  void closeThreads() throws InterruptedException {
    appendThread.close();
    applyThread.close();
  }

  /** Closes the peer port and streams (no more messages in or out). */
  Future<Void> closeTransport() {
    Promise<Void> done = Promise.promise();
    context.runOnContext(v -> transport.close().onComplete(done));
    return done.future();
  }

  /** Hands work from another thread to this loop; during shutdown the loop may be gone. */
  private void post(Runnable work) {
    try {
      context.runOnContext(v -> work.run());
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // Vert.x is closing: nobody is left to answer.
    }
  }

  long term() {
    return term;
  }

  long leader() {
    return leader;
  }

  long commitIndex() {
    return commitIndex;
  }

  long appliedIndex() {
    return appliedIndex;
  }

  /** A fresh id for a request this member proposes: its entry's result is matched back by it. */
  long nextRequestId() {
    return requestIds.incrementAndGet();
  }

  /**
   * Proposes an encoded request (whose id came from {@link #nextRequestId}); {@code handler} gets the
   * response once the entry is applied (on the apply thread), or the etcd error (on this verticle's
   * context), and must hand off to its own context at once.
   */
  void propose(long id, byte[] data, Handler<AsyncResult<Message>> handler) {
    context.runOnContext(v -> {
      if (failStop.stopped()) {
        handler.handle(Future.failedFuture(EtcdError.STOPPED.exception()));
        return;
      }
      waiting.put(id, new Waiter(handler, System.nanoTime() + requestTimeoutMs * 1_000_000L));
      proposed.add(data);
      proposedIds.add(id);
      if (proposed.size() == 1) {
        context.runOnContext(x -> flushProposals()); // after the proposals already queued on this loop
      }
    });
  }

  /**
   * Moves leadership to {@code target} (etcd's MoveLeader; Raft thesis §3.10): completes once the
   * target leads, fails if this member does not lead, the target is no voter, or it takes longer
   * than the request timeout.
   */
  Future<Void> transferLeadership(long target) {
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> {
      if (!node.isLeader()) {
        promise.fail(EtcdError.NOT_LEADER.exception());
        return;
      }
      if (!peers.urls().containsKey(target)) {
        promise.fail(EtcdError.BAD_LEADER_TRANSFEREE.exception());
        return;
      }
      node.transferLeadership(target);
      scheduleReady();
      long deadline = System.nanoTime() + requestTimeoutMs * 1_000_000L;
      vertx.setPeriodic(heartbeatMs, id -> {
        if (leader == target) {
          vertx.cancelTimer(id);
          promise.tryComplete();
        } else if (System.nanoTime() - deadline > 0) {
          vertx.cancelTimer(id);
          promise.tryFail(EtcdError.LEADER_TRANSFER_TIMEOUT.exception());
        }
      });
    });
    return promise.future();
  }

  /**
   * Completes once a read of the local keyspace is linearizable: the leader confirmed its leadership
   * at a read index (one heartbeat round for every read of the loop turn) and the keyspace has
   * applied up to it (ReadIndex, Raft thesis §6.4).
   */
  Future<Void> readBarrier() {
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> {
      if (failStop.stopped()) {
        promise.fail(EtcdError.STOPPED.exception());
        return;
      }
      readBatch.add(new PendingRead(promise, System.nanoTime() + requestTimeoutMs * 1_000_000L));
      if (readBatch.size() == 1) {
        context.runOnContext(x -> flushReads());
      }
    });
    return promise.future();
  }

  /**
   * Completes once the keyspace holds every write this member has answered so far: a serializable read
   * waits for it, so that a client that saw its write acknowledged reads it back from this member, as
   * from etcd (answers leave just before the transaction that holds them commits, see
   * {@link ApplyThread.Sink}). Usually complete at once.
   */
  Future<Void> answeredBarrier() {
    long target = answeredIndex;
    if (appliedIndex >= target) {
      return Future.succeededFuture();
    }
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> {
      if (appliedIndex >= target) {
        promise.complete();
      } else {
        readsWaiting.computeIfAbsent(target, k -> new ArrayList<>())
            .add(new PendingRead(promise, System.nanoTime() + requestTimeoutMs * 1_000_000L));
      }
    });
    return promise.future();
  }

  /** Sets who answers lease requests forwarded to this member (the member, once it is built). */
  void leaseRequestHandler(Function<LeaseForward, Future<LeaseForward>> handler) {
    this.leaseRequests = handler;
  }

  /**
   * Forwards a lease request to the leader; completes (on this context) with its answer, or fails
   * with "no leader" when there is none (or it is this member), or "request timed out".
   */
  Future<LeaseForward> forwardLease(LeaseForward.Builder request) {
    Promise<LeaseForward> promise = Promise.promise();
    context.runOnContext(v -> {
      long to = leader;
      if (to == 0 || to == peers.selfId()) {
        promise.fail(EtcdError.NO_LEADER.exception());
        return;
      }
      long seq = ++nextForwardSeq;
      forwarded.put(seq, new PendingForward(promise, System.nanoTime() + LEASE_FORWARD_TIMEOUT_MS * 1_000_000L));
      transport.sendLease(to, request.setSeq(seq).build().toByteArray());
    });
    return promise.future();
  }

  private void onLeaseFrame(long from, byte[] payload) {
    LeaseForward frame;
    try {
      frame = LeaseForward.parseFrom(payload);
    } catch (InvalidProtocolBufferException e) {
      LOG.warn("dropped an undecodable lease frame from {}", Long.toHexString(from));
      return;
    }
    switch (frame.getKindCase()) {
      case RENEW, TIME_TO_LIVE_REQUEST -> leaseRequests.apply(frame).onComplete(ar -> {
        LeaseForward.Builder answer = ar.succeeded() ? ar.result().toBuilder()
            : LeaseForward.newBuilder().setError(errorText(ar.cause()));
        transport.sendLease(from, answer.setSeq(frame.getSeq()).build().toByteArray());
      });
      default -> {
        PendingForward pending = forwarded.remove(frame.getSeq());
        if (pending != null) {
          pending.promise().tryComplete(frame);
        }
      }
    }
  }

  private static String errorText(Throwable cause) {
    return cause instanceof EtcdError.EtcdException e ? e.getMessage() : EtcdError.TIMEOUT.message();
  }

  /**
   * Completes once this member has applied every entry committed when it was called: what the leader
   * waits for before answering lease requests, so a lease granted a moment ago is known.
   */
  Future<Void> appliedBarrier() {
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> {
      long target = node.commitIndex();
      if (appliedIndex >= target) {
        promise.complete();
      } else {
        readsWaiting.computeIfAbsent(target, k -> new ArrayList<>())
            .add(new PendingRead(promise, System.nanoTime() + requestTimeoutMs * 1_000_000L));
      }
    });
    return promise.future();
  }

  private void flushProposals() {
    if (proposed.isEmpty()) {
      return;
    }
    boolean accepted = node.propose(List.copyOf(proposed));
    if (!accepted) {
      for (long id : proposedIds) {
        Waiter w = waiting.remove(id);
        if (w != null) {
          w.handler().handle(Future.failedFuture(EtcdError.NO_LEADER.exception()));
        }
      }
    }
    proposed.clear();
    proposedIds.clear();
    scheduleReady();
  }

  private void flushReads() {
    if (readBatch.isEmpty()) {
      return;
    }
    List<PendingRead> batch = new ArrayList<>(readBatch);
    readBatch.clear();
    long ctx = ++nextReadContext;
    if (!node.readIndex(ByteBuffer.allocate(8).putLong(ctx).array())) {
      batch.forEach(r -> r.promise().fail(EtcdError.NO_LEADER.exception()));
      return;
    }
    readsAsked.put(ctx, batch);
    scheduleReady();
  }

  private void scheduleReady() {
    if (!readyScheduled) {
      readyScheduled = true;
      context.runOnContext(v -> {
        readyScheduled = false;
        processReady();
      });
    }
  }

  private void processReady() {
    if (readyInFlight || !node.hasReady()) {
      return;
    }
    Ready rd = node.ready();
    readyInFlight = true;
    for (io.vetcd.raft.Message m : rd.leaderMessages()) {
      if (m.type() == MessageType.SNAP) {
        sendSnapshot(m);
      } else {
        transport.send(m.to(), RaftCodec.encode(m));
      }
    }
    if (rd.softState() != null) {
      long previous = leader;
      leader = rd.softState().leader();
      if (previous != leader) {
        LOG.info("leader is now {} (term {}, this member is {})",
            leader == 0 ? "unknown" : Long.toHexString(leader), node.term(), rd.softState().role());
        long self = peers.selfId();
        if (leader == self) {
          // etcd's promote: a lease kept alive through the old leader must not expire in the failover.
          lessor.promote(electionTimeoutMs * 1_000_000L);
        } else if (previous == self) {
          lessor.demote();
        }
      }
    }
    for (ReadState rs : rd.readStates()) {
      List<PendingRead> reads = readsAsked.remove(ByteBuffer.wrap(rs.context()).getLong());
      if (reads != null) {
        readsWaiting.computeIfAbsent(rs.index(), k -> new ArrayList<>()).addAll(reads);
      }
    }
    releaseReads();
    if (rd.snapshot() != null) {
      installSnapshot(rd);
      return;
    }
    // etcd's order: committed entries are already on a quorum's disks, so they are applied while
    // this Ready's own records are written, not after (one fsync less between commit and answer).
    applyThread.submit(rd.committedEntries());
    if (!rd.needsPersist()) {
      afterPersist(rd, false);
    } else if (mustSync(rd)) {
      appendThread.submit(rd.hardState(), rd.entries(), true, () -> post(() -> afterPersist(rd, false)));
      synced = rd.hardState() == null ? synced : rd.hardState();
    } else {
      // Only the commit index moved (etcd's raft.MustSync is false): it is written without waiting
      // for a sync. A restart that finds an older commit index learns the newer one from the leader.
      appendThread.submit(rd.hardState(), rd.entries(), false, () -> { });
      afterPersist(rd, false);
    }
  }

  /** Whether a Ready's records must be on disk before it goes on: new entries, a new term or vote. */
  private boolean mustSync(Ready rd) {
    HardState hs = rd.hardState();
    return !rd.entries().isEmpty() || synced == null
        || (hs != null && (hs.term() != synced.term() || hs.vote() != synced.vote()));
  }

  /**
   * A follower far behind gets the whole keyspace: a consistent LMDB copy taken now (at an applied
   * index at or past the snapshot's), on its own stream. The core hears how it went.
   */
  private void sendSnapshot(io.vetcd.raft.Message m) {
    vertx.executeBlocking(store::snapshotBytes, false)
        .compose(bytes -> transport.sendSnapshot(m.to(),
            RaftCodec.encode(m.toBuilder().snapshot(m.snapshot().withData(bytes)).build())))
        .onComplete(ar -> {
          if (ar.failed()) {
            LOG.warn("sending a snapshot to {} failed: {}", Long.toHexString(m.to()), ar.cause().toString());
          }
          node.reportSnapshot(m.to(), ar.succeeded());
          scheduleReady();
        });
  }

  /**
   * Installs a snapshot from the leader: the keyspace is replaced (apply thread, after the entries
   * queued before) and synced, then the log records that everything before the snapshot is void, then
   * the Ready goes on as usual. Entries the snapshot already covers are skipped when applied.
   */
  private void installSnapshot(Ready rd) {
    io.vetcd.raft.Snapshot snapshot = rd.snapshot();
    applyThread.submit(() -> {
      try {
        Failpoints.check("snapshot-install");
        if (!store.install(snapshot.data())) {
          LOG.info("the snapshot from the leader is not newer than the keyspace: kept the keyspace");
        }
        store.sync();
      } catch (java.io.IOException | RuntimeException e) {
        failStop.stop("installing a snapshot from the leader failed", e);
        throw new IllegalStateException("snapshot install failed", e);
      }
      long applied = store.appliedIndex();
      lessor.reload(Member.leaseTtls(store));
      alarms.reload(store);
      watches.reset();
      LOG.info("applying snapshot at index {} (term {}): the keyspace is now at applied index {}",
          snapshot.index(), snapshot.term(), applied);
      post(() -> {
        appliedIndex = Math.max(appliedIndex, applied);
        snapshotIndex = snapshot.index();
        io.vetcd.raft.Snapshot point = snapshot.withData(new byte[0]);
        appendThread.submit(point, true, rd.hardState(), rd.entries(), () -> post(() -> afterPersist(rd, true)));
      });
    });
  }

  /**
   * Every {@code --snapshot-count} applied entries: make the keyspace durable (LMDB runs without its
   * own fsync), then drop the log up to the applied index from memory and mark it void in the log.
   */
  private void maybeCompact() {
    // Only what the apply thread has written (and the core has handed out) can be left behind.
    long applied = Math.min(appliedIndex, node.appliedIndex());
    if (snapshotting || applied - snapshotIndex < snapshotCount) {
      trimMemory(applied);
      return;
    }
    snapshotting = true;
    // Taken now, while the entry is surely still in memory (trimMemory may pass it during the sync).
    io.vetcd.raft.Snapshot point = node.createSnapshot(applied, new byte[0]);
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
      for (long id : peers.urls().keySet()) {
        if (id != peers.selfId()) {
          upTo = Math.min(upTo, node.matchIndex(id));
        }
      }
    }
    // In steps: each trim moves the rest of the in-memory log down.
    if (upTo - (node.firstIndex() - 1) >= TRIM_STEP_ENTRIES) {
      node.compact(node.createSnapshot(upTo, new byte[0]));
    }
  }

  private void afterPersist(Ready rd, boolean applyCommitted) {
    rd.messages().forEach(m -> transport.send(m.to(), RaftCodec.encode(m)));
    if (applyCommitted) {
      applyThread.submit(rd.committedEntries());
    }
    node.advance(rd);
    term = node.term();
    commitIndex = node.commitIndex();
    readyInFlight = false;
    processReady();
  }

  /**
   * The member stopped ({@link FailStop}): every request waiting on it hears etcd's "server stopped"
   * rather than a timeout, and nothing waiting is ever answered with success.
   */
  private void answerEveryoneStopped() {
    for (Long id : waiting.keySet()) {
      Waiter w = waiting.remove(id);
      if (w != null) {
        w.handler().handle(Future.failedFuture(EtcdError.STOPPED.exception()));
      }
    }
    post(() -> {
      List<PendingRead> reads = new ArrayList<>(readBatch);
      readBatch.clear();
      readsAsked.values().forEach(reads::addAll);
      readsAsked.clear();
      readsWaiting.values().forEach(reads::addAll);
      readsWaiting.clear();
      reads.forEach(r -> r.promise().tryFail(EtcdError.STOPPED.exception()));
      forwarded.values().forEach(f -> f.promise().tryFail(EtcdError.STOPPED.exception()));
      forwarded.clear();
    });
  }

  /** Answers the callers of a batch's requests; on the apply thread, right after its commit. */
  private void answer(List<ApplyThread.Result> results) {
    for (ApplyThread.Result r : results) {
      Waiter w = waiting.remove(r.requestId());
      if (w != null) {
        w.handler().handle(r.error() == null ? Future.succeededFuture(r.response()) : Future.failedFuture(r.error()));
      }
    }
  }

  private void onApplied(long index) {
    appliedIndex = Math.max(appliedIndex, index);
    releaseReads();
    maybeCompact();
  }

  private void releaseReads() {
    while (!readsWaiting.isEmpty() && readsWaiting.firstKey() <= appliedIndex) {
      readsWaiting.pollFirstEntry().getValue().forEach(r -> r.promise().tryComplete());
    }
  }

  /**
   * etcd answers a request that did not apply in time with "request timed out" rather than hanging
   * (a proposal lost with a leader change, a read whose leader stepped down).
   */
  private void expireWaiters() {
    long now = System.nanoTime();
    for (Map.Entry<Long, Waiter> e : waiting.entrySet()) {
      Waiter w = e.getValue();
      // remove(key, value): the apply thread may answer it at this very moment; only one of us does.
      if (now - w.deadlineNanos() > 0 && waiting.remove(e.getKey(), w)) {
        w.handler().handle(Future.failedFuture(EtcdError.TIMEOUT.exception()));
      }
    }
    for (Iterator<PendingForward> it = forwarded.values().iterator(); it.hasNext(); ) {
      PendingForward f = it.next();
      if (now - f.deadlineNanos() > 0) {
        it.remove();
        f.promise().tryFail(EtcdError.TIMEOUT.exception());
      }
    }
    for (Iterator<List<PendingRead>> it = readsAsked.values().iterator(); it.hasNext(); ) {
      List<PendingRead> reads = it.next();
      if (now - reads.get(0).deadlineNanos() > 0) {
        it.remove();
        reads.forEach(r -> r.promise().tryFail(EtcdError.TIMEOUT.exception()));
      }
    }
  }
}
