package io.vetcd.proxy;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vetcd.metrics.EtcdMetrics;

/**
 * The proxy's /metrics: etcd's grpc-proxy series. Its own registry, not the member's: a proxy is a
 * process of its own (and in tests shares a JVM with members).
 */
final class ProxyMetrics {

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final WatchCoalescer watches;
  private final RangeCache cache;

  ProxyMetrics(WatchCoalescer watches, RangeCache cache) {
    this.watches = watches;
    this.cache = cache;
    FunctionCounter.builder("etcd_grpc_proxy_events_coalescing", watches.eventsCoalescing, Number::doubleValue)
        .description("Total number of events coalescing").register(registry);
  }

  String scrape() {
    StringBuilder out = new StringBuilder(registry.scrape());
    // etcd's gauges whose names end in _total, which Micrometer would rename.
    EtcdMetrics.exact(out, "etcd_grpc_proxy_watchers_coalescing_total", "gauge",
        "Total number of current watchers coalescing", watches.watchersCoalescing.get());
    EtcdMetrics.exact(out, "etcd_grpc_proxy_cache_keys_total", "gauge", "Total number of keys/ranges cached",
        cache.size());
    EtcdMetrics.exact(out, "etcd_grpc_proxy_cache_hits_total", "gauge", "Total number of cache hits", cache.hits());
    EtcdMetrics.exact(out, "etcd_grpc_proxy_cache_misses_total", "gauge", "Total number of cache misses",
        cache.misses());
    return out.toString();
  }
}
