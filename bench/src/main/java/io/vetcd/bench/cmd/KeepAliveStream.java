package io.vetcd.bench.cmd;

import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.RpcError;
import io.vetcd.proto.etcdserverpb.LeaseGrpcClient;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveResponse;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client of {@code lease-keepalive}: a LeaseKeepAlive stream that keeps one lease alive, one
 * keep-alive in flight at a time, each timed from write to answer. A broken stream fails the
 * keep-alive in flight and is opened again, so a server that drops streams costs errors, not a hang.
 *
 * <p>Runs entirely on its conn's event loop; only {@code next} and the recorder are shared.
 */
final class KeepAliveStream {

  /** Pause before reopening a broken stream, so a dead server is not hammered in a tight loop. */
  private static final long REOPEN_DELAY_MILLIS = 100;

  private final Conn conn;
  private final long leaseId;
  private final long total;
  /** The number of the next keep-alive to send, shared by all clients. */
  private final AtomicLong next;
  private final Recorder recorder;
  private final CountDownLatch finished;

  private GrpcClientRequest<LeaseKeepAliveRequest, LeaseKeepAliveResponse> stream;
  /** When the keep-alive in flight was written; 0 when none is. */
  private long sentNanos;
  private boolean done;

  KeepAliveStream(Conn conn, long leaseId, long total, AtomicLong next, Recorder recorder, CountDownLatch finished) {
    this.conn = conn;
    this.leaseId = leaseId;
    this.total = total;
    this.next = next;
    this.recorder = recorder;
    this.finished = finished;
  }

  /** Opens the stream and starts sending; call on the conn's context. */
  void start() {
    conn.stream(LeaseGrpcClient.LeaseKeepAlive).onComplete(ar -> {
      if (ar.failed()) {
        broken(ar.cause());
        return;
      }
      GrpcClientRequest<LeaseKeepAliveRequest, LeaseKeepAliveResponse> opened = ar.result();
      stream = opened;
      opened.exceptionHandler(e -> broken(opened, e));
      opened.response().onComplete(resp -> {
        if (resp.failed()) {
          broken(opened, resp.cause());
        } else {
          listen(opened, resp.result());
        }
      });
      sendNext();
    });
  }

  private void listen(GrpcClientRequest<LeaseKeepAliveRequest, LeaseKeepAliveResponse> opened,
      GrpcClientResponse<LeaseKeepAliveRequest, LeaseKeepAliveResponse> response) {
    response.handler(this::answered);
    response.exceptionHandler(e -> broken(opened, e));
    response.endHandler(v -> broken(opened, new RpcError(response.status(), "keep-alive stream ended by the server")));
  }

  private void sendNext() {
    if (next.getAndIncrement() >= total) {
      done = true;
      stream.end();
      finished.countDown();
      return;
    }
    sentNanos = System.nanoTime();
    stream.write(LeaseKeepAliveRequest.newBuilder().setID(leaseId).build());
  }

  private void answered(LeaseKeepAliveResponse response) {
    if (sentNanos == 0) {
      return;
    }
    long latency = System.nanoTime() - sentNanos;
    sentNanos = 0;
    if (response.getTTL() <= 0) {
      // etcd answers a keep-alive of an unknown or expired lease with TTL 0, not with an error.
      recorder.failure("lease not found (keep-alive answered with TTL " + response.getTTL() + ")");
    } else {
      recorder.success(latency);
    }
    sendNext();
  }

  private void broken(GrpcClientRequest<?, ?> which, Throwable cause) {
    if (which == stream) {
      broken(cause);
    }
  }

  private void broken(Throwable cause) {
    if (done) {
      return;
    }
    stream = null;
    if (sentNanos != 0) {
      sentNanos = 0;
      recorder.failure(RpcError.describe(cause));
    } else if (next.getAndIncrement() < total) {
      // The stream could not be opened: count it as one keep-alive lost, so that a dead server
      // ends the run after --total failures instead of retrying for ever.
      recorder.failure(RpcError.describe(cause));
    }
    if (next.get() >= total) {
      done = true;
      finished.countDown();
      return;
    }
    conn.context().owner().setTimer(REOPEN_DELAY_MILLIS, id -> start());
  }
}
