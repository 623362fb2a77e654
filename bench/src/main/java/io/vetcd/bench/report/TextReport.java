package io.vetcd.bench.report;

import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;

/**
 * The report etcd's {@code tools/benchmark} prints (its {@code pkg/report}), line for line: Summary,
 * Response time histogram, Latency distribution, Error distribution. Times in seconds with four
 * decimals, as there, so the two tools' outputs can be compared side by side.
 */
public final class TextReport {

  /** etcd's latency distribution rows. */
  private static final double[] PERCENTILES = {10, 25, 50, 75, 90, 95, 99, 99.9};
  private static final int BUCKETS = 10;
  private static final int BAR_WIDTH = 40;
  private static final String BAR = "∎";

  private TextReport() {}

  public static String render(Result result) {
    StringBuilder out = new StringBuilder();
    Histogram h = result.latencies();
    out.append("\nSummary:\n");
    out.append(line("Total", "%4.4f secs.", result.totalSeconds()));
    if (h.getTotalCount() > 0) {
      out.append(line("Slowest", "%4.4f secs.", secs(h.getMaxValue())));
      out.append(line("Fastest", "%4.4f secs.", secs(h.getMinValue())));
      out.append(line("Average", "%4.4f secs.", h.getMean() / 1e9));
      out.append(line("Stddev", "%4.4f secs.", h.getStdDeviation() / 1e9));
    }
    out.append(line("Requests/sec", "%4.4f", result.opsPerSecond()));
    for (Map.Entry<String, Object> e : result.extra().entrySet()) {
      out.append("  ").append(label(e.getKey())).append(":\t").append(e.getValue()).append('\n');
    }
    if (h.getTotalCount() > 0) {
      histogram(out, h);
      out.append("\nLatency distribution:\n");
      for (double p : PERCENTILES) {
        out.append(String.format(Locale.ROOT, "  %s%% in %4.4f secs.\n", percent(p), secs(h.getValueAtPercentile(p))));
      }
    }
    if (!result.errors().isEmpty()) {
      out.append("\nError distribution:\n");
      result.errors().forEach((error, count) -> out.append("  [").append(count).append("]\t").append(error).append('\n'));
    }
    return out.toString();
  }

  /**
   * Ten equal-width buckets from fastest to slowest plus one at slowest, each counting the latencies
   * above the previous bound and up to its own, with bars scaled to the fullest: etcd's layout.
   */
  private static void histogram(StringBuilder out, Histogram h) {
    double fastest = secs(h.getMinValue());
    double slowest = secs(h.getMaxValue());
    double width = (slowest - fastest) / BUCKETS;
    double[] bounds = new double[BUCKETS + 1];
    for (int i = 0; i < BUCKETS; i++) {
      bounds[i] = fastest + width * i;
    }
    bounds[BUCKETS] = slowest;
    long[] counts = new long[BUCKETS + 1];
    int bucket = 0;
    for (HistogramIterationValue v : h.recordedValues()) {
      double value = secs(v.getValueIteratedTo());
      while (bucket < BUCKETS && value > bounds[bucket]) {
        bucket++;
      }
      counts[bucket] += v.getCountAddedInThisIterationStep();
    }
    long max = 0;
    for (long c : counts) {
      max = Math.max(max, c);
    }
    out.append("\nResponse time histogram:\n");
    for (int i = 0; i <= BUCKETS; i++) {
      int bar = max == 0 ? 0 : (int) (counts[i] * BAR_WIDTH / max);
      out.append(String.format(Locale.ROOT, "  %4.4f [%d]\t|%s\n", bounds[i], counts[i], BAR.repeat(bar)));
    }
  }

  private static String line(String label, String format, double value) {
    return "  " + label + ":\t" + String.format(Locale.ROOT, format, value) + "\n";
  }

  /** {@code events_delivered} (its JSON name) reads "Events delivered". */
  private static String label(String name) {
    String words = name.replace('_', ' ');
    return Character.toUpperCase(words.charAt(0)) + words.substring(1);
  }

  private static String percent(double p) {
    return p == Math.rint(p) ? Long.toString((long) p) : Double.toString(p);
  }

  private static double secs(long nanos) {
    return nanos / 1e9;
  }
}
