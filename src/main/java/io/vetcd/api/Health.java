package io.vetcd.api;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.core.streams.WriteStream;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.proto.etcdserverpb.AlarmType;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.health.HealthCheckRequest;
import io.vetcd.proto.health.HealthCheckResponse;
import io.vetcd.proto.health.HealthCheckResponse.ServingStatus;
import io.vetcd.proto.health.HealthService;
import io.vetcd.server.EtcdError;
import io.vetcd.server.LocalMember;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Whether this member can serve, as the probes ask it: etcd 3.4's {@code /health} (a leader, no alarm,
 * and a linearizable read that completes in time), newer etcd's {@code /livez} and {@code /readyz}
 * (named checks, Kubernetes' format, {@code ?verbose} and {@code ?exclude=}), and the gRPC
 * {@code grpc.health.v1.Health} service. A member whose log or keyspace failed is unhealthy
 * everywhere for the moment it takes to stop.
 */
final class Health extends HealthService {

  /** How long a probe's read may take before it counts as failed. */
  static final long READ_TIMEOUT_MS = 2000;
  /** How often a Health.Watch stream looks again. */
  private static final long WATCH_PERIOD_MS = 1000;

  private final Vertx vertx;
  private final LocalMember member;
  private final KvGrpc kv;
  /** Counts each /health answer (etcd_server_health_success / _failures). */
  private final java.util.function.Consumer<Boolean> healthCounted;

  Health(Vertx vertx, LocalMember member, KvGrpc kv, java.util.function.Consumer<Boolean> healthCounted) {
    this.vertx = vertx;
    this.member = member;
    this.kv = kv;
    this.healthCounted = healthCounted;
  }

  void mount(Router router) {
    router.get("/health").handler(this::health);
    router.get("/livez").handler(ctx -> probe(ctx, "livez", livez()));
    router.get("/readyz").handler(ctx -> probe(ctx, "readyz", readyz()));
  }

  // ---------------------------------------------------------------- the checks

  /** null if this member is up, leads or follows a leader, and has no alarm; why not otherwise. */
  private String serving() {
    if (member.stopped()) {
      return "the member is stopping: its log or keyspace failed";
    }
    if (member.leaderId() == 0) {
      return "no leader";
    }
    List<io.vetcd.proto.etcdserverpb.AlarmMember> alarms = member.alarms();
    return alarms.isEmpty() ? null : "alarm " + LocalMember.describe(alarms.get(0));
  }

  /**
   * A read of one key from this member's keyspace (serializable) or through the leader (linearizable).
   * A learner serves no linearizable read to anyone (etcd's "rpc not supported for learner"): its
   * probes read its own keyspace, and its leader is checked apart.
   */
  private Future<String> read(boolean serializable) {
    serializable |= member.isLearner();
    if (member.stopped()) {
      return Future.succeededFuture("the member is stopping: its log or keyspace failed");
    }
    Promise<String> outcome = Promise.promise();
    long timer = vertx.setTimer(READ_TIMEOUT_MS,
        t -> outcome.tryComplete("the read did not complete in " + READ_TIMEOUT_MS + " ms"));
    kv.range(RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8("health")).setLimit(1).setKeysOnly(true)
            .setSerializable(serializable).build())
        .onComplete(ar -> {
          vertx.cancelTimer(timer);
          String why = ar.succeeded() ? null : String.valueOf(ar.cause().getMessage());
          // With auth enabled the probe has no user: etcd counts those refusals as a served read.
          String status = ar.succeeded() ? null : GrpcErrors.toStatus(ar.cause()).message();
          if (EtcdError.USER_EMPTY.message().equals(status) || EtcdError.PERMISSION_DENIED.message().equals(status)) {
            why = null;
          }
          outcome.tryComplete(why);
        });
    return outcome.future();
  }

  private Map<String, Supplier<Future<String>>> livez() {
    Map<String, Supplier<Future<String>>> checks = new LinkedHashMap<>();
    checks.put("serializable_read", () -> read(true));
    return checks;
  }

  private Map<String, Supplier<Future<String>>> readyz() {
    Map<String, Supplier<Future<String>>> checks = new LinkedHashMap<>();
    checks.put("data_corruption", () -> Future.succeededFuture(member.alarms().stream()
        .anyMatch(a -> a.getAlarm() == AlarmType.CORRUPT) ? "the data corruption alarm is raised" : null));
    checks.put("serializable_read", () -> read(true));
    checks.put("linearizable_read", () -> read(false));
    return checks;
  }

  // ---------------------------------------------------------------- HTTP

  /** etcd 3.4's: {@code {"health":"true"}} (200), or {@code "false"} (503), as text/plain. */
  private void health(RoutingContext ctx) {
    String notServing = serving();
    Future<String> why = notServing != null ? Future.succeededFuture(notServing) : read(false);
    why.onComplete(ar -> {
      boolean healthy = ar.succeeded() && ar.result() == null;
      healthCounted.accept(healthy);
      ctx.response().setStatusCode(healthy ? 200 : 503).putHeader("content-type", "text/plain; charset=utf-8")
          .end(new JsonObject().put("health", String.valueOf(healthy)).encode());
    });
  }

  /**
   * Kubernetes' probe format, as newer etcd answers it: {@code ok}; with {@code ?verbose}, one
   * {@code [+]name ok} line per check and {@code <path> check passed}; a failure is 503 with
   * {@code [-]name failed: why} lines and {@code <path> check failed}. {@code ?exclude=name} (repeatable)
   * leaves a check out.
   */
  private void probe(RoutingContext ctx, String path, Map<String, Supplier<Future<String>>> checks) {
    boolean verbose = ctx.request().params().contains("verbose");
    List<String> excluded = ctx.request().params().getAll("exclude");
    Map<String, Future<String>> running = new LinkedHashMap<>();
    checks.forEach((name, check) -> {
      if (!excluded.contains(name)) {
        running.put(name, check.get());
      }
    });
    Future.join(List.copyOf(running.values())).onComplete(done -> {
      StringBuilder lines = new StringBuilder();
      boolean failed = false;
      for (Map.Entry<String, Future<String>> e : running.entrySet()) {
        String why = e.getValue().succeeded() ? e.getValue().result() : String.valueOf(e.getValue().cause());
        if (why == null) {
          lines.append("[+]").append(e.getKey()).append(" ok\n");
        } else {
          failed = true;
          lines.append("[-]").append(e.getKey()).append(" failed: ").append(why).append('\n');
        }
      }
      for (String name : excluded) {
        if (checks.containsKey(name)) {
          lines.append("[+]").append(name).append(" excluded: ok\n");
        }
      }
      var response = ctx.response().putHeader("content-type", "text/plain; charset=utf-8");
      if (failed) {
        response.setStatusCode(503).end(lines + path + " check failed\n");
      } else if (verbose) {
        response.end(lines + path + " check passed\n");
      } else {
        response.end("ok");
      }
    });
  }

  // ---------------------------------------------------------------- gRPC

  /** The whole server ("") or one of etcd's services serves while the member has a leader and no alarm. */
  private ServingStatus status(String service) throws StatusException {
    if (!service.isEmpty() && !service.startsWith("etcdserverpb.")) {
      throw new StatusException(GrpcStatus.NOT_FOUND, "unknown service");
    }
    return serving() == null ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  @Override
  public Future<HealthCheckResponse> check(HealthCheckRequest request) {
    try {
      return Future.succeededFuture(HealthCheckResponse.newBuilder().setStatus(status(request.getService())).build());
    } catch (StatusException e) {
      return Future.failedFuture(e);
    }
  }

  /** The status now, then each change, looked at every second, until the client goes. */
  @Override
  protected void watch(HealthCheckRequest request, WriteStream<HealthCheckResponse> response) {
    ServingStatus[] last = {null};
    long[] timer = {-1};
    Runnable look = () -> {
      ServingStatus now;
      try {
        now = status(request.getService());
      } catch (StatusException e) {
        now = ServingStatus.SERVICE_UNKNOWN;
      }
      if (now != last[0]) {
        last[0] = now;
        response.write(HealthCheckResponse.newBuilder().setStatus(now).build())
            .onFailure(e -> vertx.cancelTimer(timer[0])); // the client went away
      }
    };
    look.run();
    timer[0] = vertx.setPeriodic(WATCH_PERIOD_MS, t -> look.run());
    response.exceptionHandler(e -> vertx.cancelTimer(timer[0]));
  }
}
