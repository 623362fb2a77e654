package io.vetcd.bench.report;

import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;

/**
 * The result as one JSON object, for scripts and CI: the same figures as the text report, latencies
 * in milliseconds. {@code total} is the wall time in seconds (etcd's "Total"), {@code ops} the
 * successful operations, {@code errors} the failed ones, counted by message in
 * {@code error_distribution}.
 */
public final class JsonReport {

  private JsonReport() {}

  public static String render(Result result) {
    Histogram h = result.latencies();
    JsonObject latency = new JsonObject();
    boolean any = h.getTotalCount() > 0;
    latency.put("min", any ? ms(h.getMinValue()) : null)
        .put("max", any ? ms(h.getMaxValue()) : null)
        .put("mean", any ? round(h.getMean() / 1e6) : null)
        .put("stddev", any ? round(h.getStdDeviation() / 1e6) : null)
        .put("p50", any ? ms(h.getValueAtPercentile(50)) : null)
        .put("p90", any ? ms(h.getValueAtPercentile(90)) : null)
        .put("p99", any ? ms(h.getValueAtPercentile(99)) : null)
        .put("p999", any ? ms(h.getValueAtPercentile(99.9)) : null);
    JsonObject errors = new JsonObject();
    result.errors().forEach(errors::put);
    JsonObject options = new JsonObject();
    result.options().forEach((name, value) -> options.put(name, name.equals("args") ? value : typed(value)));
    JsonObject json = new JsonObject()
        .put("command", result.command())
        .put("options", options)
        .put("total", round(result.totalSeconds()))
        .put("ops", result.ops())
        .put("errors", result.errorCount())
        .put("error_distribution", errors)
        .put("requests_per_sec", round(result.opsPerSecond()))
        .put("latency_ms", latency);
    result.extra().forEach(json::put);
    return json.encode();
  }

  /** Flag values are kept as text; numbers and booleans are given their JSON type back. */
  private static Object typed(String value) {
    if (value.equals("true") || value.equals("false")) {
      return Boolean.parseBoolean(value);
    }
    if (value.matches("-?(0|[1-9]\\d{0,17})")) {
      return Long.parseLong(value);
    }
    return value;
  }

  private static double ms(long nanos) {
    return round(nanos / 1e6);
  }

  /** Three decimals: 1 µs in milliseconds, finer than the histogram's 0.1% above 1 ms. */
  private static double round(double value) {
    return Math.round(value * 1000) / 1000.0;
  }
}
