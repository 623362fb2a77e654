package io.vetcd.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * go-grpc-prometheus' server metrics, as etcd exports them: grpc_server_started_total and
 * grpc_server_handled_total by grpc_type, grpc_service, grpc_method (and grpc_code, grpc-go's code
 * names), and with {@code --metrics=extensive} grpc_server_handling_seconds. Only the methods the
 * server has are counted (from the services' descriptors): a client naming other paths cannot grow
 * the series. Meters are looked up once per method, not per call.
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
  /** Every method of the services this server has, from their descriptors: nothing else is counted. */
  private static final java.util.Set<String> KNOWN = knownPaths();

  private static java.util.Set<String> knownPaths() {
    java.util.Set<String> paths = new java.util.HashSet<>();
    for (com.google.protobuf.Descriptors.FileDescriptor file : java.util.List.of(
        io.vetcd.proto.etcdserverpb.RpcProto.getDescriptor(), io.vetcd.proto.health.HealthProto.getDescriptor())) {
      for (com.google.protobuf.Descriptors.ServiceDescriptor service : file.getServices()) {
        for (com.google.protobuf.Descriptors.MethodDescriptor method : service.getMethods()) {
          paths.add("/" + service.getFullName() + "/" + method.getName());
        }
      }
    }
    return java.util.Set.copyOf(paths);
  }

  private GrpcServerMetrics() {}

  /**
   * Registers every method's started counter at 0, as go-grpc-prometheus does at start;
   * {@code extensive} ({@code --metrics=extensive}) times every call too.
   */
  public static void start(boolean extensive) {
    GrpcServerMetrics.extensive = extensive;
    KNOWN.forEach(GrpcServerMetrics::of);
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

  /** The meters of the call at {@code path} ("/etcdserverpb.KV/Range"); null for a path no service has. */
  public static Method of(CharSequence path) {
    String p = path.toString();
    Method m = METHODS.get(p);
    if (m != null || !KNOWN.contains(p)) {
      return m;
    }
    int slash = p.lastIndexOf('/');
    return METHODS.computeIfAbsent(p, k -> new Method(k, k.substring(1, slash), k.substring(slash + 1)));
  }
}
