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
  private final AtomicLong longestNanos = new AtomicLong();
  /** The longest stall before {@link #serving()} (-1: not serving yet). */
  private volatile long longestStartingNanos = -1;

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

  /** The longest stall seen so far (since {@link #serving()} once called), in milliseconds. */
  public long longestMs() {
    return TimeUnit.NANOSECONDS.toMillis(longestNanos.get());
  }

  /** The member serves clients from now on: stalls are counted apart from those of the start-up. */
  public void serving() {
    longestStartingNanos = longestNanos.getAndSet(0);
  }

  @Override
  public void close() {
    ticks.forEach(t -> t.cancel(false));
    if (longestStartingNanos < 0) {
      LOG.info("longest event-loop stall while starting: {} ms", longestMs());
    } else {
      LOG.info("longest event-loop stall since serving clients: {} ms (while starting: {} ms)", longestMs(),
          TimeUnit.NANOSECONDS.toMillis(longestStartingNanos));
    }
  }

  private final class Tick implements Runnable {
    private long last = System.nanoTime();

    @Override
    public void run() {
      long now = System.nanoTime();
      long stall = now - last - TimeUnit.MILLISECONDS.toNanos(PERIOD_MS);
      last = now;
      if (stall > longestNanos.get()) {
        longestNanos.accumulateAndGet(stall, Math::max);
      }
      if (stall > TimeUnit.MILLISECONDS.toNanos(WARN_MS)) {
        LOG.warn("event loop {} stalled for {} ms: nothing on it ran (a long task on it, a GC pause, or no CPU)",
            Thread.currentThread().getName(), TimeUnit.NANOSECONDS.toMillis(stall));
      }
    }
  }
}
