package io.vetcd.server;

import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Measures how long each event loop could not run anything: a task due every {@link #PERIOD_MS} that
 * notes how late it ran. A stall is whatever held the loop (a long task on it, a GC pause, a CPU the
 * loop did not get); Vert.x's blocked-thread checker sees only the first and only past seconds. Every
 * stall over {@link #WARN_MS} is logged with its loop, and at close the longest one since the member
 * began serving clients, and the longest before (start-up: class loading, the JIT, replay), apart:
 * the benchmark's "longest event-loop stall" reads the first from the log.
 */
public final class StallProbe implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(StallProbe.class);
  static final long PERIOD_MS = 20;
  static final long WARN_MS = 100;

  private final List<ScheduledFuture<?>> ticks = new ArrayList<>();
  /** The longest stall that began before {@link #serving()}, and since. */
  private final AtomicLong longestStartingNanos = new AtomicLong();
  private final AtomicLong longestServingNanos = new AtomicLong();
  private volatile boolean serving;
  private volatile long servingSinceNanos;

  private StallProbe() {}

  /** Starts probing every event loop of {@code vertx}. */
  public static StallProbe start(Vertx vertx) {
    StallProbe probe = new StallProbe();
    for (EventExecutor loop : ((VertxInternal) vertx).nettyEventLoopGroup()) {
      Tick tick = probe.new Tick();
      // With a fixed delay, not a fixed rate: after a stall, the missed runs must not come all at once.
      probe.ticks.add(loop.scheduleWithFixedDelay(tick, PERIOD_MS, PERIOD_MS, TimeUnit.MILLISECONDS));
    }
    return probe;
  }

  /** The longest stall so far: since {@link #serving()} once called, in milliseconds. */
  public long longestMs() {
    return TimeUnit.NANOSECONDS.toMillis((serving ? longestServingNanos : longestStartingNanos).get());
  }

  /**
   * The member serves clients from now on: stalls that begin from here are counted apart from those of
   * the start-up (one that began before and is seen after, such as the start of the client server on
   * its loop, is the start-up's).
   */
  public void serving() {
    servingSinceNanos = System.nanoTime();
    serving = true;
  }

  @Override
  public void close() {
    ticks.forEach(t -> t.cancel(false));
    long starting = TimeUnit.NANOSECONDS.toMillis(longestStartingNanos.get());
    if (!serving) {
      LOG.info("longest event-loop stall while starting: {} ms", starting);
    } else {
      LOG.info("longest event-loop stall since serving clients: {} ms (while starting: {} ms)",
          TimeUnit.NANOSECONDS.toMillis(longestServingNanos.get()), starting);
    }
  }

  private final class Tick implements Runnable {
    private long last = System.nanoTime();

    @Override
    public void run() {
      long now = System.nanoTime();
      long began = last + TimeUnit.MILLISECONDS.toNanos(PERIOD_MS); // when this run was due
      long stall = now - began;
      last = now;
      AtomicLong longest = serving && began - servingSinceNanos >= 0 ? longestServingNanos : longestStartingNanos;
      if (stall > longest.get()) {
        longest.accumulateAndGet(stall, Math::max);
      }
      if (stall > TimeUnit.MILLISECONDS.toNanos(WARN_MS)) {
        LOG.warn("event loop {} stalled for {} ms: nothing on it ran (a long task on it, a GC pause, or no CPU)",
            Thread.currentThread().getName(), TimeUnit.NANOSECONDS.toMillis(stall));
      }
    }
  }
}
