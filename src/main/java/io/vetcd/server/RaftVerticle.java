package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.internal.PeerMessage;
import com.google.protobuf.Message;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.proto.internal.LeaseForward;
import io.vetcd.raft.ConfChange;
import io.vetcd.raft.HardState;
import io.vetcd.raft.MessageType;
import io.vetcd.raft.RaftNode;
import io.vetcd.raft.Ready;
import io.vetcd.transport.PeerTransport;
import io.vetcd.wal.Wal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

  /** Where the other members are, and where this one listens for them. */
  record Peers(long clusterId, long selfId, Map<Long, List<String>> urls, List<String> listenUrls) {
    boolean alone() {
      return urls.keySet().stream().allMatch(id -> id == selfId);
    }

    /** The other members' ids. */
    Set<Long> others() {
      Set<Long> others = new HashSet<>(urls.keySet());
      others.remove(selfId);
      return Set.copyOf(others);
    }
  }

  /** The loop's timing and log policy, from the member's flags. */
  record Options(long electionTimeoutMs, long heartbeatMs, long requestTimeoutMs, long snapshotCount,
      java.nio.file.Path snapshotDir, Config.Tls peerTls, boolean electionTickAdvance) {}

  /** How often, and for how long, a starting member looks for its peers' streams (etcd's 50 ms, 5 s). */
  private static final long TICK_ADVANCE_POLL_MS = 50;
  private static final long TICK_ADVANCE_WAIT_MS = 5_000;

  private final RaftNode node;
  private final Wal wal;
  private final Keyspace keyspace;
  private final Peers peers;
  private final Options options;
  private final FailStop failStop;
  private final RequestRegistry requests;
  private final io.vetcd.metrics.PeerRoundTrips roundTrips = new io.vetcd.metrics.PeerRoundTrips();
  private final ReadIndexBatcher reads;

  private AppendThread appendThread;
  private ApplyThread applyThread;
  private PeerTransport transport;
  private LeaseForwarder leases;
  private SnapshotPolicy snapshots;
  private SnapshotTransfer snapshotTransfer;
  private Defragmenter defragmenter;
  private Context context;

  private final HeldAcks heldAcks = new HeldAcks();
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
  /** The bytes of {@link #proposed}, counted against {@link ProposalBounds}. */
  private long proposedBytes;
  /** Set before start: who answers lease requests forwarded to this member while it leads. */
  private Function<LeaseForward, Future<LeaseForward>> leaseAnswerer;
  /** The member list as applied (ClusterMembers); read by API threads. */
  private volatile ClusterRecord cluster;
  /** Called once this member applied its own removal from the cluster. */
  private Runnable removedHandler = () -> { };
  /** Membership changes at or below this index were superseded by a snapshot the core restored. */
  private long membershipFloor;
  /** A lone member whose campaign at start waits for the membership changes it has yet to apply. */
  private boolean campaignOnceApplied;
  /**
   * For each peer, since when (nanoTime) it has been heard from without a gap of an election timeout,
   * and when it was last heard from: what etcd's "connected fully since" asks of a leader's peers before
   * a membership change that could cost the quorum.
   */
  private final Map<Long, long[]> heard = new java.util.HashMap<>();

  RaftVerticle(RaftNode node, Wal wal, Keyspace keyspace, Peers peers, Options options, FailStop failStop,
      ClusterRecord cluster) {
    this.node = node;
    this.cluster = cluster;
    this.wal = wal;
    this.keyspace = keyspace;
    this.peers = peers;
    this.options = options;
    this.failStop = failStop;
    this.appliedIndex = keyspace.store().appliedIndex();
    this.term = node.term();
    this.commitIndex = node.commitIndex();
    this.requests = new RequestRegistry(node.id(), options.requestTimeoutMs());
    this.reads = new ReadIndexBatcher(options.requestTimeoutMs());
  }

  @Override
  public Future<?> start() {
    context = vertx.getOrCreateContext();
    appendThread = new AppendThread(wal, failStop);
    applyThread = new ApplyThread(keyspace.store(), keyspace.watches(), keyspace.lessor(), keyspace.alarms(), keyspace.auth(),
        new ApplyThread.Sink() {
          @Override
          public void answering(long index, List<ApplyThread.Result> results) {
            answeredIndex = Math.max(answeredIndex, index); // before any answer leaves: see answeredBarrier
            requests.answer(results);
          }

          @Override
          public void applied(long index) {
            post(() -> onApplied(index));
          }

          @Override
          public void held(long requestId) {
            requests.keepWaiting(requestId);
          }

          @Override
          public void membership(ApplyThread.MembershipChange change) {
            post(() -> membershipApplied(change));
          }
        }, failStop);
    failStop.onStop(this::answerEveryoneStopped);
    defragmenter = new Defragmenter(vertx, keyspace.store(), applyThread, options.snapshotDir(),
        keyspace.lessor().minTtlSeconds(), failStop);
    snapshotTransfer = new SnapshotTransfer(vertx, keyspace, failStop, options.snapshotDir(), node::term);
    transport = new PeerTransport(vertx, peers.clusterId(), peers.selfId(), peers.urls(), options.snapshotDir(),
        options.peerTls(), new PeerTransport.Receiver() {
      @Override
      public void message(long from, byte[] payload) {
        try {
          heardFrom(from);
          PeerMessage m = RaftCodec.parse(payload);
          if (m.getType() == RaftCodec.LEASE_FORWARD) {
            leases.received(from, m.getContext().toByteArray());
            return;
          }
          io.vetcd.raft.RaftMessage message = RaftCodec.toRaft(m);
          if (message.type() == MessageType.HEARTBEAT_RESP) {
            roundTrips.answered(from);
          }
          node.step(message);
        } catch (InvalidProtocolBufferException e) {
          LOG.warn("dropped an undecodable message from {}: {}", Long.toHexString(from), e.getMessage());
          return;
        }
        scheduleReady();
      }

      @Override
      public void snapshot(long from, byte[] payload, java.nio.file.Path file) {
        io.vetcd.raft.RaftMessage m;
        try {
          m = RaftCodec.decode(payload);
        } catch (InvalidProtocolBufferException e) {
          LOG.warn("dropped an undecodable snapshot message from {}", Long.toHexString(from));
          snapshotTransfer.discard(file);
          return;
        }
        if (m.type() != MessageType.SNAP || m.snapshot() == null) {
          LOG.warn("dropped a snapshot stream from {} whose message is a {}", Long.toHexString(from), m.type());
          snapshotTransfer.discard(file);
          return;
        }
        snapshotTransfer.received(m.snapshot(), file);
        node.step(m);
        boolean restoring = node.restoring(m.snapshot());
        if (restoring) {
          // The core took the snapshot's membership: changes at or below it that the apply thread still
          // hands over (queued before the install) must not take it back.
          membershipFloor = Math.max(membershipFloor, m.snapshot().index());
        }
        snapshotTransfer.stepped(m.snapshot(), restoring);
        scheduleReady();
      }

      @Override
      public void unreachable(long peer) {
        node.reportUnreachable(peer);
      }

      @Override
      public void disconnected(long peer) {
        heard.remove(peer); // not connected now: a membership change must wait for it (connectedFullySince)
      }

      @Override
      public byte[] members() {
        ClusterRecord current = cluster;
        return current.getMembersCount() == 0 ? null : current.toByteArray();
      }

      @Override
      public boolean removed(long from) {
        return ClusterMembers.removed(cluster, from);
      }

      @Override
      public void removedFromCluster(long by) {
        LOG.warn("member {} says this member was removed from the cluster", Long.toHexString(by));
        removedHandler.run();
      }
    });
    leases = new LeaseForwarder((to, frame) -> transport.send(to, RaftCodec.encodeLease(peers.selfId(), to, frame)));
    if (leaseAnswerer != null) {
      leases.answerer(leaseAnswerer);
    }
    snapshots = new SnapshotPolicy(vertx, node, keyspace.store(), wal, appendThread, failStop,
        options.snapshotCount(), snapshotTransfer::cutLimit);
    vertx.setPeriodic(options.heartbeatMs(), id -> {
      node.tick();
      scheduleReady();
    });
    vertx.setPeriodic(200, id -> expire());
    vertx.setPeriodic(Math.max(1000, 2 * options.electionTimeoutMs()), id -> probeIfAlone());
    firstElection();
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

  /** Proposals that wait for their entry to apply. */
  int pendingProposals() {
    return requests.pending();
  }

  /** A fresh id for a request this member proposes: its entry's result is matched back by it. */
  long nextRequestId() {
    return requests.nextId();
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
      if (ProposalBounds.refuse(node.commitIndex(), appliedIndex, node.uncommittedBytes(), proposedBytes, data.length)) {
        handler.handle(Future.failedFuture(EtcdError.TOO_MANY_REQUESTS.exception()));
        return;
      }
      requests.register(id, handler);
      proposed.add(data);
      proposedIds.add(id);
      proposedBytes += data.length;
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
      if (!node.confState().voters().contains(target)) {
        promise.fail(EtcdError.BAD_LEADER_TRANSFEREE.exception());
        return;
      }
      node.transferLeadership(target);
      scheduleReady();
      long deadline = System.nanoTime() + options.requestTimeoutMs() * 1_000_000L;
      vertx.setPeriodic(options.heartbeatMs(), id -> {
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
      if (reads.add(promise)) {
        context.runOnContext(x -> {
          if (reads.flush(node::readIndex)) {
            scheduleReady();
          }
        });
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
    context.runOnContext(v -> reads.waitForApplied(target, appliedIndex, promise));
    return promise.future();
  }

  /**
   * Completes once this member has applied every entry committed when it was called: what the leader
   * waits for before answering lease requests, so a lease granted a moment ago is known.
   */
  Future<Void> appliedBarrier() {
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> reads.waitForApplied(node.commitIndex(), appliedIndex, promise));
    return promise.future();
  }

  /** Sets who answers lease requests forwarded to this member (the member, before the loop starts). */
  void leaseRequestHandler(Function<LeaseForward, Future<LeaseForward>> handler) {
    this.leaseAnswerer = handler;
  }

  /**
   * Forwards a lease request to the leader; completes (on this context) with its answer, or fails
   * with "no leader" when there is none (or it is this member), or "request timed out".
   */
  Future<LeaseForward> forwardLease(LeaseForward.Builder request) {
    return forwardToLeader(request, LeaseForwarder.TIMEOUT_NANOS);
  }

  /**
   * Asks the leader to judge a membership request; completes on this context with its answer, or fails
   * ("no leader" when there is none, "request timed out", or the leader's refusal).
   */
  Future<LeaseForward> forwardMemberRequest(LeaseForward.Builder request) {
    return forwardToLeader(request, options.requestTimeoutMs() * 1_000_000L);
  }

  private Future<LeaseForward> forwardToLeader(LeaseForward.Builder request, long timeoutNanos) {
    Promise<LeaseForward> promise = Promise.promise();
    context.runOnContext(v -> {
      long to = leader;
      if (to == 0 || to == peers.selfId()) {
        promise.fail(EtcdError.NO_LEADER.exception());
        return;
      }
      leases.forward(to, request, timeoutNanos).onComplete(promise);
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
        requests.fail(id, EtcdError.NO_LEADER.exception());
      }
    }
    proposed.clear();
    proposedIds.clear();
    proposedBytes = 0;
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
    for (io.vetcd.raft.RaftMessage m : rd.leaderMessages()) {
      if (m.type() == MessageType.SNAP) {
        snapshotTransfer.send(m, transport).onComplete(ar -> {
          node.reportSnapshot(m.to(), ar.succeeded());
          scheduleReady();
        });
      } else {
        if (m.type() == MessageType.HEARTBEAT) {
          roundTrips.sent(m.to());
        }
        transport.send(m.to(), RaftCodec.encode(m));
      }
    }
    if (rd.softState() != null) {
      leaderSeen(rd.softState());
    }
    reads.readIndexes(rd.readStates());
    reads.applied(appliedIndex);
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

  private void leaderSeen(io.vetcd.raft.SoftState soft) {
    long previous = leader;
    leader = soft.leader();
    if (previous == leader) {
      return;
    }
    LOG.info("leader is now {} (term {}, this member is {})",
        leader == 0 ? "unknown" : Long.toHexString(leader), node.term(), soft.role());
    if (leader != 0) {
      io.vetcd.metrics.EtcdMetrics.LEADER_CHANGES.increment(); // as etcd: each new leader, not each loss
    }
    long self = peers.selfId();
    if (leader == self) {
      // etcd's promote: a lease kept alive through the old leader must not expire in the failover.
      keyspace.lessor().promote(options.electionTimeoutMs() * 1_000_000L);
    } else if (previous == self) {
      keyspace.lessor().demote();
    }
  }

  /** Whether a Ready's records must be on disk before it goes on: new entries, a new term or vote. */
  private boolean mustSync(Ready rd) {
    HardState hs = rd.hardState();
    return !rd.entries().isEmpty() || synced == null
        || (hs != null && (hs.term() != synced.term() || hs.vote() != synced.vote()));
  }

  /**
   * A Ready with a snapshot from the leader: the keyspace is replaced and synced (apply thread, after
   * the entries queued before), then the log records that everything before the snapshot is void, then
   * the Ready goes on as usual.
   */
  private void installSnapshot(Ready rd) {
    io.vetcd.raft.Snapshot snapshot = rd.snapshot();
    snapshotTransfer.install(applyThread, snapshot, applied -> post(() -> {
      appliedIndex = Math.max(appliedIndex, applied);
      node.reportApplied(appliedIndex);
      membershipInstalled();
      snapshots.installed(snapshot.index());
      io.vetcd.raft.Snapshot point = snapshot.withData(new byte[0]);
      appendThread.submit(point, true, rd.hardState(), rd.entries(), () -> post(() -> afterPersist(rd, true)));
    }));
  }

  private void afterPersist(Ready rd, boolean applyCommitted) {
    if (applyCommitted) {
      applyThread.submit(rd.committedEntries());
    }
    for (io.vetcd.raft.RaftMessage m : rd.messages()) {
      if (!heldAcks.hold(m, applyThread.queuedBytes())) {
        transport.send(m.to(), RaftCodec.encode(m));
      }
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
    requests.failAll(EtcdError.STOPPED.exception());
    post(() -> {
      reads.failAll(EtcdError.STOPPED.exception());
      leases.failAll(EtcdError.STOPPED.exception());
    });
  }

  /**
   * A committed entry changed the member list: the core takes a change of who votes, the transport
   * learns where members are, the caller hears; a member that applied its own removal leaves.
   */
  private void membershipApplied(ApplyThread.MembershipChange change) {
    ConfChange cc = change.change();
    if (change.index() <= membershipFloor) {
      cc = null; // superseded by a snapshot the core took already (see membershipInstalled)
    } else {
      cluster = change.record();
    }
    if (cc != null) {
      node.applyConfChange(cc);
      if (cc.type() == ConfChange.Type.REMOVE && cc.member() != peers.selfId()) {
        transport.removePeer(cc.member());
        heard.remove(cc.member());
      }
      LOG.info("applied membership change at index {}: {}; voters {}, learners {}", change.index(), cc,
          hex(node.confState().voters()), hex(node.confState().learners()));
    }
    transport.addPeers(peerUrls(cluster));
    if (change.answer() != null) {
      requests.answer(List.of(change.answer()));
    }
    scheduleReady();
    if (cc != null && cc.type() == ConfChange.Type.REMOVE && cc.member() == peers.selfId()) {
      removedHandler.run();
    }
  }

  /** The keyspace was replaced by a leader's snapshot: its member list is the one to work with. */
  private void membershipInstalled() {
    cluster = keyspace.clusterRecord();
    // The keyspace's list is the truth (the core took the snapshot's, which is older if the keyspace
    // was kept for being newer).
    io.vetcd.raft.ConfState conf = ClusterMembers.confState(cluster);
    if (!conf.voters().isEmpty() && !conf.equals(node.confState())) {
      node.resetConfState(conf);
    }
    Map<Long, List<String>> urls = peerUrls(cluster);
    transport.retainPeers(urls.keySet());
    transport.addPeers(urls);
  }

  static Map<Long, List<String>> peerUrls(ClusterRecord cluster) {
    Map<Long, List<String>> urls = new java.util.LinkedHashMap<>();
    cluster.getMembersList().forEach(m -> urls.put(m.getID(), m.getPeerURLsList()));
    return urls;
  }

  private static List<String> hex(List<Long> ids) {
    return ids.stream().map(Long::toHexString).toList();
  }

  private void heardFrom(long peer) {
    long now = System.nanoTime();
    long[] times = heard.computeIfAbsent(peer, p -> new long[] {now, now});
    if (now - times[1] > options.electionTimeoutMs() * 1_000_000L) {
      times[0] = now; // a gap: connected again only from now
    }
    times[1] = now;
  }

  /**
   * Whether every voter but this member has been heard from without a gap since {@code sinceNanos}
   * (etcd's isConnectedFullySince, over the messages this member received). Raft loop only.
   */
  boolean connectedFullySince(long sinceNanos) {
    return votersConnectedSince(sinceNanos) == node.confState().voters().size();
  }

  /** How many voters (this member included) were heard from without a gap since {@code sinceNanos}. */
  int votersConnectedSince(long sinceNanos) {
    int connected = 0;
    for (long voter : node.confState().voters()) {
      if (voter == peers.selfId() || connectedSince(voter, sinceNanos)) {
        connected++;
      }
    }
    return connected;
  }

  /** Whether {@code peer} was heard from without a gap since {@code sinceNanos}, the last time recently. */
  private boolean connectedSince(long peer, long sinceNanos) {
    long[] times = heard.get(peer);
    return times != null && times[0] - sinceNanos <= 0
        && System.nanoTime() - times[1] <= options.electionTimeoutMs() * 1_000_000L;
  }

  /**
   * A member that may not campaign (a learner, a member that joined and has not applied its addition, a
   * removed one) and hears no leader sends nothing on its own: it asks every peer for nothing, once in
   * a while, so that one that removed it can say so (etcd's peers answer a removed member's streams
   * with 410 Gone). The others ignore the frame.
   */
  private void probeIfAlone() {
    if (leader == 0 && !node.confState().voters().contains(peers.selfId())) {
      byte[] probe = RaftCodec.encodeLease(peers.selfId(), 0, LeaseForward.getDefaultInstance().toByteArray());
      for (long peer : peerUrls(cluster).keySet()) {
        if (peer != peers.selfId()) {
          transport.send(peer, probe);
        }
      }
    }
  }

  /** etcd's Defragment (see {@link Defragmenter}): completes with the keyspace's size before and after. */
  Future<long[]> defragment() {
    return defragmenter.defragment();
  }

  /** Whether {@code peer} was heard from within an election timeout. Raft loop only. */
  boolean heardRecently(long peer) {
    return connectedSince(peer, System.nanoTime());
  }

  /**
   * Runs {@code work} on the consensus loop and completes with its result there; how the member's
   * membership checks read the loop's state (progress, peers heard from).
   */
  <T> Future<T> onLoop(java.util.function.Supplier<T> work) {
    Promise<T> promise = Promise.promise();
    context.runOnContext(v -> {
      try {
        promise.complete(work.get());
      } catch (RuntimeException e) {
        promise.fail(e);
      }
    });
    return promise.future();
  }

  /** The leader's record of how far {@code member}'s log matches its own (0 if not tracked). Raft loop only. */
  long matchIndex(long member) {
    return node.matchIndex(member);
  }

  /** Whether this member leads and tracks {@code member}'s progress. Raft loop only. */
  boolean tracks(long member) {
    return node.tracks(member);
  }

  /** The last index of this member's log. Raft loop only. */
  long lastIndex() {
    return node.lastIndex();
  }

  /** Whether this member leads. Raft loop only. */
  boolean isLeader() {
    return node.isLeader();
  }

  /** The member list as applied. */
  ClusterRecord cluster() {
    return cluster;
  }

  /** Sets what happens once this member applied its own removal (before the loop starts). */
  void onRemoved(Runnable handler) {
    this.removedHandler = handler;
  }

  /**
   * Proposes a membership change (its context carries request {@code id}); {@code handler} gets the
   * member list after it once it is applied here, or the etcd error, as {@link #propose}'s does.
   */
  void proposeConfChange(long id, ConfChange cc, Handler<AsyncResult<Message>> handler) {
    context.runOnContext(v -> {
      if (failStop.stopped()) {
        handler.handle(Future.failedFuture(EtcdError.STOPPED.exception()));
        return;
      }
      requests.register(id, handler);
      if (!node.proposeConfChange(cc)) {
        requests.fail(id, EtcdError.NO_LEADER.exception());
      }
      scheduleReady();
    });
  }

  /**
   * Brings the first election after a start forward, as etcd's adjustTicks does: otherwise a fresh
   * cluster waits out a whole randomized election timeout (1-2 s by default) before anyone campaigns.
   *
   * <p>A member alone in its cluster campaigns at once. The core ignores that while a membership change
   * is committed and not applied (a fresh member's first entry adds itself), so it campaigns again as
   * entries are applied, until it leads. etcd instead skips all but one tick, so its single member
   * leads 0.1-1 s in.
   *
   * <p>With several members and --initial-election-tick-advance, once the streams to more than one peer
   * are up (etcd's test: a quorum of three can then be asked) electionTick - 2 ticks are skipped: a
   * leader already there is heard within the two left, and a fresh cluster elects 2 to electionTick + 1
   * ticks (0.2-1.1 s) after its members could reach each other, as etcd's does. Streams are dialled now
   * rather than on the first message, as etcd's transport does at start.
   */
  private void firstElection() {
    if (peers.alone()) {
      node.campaign();
      campaignOnceApplied = true; // cleared once a leader is seen
      return;
    }
    if (!options.electionTickAdvance()) {
      LOG.info("skipping initial election tick advance");
      return;
    }
    long deadline = System.nanoTime() + TICK_ADVANCE_WAIT_MS * 1_000_000L;
    transport.dialPeers();
    vertx.setPeriodic(TICK_ADVANCE_POLL_MS, id -> {
      int up = transport.dialPeers();
      boolean late = System.nanoTime() - deadline >= 0;
      // A member that already knows a leader (it heard one, or won) has no election to bring forward.
      if (up > 1 && leader == 0) {
        int ticks = node.electionTick() - 2;
        LOG.info("{} initialized peer connection; fast-forwarding {} ticks (election ticks {}) with {} active peer(s)",
            Long.toHexString(peers.selfId()), ticks, node.electionTick(), up);
        node.advanceTicks(ticks);
        scheduleReady();
      }
      if (up > 1 || late) {
        vertx.cancelTimer(id);
      }
    });
  }

  private void onApplied(long index) {
    node.reportApplied(index);
    if (campaignOnceApplied) {
      // Until a leader is seen: another membership change may still be waiting behind this one.
      campaignOnceApplied = leader == 0;
      if (campaignOnceApplied) {
        node.campaign();
        scheduleReady();
      }
    }
    heldAcks.release(applyThread.queuedBytes()).forEach(m -> transport.send(m.to(), RaftCodec.encode(m)));
    appliedIndex = Math.max(appliedIndex, index);
    reads.applied(appliedIndex);
    snapshots.applied(appliedIndex);
  }

  /**
   * etcd answers a request that did not apply in time with "request timed out" rather than hanging
   * (a proposal lost with a leader change, a read whose leader stepped down).
   */
  private void expire() {
    long now = System.nanoTime();
    requests.expire(now);
    leases.expire(now);
    reads.expire(now);
  }
}
