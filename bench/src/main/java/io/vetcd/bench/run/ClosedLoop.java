package io.vetcd.bench.run;

import io.vetcd.bench.Session;
import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.RpcError;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs the unary benchmarks (put, range, txn-put) as etcd's tool does: {@code --clients} clients, each
 * sending its next request as soon as its previous one is answered, until {@code total} requests
 * have been sent between them. So the number of requests in flight is the number of clients.
 */
public final class ClosedLoop {

  /** Sends request number {@code index} on {@code conn}, and tells {@code answer} how it went. */
  @FunctionalInterface
  public interface Operation {
    void send(Conn conn, long index, Conn.Answer<Object> answer);
  }

  private final long total;
  private final RateLimiter limiter;
  private final Recorder recorder;
  private final Operation operation;
  /** How long the measured requests may go on (0: until {@code total}); none is sent after it. */
  private long durationNanos;
  private long deadline;
  /** The number of the next request to send, shared by all clients. */
  private final AtomicLong next = new AtomicLong();
  private CountDownLatch running;

  public ClosedLoop(long total, RateLimiter limiter, Recorder recorder, Operation operation) {
    this.total = total;
    this.limiter = limiter;
    this.recorder = recorder;
    this.operation = operation;
  }

  /** Stops sending after {@code seconds} of the measured run even if {@code total} was not reached. */
  public ClosedLoop forAtMost(long seconds) {
    durationNanos = seconds * 1_000_000_000L;
    return this;
  }

  /**
   * Runs every request and returns when the last one has been answered or has failed; first, unless
   * --warm-up is 0, that many requests that are not recorded.
   */
  public void run(Session session) throws InterruptedException {
    int warmUp = session.options().warmUp();
    if (warmUp > 0) {
      new ClosedLoop(warmUp, new RateLimiter(0), new Recorder(), operation).drive(session);
    }
    try (Progress progress = session.progress(total, recorder::finished)) {
      drive(session);
    }
  }

  private void drive(Session session) throws InterruptedException {
    int clients = session.options().clients();
    running = new CountDownLatch(clients);
    recorder.start();
    deadline = System.nanoTime() + durationNanos;
    for (int c = 0; c < clients; c++) {
      Conn conn = session.connOf(c);
      conn.context().runOnContext(v -> step(conn));
    }
    running.await();
    recorder.stop();
  }

  private void step(Conn conn) {
    long index = next.getAndIncrement();
    if (index >= total || (durationNanos > 0 && System.nanoTime() - deadline >= 0)) {
      running.countDown();
      return;
    }
    long waitNanos = limiter.reserve();
    if (waitNanos >= 1_000_000) {
      conn.context().owner().setTimer(waitNanos / 1_000_000, id -> send(conn, index));
    } else {
      // Vert.x timers have millisecond resolution: a shorter wait is taken out of a later one,
      // since the limiter has already moved its next slot on.
      send(conn, index);
    }
  }

  private void send(Conn conn, long index) {
    long start = System.nanoTime();
    Conn.Answer<Object> answer = (response, failure) -> {
      long latency = System.nanoTime() - start;
      if (failure == null) {
        recorder.success(latency);
        step(conn);
      } else {
        recorder.failure(RpcError.describe(failure));
        // A failure may come back at once (connection refused, closed client): go through the
        // event loop so that a run of them does not recurse.
        conn.context().runOnContext(v -> step(conn));
      }
    };
    try {
      operation.send(conn, index, answer);
    } catch (RuntimeException e) {
      answer.answered(null, e);
    }
  }
}
