package io.vetcd.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Faults injected on purpose, for the fail-stop tests only: the system property {@code
 * vetcd.failpoints} lists {@code name} or {@code name@N} (fail from the N-th time the point is
 * passed), comma separated. Points: {@code append} (the log's sync), {@code apply} (applying a batch
 * of committed entries), {@code snapshot-install} (installing a snapshot from the leader). Without the
 * property every check is a read of an empty map.
 */
final class Failpoints {

  private static final Map<String, Long> FROM = parse(System.getProperty("vetcd.failpoints", ""));
  private static final Map<String, AtomicLong> PASSED = new HashMap<>();

  static {
    FROM.keySet().forEach(name -> PASSED.put(name, new AtomicLong()));
  }

  private Failpoints() {}

  private static Map<String, Long> parse(String spec) {
    Map<String, Long> from = new HashMap<>();
    for (String point : spec.split(",")) {
      if (!point.isBlank()) {
        String[] parts = point.trim().split("@");
        from.put(parts[0], parts.length > 1 ? Long.parseLong(parts[1]) : 1L);
      }
    }
    return Map.copyOf(from);
  }

  /** Throws an injected I/O error if the point {@code name} is set and reached its count. */
  static void check(String name) {
    Long from = FROM.get(name);
    if (from != null && PASSED.get(name).incrementAndGet() >= from) {
      throw new UncheckedIOException(new IOException("Input/output error (failpoint " + name + ")"));
    }
  }
}
