package io.vetcd.server;

import com.google.protobuf.Message;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.internal.InternalRequest;
import io.vetcd.wal.Wal;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One vetcd member: its log, keyspace and consensus loop, and what the client API asks of them.
 * Results come back on the caller's context, so API handlers never touch another event loop's state.
 */
public final class Member {

  private static final Logger LOG = LoggerFactory.getLogger(Member.class);

  /** The etcd API version this member serves; clients gate features on it. */
  public static final String API_VERSION = "3.4.23";

  private final Vertx vertx;
  private final Config config;
  private final Membership membership;
  private final Membership.MemberInfo self;
  private final MvccStore store;
  private final Wal wal;
  private final RaftVerticle raft;
  /**
   * The NOSPACE alarm: raised when a write would take the keyspace past its quota. Unlike etcd's it
   * clears itself once the write that raised it would fit again (after deletes and a compaction, or a
   * restart with a larger --quota-backend-bytes): LMDB reuses freed pages, no defragmentation needed.
   */
  private volatile boolean noSpace;
  /** The size of the write that raised the alarm. */
  private volatile long refusedCost;

  private Member(Vertx vertx, Config config, Membership membership, Membership.MemberInfo self,
      MvccStore store, Wal wal, RaftVerticle raft) {
    this.vertx = vertx;
    this.config = config;
    this.membership = membership;
    this.self = self;
    this.store = store;
    this.wal = wal;
    this.raft = raft;
  }

  /** Opens the data directory, replays the log into the keyspace, and starts the consensus loop. */
  public static Future<Member> start(Vertx vertx, Config config) {
    return vertx.executeBlocking(() -> open(vertx, config))
        .compose(m -> vertx.deployVerticle(m.raft).map(id -> m));
  }

  private static Member open(Vertx vertx, Config config) {
    Membership initial = Membership.initial(config.initialCluster(), config.initialClusterToken());
    Membership.MemberInfo local = initial.byName(config.name());
    if (local == null) {
      throw new IllegalArgumentException("couldn't find local name \"" + config.name()
          + "\" in the initial cluster configuration (--initial-cluster=" + config.initialCluster() + ")");
    }
    if (initial.members().size() > 1) {
      // A member that committed alone in a cluster of several would split the brain: refuse.
      throw new IllegalArgumentException("--initial-cluster names " + initial.members().size()
          + " members, but this vetcd build runs single-member clusters only (replication comes with"
          + " the Raft issue)");
    }
    Membership membership = initial.withClientUrls(local.id(), config.advertiseClientUrls());
    Path dir = config.dataDir().resolve("member");
    // Twice the quota: the NOSPACE alarm (at the quota), not LMDB's map-full error, is what users meet.
    MvccStore store = MvccStore.open(dir.resolve("db"), 2 * config.effectiveQuotaBytes());
    Wal wal = Wal.open(dir.resolve("wal"));
    long applied = store.appliedIndex();
    Wal.Replay replay = wal.replay(applied);
    // The only voter: every entry in its log was committed (it reached a quorum of one disk).
    ApplyThread.apply(store, replay.entries());
    long last = Math.max(applied, replay.lastIndex());
    LOG.info("member {} ({}) of cluster {}: replayed {} log entries after applied index {}, last index {}",
        Long.toHexString(local.id()), config.name(), Long.toHexString(membership.clusterId()),
        replay.entries().size(), applied, last);
    long requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs(); // etcd's ReqTimeout
    RaftVerticle raft = new RaftVerticle(local.id(), wal, store, replay.hardState(), last, requestTimeoutMs);
    return new Member(vertx, config, membership, membership.byName(config.name()), store, wal, raft);
  }

  /**
   * Stops the member: the log and apply threads finish what is queued (every accepted write is synced
   * and applied), then the log and keyspace close. Blocking; the process's shutdown calls it.
   */
  public void close() throws InterruptedException {
    raft.closeThreads();
    wal.close();
    store.close();
  }

  /**
   * Proposes a write; the future completes on the caller's context with the response (header revision
   * only) once the entry is applied, or fails with an {@link EtcdError.EtcdException} — at once with
   * "request is too large" if its log entry would exceed --max-request-bytes, as etcd checks it.
   */
  public Future<Message> propose(InternalRequest.Builder request) {
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

  /** Completes on the caller's context once a read of {@link #store()} is linearizable. */
  public Future<Void> readBarrier() {
    Context caller = vertx.getOrCreateContext();
    Promise<Void> promise = Promise.promise();
    raft.readBarrier().onComplete(result -> caller.runOnContext(v -> promise.handle(result)));
    return promise.future();
  }

  /**
   * etcd's quota check for a write that adds {@code cost} bytes: refused (and the NOSPACE alarm
   * raised) when the keyspace in use would reach the quota.
   */
  public boolean spaceAvailable(long cost) {
    if (noSpaceAlarm()) {
      return false; // as etcd: no put passes while the alarm is raised, however small
    }
    boolean available = store.dbSizeInUse() + cost < config.effectiveQuotaBytes();
    if (!available) {
      LOG.warn("keyspace in use ({} bytes) reached the quota ({} bytes): NOSPACE alarm raised",
          store.dbSizeInUse(), config.effectiveQuotaBytes());
      refusedCost = cost;
      noSpace = true;
    }
    return available;
  }

  /** True while the NOSPACE alarm is raised (and the keyspace is still over its quota). */
  public boolean noSpaceAlarm() {
    if (noSpace && store.dbSizeInUse() + refusedCost < config.effectiveQuotaBytes()) {
      noSpace = false;
    }
    return noSpace;
  }

  /** etcd's {@code alarm disarm}: clears the alarm; a write over the quota raises it again. */
  public void disarmNoSpace() {
    noSpace = false;
  }

  /** The response header etcd puts on the outermost response. */
  public ResponseHeader header(long revision) {
    return ResponseHeader.newBuilder()
        .setClusterId(membership.clusterId())
        .setMemberId(self.id())
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

  public Membership membership() {
    return membership;
  }

  public Membership.MemberInfo self() {
    return self;
  }

  public long leaderId() {
    return self.id(); // the only voter leads
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
