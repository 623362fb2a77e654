package io.vetcd.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

/**
 * The member's Prometheus metrics, under etcd 3.4's names, help texts, types, labels and buckets, so
 * that the etcd mixin's alerts and dashboards work unchanged. Process-wide, as etcd's own (package
 * variables registered once): a vetcd process runs one member. Instrumented code records into the
 * meters here; the member's state (leader, sizes, indexes) is read when scraped, through suppliers the
 * member sets at start.
 *
 * <p>Prometheus' Java client refuses two of etcd's shapes: a gauge whose name ends in {@code _total}
 * (etcd's {@code etcd_server_proposals_committed_total}, {@code _applied_total},
 * {@code etcd_debugging_mvcc_keys_total}) and a counter without it ({@code etcd_server_health_success},
 * {@code _failures}). Those few are written by {@link #scrape} beside Micrometer's output, by hand, in
 * the same text format.
 */
public final class EtcdMetrics {

  private EtcdMetrics() {}

  public static final PrometheusMeterRegistry REGISTRY = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

  static {
    new JvmMemoryMetrics().bindTo(REGISTRY);
    new JvmGcMetrics().bindTo(REGISTRY);
    new JvmThreadMetrics().bindTo(REGISTRY);
    new ClassLoaderMetrics().bindTo(REGISTRY);
    new ProcessorMetrics().bindTo(REGISTRY);
    new UptimeMetrics().bindTo(REGISTRY);
    new FileDescriptorMetrics().bindTo(REGISTRY);
  }

  /** etcd's wal and backend buckets: prometheus.ExponentialBuckets(0.001, 2, 14). */
  private static Duration[] exponential(double startSeconds, int count) {
    Duration[] out = new Duration[count];
    for (int i = 0; i < count; i++) {
      out[i] = Duration.ofNanos(Math.round(startSeconds * Math.pow(2, i) * 1e9));
    }
    return out;
  }

  public static final Timer WAL_FSYNC = Timer.builder("etcd_disk_wal_fsync_duration")
      .description("The latency distributions of fsync called by WAL.")
      .serviceLevelObjectives(exponential(0.001, 14)).register(REGISTRY);

  public static final Timer BACKEND_COMMIT = Timer.builder("etcd_disk_backend_commit_duration")
      .description("The latency distributions of commit called by backend.")
      .serviceLevelObjectives(exponential(0.001, 14)).register(REGISTRY);

  public static final Counter LEADER_CHANGES = Counter.builder("etcd_server_leader_changes_seen")
      .description("The number of leader changes seen.").register(REGISTRY);

  public static final Counter PROPOSALS_FAILED = Counter.builder("etcd_server_proposals_failed")
      .description("The total number of failed proposals seen.").register(REGISTRY);

  public static final Counter PUTS = Counter.builder("etcd_mvcc_put")
      .description("Total number of puts seen by this member.").register(REGISTRY);

  public static final Counter DELETES = Counter.builder("etcd_mvcc_delete")
      .description("Total number of deletes seen by this member.").register(REGISTRY);

  public static final Counter RANGES = Counter.builder("etcd_mvcc_range")
      .description("Total number of ranges seen by this member.").register(REGISTRY);

  public static final Counter TXNS = Counter.builder("etcd_mvcc_txn")
      .description("Total number of txns seen by this member.").register(REGISTRY);

  public static final Counter CLIENT_GRPC_RECEIVED = Counter.builder("etcd_network_client_grpc_received_bytes")
      .description("The total number of bytes received from grpc clients.").register(REGISTRY);

  public static final Counter CLIENT_GRPC_SENT = Counter.builder("etcd_network_client_grpc_sent_bytes")
      .description("The total number of bytes sent to grpc clients.").register(REGISTRY);

  /** Bytes sent to peer {@code to} (a member id in hex, etcd's {@code To} label). */
  public static Counter peerSentBytes(String to) {
    return Counter.builder("etcd_network_peer_sent_bytes").description("The total number of bytes sent to peers.")
        .tag("To", to).register(REGISTRY);
  }

  public static Counter peerReceivedBytes(String from) {
    return Counter.builder("etcd_network_peer_received_bytes")
        .description("The total number of bytes received from peers.").tag("From", from).register(REGISTRY);
  }

  public static Counter peerSentFailures(String to) {
    return Counter.builder("etcd_network_peer_sent_failures")
        .description("The total number of send failures from peers.").tag("To", to).register(REGISTRY);
  }

  /** etcd's buckets: prometheus.ExponentialBuckets(0.0001, 2, 16). */
  public static Timer peerRoundTrip(String to) {
    return Timer.builder("etcd_network_peer_round_trip_time").description("Round-Trip-Time histogram between peers")
        .tag("To", to).serviceLevelObjectives(exponential(0.0001, 16)).register(REGISTRY);
  }

