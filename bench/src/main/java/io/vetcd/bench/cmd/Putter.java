package io.vetcd.bench.cmd;

import com.google.protobuf.ByteString;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.rpc.RpcError;
import io.vetcd.proto.etcdserverpb.PutRequest;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;

/**
 * The writer of {@code watch-latency}: puts to the watched key on a fixed schedule, put i at
 * start + i/rate, whether or not earlier puts have been answered. A slow server therefore shows as
 * latency, not as fewer puts (a writer that waits for each answer would hide the stall).
 *
 * <p>Each value starts with the put's number, big-endian, then random bytes up to the value size:
 * that is how a watcher knows which put an event belongs to.
 */
final class Putter {

  private final Conn conn;
  private final ByteString key;
  private final ByteString padding;
  private final Deliveries deliveries;
  private final long intervalNanos;
  private final CountDownLatch allSent = new CountDownLatch(1);
  private long startNanos;

  Putter(Conn conn, ByteString key, ByteString padding, Deliveries deliveries, int perSecond) {
    this.conn = conn;
    this.key = key;
    this.padding = padding;
    this.deliveries = deliveries;
    this.intervalNanos = 1_000_000_000L / perSecond;
  }

  /** Starts the schedule; call on the conn's context. */
  void start() {
    startNanos = System.nanoTime();
    schedule(0);
  }

  /** Waits until the last put has been sent (not answered). */
  void awaitAllSent() throws InterruptedException {
    allSent.await();
  }

  private void schedule(int i) {
    if (i == deliveries.puts()) {
      allSent.countDown();
      return;
    }
    long waitNanos = startNanos + i * intervalNanos - System.nanoTime();
    if (waitNanos >= 1_000_000) {
      conn.context().owner().setTimer(waitNanos / 1_000_000, id -> send(i));
    } else {
      send(i);
    }
  }

  private void send(int i) {
    ByteString value = ByteString.copyFrom(ByteBuffer.allocate(Long.BYTES).putLong(0, i)).concat(padding);
    deliveries.sending(i);
    conn.unary(Methods.PUT, PutRequest.newBuilder().setKey(key).setValue(value).build(), (response, failure) -> {
      if (failure != null) {
        deliveries.failed(i, "put failed: " + RpcError.describe(failure));
      }
    });
    // Through the event loop, so that a backlog of due puts does not recurse.
    conn.context().runOnContext(v -> schedule(i + 1));
  }
}
