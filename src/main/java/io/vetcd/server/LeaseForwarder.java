package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vetcd.proto.internal.LeaseForward;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lease requests that only the leader can answer (keep-alive renewals, time-to-live), as etcd forwards
 * them: a follower sends them to the leader and waits for the answer by sequence number; the leader
 * answers what it is sent. On the Raft loop only.
 */
final class LeaseForwarder {

  private static final Logger LOG = LoggerFactory.getLogger(LeaseForwarder.class);

  /** How long a follower waits for the leader's answer before the request fails (the client retries). */
  static final long TIMEOUT_NANOS = 1_000_000_000L;

  /** Sends a lease frame to a member. */
  interface Sender {
    void send(long to, byte[] frame);
  }

  private record Pending(Promise<LeaseForward> promise, long deadlineNanos) {}

  private final Sender sender;
  private final Map<Long, Pending> pending = new HashMap<>();
  private long nextSeq;
  /** Answers lease requests forwarded to this member while it leads (set by the member). */
  private Function<LeaseForward, Future<LeaseForward>> answerer =
      r -> Future.failedFuture(EtcdError.NOT_LEADER.exception());

  LeaseForwarder(Sender sender) {
    this.sender = sender;
  }

  void answerer(Function<LeaseForward, Future<LeaseForward>> answerer) {
    this.answerer = answerer;
  }

  /** Sends {@code request} to {@code leader}; completes with its answer, or fails after a second. */
  Future<LeaseForward> forward(long leader, LeaseForward.Builder request) {
    return forward(leader, request, TIMEOUT_NANOS);
  }

  /** Sends {@code request} to {@code leader}; completes with its answer, or fails after {@code timeoutNanos}. */
  Future<LeaseForward> forward(long leader, LeaseForward.Builder request, long timeoutNanos) {
    Promise<LeaseForward> promise = Promise.promise();
    long seq = ++nextSeq;
    pending.put(seq, new Pending(promise, System.nanoTime() + timeoutNanos));
    sender.send(leader, request.setSeq(seq).build().toByteArray());
    return promise.future();
  }

  /** A lease frame from {@code from}: a request to answer, or the answer to one of ours. */
  void received(long from, byte[] payload) {
    LeaseForward frame;
    try {
      frame = LeaseForward.parseFrom(payload);
    } catch (InvalidProtocolBufferException e) {
      LOG.warn("dropped an undecodable lease frame from {}", Long.toHexString(from));
      return;
    }
    switch (frame.getKindCase()) {
      case RENEW, TIME_TO_LIVE_REQUEST, MEMBER_REQUEST -> answerer.apply(frame).onComplete(ar -> {
        LeaseForward.Builder answer = ar.succeeded() ? ar.result().toBuilder()
            : LeaseForward.newBuilder().setError(errorText(ar.cause()));
        sender.send(from, answer.setSeq(frame.getSeq()).build().toByteArray());
      });
      default -> {
        Pending p = pending.remove(frame.getSeq());
        if (p != null) {
          p.promise().tryComplete(frame);
        }
      }
    }
  }

  private static String errorText(Throwable cause) {
    return cause instanceof EtcdError.EtcdException e ? e.getMessage() : EtcdError.TIMEOUT.message();
  }

  void expire(long nowNanos) {
    for (Iterator<Pending> it = pending.values().iterator(); it.hasNext(); ) {
      Pending p = it.next();
      if (nowNanos - p.deadlineNanos() > 0) {
        it.remove();
        p.promise().tryFail(EtcdError.TIMEOUT.exception());
      }
    }
  }

  void failAll(Throwable error) {
    pending.values().forEach(p -> p.promise().tryFail(error));
    pending.clear();
  }
}
