package io.vetcd.server;

import com.google.protobuf.Message;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.AlarmRequest;
import io.vetcd.proto.etcdserverpb.AlarmResponse;
import io.vetcd.proto.etcdserverpb.AlarmType;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.CompactionResponse;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeResponse;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrantResponse;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import io.vetcd.proto.etcdserverpb.LeaseRevokeResponse;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveRequest;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveResponse;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
import io.vetcd.proto.internal.InternalRequest;
import io.vetcd.proto.internal.LeaseForward;
import io.vetcd.proto.internal.LeaseRecord;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.raft.RaftConfig;
import io.vetcd.raft.RaftNode;
import io.vetcd.wal.Wal;
import io.vetcd.watch.WatchHub;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import io.vetcd.auth.Caller;
import io.vetcd.auth.JwtTokens;
import io.vetcd.auth.SimpleTokens;
import io.vetcd.auth.TokenProvider;
import io.vetcd.tls.SelfSignedCertificate;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One vetcd member: its log, keyspace and consensus loop, and what the client API asks of them.
 * Results come back on the caller's context, so API handlers never touch another event loop's state.
 */
public final class LocalMember {

  /** The election timeout in heartbeats (the core's ticks): etcd's electionTicks, at least 2. */
  static int electionTicks(Config config) {
    return (int) Math.max(2, config.electionTimeoutMs() / config.heartbeatIntervalMs());
  }

  private static final Logger LOG = LoggerFactory.getLogger(LocalMember.class);

  /** The etcd API version this member serves; clients gate features on it. */
  public static final String API_VERSION = "3.4.23";

  /** Where the cluster's member record lives in the keyspace's metadata. */
  static final String CLUSTER_RECORD = "cluster";

  private final Vertx vertx;
  private final Config config;
  private final long clusterId;
  private final long id;
  private final MvccStore store;
  private final Wal wal;
  private final RaftVerticle raft;
  private final WatchHub watches;
  private final Lessor lessor;
  private final FailStop failStop;
  /** How long a client's request may wait for the cluster (etcd's ReqTimeout). */
  private final long requestTimeoutMs;
  /** The cluster's alarms, as applied from the log. */
  private final Alarms alarms;
  private final Auth auth;
  /**
   * The size of the write this member refused when it raised NOSPACE (-1: unknown, e.g. after a
   * restart): vetcd clears its own alarm once that write would fit again (see {@link #spaceAvailable}).
   */
  private volatile long refusedCost = -1;
  /** This member's alarm change (raise or clear) in the log's hands now; null: none. */
  private final java.util.concurrent.atomic.AtomicReference<AlarmRequest.AlarmAction> alarmInFlight =
      new java.util.concurrent.atomic.AtomicReference<>();