  /** grpc-go-prometheus' counters, as etcd registers them. */
  public static Counter grpcStarted(String type, String service, String method) {
    return Counter.builder("grpc_server_started").description("Total number of RPCs started on the server.")
        .tag("grpc_type", type).tag("grpc_service", service).tag("grpc_method", method).register(REGISTRY);
  }

  public static Counter grpcHandled(String type, String service, String method, String code) {
    return Counter.builder("grpc_server_handled")
        .description("Total number of RPCs completed on the server, regardless of success or failure.")
        .tag("grpc_type", type).tag("grpc_service", service).tag("grpc_method", method).tag("grpc_code", code)
        .register(REGISTRY);
  }

  /** Only with {@code --metrics=extensive}, as in etcd. Client_golang's default buckets. */
  public static Timer grpcHandling(String type, String service, String method) {
    return Timer.builder("grpc_server_handling")
        .description("Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.")
        .tag("grpc_type", type).tag("grpc_service", service).tag("grpc_method", method)
        .serviceLevelObjectives(Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(25), Duration.ofMillis(50),
            Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500), Duration.ofSeconds(1),
            Duration.ofMillis(2500), Duration.ofSeconds(5), Duration.ofSeconds(10))
        .register(REGISTRY);
  }

  // ---------------------------------------------------------------- the member's state, read when scraped

  /** What the member tells the gauges; set once it starts. */
  public record MemberState(String idHex, LongSupplier leaderId, java.util.function.BooleanSupplier isLeader,
      LongSupplier committedIndex, LongSupplier appliedIndex, LongSupplier pendingProposals, LongSupplier dbSize,
      LongSupplier dbSizeInUse, long quotaBytes, LongSupplier keys, LongSupplier watchStreams,
      LongSupplier watchers) {}

  private static volatile MemberState member;
  private static final AtomicLong HEALTH_SUCCESS = new AtomicLong();
  private static final AtomicLong HEALTH_FAILURES = new AtomicLong();

  /**
   * Binds the gauges to the member; a later call (a member started again in one JVM, in tests) replaces
   * what they read, but not etcd_server_id's label, which keeps the first member's id.
   */
  public static synchronized void bind(MemberState state) {
    boolean first = member == null;
    member = state;
    if (!first) {
      return;
    }
    gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
        () -> member.leaderId().getAsLong() != 0 ? 1 : 0);
    gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        () -> member.isLeader().getAsBoolean() ? 1 : 0);
    gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.",
        () -> member.pendingProposals().getAsLong());
    gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
        () -> member.dbSize().getAsLong());
    gauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
        () -> member.dbSizeInUse().getAsLong());
    gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", () -> member.quotaBytes());
    Gauge.builder("etcd_server_id", () -> 1)
        .description("Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.")
        .tag("server_id", state.idHex()).register(REGISTRY);
  }

  private static void gauge(String name, String help, DoubleSupplier value) {
    Gauge.builder(name, value::getAsDouble).description(help).register(REGISTRY);
  }

  /** A /health answer, counted as etcd counts it. */
  public static void healthChecked(boolean healthy) {
    (healthy ? HEALTH_SUCCESS : HEALTH_FAILURES).incrementAndGet();
  }

  /** The Prometheus text exposition: Micrometer's meters, then the few it cannot name as etcd does. */
  public static String scrape() {
    StringBuilder out = new StringBuilder(REGISTRY.scrape());
    MemberState m = member;
    if (m != null) {
      exact(out, "etcd_server_proposals_committed_total", "gauge", "The total number of consensus proposals committed.",
          m.committedIndex().getAsLong());
      exact(out, "etcd_server_proposals_applied_total", "gauge", "The total number of consensus proposals applied.",
          m.appliedIndex().getAsLong());
      exact(out, "etcd_debugging_mvcc_watch_stream_total", "gauge", "Total number of watch streams.",
          m.watchStreams().getAsLong());
      exact(out, "etcd_debugging_mvcc_watcher_total", "gauge", "Total number of watchers.", m.watchers().getAsLong());
      try {
        exact(out, "etcd_debugging_mvcc_keys_total", "gauge", "Total number of keys.", m.keys().getAsLong());
      } catch (RuntimeException e) {
        // the keyspace is closing (the member stops): the rest of the scrape still answers
      }
    }
    exact(out, "etcd_server_health_success", "counter", "The total number of successful health checks",
        HEALTH_SUCCESS.get());
    exact(out, "etcd_server_health_failures", "counter", "The total number of failed health checks",
        HEALTH_FAILURES.get());
    return out.toString();
  }

  /** A series in Prometheus' text format, named exactly (Micrometer renames gauges whose names end in _total). */
  public static void exact(StringBuilder out, String name, String type, String help, long value) {
    out.append("# HELP ").append(name).append(' ').append(help).append('\n')
        .append("# TYPE ").append(name).append(' ').append(type).append('\n')
        .append(name).append(' ').append(value).append('\n');
  }
}
