package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.AlarmMember;
import io.vetcd.proto.etcdserverpb.AlarmType;
import io.vetcd.proto.etcdserverpb.CompactionResponse;
import io.vetcd.proto.etcdserverpb.LeaseGrantResponse;
import io.vetcd.proto.etcdserverpb.LeaseRevokeResponse;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.proto.internal.InternalRequest;
import io.vetcd.raft.Entry;
import io.vetcd.watch.WatchHub;
import io.vetcd.auth.AuthStore;
import io.vetcd.auth.Caller;
import io.vetcd.auth.Passwords;
import io.vetcd.auth.TokenProvider;
import io.vetcd.proto.etcdserverpb.AuthenticateResponse;
import io.vetcd.proto.internal.AuthChange;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one thread that writes the keyspace. Committed entries are applied in batches, one LMDB write
 * transaction per batch, with the applied index written in the same transaction: after a crash, replay
 * resumes exactly after the last applied entry. Each entry gets one main revision if it changes
 * anything; a request that fails is rolled back alone and answered with its error (see {@link #apply}).
 * A batch's lease grants and revokes go to the lessor before its callers are answered (a client told
 * its lease exists may keep it alive at once); after the commit its changes go to the watch hub.
 */
final class ApplyThread implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(ApplyThread.class);

  /**
   * The outcome of one entry: a response, or the etcd error to answer with; {@code afterPhysical}: the
   * response waits until the physical compaction has finished (etcd's {@code physical} Compact).
   */
  record Result(long requestId, Message response, RuntimeException error, boolean afterPhysical) {
    Result(long requestId, Message response, RuntimeException error) {
      this(requestId, response, error, false);
    }
  }

  /** A physical Compact's answer, held until the compaction's last step; at the index of its entry. */
  private record HeldAnswer(long index, Result result) {}

  /**
   * Hears, on this thread, how a batch goes: the outcomes of its requests once they are known and before
   * the transaction commits (the commit syncs the keyspace's pages, see {@link MvccStore}: answering
   * first keeps that sync out of every request's latency), then the index applied once it is committed.
   * Reads that must see an answered write wait for its commit (see RaftVerticle).
   */
  interface Sink {
    /** The requests up to {@code index} are decided; their transaction commits next. */
    void answering(long index, List<Result> results);

    /** Everything up to {@code index} is committed to the keyspace and visible to its readers. */
    void applied(long index);

    /**
     * A committed entry changed the member list ({@code change.record()} is the list after it); called
     * after the commit, before {@link #applied} of the batch, in log order. Its caller, if any, is
     * answered only after the consensus loop took the change.
     */
    default void membership(MembershipChange change) {}

    /**
     * Request {@code requestId} is applied, and its answer waits for the physical compaction it asked
     * for: however long that takes, it must not time out now (etcd waits for it without a deadline).
     */
    default void held(long requestId) {}
  }

  /**
   * A change of the member list at {@code index}: {@code change}, when the core must take it (a
   * CONF_CHANGE entry that was not refused); {@code answer}, for the caller of a CONF_CHANGE, refused
   * or not, and of a publish or MemberUpdate (null: nobody waits, or it was answered already).
   */
  record MembershipChange(long index, ClusterRecord record, io.vetcd.raft.ConfChange change, Result answer) {}

  /** What the thread works through, in order. */
  private sealed interface Item permits Committed, KeyspaceWork, Stop {}

  /** Committed entries to apply; consecutive ones are applied in one transaction. */
  private record Committed(List<Entry> entries) implements Item {}

  /**
   * Other work on the keyspace (a snapshot install, a defragmentation's swap), after the entries queued
   * before it; {@code replacesKeyspace}: it puts another keyspace in place (a defragmentation under way
   * then copies the wrong one and gives up).
   */
  private record KeyspaceWork(Runnable work, boolean replacesKeyspace) implements Item {}

  /** Apply what came before, then end the thread. */
  private record Stop() implements Item {}

  private final MvccStore store;
  private final WatchHub watches;
  private final Lessor lessor;
  private final Sink sink;
  private final Alarms alarms;
  private final Auth auth;
  private final FailStop failStop;
  private final LinkedBlockingQueue<Item> queue = new LinkedBlockingQueue<>();
  private final AtomicLong queuedBytes = new AtomicLong();
  private final java.util.concurrent.atomic.AtomicReference<Defragmenter.Retained> retained =
      new java.util.concurrent.atomic.AtomicReference<>();
  private final Thread thread;
  /** Whether a physical compaction is under way: a step of it runs between batches (see run). */
  private boolean compacting;
  private long compactRevision;
  private final List<HeldAnswer> heldAnswers = new ArrayList<>();

  ApplyThread(MvccStore store, WatchHub watches, Lessor lessor, Alarms alarms, Auth auth, Sink sink,
      FailStop failStop) {
    this.store = store;
    this.auth = auth;
    this.watches = watches;
    this.lessor = lessor;
    this.alarms = alarms;
    this.sink = sink;
    this.failStop = failStop;
    this.thread = new Thread(this::run, "vetcd-apply");
    this.thread.start();
  }

  void submit(List<Entry> committed) {
    if (!committed.isEmpty()) {
      queuedBytes.addAndGet(Entry.size(committed));
      queue.add(new Committed(committed));
    }
  }

  /** The payload bytes of the entries submitted and not yet applied (see RaftVerticle's held acks). */
  long queuedBytes() {
    return queuedBytes.get();
  }

  /**
   * Runs other work on the keyspace (a snapshot install) in order with the entries: after those
   * submitted before it, before those submitted after.
   */
  void submit(Runnable work) {
    queue.add(new KeyspaceWork(work, true));
  }

  /** As {@link #submit(Runnable)}, for work that leaves the keyspace's state as it is. */
  void submitKeepingState(Runnable work) {
    queue.add(new KeyspaceWork(work, false));
  }

  /**
   * Starts handing every batch applied from now on to {@code retained} as well (a defragmentation
   * replays them onto its copy), until {@link #stopRetaining}. Returns false if one is under way.
   */
  boolean startRetaining(Defragmenter.Retained retained) {
    return this.retained.compareAndSet(null, retained);
  }

  void stopRetaining() {
    this.retained.set(null);
  }

  /**
   * Applies what arrives, in order. While a physical compaction is under way, one bounded step of it
   * runs after each batch, and steps run back to back while nothing else waits: writes are never held
   * up for longer than one step, however large the keyspace.
   */
  private void run() {
    List<Item> items = new ArrayList<>();
    try {
      compactionFromStore(); // a restart resumes one under way
      while (true) {
        items.clear();
        Item first = compacting ? queue.poll() : queue.take();
        if (first == null) {
          compactStep();
          continue;
        }
        items.add(first);
        queue.drainTo(items);
        List<Entry> entries = new ArrayList<>();
        for (Item item : items) {
          // Java 17 has no switch over a sealed type yet; the three kinds are all there are.
          if (item instanceof Committed c) {
            entries.addAll(c.entries());
            continue;
          }
          applyAndReport(entries);
          entries.clear();
          if (item instanceof KeyspaceWork w) {
            Defragmenter.Retained r = retained.get();
            if (r != null && w.replacesKeyspace()) {
              r.abandon("a snapshot from the leader replaced the keyspace");
            }
            w.work().run();
            compactionFromStore(); // a snapshot brings its own compaction state
          } else {
            return; // Stop
          }
        }
        applyAndReport(entries);
        if (compacting) {
          compactStep();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable e) {
      // The keyspace cannot follow the log: serving it would answer from a state that stopped moving.
      failStop.stop("applying committed entries to the keyspace failed", e);
    }
  }

  private void applyAndReport(List<Entry> entries) {
    if (!entries.isEmpty()) {
      Failpoints.check("apply");
      Applied applied = apply(store, lessor, auth, entries,
          (results, index) -> sink.answering(index, holdPhysical(results, index)));
      countChanges(applied.events());
      if (applied.compactRevision() > compactRevision) {
        compactRevision = applied.compactRevision();
        compacting = true;
      }
      alarms.committed(applied.alarms());
      boolean authChanged = applied.auth() != auth.store(); // a new store only when an auth change applied
      auth.committed(applied.auth());
      Defragmenter.Retained r = retained.get();
      if (r != null) {
        r.add(List.copyOf(entries)); // the caller reuses its list
      }
      applied.membership().forEach(sink::membership);
      if (authChanged) {
        watches.authChanged(); // queued on each stream before the events published next
      }
      watches.publish(applied.events(), applied.compactRevision());
      queuedBytes.addAndGet(-Entry.size(entries));
      sink.applied(entries.get(entries.size() - 1).index());
    }
  }

  /** etcd_mvcc_put_total and _delete_total: one PUT event per put, one DELETE event per key deleted. */
  private static void countChanges(List<io.vetcd.proto.mvccpb.Event> events) {
    long puts = 0;
    for (io.vetcd.proto.mvccpb.Event e : events) {
      if (e.getType() == io.vetcd.proto.mvccpb.Event.EventType.PUT) {
        puts++;
      }
    }
    if (puts > 0) {
      io.vetcd.metrics.EtcdMetrics.PUTS.increment(puts);
    }
    if (events.size() > puts) {
      io.vetcd.metrics.EtcdMetrics.DELETES.increment(events.size() - puts);
    }
  }

  private void compactionFromStore() {
    compacting = store.compactionPending();
    try (MvccStore.ReadView view = store.read()) {
      compactRevision = view.compactRevision();
    }
    if (!compacting) {
      releaseHeldAnswers(); // a snapshot's keyspace has no compaction under way: nothing left to wait for
    }
  }

  /** The results to answer now: a physical Compact's is held until its compaction's last step. */
  private List<Result> holdPhysical(List<Result> results, long index) {
    if (results.stream().noneMatch(Result::afterPhysical)) {
      return results;
    }
    List<Result> now = new ArrayList<>();
    for (Result r : results) {
      if (r.afterPhysical()) {
        heldAnswers.add(new HeldAnswer(index, r));
        sink.held(r.requestId());
      } else {
        now.add(r);
      }
    }
    return now;
  }

  /**
   * One step of the physical compaction; after the last, the answers held for it leave. A keyspace too
   * full for the step's page copies stops the steps, not the member (a full keyspace is what
   * compaction and defragmentation are for); the next compaction or restart takes them up again.
   */
  private void compactStep() {
    try {
      compacting = store.compactStep();
    } catch (org.lmdbjava.Env.MapFullException e) {
      LOG.warn("the keyspace is too full to delete compacted history now ({}); the deletes resume with the "
          + "next compaction or restart", e.toString());
      compacting = false;
    }
    if (!compacting) {
      releaseHeldAnswers();
    }
  }

  private void releaseHeldAnswers() {
    for (HeldAnswer held : heldAnswers) {
      sink.answering(held.index(), List.of(held.result()));
    }
    heldAnswers.clear();
  }

  /**
   * What a committed batch did: the requests' outcomes, its changes as watch events, the store's
   * compacted revision, the lease grants and revokes the lessor was told (already, before any answer
   * went out; with them the simple tokens granted or dropped), the cluster's alarms and auth store after it.
   */
  record Applied(List<Result> results, List<io.vetcd.proto.mvccpb.Event> events, long compactRevision,
      List<Runnable> leaseChanges, List<AlarmMember> alarms, AuthStore auth, List<MembershipChange> membership) {}

  /** The replicated state besides keys and leases, as a batch's transaction has it so far. */
  private static final class BatchState {
    final List<AlarmMember> alarms;
    AuthStore auth;

    /** {@code auth}: the store as last committed (the record is read and parsed only after a snapshot). */
    BatchState(MvccStore.WriteBatch batch, AuthStore auth) {
      alarms = Alarms.read(batch);
      this.auth = auth;
    }
  }

  /**
   * Applies entries in one transaction unless a request fails (below); entries at or below the stored
   * applied index are skipped.
   *
   * <p>Requests write straight into the batch's transaction (a nested transaction per request would
   * cost LMDB a dirty-page list each, a quarter of this thread's CPU once measured). A request that fails may already have written part of its
   * changes, so the attempt is dropped; the entries before it are applied again and committed together
   * with the failure (which changes nothing but the applied index), and the rest of the batch follows
   * in a transaction of its own. Each failure costs one re-application of the entries since the last
   * commit, never more: failed writes are rare (a lease or key not found, a full keyspace).
   */
  static Applied apply(MvccStore store, Lessor lessor, List<Entry> entries) {
    Auth auth = new Auth(300, Passwords.MIN_COST, false);
    auth.reload(store);
    return apply(store, lessor, auth, entries, (results, index) -> { });
  }

  /** As {@link #apply(MvccStore, Lessor, List)}; {@code beforeCommit} hears each transaction's outcomes first. */
  static Applied apply(MvccStore store, Lessor lessor, Auth auth, List<Entry> entries,
      java.util.function.ObjLongConsumer<List<Result>> beforeCommitOutcomes) {
    List<Result> results = new ArrayList<>(entries.size());
    List<io.vetcd.proto.mvccpb.Event> events = new ArrayList<>();
    List<Runnable> leaseChanges = new ArrayList<>();
    long compacted = -1;
    List<AlarmMember> alarmsAfter = List.of();
    TokenProvider tokens = auth.tokens();
    AuthStore authAfter = auth.store(); // as the last batch committed it
    List<MembershipChange> membership = new ArrayList<>();
    // The outcome of each request found to fail, by log index: applied again it would fail the same way.
    Map<Long, RuntimeException> failures = new HashMap<>();
    int from = 0;
    int to = entries.size();
    while (from < entries.size()) {
      List<Result> attemptResults = new ArrayList<>();
      List<Runnable> attemptLeaseChanges = new ArrayList<>();
      List<MembershipChange> attemptMembership = new ArrayList<>();
      try (MvccStore.WriteBatch batch = store.write()) {
        long applied = batch.appliedIndex();
        BatchState state = new BatchState(batch, authAfter);
        int failedAt = -1;
        for (int i = from; i < to && failedAt < 0; i++) {
          Entry e = entries.get(i);
          if (e.index() <= applied) {
            continue; // already in the keyspace: replay after a crash overlaps what was applied
          }
          if (e.type() == Entry.Type.CONF_CHANGE) {
            attemptMembership.add(applyConfChange(batch, e));
          } else if (e.data().length > 0) {
            try {
              Result result = applyRequest(batch, lessor, tokens, state, e, attemptLeaseChanges,
                  failures.get(e.index()));
              if (result.response() instanceof ClusterRecord updated) {
                // A publish or MemberUpdate: answered once the consensus loop has the new list (a member
                // list read next from this member shows it), like a CONF_CHANGE.
                attemptMembership.add(new MembershipChange(e.index(), updated, null, result));
              } else {
                attemptResults.add(result);
              }
            } catch (RequestFailed f) {
              failures.put(e.index(), f.error);
              failedAt = i;
              continue;
            }
          }
          applied = e.index();
        }
        if (failedAt >= 0) {
          to = failedAt + 1; // again, up to the failure and no further; then commit
          continue;
        }
        batch.setAppliedIndex(applied);
        compacted = batch.compactRevision();
        // The lessor hears before anyone is answered: a client told its lease was granted (or revoked)
        // may keep it alive (or list the leases) at once, and the lessor answers those alone.
        attemptLeaseChanges.forEach(Runnable::run);
        beforeCommitOutcomes.accept(attemptResults, applied);
        Failpoints.check("before-apply-commit");
        batch.commit();
        Failpoints.check("after-apply-commit");
        alarmsAfter = state.alarms;
        authAfter = state.auth;
        results.addAll(attemptResults);
        events.addAll(batch.events());
        leaseChanges.addAll(attemptLeaseChanges);
        membership.addAll(attemptMembership);
      }
      from = to;
      to = entries.size();
    }
    return new Applied(results, events, compacted, leaseChanges, alarmsAfter, authAfter, membership);
  }

  /** A CONF_CHANGE entry: the member list changes (or the change is refused) in the batch's transaction. */
  private static MembershipChange applyConfChange(MvccStore.WriteBatch batch, Entry e) {
    ClusterMembers.Applied applied = ClusterMembers.apply(clusterRecord(batch), e.data());
    if (applied.took()) {
      batch.putRecord(LocalMember.CLUSTER_RECORD, applied.record().toByteArray());
    }
    Result answer = applied.requestId() == 0 ? null : new Result(applied.requestId(),
        applied.refused() == null ? applied.record() : null,
        applied.refused() == null ? null : applied.refused().exception());
    return new MembershipChange(e.index(), applied.record(), applied.took() ? applied.change() : null, answer);
  }

  private static ClusterRecord clusterRecord(MvccStore.WriteBatch batch) {
    return Keyspace.clusterRecordOf(batch.record(LocalMember.CLUSTER_RECORD));
  }

  /** A request failed after it may have written into its batch's transaction (see {@link #apply}). */
  private static final class RequestFailed extends RuntimeException {
    final RuntimeException error;

    RequestFailed(RuntimeException error) {
      super(null, null, false, false);
      this.error = error;
    }
  }

  /**
   * Applies one request, or answers with {@code knownFailure} (how it failed in an earlier attempt on
   * the same state) without applying it.
   */
  private static Result applyRequest(MvccStore.WriteBatch batch, Lessor lessor, TokenProvider tokens, BatchState state,
      Entry e, List<Runnable> leaseChanges, RuntimeException knownFailure) {
    List<AlarmMember> alarms = state.alarms;
    InternalRequest req;
    try {
      req = InternalRequest.parser().parseFrom(Aliasing.input(e.data())); // a put's value stays in the entry's array
    } catch (InvalidProtocolBufferException ex) {
      throw new IllegalStateException("log entry " + e.index() + " does not decode", ex);
    }
    if (knownFailure != null) {
      return failed(req.getId(), e.index(), knownFailure);
    }
    if (req.getRequestCase() == InternalRequest.RequestCase.PUBLISH) {
      return new Result(req.getId(), publish(batch, req.getPublish()), null);
    }
    if (req.getRequestCase() == InternalRequest.RequestCase.MEMBER_UPDATE) {
      ClusterRecord record = clusterRecord(batch);
      EtcdError refused = ClusterMembers.checkUpdate(record, req.getMemberUpdate().getID(),
          req.getMemberUpdate().getPeerURLsList());
      if (refused != null) {
        return new Result(req.getId(), null, refused.exception()); // checked on the leader; raced since
      }
      ClusterRecord updated = ClusterMembers.updatePeerUrls(record, req.getMemberUpdate().getID(),
          req.getMemberUpdate().getPeerURLsList());
      batch.putRecord(LocalMember.CLUSTER_RECORD, updated.toByteArray());
      return new Result(req.getId(), updated, null);
    }
    if (req.getRequestCase() == InternalRequest.RequestCase.ALARM) {
      return new Result(req.getId(), Alarms.apply(batch, alarms, req.getAlarm()).toBuilder()
          .setHeader(KvApplier.header(batch.revision())).build(), null);
    }
    if (req.getRequestCase() == InternalRequest.RequestCase.AUTH) {
      return applyAuth(batch, tokens, state, req, e.index(), leaseChanges);
    }
    if (req.getFromClient() && state.auth.enabled()) {
      // etcd's authApplierV3: the permission again, against the store as of this entry (it may have
      // changed since the member took the request). Nothing was written yet. The member's own
      // requests (publish, alarms, expired leases) are not a client's and are not checked.
      try {
        WriteChecks.check(state.auth, new Caller(req.getUser(), req.getAuthRevision()), req, batch);
      } catch (EtcdError.EtcdException denied) {
        return new Result(req.getId(), null, denied);
      }
    }
    if (growsKeyspace(req) && alarms.stream().anyMatch(a -> a.getAlarm() == AlarmType.NOSPACE)) {
      // etcd's capped applier: while any member's NOSPACE alarm is raised, every member refuses the
      // writes that can grow the keyspace, whichever member took them. Nothing was written yet.
      return new Result(req.getId(), null, EtcdError.NO_SPACE.exception());
    }
    if (req.getRequestCase() == InternalRequest.RequestCase.COMPACTION) {
      try {
        batch.compact(req.getCompaction().getRevision());
        return new Result(req.getId(),
            CompactionResponse.newBuilder().setHeader(KvApplier.header(batch.revision())).build(), null,
            req.getCompaction().getPhysical());
      } catch (MvccException ex) {
        return new Result(req.getId(), null, KvApplier.toEtcd(ex));
      }
    }
    MvccStore.StoreTxn txn = batch.begin();
    try {
      Message response = switch (req.getRequestCase()) {
        case PUT -> KvApplier.put(txn, req.getPut());
        case DELETE_RANGE -> KvApplier.deleteRange(txn, req.getDeleteRange());
        case TXN -> KvApplier.txn(txn, req.getTxn());
        case LEASE_GRANT -> {
          long id = req.getLeaseGrant().getID();
          if (txn.leaseExists(id)) {
            throw EtcdError.LEASE_EXISTS.exception();
          }
          long ttl = lessor.grantedTtl(req.getLeaseGrant().getTTL());
          txn.grantLease(id, ttl);
          leaseChanges.add(() -> lessor.granted(id, ttl));
          yield LeaseGrantResponse.newBuilder().setHeader(KvApplier.header(txn.revision())).setID(id).setTTL(ttl).build();
        }
        case LEASE_REVOKE -> {
          long id = req.getLeaseRevoke().getID();
          if (!txn.revokeLease(id)) {
            throw EtcdError.LEASE_NOT_FOUND.exception();
          }
          leaseChanges.add(() -> lessor.revoked(id));
          yield LeaseRevokeResponse.newBuilder().setHeader(KvApplier.header(txn.revision())).build();
        }
        default -> throw new IllegalStateException("log entry " + e.index() + " holds no request");
      };
      txn.end();
      return new Result(req.getId(), response, null);
    } catch (EtcdError.EtcdException | MvccException | org.lmdbjava.Env.MapFullException ex) {
      throw new RequestFailed(ex);
    }
  }

  /**
   * An auth change: the store after it goes into the batch; a granted simple token, and the tokens a
   * deleted user, a new password or auth disable void, change in memory before anyone is answered. A
   * refused change is answered with etcd's error and changes nothing.
   */
  private static Result applyAuth(MvccStore.WriteBatch batch, TokenProvider tokens, BatchState state,
      InternalRequest req, long index, List<Runnable> memoryChanges) {
    AuthChange change = req.getAuth();
    if (change.getRequestCase() != AuthChange.RequestCase.AUTHENTICATE) {
      try {
        state.auth.checkAdmin(new Caller(req.getUser(), req.getAuthRevision())); // etcd's needAdminPermission
      } catch (EtcdError.EtcdException denied) {
        return new Result(req.getId(), null, denied);
      }
    }
    AuthStore.Applied applied;
    try {
      applied = state.auth.apply(change, index);
    } catch (EtcdError.EtcdException refused) {
      return new Result(req.getId(), null, refused);
    }
    if (applied.store() != state.auth) {
      state.auth = applied.store();
      batch.putRecord(Auth.RECORD, applied.store().toRecord());
    }
    switch (change.getRequestCase()) {
      case AUTHENTICATE -> {
        String token = ((AuthenticateResponse) applied.response()).getToken();
        String user = change.getAuthenticate().getName();
        memoryChanges.add(() -> tokens.assign(token, user));
      }
      case USER_DELETE -> memoryChanges.add(() -> tokens.invalidate(change.getUserDelete().getName()));
      case USER_CHANGE_PASSWORD -> memoryChanges.add(() -> tokens.invalidate(change.getUserChangePassword().getName()));
      case DISABLE -> memoryChanges.add(tokens::clear);
      default -> { }
    }
    Message response = applied.response();
    return new Result(req.getId(), withHeader(response, batch.revision()), null);
  }

  /** The response with a header carrying the keyspace's revision (auth responses all have one, as field 1). */
  private static Message withHeader(Message response, long revision) {
    Message.Builder b = response.toBuilder();
    com.google.protobuf.Descriptors.FieldDescriptor header = b.getDescriptorForType().findFieldByName("header");
    b.setField(header, KvApplier.header(revision));
    return b.build();
  }

  /** Puts, txns with a put, lease grants: what etcd refuses while NOSPACE is raised. */
  private static boolean growsKeyspace(InternalRequest req) {
    return switch (req.getRequestCase()) {
      case PUT, LEASE_GRANT -> true;
      case TXN -> KvApplier.hasPut(req.getTxn());
      default -> false;
    };
  }

  private static Result failed(long requestId, long index, RuntimeException ex) {
    if (ex instanceof MvccException mvcc) {
      return new Result(requestId, null, KvApplier.toEtcd(mvcc));
    }
    if (ex instanceof org.lmdbjava.Env.MapFullException) {
      // The file reached its map size (twice the quota): refuse this write alone; the batch goes on.
      LOG.warn("keyspace file is full at log index {}: write refused", index);
      return new Result(requestId, null, EtcdError.NO_SPACE.exception());
    }
    return new Result(requestId, null, ex);
  }

  /** A member's name and client URLs, as it announced them, go into the cluster record. */
  private static ClusterRecord publish(MvccStore.WriteBatch batch, io.vetcd.proto.etcdserverpb.Member attributes) {
    ClusterRecord cluster = clusterRecord(batch);
    ClusterRecord.Builder updated = cluster.toBuilder();
    for (int i = 0; i < cluster.getMembersCount(); i++) {
      if (cluster.getMembers(i).getID() == attributes.getID()) {
        updated.setMembers(i, cluster.getMembers(i).toBuilder()
            .setName(attributes.getName())
            .clearClientURLs()
            .addAllClientURLs(attributes.getClientURLsList()));
      }
    }
    ClusterRecord after = updated.build();
    batch.putRecord(LocalMember.CLUSTER_RECORD, after.toByteArray());
    return after;
  }

  /** Applies what is queued, then stops. */
  @Override
  public void close() throws InterruptedException {
    queue.add(new Stop());
    thread.join();
  }
}
