package io.vetcd.bench.report;

import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * What one run measured.
 *
 * @param command the subcommand, e.g. {@code put}
 * @param options every flag's effective value, global ones included
 * @param totalNanos wall time from the first request sent to the last one finished
 * @param latencies latency of each successful operation, in nanoseconds
 * @param errors failures counted by error text, most frequent first
 * @param extra figures particular to a command (watch-latency's events), printed after the summary
 */
public record Result(String command, Map<String, String> options, long totalNanos, Histogram latencies,
    Map<String, Long> errors, Map<String, Object> extra) {

  public long ops() {
    return latencies.getTotalCount();
  }

  public long errorCount() {
    return errors.values().stream().mapToLong(Long::longValue).sum();
  }

  public double totalSeconds() {
    return totalNanos / 1e9;
  }

  /** Successful operations per second of wall time, as etcd's Requests/sec. */
  public double opsPerSecond() {
    return totalNanos <= 0 ? 0 : ops() / totalSeconds();
  }
}
