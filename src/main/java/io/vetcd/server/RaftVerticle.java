package io.vetcd.server;

import com.google.protobuf.Message;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.wal.Wal;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The member's consensus loop, on one event loop. It owns the log's bookkeeping (term, last, commit and
 * applied indexes), the proposals waiting for their entries to apply, and the reads waiting for the
 * applied index to reach their read index. The write path is ARCHITECTURE §3: proposals of one loop
 * turn become one batch of entries → the append thread persists them → the entries commit → the apply
 * thread applies them → each proposal's handler runs with its response or error.
 *
 * <p>This member is the only voter, so an entry commits as soon as it is on its own disk (a quorum of
 * one) and the read index is simply the commit index. The Raft core replaces exactly these two
 * decisions when more members join.
 */
final class RaftVerticle extends VerticleBase {

  private record Waiter(Handler<AsyncResult<Message>> handler, long deadlineNanos) {}

  private final long memberId;
  private final Wal wal;
  private final MvccStore store;
  private final HardState recovered;
  private final long requestTimeoutMs;

  private AppendThread appendThread;
  private ApplyThread applyThread;
  private Context context;

  /** The current term; persisted (hard state) before any entry of it is appended. */
  private volatile long term;
  /** The index of the last entry handed to the append thread. Invariant: commit <= last. */
  private long lastIndex;
  /** The highest index known to be on a quorum's disk. Invariant: applied <= commit <= last. */
  private volatile long commitIndex;
  /** The highest index the keyspace reflects. */
  private volatile long appliedIndex;
  /** Entries handed to the append thread and not yet committed, oldest first. */
  private final ArrayDeque<Entry> uncommitted = new ArrayDeque<>();
  /** Proposals of this loop turn, not yet handed to the append thread. */
  private final List<Entry> proposed = new ArrayList<>();
  private boolean flushScheduled;
  /** Callers waiting for their request's entry to apply, by request id. */
  private final Map<Long, Waiter> waiting = new HashMap<>();
  /** Reads waiting for the applied index to reach their read index, by read index. */
  private final TreeMap<Long, List<Promise<Void>>> reads = new TreeMap<>();
  /** etcd's request id scheme: low 16 bits of the member id, then a time-seeded counter. */
  private final java.util.concurrent.atomic.AtomicLong requestIds;

  /**
   * @param recovered the hard state found in the log ({@link HardState#EMPTY} for a new member)
   * @param lastIndex the last index in the log, all of it already applied to {@code store}
   */
  RaftVerticle(long memberId, Wal wal, MvccStore store, HardState recovered, long lastIndex,
      long requestTimeoutMs) {
    this.memberId = memberId;
    this.wal = wal;
    this.store = store;
    this.recovered = recovered;
    this.lastIndex = lastIndex;
    this.commitIndex = lastIndex;
    this.appliedIndex = lastIndex;
    this.requestTimeoutMs = requestTimeoutMs;
    this.requestIds = new java.util.concurrent.atomic.AtomicLong(
        ((memberId & 0xFFFFL) << 48) | ((System.currentTimeMillis() << 8) & 0xFFFF_FFFF_FFFFL));
  }

  @Override
  public Future<?> start() {
    context = vertx.getOrCreateContext();
    appendThread = new AppendThread(wal, index -> post(() -> onPersisted(index)));
    applyThread = new ApplyThread(store, (index, results) -> post(() -> onApplied(index, results)));
    List<Entry> first = new ArrayList<>();
    if (lastIndex == 0) {
      // A new member: the bootstrap entry of term 1 records the initial membership, as etcd's does.
      first.add(new Entry(1, ++lastIndex, Entry.Type.CONF_CHANGE, new byte[0]));
    }
    // Elect ourselves for a new term (the only voter wins at once) and append the empty entry a new
    // leader appends to commit what earlier terms left (Raft §5.4.2).
    term = Math.max(recovered.term(), 1) + 1;
    first.add(Entry.empty(term, ++lastIndex));
    uncommitted.addAll(first);
    appendThread.submit(new HardState(term, memberId, commitIndex), first);
    vertx.setPeriodic(200, id -> expireWaiters());
    return Future.succeededFuture();
  }

  /**
   * Lets the append and apply threads finish what is queued, then stops them. Blocking: called by the
   * member's shutdown, off the event loop. Completions posted to this context afterwards are dropped.
   */
  void closeThreads() throws InterruptedException {
    appendThread.close();
    applyThread.close();
  }

  /** Hands work from the append or apply thread to this loop; during shutdown the loop may be gone. */
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
   * Proposes an encoded request (whose id came from {@link #nextRequestId}); {@code handler} runs on
   * this verticle's context with the response once the entry is applied, or with the etcd error.
   */
  void propose(long id, byte[] data, Handler<AsyncResult<Message>> handler) {
    context.runOnContext(v -> {
      waiting.put(id, new Waiter(handler, System.nanoTime() + requestTimeoutMs * 1_000_000L));
      proposed.add(new Entry(term, ++lastIndex, Entry.Type.NORMAL, data));
      if (!flushScheduled) {
        flushScheduled = true;
        context.runOnContext(x -> flush()); // after the proposals already queued on this loop
      }
    });
  }

  /**
   * Completes once the keyspace reflects every entry committed before this call: a read after that
   * sees every write acknowledged before the read began (ReadIndex, Raft §6.4).
   */
  Future<Void> readBarrier() {
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> {
      long readIndex = commitIndex; // the only voter: its commit index needs no confirmation round
      if (appliedIndex >= readIndex) {
        promise.complete();
      } else {
        reads.computeIfAbsent(readIndex, k -> new ArrayList<>()).add(promise);
      }
    });
    return promise.future();
  }

  private void flush() {
    flushScheduled = false;
    if (proposed.isEmpty()) {
      return;
    }
    List<Entry> batch = List.copyOf(proposed);
    proposed.clear();
    uncommitted.addAll(batch);
    appendThread.submit(null, batch);
  }

  private void onPersisted(long index) {
    // The only voter: on our disk is on a quorum's disk.
    List<Entry> committed = new ArrayList<>();
    while (!uncommitted.isEmpty() && uncommitted.peekFirst().index() <= index) {
      committed.add(uncommitted.pollFirst());
    }
    commitIndex = Math.max(commitIndex, index);
    applyThread.submit(committed);
  }

  private void onApplied(long index, List<ApplyThread.Result> results) {
    appliedIndex = index;
    for (ApplyThread.Result r : results) {
      Waiter w = waiting.remove(r.requestId());
      if (w != null) {
        w.handler().handle(r.error() == null ? Future.succeededFuture(r.response()) : Future.failedFuture(r.error()));
      }
    }
    while (!reads.isEmpty() && reads.firstKey() <= index) {
      reads.pollFirstEntry().getValue().forEach(Promise::complete);
    }
  }

  /** etcd answers a request that did not apply in time with "request timed out" rather than hanging. */
  private void expireWaiters() {
    long now = System.nanoTime();
    for (Iterator<Waiter> it = waiting.values().iterator(); it.hasNext(); ) {
      Waiter w = it.next();
      if (now - w.deadlineNanos() > 0) {
        it.remove();
        w.handler().handle(Future.failedFuture(EtcdError.TIMEOUT.exception()));
      }
    }
  }
}
