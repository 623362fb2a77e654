package io.vetcd.bench.cmd;

import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.rpc.Call;
import io.vetcd.bench.rpc.Code;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.rpc.RpcError;
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

  private Call<LeaseKeepAliveRequest, LeaseKeepAliveResponse> stream;
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
    StreamListener listener = new StreamListener();
    listener.call = conn.stream(Methods.LEASE_KEEP_ALIVE, listener);
    stream = listener.call;
    sendNext();
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

  private void broken(Call<?, ?> which, Throwable cause) {
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

  /** Hears one opened stream; once a broken stream has been replaced, what it says is ignored. */
  private final class StreamListener implements Call.Listener<LeaseKeepAliveResponse> {
    private Call<LeaseKeepAliveRequest, LeaseKeepAliveResponse> call;

    @Override
    public void message(LeaseKeepAliveResponse response) {
      if (call == stream) {
        answered(response);
      }
    }

    @Override
    public void closed(Throwable error) {
      broken(call, error != null ? error : new RpcError(Code.OK, "keep-alive stream ended by the server"));
    }
  }
}
