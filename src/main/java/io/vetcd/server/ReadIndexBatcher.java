package io.vetcd.server;

import io.vertx.core.Promise;
import io.vetcd.raft.ReadState;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * Linearizable reads on their way through ReadIndex (Raft thesis §6.4), on the Raft loop only: the
 * reads of one loop turn leave as one ReadIndex request (one heartbeat round however many reads), the
 * core answers it with a read index, and each read completes once the keyspace has applied up to that
 * index. Barriers that only wait for an applied index (serializable reads after an answered write, the
 * leader's lease answers) wait here too.
 */
final class ReadIndexBatcher {

  private record PendingRead(Promise<Void> promise, long deadlineNanos) {}

  private final long timeoutNanos;
  /** Reads of this loop turn, waiting to be sent as one ReadIndex request. */
  private final List<PendingRead> batch = new ArrayList<>();
  /** ReadIndex requests sent, by their context, until the core answers with a read index. */
  private final Map<Long, List<PendingRead>> asked = new HashMap<>();
  /** Reads with a read index, waiting for the applied index to reach it. */
  private final TreeMap<Long, List<PendingRead>> waiting = new TreeMap<>();
  private long nextContext;

  ReadIndexBatcher(long requestTimeoutMs) {
    this.timeoutNanos = requestTimeoutMs * 1_000_000L;
  }

  /** Adds a read to this turn's batch; true if it is the first (the caller schedules {@link #flush}). */
  boolean add(Promise<Void> read) {
    batch.add(new PendingRead(read, System.nanoTime() + timeoutNanos));
    return batch.size() == 1;
  }

  /**
   * Sends this turn's reads as one ReadIndex request through {@code readIndex} (which takes the
   * request's context and says whether the core accepted it); without a leader they fail at once.
   * True if a request was sent.
   */
  boolean flush(Predicate<byte[]> readIndex) {
    if (batch.isEmpty()) {
      return false;
    }
    List<PendingRead> reads = new ArrayList<>(batch);
    batch.clear();
    long context = ++nextContext;
    if (!readIndex.test(ByteBuffer.allocate(8).putLong(context).array())) {
      reads.forEach(r -> r.promise().fail(EtcdError.NO_LEADER.exception()));
      return false;
    }
    asked.put(context, reads);
    return true;
  }

  /** The core's answers: each batch now waits for its read index to be applied. */
  void readIndexes(List<ReadState> states) {
    for (ReadState rs : states) {
      List<PendingRead> reads = asked.remove(ByteBuffer.wrap(rs.context()).getLong());
      if (reads != null) {
        waiting.computeIfAbsent(rs.index(), k -> new ArrayList<>()).addAll(reads);
      }
    }
  }

  /** Completes {@code promise} once the applied index reaches {@code index} (now if it has). */
  void waitForApplied(long index, long appliedIndex, Promise<Void> promise) {
    if (appliedIndex >= index) {
      promise.complete();
    } else {
      waiting.computeIfAbsent(index, k -> new ArrayList<>()).add(new PendingRead(promise, System.nanoTime() + timeoutNanos));
    }
  }

  /** Completes what waited for an applied index up to {@code appliedIndex}. */
  void applied(long appliedIndex) {
    while (!waiting.isEmpty() && waiting.firstKey() <= appliedIndex) {
      waiting.pollFirstEntry().getValue().forEach(r -> r.promise().tryComplete());
    }
  }

  /** Fails the reads whose ReadIndex request got no answer in time (a leader that stepped down). */
  void expire(long nowNanos) {
    for (Iterator<List<PendingRead>> it = asked.values().iterator(); it.hasNext(); ) {
      List<PendingRead> reads = it.next();
      if (nowNanos - reads.get(0).deadlineNanos() > 0) {
        it.remove();
        reads.forEach(r -> r.promise().tryFail(EtcdError.TIMEOUT.exception()));
      }
    }
  }

  /** Fails every read with {@code error} (the member stopped). */
  void failAll(Throwable error) {
    List<PendingRead> reads = new ArrayList<>(batch);
    batch.clear();
    asked.values().forEach(reads::addAll);
    asked.clear();
    waiting.values().forEach(reads::addAll);
    waiting.clear();
    reads.forEach(r -> r.promise().tryFail(error));
  }
}
