package io.vetcd.bench.report;

import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;

/**
 * Collects the outcome of every request of one run: the latency of each success in a histogram, and
 * each failure counted under its error text. Safe to call from any event loop at once.
 *
 * <p>Latencies go into an HdrHistogram in nanoseconds with 3 significant digits: every figure the
 * report prints (percentiles, mean, bounds) is within 0.1% of the exact one, at a fixed memory cost
 * whatever the number of requests.
 */
public final class Recorder {

  private final Histogram latencies = new ConcurrentHistogram(3);
  private final Map<String, LongAdder> errors = new ConcurrentHashMap<>();
  /** Successes plus failures: what the progress bar shows. */
  private final LongAdder finished = new LongAdder();
  private volatile long startNanos;
  private volatile long stopNanos;

  /** Starts the clock of the run; requests are sent from now on. */
  public void start() {
    startNanos = System.nanoTime();
  }

  /** Stops the clock: the last request has finished. */
  public void stop() {
    stopNanos = System.nanoTime();
  }

  public void success(long latencyNanos) {
    latencies.recordValue(Math.max(1, latencyNanos));
    finished.increment();
  }

  public void failure(String error) {
    errors.computeIfAbsent(error, e -> new LongAdder()).increment();
    finished.increment();
  }

  public long finished() {
    return finished.sum();
  }

  /** The run's result; call after {@link #stop()}. */
  public Result result(String command, Map<String, String> options, Map<String, Object> extra) {
    Map<String, Long> errorCounts = new LinkedHashMap<>();
    errors.entrySet().stream()
        .sorted(Comparator.comparing((Map.Entry<String, LongAdder> e) -> e.getValue().sum()).reversed())
        .forEach(e -> errorCounts.put(e.getKey(), e.getValue().sum()));
    return new Result(command, options, stopNanos - startNanos, latencies.copy(), errorCounts, extra);
  }
}
