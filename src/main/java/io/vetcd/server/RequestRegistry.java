package io.vetcd.server;

import com.google.protobuf.Message;
import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The proposals this member made that wait for their entry to apply: request ids, the callers waiting
 * by id, and their deadlines. Registered on the Raft loop; answered by the apply thread straight away
 * (one thread hand-off less per write than through the loop), or by the loop when it refuses, times
 * out or stops a request. Whoever removes a waiter answers it, so every caller hears exactly once.
 */
final class RequestRegistry {

  private record Waiter(Handler<AsyncResult<Message>> handler, long deadlineNanos) {}

  private static final long NO_DEADLINE = Long.MIN_VALUE;

  private final Map<Long, Waiter> waiting = new ConcurrentHashMap<>();
  /** etcd's request id scheme: low 16 bits of the member id, then a time-seeded counter. */
  private final AtomicLong ids;
  private final long timeoutNanos;

  RequestRegistry(long memberId, long requestTimeoutMs) {
    this.ids = new AtomicLong(((memberId & 0xFFFFL) << 48) | ((System.currentTimeMillis() << 8) & 0xFFFF_FFFF_FFFFL));
    this.timeoutNanos = requestTimeoutMs * 1_000_000L;
  }

  /** A fresh id for a request this member proposes: its entry's result is matched back by it. */
  long nextId() {
    return ids.incrementAndGet();
  }

  /** {@code handler} waits for request {@code id} until the request timeout. */
  void register(long id, Handler<AsyncResult<Message>> handler) {
    waiting.put(id, new Waiter(handler, System.nanoTime() + timeoutNanos));
  }

  /** Answers the callers of an applied batch's requests (on the apply thread). */
  void answer(Iterable<ApplyThread.Result> results) {
    for (ApplyThread.Result r : results) {
      Waiter w = waiting.remove(r.requestId());
      if (w != null) {
        w.handler().handle(r.error() == null ? Future.succeededFuture(r.response()) : Future.failedFuture(r.error()));
      }
    }
  }

  /**
   * Request {@code id} applied, but its answer waits for work that follows (a physical compaction's
   * deletes): it no longer expires. The member's stop still fails it.
   */
  void keepWaiting(long id) {
    waiting.computeIfPresent(id, (k, w) -> new Waiter(w.handler(), NO_DEADLINE));
  }

  /** Fails request {@code id} with {@code error}, if it still waits. */
  void fail(long id, Throwable error) {
    Waiter w = waiting.remove(id);
    if (w != null) {
      io.vetcd.metrics.EtcdMetrics.PROPOSALS_FAILED.increment();
      w.handler().handle(Future.failedFuture(error));
    }
  }

  /**
   * etcd answers a request that did not apply in time with "request timed out" rather than hanging
   * (a proposal lost with a leader change).
   */
  void expire(long nowNanos) {
    for (Map.Entry<Long, Waiter> e : waiting.entrySet()) {
      Waiter w = e.getValue();
      // remove(key, value): the apply thread may answer it at this very moment; only one of us does.
      if (w.deadlineNanos() != NO_DEADLINE && nowNanos - w.deadlineNanos() > 0 && waiting.remove(e.getKey(), w)) {
        io.vetcd.metrics.EtcdMetrics.PROPOSALS_FAILED.increment();
        w.handler().handle(Future.failedFuture(EtcdError.TIMEOUT.exception()));
      }
    }
  }

  /** How many proposals wait for their entry to apply (etcd_server_proposals_pending). */
  int pending() {
    return waiting.size();
  }

  /** Fails every waiting request with {@code error} (the member stopped). */
  void failAll(Throwable error) {
    for (Long id : waiting.keySet()) {
      fail(id, error);
    }
  }
}
