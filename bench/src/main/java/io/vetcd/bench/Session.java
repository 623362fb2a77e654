package io.vetcd.bench;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.net.SocketAddress;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.rpc.RpcError;
import io.vetcd.bench.run.Progress;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongSupplier;

/** What a running command uses: Vert.x, the conns, the global options. Closing it closes them all. */
public final class Session implements AutoCloseable {

  private final GlobalOptions options;
  private final Map<String, String> flagValues;
  private final Vertx vertx;
  private final List<Conn> conns = new ArrayList<>();
  private final List<Conn> extra = new ArrayList<>();

  /** @param flagValues every flag's effective value, echoed in the result */
  public Session(GlobalOptions options, Map<String, String> flagValues) {
    this.options = options;
    this.flagValues = flagValues;
    this.vertx = Vertx.vertx();
    for (int i = 0; i < options.conns(); i++) {
      conns.add(open(options.endpoints().get(i % options.endpoints().size())));
    }
  }

  public GlobalOptions options() {
    return options;
  }

  public Map<String, String> flagValues() {
    return flagValues;
  }

  /** The conn of client {@code i}: clients are dealt over the conns as etcd's tool does. */
  public Conn connOf(int client) {
    return conns.get(client % conns.size());
  }

  /** A conn of its own, to the first endpoint, for traffic that must not share the measured conns. */
  public Conn extraConn() {
    Conn conn = open(options.endpoints().get(0));
    extra.add(conn);
    warmUp(List.of(conn));
    return conn;
  }

  /**
   * Opens every conn with one small serializable Range, not measured. etcd's tool dials its
   * connections before the clock starts; without this the first request of each conn would carry
   * the TCP and HTTP/2 handshakes and the JVM's class loading (a second or more). An endpoint that
   * does not answer is reported here, and the run goes on: its requests will count as errors.
   */
  public void warmUp() {
    warmUp(conns);
  }

  private void warmUp(List<Conn> which) {
    RangeRequest probe = RangeRequest.newBuilder()
        .setKey(ByteString.copyFromUtf8("vetcd-bench/warm-up"))
        .setSerializable(true)
        .setCountOnly(true)
        .build();
    List<Future<RangeResponse>> probes = new ArrayList<>();
    for (Conn conn : which) {
      probes.add(conn.onContext(() -> conn.unary(Methods.RANGE, probe))
          .onFailure(e -> System.err.println("warning: " + conn.address() + ": " + RpcError.describe(e))));
    }
    try {
      Future.join(probes).toCompletionStage().toCompletableFuture().get(options.requestTimeoutMillis() + 1000, TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      // Reported per conn above; the benchmark itself will count what fails.
    }
  }

  /** A progress bar counting {@code done} up to {@code total}, unless --no-progress or --json. */
  public Progress progress(long total, LongSupplier done) {
    return Progress.start(total, done, options.progress() && !options.json());
  }

  /** Waits on the main thread for a set-up or tear-down step; never called on an event loop. */
  public <T> T await(Future<T> future, long seconds, String what) throws Exception {
    try {
      return future.toCompletionStage().toCompletableFuture().get(seconds, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      throw new IllegalStateException(what + ": no answer within " + seconds + " s");
    } catch (ExecutionException e) {
      throw new IllegalStateException(what + ": " + RpcError.describe(e.getCause()), e.getCause());
    }
  }

  private Conn open(SocketAddress address) {
    // One HTTP/2 connection per conn: "--conns N" means N TCP connections. Deadlines are enforced
    // here, not left to the server: a stalled server must cost errors.
    // A fresh event-loop context per conn (the public getOrCreateContext would hand the main thread
    // the same one every time), so conns are spread over the event loops.
    VertxInternal internal = (VertxInternal) vertx;
    return new Conn(internal, address, internal.createEventLoopContext(), options.requestTimeoutMillis());
  }

  @Override
  public void close() {
    List<Future<Void>> closing = new ArrayList<>();
    for (Conn conn : conns) {
      closing.add(conn.close());
    }
    for (Conn conn : extra) {
      closing.add(conn.close());
    }
    try {
      Future.join(closing).transform(ar -> vertx.close()).toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    } catch (Exception e) {
      // Closing is best effort: the results are already printed and the process is about to exit.
    }
  }
}
