package io.vetcd.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * go-grpc-prometheus' server metrics, as etcd exports them: grpc_server_started_total and
 * grpc_server_handled_total by grpc_type, grpc_service, grpc_method (and grpc_code, grpc-go's code
 * names), and with {@code --metrics=extensive} grpc_server_handling_seconds. Only etcd's own services
 * and the health service are counted: a client naming other paths cannot grow the series without
 * bound. Meters are looked up once per method, not per call.
 */
public final class GrpcServerMetrics {

  private static final String[] CODE_NAMES = {"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
      "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
      "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"};

  /** The streaming calls; every other is unary. */
  private static final Map<String, String> STREAMS = Map.of(
      "/etcdserverpb.Watch/Watch", "bidi_stream",
      "/etcdserverpb.Lease/LeaseKeepAlive", "bidi_stream",
      "/etcdserverpb.Maintenance/Snapshot", "server_stream",
      "/grpc.health.v1.Health/Watch", "server_stream");

  private static volatile boolean extensive;
  private static final Map<String, Method> METHODS = new ConcurrentHashMap<>();

  private GrpcServerMetrics() {}

  /** {@code --metrics=extensive}: time every call too. */
  public static void extensive(boolean on) {
    extensive = on;
  }

  /** One method's meters. */
  public static final class Method {
    private final String type;
    private final String service;
    private final String name;
    private final Counter started;
    private final Timer handling;
    private final Counter[] handled = new Counter[CODE_NAMES.length];

    private Method(String path, String service, String name) {
      this.type = STREAMS.getOrDefault(path, "unary");
      this.service = service;
      this.name = name;
      this.started = EtcdMetrics.grpcStarted(type, service, name);
      this.handling = extensive ? EtcdMetrics.grpcHandling(type, service, name) : null;
    }

    /** A call began; returns its start time for {@link #handled}. */
    public long started() {
      started.increment();
      return System.nanoTime();
    }

    /** The call ended with gRPC status {@code code}. */
    public void handled(int code, long startNanos) {
      int c = code >= 0 && code < CODE_NAMES.length ? code : 2;
      Counter counter = handled[c];
      if (counter == null) {
        counter = EtcdMetrics.grpcHandled(type, service, name, CODE_NAMES[c]);
        handled[c] = counter;
      }
      counter.increment();
      if (handling != null) {
        handling.record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
      }
    }
  }

  /** The meters of the call at {@code path} ("/etcdserverpb.KV/Range"); null for a path not counted. */
  public static Method of(CharSequence path) {
    String p = path.toString();
    Method m = METHODS.get(p);
    if (m != null) {
      return m;
    }
    int slash = p.lastIndexOf('/');
    if (slash <= 1 || !(p.startsWith("/etcdserverpb.") || p.startsWith("/grpc.health.v1.Health/"))
        || METHODS.size() > 256) {
      return null;
    }
    return METHODS.computeIfAbsent(p, k -> new Method(k, k.substring(1, slash), k.substring(slash + 1)));
  }
}