  private LocalMember(Vertx vertx, Config config, long clusterId, long id, MvccStore store, Wal wal,
      RaftVerticle raft, WatchHub watches, Lessor lessor, Alarms alarms, Auth auth, long requestTimeoutMs,
      FailStop failStop) {
    this.auth = auth;
    this.failStop = failStop;
    this.alarms = alarms;
    this.vertx = vertx;
    this.config = config;
    this.clusterId = clusterId;
    this.id = id;
    this.store = store;
    this.wal = wal;
    this.raft = raft;
    this.watches = watches;
    this.lessor = lessor;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  /** Opens the data directory and starts the consensus loop and the peer port. */
  public static Future<LocalMember> start(Vertx vertx, Config config) {
    FailStop failStop = FailStop.exitingProcess(config.dataDir());
    return vertx.executeBlocking(() -> open(vertx, config, failStop))
        .compose(m -> vertx.deployVerticle(m.raft).map(id -> m))
        .onSuccess(LocalMember::leaveIfRemoved)
        .onSuccess(LocalMember::startLeaseExpiry)
        .onSuccess(LocalMember::startAutoPromotion);
  }

  /**
   * --auto-tls, --peer-auto-tls: the member's own certificates, made at its first start (etcd's
   * SelfCert), naming the addresses it listens on.
   */
  private static void selfSignedCertificates(Config config) {
    try {
      if (config.clientTls() != null && config.clientTls().selfSigned()) {
        List<String> urls = new java.util.ArrayList<>(config.listenClientUrls());
        urls.addAll(config.listenMetricsUrls());
        SelfSignedCertificate.ensure(Path.of(config.clientTls().certFile()).getParent(), urls);
      }
      if (config.peerTls() != null && config.peerTls().selfSigned()) {
        SelfSignedCertificate.ensure(Path.of(config.peerTls().certFile()).getParent(), config.listenPeerUrls());
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** --auth-token: simple tokens, or JWT tokens with the keys Flags checked already. */
  private static TokenProvider tokenProvider(Config.AuthOptions options) {
    if (options.jwt() == null) {
      return new SimpleTokens(options.tokenTtlSeconds(), System::nanoTime);
    }
    try {
      JwtTokens jwt = JwtTokens.load(options.jwt(), System::currentTimeMillis);
      LOG.info("auth tokens are JWT: {}", jwt.describe());
      return jwt;
    } catch (JwtTokens.BadOptions e) {
      throw new IllegalArgumentException(e.getMessage(), e); // the key files changed since the flags were read
    }
  }

  /**
   * Opens the member's log and keyspace. Who the member is and which cluster it belongs to are read
   * from the log only (it is synced before anything is acknowledged); the keyspace runs without a sync
   * per write and may be behind after a power loss, never ahead of what it says it applied. A keyspace
   * that lost what the log no longer holds is refused, never served.
   */
  private static LocalMember open(Vertx vertx, Config config, FailStop failStop) {
    selfSignedCertificates(config);
    Path dir = config.dataDir().resolve("member");
    Wal wal = Wal.open(dir.resolve("wal"));
    // What the log says, without its entries: only those the keyspace has not applied are loaded (below).
    Wal.Replay replay = wal.replay(Long.MAX_VALUE);
    // Twice the quota: the NOSPACE alarm (at the quota), not LMDB's map-full error, is what users meet.
    MvccStore store = MvccStore.open(dir.resolve("db"), 2 * config.effectiveQuotaBytes());
    ClusterRecord cluster;
    long self;
    // The member list the keyspace starts from, if it has none yet: the founding one, or, for a member
    // joining a running cluster, none at all (the log it receives makes it, from index 1 or a snapshot).
    ClusterRecord keyspaceRecord;
    if (replay.identity() == null) {
      if (replay.lastIndex() > 0 || replay.snapshot() != null || store.appliedIndex() > 0) {
        throw new IllegalStateException("the data directory " + config.dataDir() + " holds "
            + (store.appliedIndex() > 0 ? "a keyspace (member/db)" : "log entries")
            + " but its log does not say which member it belongs to: it was not written by this vetcd, or "
            + "its log was removed; start the member with an empty data directory");
      }
      Membership initial = Membership.initial(config.initialCluster(), config.initialClusterToken());
      Membership.MemberInfo local = initial.byName(config.name());
      if (local == null) {
        throw new IllegalArgumentException("couldn't find local name \"" + config.name()
            + "\" in the initial cluster configuration (--initial-cluster=" + config.initialCluster() + ")");
      }
      if (config.initialClusterState().equals("existing")) {
        // A member added to a running cluster (etcdctl member add): who it is comes from the cluster.
        cluster = Joining.fetchCluster(initial, config.name(), config.peerTls());
        self = Joining.ownId(cluster, initial, config.name(), config.initialAdvertisePeerUrls());
        keyspaceRecord = ClusterRecord.newBuilder().setClusterId(cluster.getClusterId()).build();
        writeRecordIfAbsent(store, keyspaceRecord); // before the log says who we are: see Joining
        store.sync();
        wal.append(new Wal.Identity(cluster.getClusterId(), self, cluster.toByteArray()));
        wal.sync();
        LOG.info("joining cluster {} as member {}", Long.toHexString(cluster.getClusterId()), Long.toHexString(self));
      } else {
        // A new member of a new cluster: everything follows from the flags.
        cluster = bootstrap(wal, initial, local.id());
        self = local.id();
        keyspaceRecord = cluster;
      }
      replay = wal.replay(Long.MAX_VALUE);
    } else {
      LOG.info("restarting from {}: --initial-cluster flags are ignored", dir);
      self = replay.identity().memberId();
      try {
        cluster = ClusterRecord.parseFrom(replay.identity().membership());
      } catch (InvalidProtocolBufferException e) {
        throw new IllegalStateException("the member record in the log of " + dir + " does not decode", e);
      }
      keyspaceRecord = cluster;
      long snapshotIndex = replay.snapshot() == null ? 0 : replay.snapshot().index();
      if (store.appliedIndex() < snapshotIndex) {
        throw new IllegalStateException("the keyspace in " + dir.resolve("db") + " is at applied index "
            + store.appliedIndex() + ", behind the log's snapshot point " + snapshotIndex + ": it lost writes "
            + "the log no longer holds (a restored older copy, or a disk that lost synced data). Restore the "
            + "data directory from a backup, or remove it and add the member back to the cluster");
      }
    }
    syncDirectories(config.dataDir());
    // The keyspace's copy (which also gathers names and client URLs as members publish them, and every
    // membership change as it applies) is written without a sync: a power loss can take it, the log's
    // founding copy cannot, and the entries after it come again.
    writeRecordIfAbsent(store, keyspaceRecord);
    ClusterRecord applied0;
    try (MvccStore.ReadView view = store.read()) {
      applied0 = Keyspace.clusterRecordOf(view.record(CLUSTER_RECORD));
    }
    // Who votes as of what the keyspace applied; the changes after it come again as entries.
    io.vetcd.raft.ConfState conf = ClusterMembers.confState(applied0);
    // A snapshot from the leader may have brought the keyspace past the commit index the log knows;
    // the core must not be told more than that (entries up to the store's index are skipped anyway).
    long snapshotIndex = replay.snapshot() == null ? 0 : replay.snapshot().index();
    long applied = Math.min(store.appliedIndex(), Math.max(replay.hardState().commit(), snapshotIndex));
    RaftConfig raftConfig = RaftConfig.builder(self, conf.voters())
        .learners(conf.learners())
        .electionTick(electionTicks(config))
        .heartbeatTick(1)
        .randomSeed(self ^ System.nanoTime())
        .build();
    // Into memory go the entries the keyspace has not applied, and the last one at least (it tells the
    // core where the log ends); the files serve the others to a follower that needs them. Loading the
    // whole log made a restart's heap as large as the log (4.5 GB of RSS after a restart with 4 GB).
    long lastIndex = Math.max(snapshotIndex, replay.lastIndex());
    long loadAfter = lastIndex > snapshotIndex
        ? Math.max(snapshotIndex, Math.min(applied, lastIndex - 1))
        : snapshotIndex;
    List<io.vetcd.raft.Entry> entries = wal.replay(loadAfter).entries();
    RaftNode node = new RaftNode(raftConfig, replay.hardState(), replay.snapshot(), entries, applied,
        new ReadBackStorage(wal.storage(), failStop));
    LOG.info("member {} ({}) of cluster {}: {} log entries after the snapshot point ({} loaded), applied index {}, "
        + "term {}",
        Long.toHexString(self), config.name(), Long.toHexString(cluster.getClusterId()),
        lastIndex - snapshotIndex, entries.size(), applied, replay.hardState().term());
    // Where the others are: the applied list, and the founding (or fetched) one a member that has not
    // applied its own addition yet needs to answer the leader.
    Map<Long, List<String>> peerUrls = new LinkedHashMap<>();
    cluster.getMembersList().stream().filter(m -> !ClusterMembers.removed(applied0, m.getID()))
        .forEach(m -> peerUrls.put(m.getID(), m.getPeerURLsList()));
    peerUrls.putAll(RaftVerticle.peerUrls(applied0));
    long requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs(); // etcd's ReqTimeout
    WatchHub watches = new WatchHub(store);
    // etcd's minimum lease TTL: 1.5 election timeouts (in whole heartbeats), rounded up to seconds.
    long minTtlMs = (3L * electionTicks(config)) / 2 * config.heartbeatIntervalMs();
    Lessor lessor = new Lessor(System::nanoTime, (minTtlMs + 999) / 1000);
    lessor.reload(leaseTtls(store));
    Alarms alarms = new Alarms();
    alarms.reload(store);
    Auth auth = new Auth(tokenProvider(config.auth()), config.auth().bcryptCost(),
        config.clientTls() != null && config.clientTls().clientCertAuth());
    auth.reload(store);
    Path snapshotDir = dir.resolve("snap");
    try {
      SnapshotTransfer.clear(snapshotDir);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException("cannot empty the snapshot directory " + snapshotDir, e);
    }
    RaftVerticle raft = new RaftVerticle(node, wal, new Keyspace(store, watches, lessor, alarms, auth),
        new RaftVerticle.Peers(cluster.getClusterId(), self, peerUrls, config.listenPeerUrls()),
        new RaftVerticle.Options(config.electionTimeoutMs(), config.heartbeatIntervalMs(), requestTimeoutMs,
            config.snapshotCount(), snapshotDir, config.peerTls(), config.initialElectionTickAdvance()), failStop,
        applied0);
    LocalMember member = new LocalMember(vertx, config, cluster.getClusterId(), self, store, wal, raft, watches, lessor,
        alarms, auth, requestTimeoutMs, failStop);
    raft.leaseRequestHandler(member::answerForwarded);
    raft.onRemoved(() -> failStop.leave(REMOVED_MESSAGE));
    io.vetcd.metrics.EtcdMetrics.bind(new io.vetcd.metrics.EtcdMetrics.MemberState(Long.toHexString(self),
        raft::leader, () -> raft.leader() == self, raft::commitIndex, raft::appliedIndex, raft::pendingProposals,
        store::dbSize, store::dbSizeInUse, config.effectiveQuotaBytes(), store::keyCount, watches::streamCount,
        watches::watcherCount));
    return member;
  }

  /**
   * A member restarted after it applied its own removal (it crashed within the second before it would
   * have exited) stops again at once: nobody would ever answer it.
   */
  private void leaveIfRemoved() {
    if (ClusterMembers.removed(raft.cluster(), id)) {
      failStop.leave(REMOVED_MESSAGE);
    }
  }

  /** What a member that was removed from the cluster says as it stops (etcd's words). */
  static final String REMOVED_MESSAGE = "the member has been permanently removed from the cluster";

  private static void writeRecordIfAbsent(MvccStore store, ClusterRecord record) {
    try (MvccStore.ReadView view = store.read()) {
      if (view.record(CLUSTER_RECORD) != null) {
        return;
      }
    }
    try (MvccStore.WriteBatch batch = store.write()) {
      batch.putRecord(CLUSTER_RECORD, record.toByteArray());
      batch.commit();
    }
  }

  /**
   * Makes the data directory's own entries durable before anything is acknowledged: the directories
   * made at the first start (the data dir, member/, member/wal/, member/db/) and the keyspace's files
   * in member/db. Without it a power loss can take a whole fresh data dir with everything synced in
   * it; the log syncs its own directory, not the ones above it.
   */
  static void syncDirectories(Path dataDir) {
    Path member = dataDir.resolve("member");
    List<Path> dirs = new java.util.ArrayList<>(List.of(member.resolve("db"), member.resolve("wal"), member,
        dataDir.toAbsolutePath()));
    if (dataDir.toAbsolutePath().getParent() != null) {
      dirs.add(dataDir.toAbsolutePath().getParent());
    }
    try (io.vetcd.wal.FileSyncer disk = io.vetcd.wal.FileSyncer.disk()) {
      for (Path dir : dirs) {
        disk.forceDirectory(dir);
      }
    } catch (java.io.IOException e) {
      throw new io.vetcd.wal.WalException("syncing the data directory " + dataDir + " failed: " + e.getMessage(), e);
    }
  }

  /** The leases the keyspace holds, id → granted TTL: what the lessor starts from. */
  static Map<Long, Long> leaseTtls(MvccStore store) {
    Map<Long, Long> ttls = new LinkedHashMap<>();
    try (MvccStore.ReadView view = store.read()) {
      for (LeaseRecord l : view.leases()) {
        ttls.put(l.getId(), l.getTtl());
      }
    }
    return ttls;
  }

  /**
   * Writes what every member of a new cluster starts from, identically on each, to the log, synced
   * before anything else happens: who this member is and the cluster's members (what a restart trusts),
   * and, as etcd does, one log entry of term 1 per member, already committed. The first election then
   * happens in term 2. A power loss before the sync leaves an empty log: the next start bootstraps
   * again, having told nobody anything.
   */
  static ClusterRecord bootstrap(Wal wal, Membership initial, long self) {
    ClusterRecord.Builder record = ClusterRecord.newBuilder().setClusterId(initial.clusterId());
    for (Membership.MemberInfo m : initial.members()) {
      record.addMembers(io.vetcd.proto.etcdserverpb.Member.newBuilder().setID(m.id()).addAllPeerURLs(m.peerUrls()));
    }
    ClusterRecord cluster = record.build();
    wal.append(new Wal.Identity(cluster.getClusterId(), self, cluster.toByteArray()));
    for (int i = 0; i < cluster.getMembersCount(); i++) {
      byte[] member = cluster.getMembers(i).toByteArray();
      wal.append(new Entry(1, i + 1, Entry.Type.CONF_CHANGE, member));
    }
    wal.append(new HardState(1, 0, cluster.getMembersCount()));
    wal.sync();
    return cluster;
  }

  /**
   * Announces this member's name and client URLs to the cluster through the log (etcd's publish),
   * retrying until a quorum takes it. As in etcd, the member serves clients only after that: a member
   * that cannot reach a quorum at start answers nobody rather than stale data.
   */
  public Future<Void> publish() {
    io.vetcd.proto.etcdserverpb.Member attributes = io.vetcd.proto.etcdserverpb.Member.newBuilder()
        .setID(id)
        .setName(config.name())
        .addAllClientURLs(config.advertiseClientUrls())
        .build();
    Promise<Void> published = Promise.promise();
    publish(attributes, published);
    return published.future();
  }

  private void publish(io.vetcd.proto.etcdserverpb.Member attributes, Promise<Void> published) {
    propose(InternalRequest.newBuilder().setPublish(attributes)).onComplete(ar -> {
      if (ar.succeeded()) {
        published.complete();
      } else {
        LOG.debug("publishing member attributes failed ({}); retrying", ar.cause().getMessage());
        vertx.setTimer(200, t -> publish(attributes, published));
      }
    });
  }

  /**
   * Stops the member: the log and apply threads finish what is queued (every accepted write is synced
   * and applied), then the log and keyspace close. Blocking; the process's shutdown calls it.
   */
  public void close() throws Exception {
    raft.closeTransport().await(1, java.util.concurrent.TimeUnit.SECONDS);
    raft.closeThreads();
    wal.close();
    store.close();
  }

  // Writes go through the log: each completes on the caller's context with its response (header
  // revision only) once its entry is applied, or fails with an EtcdError.EtcdException -- at once with
  // "request is too large" if the entry would exceed --max-request-bytes, as etcd checks it.

  /**
   * A client's write, with who asked ({@link Caller#NOBODY} with auth disabled): the applying members
   * check their permission again, as of the entry (etcd's request header).
   */
  public Future<PutResponse> put(PutRequest request, Caller caller) {
    return propose(asked(InternalRequest.newBuilder().setPut(request), caller), PutResponse.class);
  }

  public Future<DeleteRangeResponse> deleteRange(DeleteRangeRequest request, Caller caller) {
    return propose(asked(InternalRequest.newBuilder().setDeleteRange(request), caller), DeleteRangeResponse.class);
  }

  /** A txn that writes (a read-only one is served without the log). */
  public Future<TxnResponse> txn(TxnRequest request, Caller caller) {
    return propose(asked(InternalRequest.newBuilder().setTxn(request), caller), TxnResponse.class);
  }

  private static InternalRequest.Builder asked(InternalRequest.Builder request, Caller caller) {
    request.setFromClient(true);
    if (!caller.user().isEmpty()) {
      request.setUser(caller.user()).setAuthRevision(caller.revision());
    }
    return request;
  }

  public Auth auth() {
    return auth;
  }

  /**
   * A change of users, roles or auth itself, by {@code caller} (who must have the root role once auth
   * is enabled: checked as the entry applies). A password to store must be hashed already.
   */
  public Future<Message> authChange(io.vetcd.proto.internal.AuthChange change, Caller caller) {
    return propose(asked(InternalRequest.newBuilder().setAuth(change), caller));
  }

  public Future<CompactionResponse> compact(CompactionRequest request) {
    return propose(InternalRequest.newBuilder().setCompaction(request), CompactionResponse.class);
  }

  /** A grant whose lease id is chosen (the member's own id scheme, or the client's). */
  public Future<LeaseGrantResponse> leaseGrant(LeaseGrantRequest request) {
    return propose(InternalRequest.newBuilder().setLeaseGrant(request), LeaseGrantResponse.class);
  }

  public Future<LeaseRevokeResponse> leaseRevoke(LeaseRevokeRequest request, Caller caller) {
    return propose(asked(InternalRequest.newBuilder().setLeaseRevoke(request), caller), LeaseRevokeResponse.class);
  }

  /** As {@link #propose(InternalRequest.Builder)}, with the response type the request's kind applies to. */
  private <R extends Message> Future<R> propose(InternalRequest.Builder request, Class<R> response) {
    return propose(request).map(response::cast);
  }

  /** Proposes a request (see the writes above) and completes with whatever its entry applied to. */
  private Future<Message> propose(InternalRequest.Builder request) {
    long id = raft.nextRequestId();
    byte[] data = request.setId(id).build().toByteArray(); // encoded here, off the consensus loop
    if (data.length > config.maxRequestBytes()) {
      return Future.failedFuture(EtcdError.REQUEST_TOO_LARGE.exception());
    }
    Context caller = vertx.getOrCreateContext();
    Promise<Message> promise = Promise.promise();
    raft.propose(id, data, result -> caller.runOnContext(v -> promise.handle(result)));
    return promise.future();
  }

  /**
   * etcd's Defragment, without holding writes up (see Defragmenter); completes on the caller's context
   * with the keyspace's size (pages in use) before and after.
   */
  public Future<long[]> defragment() {
    if (failStop.stopped()) {
      return Future.failedFuture(EtcdError.STOPPED.exception());
    }
    Context caller = vertx.getOrCreateContext();
    Promise<long[]> promise = Promise.promise();
    raft.defragment().onComplete(result -> caller.runOnContext(v -> promise.handle(result)));
    return promise.future();
  }

  /** etcd's MoveLeader; completes on the caller's context. */
  public Future<Void> moveLeader(long target) {
    Context caller = vertx.getOrCreateContext();
    Promise<Void> promise = Promise.promise();
    raft.transferLeadership(target).onComplete(result -> caller.runOnContext(v -> promise.handle(result)));
    return promise.future();
  }

  /**
   * Completes (on the caller's context) once a serializable read of {@link #store()} sees every write
   * this member has acknowledged; at once, nearly always.
   */
  public Future<Void> serializableBarrier() {
    Future<Void> barrier = raft.answeredBarrier();
    if (barrier.isComplete()) {
      return barrier;
    }
    Context caller = vertx.getOrCreateContext();
    Promise<Void> promise = Promise.promise();
    barrier.onComplete(result -> caller.runOnContext(v -> promise.handle(result)));
    return promise.future();
  }

  /** Completes on the caller's context once a read of {@link #store()} is linearizable. */
  public Future<Void> readBarrier() {
    Context caller = vertx.getOrCreateContext();
    Promise<Void> promise = Promise.promise();
    raft.readBarrier().onComplete(result -> caller.runOnContext(v -> promise.handle(result)));
    return promise.future();
  }

  /**
   * etcd's quota gate for a write that adds {@code cost} bytes. While any member's NOSPACE alarm is
   * raised every write that can grow the keyspace is refused (on every member alike: the alarm is in
   * the log, and the apply step refuses such writes too). Otherwise a write that would take this
   * member's keyspace to its quota is refused and raises this member's alarm, through the log.
   *
   * <p>Unlike etcd's, the alarm this member raised clears itself (through the log too) once the write
   * it refused would fit again — after deletes and a compaction, or a restart with a larger
   * --quota-backend-bytes: LMDB reuses freed pages, no defragmentation is needed. {@code etcdctl alarm
   * disarm} works as in etcd.
   */
  public boolean spaceAvailable(long cost) {
    if (alarms.noSpace()) {
      boolean onlyOurs = alarms.list().stream()
          .allMatch(a -> a.getAlarm() != AlarmType.NOSPACE || a.getMemberID() == id);
      if (!onlyOurs || !clearOwnAlarmIfItFits(cost)) {
        return false; // as etcd: no put passes while the alarm is raised, however small
      }
      // Our alarm's clearing is in the log ahead of this write, which then applies normally.
    }
    boolean available = store.dbSizeInUse() + cost < config.effectiveQuotaBytes();
    if (!available) {
      refusedCost = cost;
      proposeAlarm(AlarmRequest.AlarmAction.ACTIVATE);
    }
    return available;
  }

  /**
   * Clears this member's NOSPACE alarm once its keyspace has room for the write it refused (for an
   * alarm raised before a restart, whose write is not known: for the largest request allowed) and for
   * {@code cost} more. Returns whether the clearing is on its way into the log.
   */
  private boolean clearOwnAlarmIfItFits(long cost) {
    if (!alarms.raised(id, AlarmType.NOSPACE)) {
      return false;
    }
    long needed = Math.max(cost, refusedCost >= 0 ? refusedCost : config.maxRequestBytes());
    if (store.dbSizeInUse() + needed >= config.effectiveQuotaBytes()) {
      return false;
    }
    if (alarmInFlight.get() == AlarmRequest.AlarmAction.DEACTIVATE) {
      return true;
    }
    LOG.info("keyspace in use ({} bytes) is below the quota ({} bytes) again: clearing this member's NOSPACE alarm",
        store.dbSizeInUse(), config.effectiveQuotaBytes());
    return proposeAlarm(AlarmRequest.AlarmAction.DEACTIVATE);
  }

  /** Proposes this member's alarm change, one at a time; returns whether it was proposed. */
  private boolean proposeAlarm(AlarmRequest.AlarmAction action) {
    if (!alarmInFlight.compareAndSet(null, action)) {
      return false; // the next write or timer round asks again if still needed
    }
    if (action == AlarmRequest.AlarmAction.ACTIVATE) {
      LOG.warn("keyspace in use ({} bytes) reached the quota ({} bytes): raising the NOSPACE alarm",
          store.dbSizeInUse(), config.effectiveQuotaBytes());
    }
    propose(InternalRequest.newBuilder().setAlarm(AlarmRequest.newBuilder()
        .setAction(action).setMemberID(id).setAlarm(AlarmType.NOSPACE)))
        .onComplete(ar -> {
          alarmInFlight.set(null);
          if (ar.failed()) {
            LOG.warn("the NOSPACE alarm change did not go through: {}", ar.cause().getMessage());
          }
        });
    return true;
  }

  /**
   * etcd's Alarm call, through the log. This member's own NOSPACE alarm is cleared first if its write
   * fits again, so that a list right after the space came back does not show it.
   */
  public Future<AlarmResponse> alarm(AlarmRequest request) {
    if (alarms.noSpace()) {
      clearOwnAlarmIfItFits(0);
    }
    return propose(InternalRequest.newBuilder().setAlarm(request), AlarmResponse.class);
  }

  /** True while a NOSPACE alarm is raised in the cluster (by any member). */
  public boolean noSpaceAlarm() {
    return alarms.noSpace();
  }

  /** The cluster's alarms, as etcd's status and alarm list show them. */
  public List<io.vetcd.proto.etcdserverpb.AlarmMember> alarms() {
    return alarms.list();
  }

  /** etcd's words for an alarm ({@code memberID:N alarm:NOSPACE }). */
  public static String describe(io.vetcd.proto.etcdserverpb.AlarmMember alarm) {
    return Alarms.describe(alarm);
  }

  // --- leases ---

  /**
   * etcd's expiry loop: twice a second the leader proposes the revoke of every expired lease (at most
   * a thousand per round, as etcd rate-limits it). Followers find nothing to revoke.
   */
  private void startLeaseExpiry() {
    vertx.setPeriodic(500, t -> {
      if (alarms.noSpace()) {
        clearOwnAlarmIfItFits(0); // e.g. after a restart with a larger quota, with no write to ask
      }
      auth.tokens().expire(); // simple tokens nobody used for their TTL (etcd's keeper ticks each second)
      for (long lease : lessor.expiredToRevoke(1000)) {
        propose(InternalRequest.newBuilder().setLeaseRevoke(LeaseRevokeRequest.newBuilder().setID(lease)))
            .onFailure(e -> LOG.debug("revoking expired lease {} failed: {}", Long.toHexString(lease), e.getMessage()));
      }
    });
  }

  /** The lessor: which leases exist, their TTLs (and, on the leader, their expiry). */
  public Lessor lessor() {
    return lessor;
  }

  /**
   * A keep-alive (etcd's LeaseRenew): on the leader, restarts the lease's clock; on a follower,
   * forwarded to the leader. Across a leader change it waits for the new leader, up to the request
   * timeout, as etcd does. Completes with the TTL, or -1 when the lease does not exist.
   */
  public Future<Long> renewLease(long lease) {
    return untilLeaderAnswers(
        () -> answerLocally(LeaseForward.newBuilder().setRenew(lease).build()),
        LeaseForward.newBuilder().setRenew(lease))
        .map(LeaseForward::getTtl);
  }

  /** etcd's LeaseTimeToLive; answered by the leader, which alone knows how much time is left. */
  public Future<LeaseTimeToLiveResponse> timeToLive(LeaseTimeToLiveRequest request) {
    return untilLeaderAnswers(
        () -> answerLocally(LeaseForward.newBuilder().setTimeToLiveRequest(request).build()),
        LeaseForward.newBuilder().setTimeToLiveRequest(request))
        .map(LeaseForward::getTimeToLive);
  }

  private Future<LeaseForward> untilLeaderAnswers(java.util.function.Supplier<Future<LeaseForward>> local,
      LeaseForward.Builder forward) {
    return untilLeaderAnswers(local, () -> raft.forwardLease(forward.clone()), true);
  }

  /**
   * Asks the leader (itself, through {@code local}, if this member leads), again while there is none or
   * it changes, up to the request timeout; {@code retryTimeouts}: also after an answer that timed out
   * (for a request that may safely happen twice).
   */
  private Future<LeaseForward> untilLeaderAnswers(java.util.function.Supplier<Future<LeaseForward>> local,
      java.util.function.Supplier<Future<LeaseForward>> remote, boolean retryTimeouts) {
    Context caller = vertx.getOrCreateContext();
    Promise<LeaseForward> promise = Promise.promise();
    attempt(local, remote, retryTimeouts, System.nanoTime() + requestTimeoutMs * 1_000_000L, promise);
    return promise.future().transform(ar -> {
      Promise<LeaseForward> onCaller = Promise.promise();
      caller.runOnContext(v -> onCaller.handle(ar));
      return onCaller.future();
    });
  }

  private void attempt(java.util.function.Supplier<Future<LeaseForward>> local,
      java.util.function.Supplier<Future<LeaseForward>> remote, boolean retryTimeouts, long deadlineNanos,
      Promise<LeaseForward> promise) {
    Future<LeaseForward> answer = raft.leader() == id ? local.get() : remote.get();
    answer.onComplete(ar -> {
      if (ar.succeeded() && !ar.result().hasError()) {
        promise.complete(ar.result());
        return;
      }
      EtcdError error = ar.succeeded() ? EtcdError.byMessage(ar.result().getError())
          : ar.cause() instanceof EtcdError.EtcdException e ? e.error() : null;
      boolean retry = error == EtcdError.NO_LEADER || error == EtcdError.NOT_LEADER
          || (retryTimeouts && (error == null || error == EtcdError.TIMEOUT));
      if (retry && System.nanoTime() - deadlineNanos < 0) {
        vertx.setTimer(50, t -> attempt(local, remote, retryTimeouts, deadlineNanos, promise));
      } else {
        promise.fail(error == null ? EtcdError.TIMEOUT.exception() : error.exception());
      }
    });
  }

  /** Answers a lease request forwarded by a follower; only the leader (primary lessor) can. */
  private Future<LeaseForward> answerForwarded(LeaseForward request) {
    if (raft.leader() != id) {
      return Future.failedFuture(EtcdError.NOT_LEADER.exception());
    }
    return answerLocally(request);
  }

  /**
   * A lease request on the leader, after it has applied everything committed (as etcd waits for its
   * applied index): a lease granted through another member a moment ago is then known here.
   */
  private Future<LeaseForward> answerLocally(LeaseForward request) {
    if (request.hasMemberRequest()) {
      return judgeOnLeader(request.getMemberRequest());
    }
    return raft.appliedBarrier().compose(v -> {
      if (request.hasRenew()) {
        return Future.succeededFuture(LeaseForward.newBuilder().setTtl(lessor.renew(request.getRenew())).build());
      }
      // Listing a lease's keys reads the keyspace: not on the consensus loop.
      return vertx.executeBlocking(() -> LeaseForward.newBuilder()
          .setTimeToLive(localTimeToLive(request.getTimeToLiveRequest())).build(), false);
    }).recover(e -> Future.failedFuture(
        e instanceof Lessor.NotPrimaryException ? EtcdError.NOT_LEADER.exception() : e));
  }

  private LeaseTimeToLiveResponse localTimeToLive(LeaseTimeToLiveRequest request) {
    if (!lessor.isPrimary()) {
      throw new Lessor.NotPrimaryException(); // only the primary knows the time left
    }
    long lease = request.getID();
    long granted = lessor.ttl(lease);
    LeaseTimeToLiveResponse.Builder resp = LeaseTimeToLiveResponse.newBuilder().setID(lease);
    if (granted < 0) {
      return resp.setTTL(-1).build(); // etcd: a lease that does not exist has TTL -1
    }
    resp.setTTL(lessor.remainingSeconds(lease)).setGrantedTTL(granted);
    if (request.getKeys()) {
      try (MvccStore.ReadView view = store.read()) {
        view.leaseKeys(lease).forEach(k -> resp.addKeys(com.google.protobuf.ByteString.copyFrom(k)));
      }
    }
    return resp.build();
  }

  /** A lease id for a grant that did not choose one: unique in the cluster and positive, as etcd's. */
  public long newLeaseId() {
    return raft.nextRequestId() & Long.MAX_VALUE;
  }

  public WatchHub watches() {
    return watches;
  }

  /** The response header etcd puts on the outermost response. */
  public ResponseHeader header(long revision) {
    return ResponseHeader.newBuilder()
        .setClusterId(clusterId)
        .setMemberId(id)
        .setRevision(revision)
        .setRaftTerm(raft.term())
        .build();
  }

  public MvccStore store() {
    return store;
  }

  public Config config() {
    return config;
  }

  public long id() {
    return id;
  }

  public long clusterId() {
    return clusterId;
  }

  /** The members as the applied log knows them (names and client URLs once they have published). */
  public List<io.vetcd.proto.etcdserverpb.Member> members() {
    return raft.cluster().getMembersList();
  }

  /** Whether this member is a learner (as of what it applied): it serves serializable reads only. */
  public boolean isLearner() {
    io.vetcd.proto.etcdserverpb.Member self = ClusterMembers.find(raft.cluster(), id);
    return self != null && self.getIsLearner();
  }

  // --- membership (etcd's Cluster service) ---

  /** How long every voter must have been heard from before a change that could cost the quorum (etcd's HealthInterval). */
  private static final long HEALTH_INTERVAL_NANOS = 5_000_000_000L;
  /** A learner is in sync once its log matches this much of the leader's (etcd's readyPercent). */
  private static final double LEARNER_READY_PERCENT = 0.9;

  /**
   * etcd's MemberAdd: the new member's id is chosen here, as etcd does (from its peer URLs and the
   * time); the leader checks and proposes the change. Completes with the member list after it, once
   * this member applied it.
   */
  public Future<io.vetcd.proto.internal.MemberAnswer> memberAdd(io.vetcd.proto.etcdserverpb.MemberAddRequest request) {
    for (String url : request.getPeerURLsList()) {
      if (!validPeerUrl(url)) {
        return Future.failedFuture(EtcdError.MEMBER_BAD_URLS.exception());
      }
    }
    if (request.getPeerURLsCount() == 0) {
      return Future.failedFuture(EtcdError.MEMBER_BAD_URLS.exception());
    }
    // etcd hashes the time in seconds: the same URLs added twice in one second (after a remove) get the
    // same id, which is then refused as removed. Milliseconds make that unlikely.
    long newId = Membership.memberId(request.getPeerURLsList(), Long.toString(System.currentTimeMillis()));
    return memberRequest(io.vetcd.proto.internal.MemberRequest.newBuilder().setAdd(request).setNewId(newId).build());
  }

  public Future<io.vetcd.proto.internal.MemberAnswer> memberRemove(io.vetcd.proto.etcdserverpb.MemberRemoveRequest request) {
    return memberRequest(io.vetcd.proto.internal.MemberRequest.newBuilder().setRemove(request).build());
  }

  public Future<io.vetcd.proto.internal.MemberAnswer> memberUpdate(io.vetcd.proto.etcdserverpb.MemberUpdateRequest request) {
    if (request.getPeerURLsCount() == 0) {
      return Future.failedFuture(EtcdError.MEMBER_BAD_URLS.exception());
    }
    for (String url : request.getPeerURLsList()) {
      if (!validPeerUrl(url)) {
        return Future.failedFuture(EtcdError.MEMBER_BAD_URLS.exception());
      }
    }
    return memberRequest(io.vetcd.proto.internal.MemberRequest.newBuilder().setUpdate(request).build());
  }

  public Future<io.vetcd.proto.internal.MemberAnswer> memberPromote(io.vetcd.proto.etcdserverpb.MemberPromoteRequest request) {
    return memberRequest(io.vetcd.proto.internal.MemberRequest.newBuilder().setPromote(request).build());
  }

  /** etcd's types.NewURLs: a URL with scheme http or https, a host and a port, and no path. */
  private static boolean validPeerUrl(String url) {
    try {
      java.net.URI uri = new java.net.URI(url);
      return ("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) && uri.getHost() != null
          && uri.getPort() > 0 && (uri.getRawPath() == null || uri.getRawPath().isEmpty());
    } catch (java.net.URISyntaxException e) {
      return false;
    }
  }

  /**
   * A membership request is judged by the leader (which alone knows whether the others are connected
   * and a learner is in sync), asked again while there is none; this member then proposes the change
   * itself and answers once it has applied it. Its own apply, not an answer from the leader: a leader
   * that removes itself may never deliver one, and a member list read from this member next shows the
   * change. A change proposed after a check that a racing change made stale is refused when it applies.
   */
  private Future<io.vetcd.proto.internal.MemberAnswer> memberRequest(io.vetcd.proto.internal.MemberRequest request) {
    LeaseForward.Builder check = LeaseForward.newBuilder().setMemberRequest(request);
    return untilLeaderAnswers(() -> answerLocally(check.build()), () -> raft.forwardMemberRequest(check.clone()), false)
        .compose(judged -> proposeMemberChange(request));
  }

  /** On the leader: why it refuses a membership request (the future fails with it), or nothing. */
  private Future<LeaseForward> judgeOnLeader(io.vetcd.proto.internal.MemberRequest request) {
    return raft.onLoop(() -> refusal(request)).compose(refused -> refused != null
        ? Future.failedFuture(refused.exception())
        : Future.succeededFuture(LeaseForward.newBuilder()
            .setMemberAnswer(io.vetcd.proto.internal.MemberAnswer.getDefaultInstance()).build()));
  }

  /** Proposes a judged membership change; completes (on the caller's context) once it is applied here. */
  private Future<io.vetcd.proto.internal.MemberAnswer> proposeMemberChange(io.vetcd.proto.internal.MemberRequest request) {
    long requestId = raft.nextRequestId();
    io.vetcd.raft.ConfChange change;
    io.vetcd.proto.etcdserverpb.Member added = null;
    switch (request.getKindCase()) {
      case ADD -> {
        added = io.vetcd.proto.etcdserverpb.Member.newBuilder().setID(request.getNewId())
            .addAllPeerURLs(request.getAdd().getPeerURLsList()).setIsLearner(request.getAdd().getIsLearner()).build();
        change = ClusterMembers.change(request.getAdd().getIsLearner()
            ? io.vetcd.raft.ConfChange.Type.ADD_LEARNER : io.vetcd.raft.ConfChange.Type.ADD_VOTER, requestId, added);
      }
      case REMOVE -> change = ClusterMembers.change(io.vetcd.raft.ConfChange.Type.REMOVE, requestId,
          io.vetcd.proto.etcdserverpb.Member.newBuilder().setID(request.getRemove().getID()).build());
      case PROMOTE -> change = ClusterMembers.promotion(requestId, request.getPromote().getID());
      case UPDATE -> {
        return propose(InternalRequest.newBuilder().setMemberUpdate(request.getUpdate()))
            .map(r -> answer((ClusterRecord) r, null));
      }
      default -> {
        return Future.failedFuture(new IllegalArgumentException("empty membership request"));
      }
    }
    Context caller = vertx.getOrCreateContext();
    Promise<Message> applied = Promise.promise();
    raft.proposeConfChange(requestId, change, result -> caller.runOnContext(v -> applied.handle(result)));
    io.vetcd.proto.etcdserverpb.Member member = added;
    return applied.future().map(r -> answer((ClusterRecord) r, member));
  }

  private static io.vetcd.proto.internal.MemberAnswer answer(ClusterRecord record, io.vetcd.proto.etcdserverpb.Member added) {
    io.vetcd.proto.internal.MemberAnswer.Builder answer = io.vetcd.proto.internal.MemberAnswer.newBuilder().setRecord(record);
    if (added != null) {
      answer.setAdded(added);
    }
    return answer.build();
  }

  /**
   * Why the leader refuses a membership request now, or null; on the consensus loop (it reads the
   * core's progress and the peers heard from). The same checks run again when the change applies.
   */
  private EtcdError refusal(io.vetcd.proto.internal.MemberRequest request) {
    if (!raft.isLeader()) {
      return EtcdError.NOT_LEADER; // asked again of the new leader
    }
    ClusterRecord record = raft.cluster();
    long now = System.nanoTime();
    boolean strict = config.strictReconfigCheck();
    switch (request.getKindCase()) {
      case ADD -> {
        io.vetcd.proto.etcdserverpb.Member m = io.vetcd.proto.etcdserverpb.Member.newBuilder()
            .setID(request.getNewId()).addAllPeerURLs(request.getAdd().getPeerURLsList()).build();
        io.vetcd.raft.ConfChange.Type type = request.getAdd().getIsLearner()
            ? io.vetcd.raft.ConfChange.Type.ADD_LEARNER : io.vetcd.raft.ConfChange.Type.ADD_VOTER;
        // etcd's order: the strict checks, then what the apply checks.
        if (strict && !request.getAdd().getIsLearner() && !readyToAddVoter(record)) {
          return EtcdError.MEMBER_NOT_ENOUGH_STARTED;
        }
        if (strict && !raft.connectedFullySince(now - HEALTH_INTERVAL_NANOS)) {
          return EtcdError.UNHEALTHY; // a learner too: etcd asks every voter to be connected for 5 s
        }
        return ClusterMembers.check(record, type, m);
      }
      case REMOVE -> {
        long target = request.getRemove().getID();
        io.vetcd.proto.etcdserverpb.Member m = ClusterMembers.find(record, target);
        EtcdError invalid = ClusterMembers.check(record, io.vetcd.raft.ConfChange.Type.REMOVE,
            io.vetcd.proto.etcdserverpb.Member.newBuilder().setID(target).build());
        if (!strict || m == null || m.getIsLearner()) {
          return invalid;
        }
        if (!readyToRemoveVoter(record, target)) {
          return EtcdError.MEMBER_NOT_ENOUGH_STARTED;
        }
        if (target != id && !raft.heardRecently(target)) {
          return null; // a member that is down is not part of the active quorum: safe to remove
        }
        int active = raft.votersConnectedSince(now - HEALTH_INTERVAL_NANOS);
        int voters = ClusterMembers.confState(record).voters().size();
        if (active - 1 < 1 + (voters - 1) / 2) {
          return EtcdError.UNHEALTHY;
        }
        return null;
      }
      case PROMOTE -> {
        long target = request.getPromote().getID();
        // etcd's order: in sync (a member the leader does not track passes), enough started, then what
        // the apply checks (a member, a learner).
        if (raft.tracks(target) && !learnerReady(target)) {
          return EtcdError.LEARNER_NOT_READY;
        }
        if (strict && !readyToPromote(record)) {
          return EtcdError.MEMBER_NOT_ENOUGH_STARTED;
        }
        return ClusterMembers.checkPromotion(record, target);
      }
      case UPDATE -> {
        return ClusterMembers.checkUpdate(record, request.getUpdate().getID(), request.getUpdate().getPeerURLsList());
      }
      default -> {
        return EtcdError.MEMBER_NOT_FOUND;
      }
    }
  }

  /** Whether a learner's log matches enough of the leader's to vote (etcd's isLearnerReady). Raft loop only. */
  private boolean learnerReady(long learner) {
    long leaderMatch = raft.lastIndex();
    return raft.matchIndex(learner) >= leaderMatch * LEARNER_READY_PERCENT;
  }

  /**
   * etcd's IsReadyToAddVotingMember: with the new voter, the voters that have started (published their
   * name) must still be a quorum; a single member may always take a second.
   */
  private static boolean readyToAddVoter(ClusterRecord record) {
    int[] vs = startedVoters(record, 0);
    int voters = vs[0] + 1;
    return (vs[1] == 1 && voters == 2) || vs[1] >= voters / 2 + 1;
  }

  /** etcd's IsReadyToPromoteMember: counting the learner as a started voter, the started voters are a quorum. */
  private static boolean readyToPromote(ClusterRecord record) {
    int[] vs = startedVoters(record, 0);
    return vs[1] + 1 >= (vs[0] + 1) / 2 + 1;
  }

  /** etcd's IsReadyToRemoveVotingMember: without it, the voters that have started must be a quorum. */
  private static boolean readyToRemoveVoter(ClusterRecord record, long removed) {
    int[] vs = startedVoters(record, removed);
    return vs[1] >= vs[0] / 2 + 1;
  }

  /** The voters of {@code record} but {@code excluded}, and how many of them have started (have a name). */
  private static int[] startedVoters(ClusterRecord record, long excluded) {
    int voters = 0;
    int started = 0;
    for (io.vetcd.proto.etcdserverpb.Member m : record.getMembersList()) {
      if (!m.getIsLearner() && m.getID() != excluded) {
        voters++;
        started += m.getName().isEmpty() ? 0 : 1;
      }
    }
    return new int[] {voters, started};
  }

  /**
   * vetcd's --auto-promote-learners: the leader promotes a learner once it is in sync (as {@code etcdctl
   * member promote} would be let through), once a second at most.
   */
  private void startAutoPromotion() {
    if (!config.autoPromoteLearners()) {
      return;
    }
    java.util.concurrent.atomic.AtomicBoolean promoting = new java.util.concurrent.atomic.AtomicBoolean();
    vertx.setPeriodic(1000, t -> raft.onLoop(() -> {
      if (!raft.isLeader() || promoting.get()) {
        return 0L;
      }
      for (io.vetcd.proto.etcdserverpb.Member m : raft.cluster().getMembersList()) {
        if (m.getIsLearner() && learnerReady(m.getID())) {
          return m.getID();
        }
      }
      return 0L;
    }).onSuccess(learner -> {
      if (learner != 0 && promoting.compareAndSet(false, true)) {
        LOG.info("promoting learner {}: it is in sync with the leader (--auto-promote-learners)", Long.toHexString(learner));
        memberPromote(io.vetcd.proto.etcdserverpb.MemberPromoteRequest.newBuilder().setID(learner).build())
            .onComplete(ar -> promoting.set(false))
            .onFailure(e -> LOG.info("promoting learner {} did not go through: {}", Long.toHexString(learner), e.getMessage()));
      }
    }));
  }

  /** Whether the member stopped on a failure of its log or keyspace ({@link FailStop}). */
  public boolean stopped() {
    return failStop.stopped();
  }

  /** The leader this member knows of; 0 when there is none. */
  public long leaderId() {
    return raft.leader();
  }

  public long term() {
    return raft.term();
  }

  public long commitIndex() {
    return raft.commitIndex();
  }

  public long appliedIndex() {
    return raft.appliedIndex();
  }
}
