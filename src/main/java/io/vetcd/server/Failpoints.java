package io.vetcd.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Faults injected on purpose, for tests only: the system property {@code vetcd.failpoints} lists
 * points, comma separated, each {@code name[=action][@N]}, in the spirit of etcd's gofail terms:
 * <ul>
 *   <li>{@code name} or {@code name=error}: an I/O error, as a failing disk gives (the fail-stop
 *       tests);</li>
 *   <li>{@code name=crash}: the process halts on the spot, as {@code kill -9} at exactly that point
 *       would (the chaos runs: a crash between a sync and its acknowledgement, between applying and
 *       committing);</li>
 *   <li>{@code name=sleep(MS)}: waits MS milliseconds each time, a slow disk;</li>
 * </ul>
 * {@code @N}: from the N-th time the point is passed (default: the first). Points: {@code append}
 * (the log's sync, timed in etcd_disk_wal_fsync_duration_seconds), {@code after-sync} (synced, not
 * yet acknowledged), {@code apply} (applying a batch of committed entries), {@code
 * before-apply-commit} and {@code after-apply-commit} (the keyspace transaction of a batch), {@code
 * snapshot-send} (a copy made for a follower, before it is streamed) and {@code snapshot-install}
 * (installing a snapshot from the leader). Without the property every check is a read of an empty
 * map.
 */
final class Failpoints {

  /** The exit status of a {@code crash} action: 128 + SIGKILL, what a shell reports after kill -9. */
  static final int CRASH_STATUS = 137;

  record Point(String action, long sleepMillis, long from, AtomicLong passed) {}

  private static final Map<String, Point> POINTS = parse(System.getProperty("vetcd.failpoints", ""));

  private Failpoints() {}

  static Map<String, Point> parse(String spec) {
    Map<String, Point> points = new HashMap<>();
    for (String term : spec.split(",")) {
      if (term.isBlank()) {
        continue;
      }
      String[] countSplit = term.trim().split("@");
      long from = countSplit.length > 1 ? Long.parseLong(countSplit[1]) : 1L;
      String[] actionSplit = countSplit[0].split("=", 2);
      String action = actionSplit.length > 1 ? actionSplit[1] : "error";
      long sleep = 0;
      if (action.startsWith("sleep(") && action.endsWith(")")) {
        sleep = Long.parseLong(action.substring("sleep(".length(), action.length() - 1));
        action = "sleep";
      } else if (!action.equals("error") && !action.equals("crash")) {
        throw new IllegalArgumentException("failpoint " + term + ": the action must be error, crash or sleep(MS)");
      }
      points.put(actionSplit[0], new Point(action, sleep, from, new AtomicLong()));
    }
    return Map.copyOf(points);
  }

  /** Does what the point {@code name} is set to, once it reached its count; nothing if it is not set. */
  static void check(String name) {
    Point point = POINTS.get(name);
    if (point == null || point.passed().incrementAndGet() < point.from()) {
      return;
    }
    switch (point.action()) {
      case "crash" -> {
        System.err.println("failpoint " + name + ": crashing on purpose");
        Runtime.getRuntime().halt(CRASH_STATUS);
      }
      case "sleep" -> {
        try {
          TimeUnit.MILLISECONDS.sleep(point.sleepMillis());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      default -> throw new UncheckedIOException(new IOException("Input/output error (failpoint " + name + ")"));
    }
  }
}
