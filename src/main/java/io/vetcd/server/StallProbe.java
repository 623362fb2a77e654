package io.vetcd.server;

import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Measures how long each event loop could not run anything: a task due every {@link #PERIOD_MS} that
 * notes how late it ran. A stall is whatever held the loop (a long task on it, a GC pause, a CPU the
 * loop did not get); Vert.x's blocked-thread checker sees only the first and only past seconds. Every
 * stall over {@link #WARN_MS} is logged with its loop, and at close the longest one since the member
 * began serving clients, and the longest before (start-up: class loading, the JIT, replay), apart:
 * the benchmark's "longest event-loop stall" reads the first from the log.
 *
 * <p>Each logged stall says where its time went, so that no one has to guess: the loop thread's own
 * CPU time over it (a long task on the loop), the collectors' pauses (which stop every loop), and the
 * rest, when the loop thread was not running at all (waiting for a CPU the machine did not have, or
 * blocked in a call).
 */
public final class StallProbe implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(StallProbe.class);
  static final long PERIOD_MS = 20;
  static final long WARN_MS = 100;

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
  private static final List<GarbageCollectorMXBean> COLLECTORS = ManagementFactory.getGarbageCollectorMXBeans();

  private final List<ScheduledFuture<?>> ticks = new ArrayList<>();
  /** The longest stall that began before {@link #serving()}, and since. */
  private final AtomicLong longestStartingNanos = new AtomicLong();
  private final AtomicLong longestServingNanos = new AtomicLong();
  private volatile boolean serving;
  private volatile long servingSinceNanos;

  /**
   * A stall over {@link #WARN_MS}, and where the time went over it and the period before it (the loop's
   * CPU time and the collectors' are read at each run of the probe): -1 where the JVM cannot say.
   */
  record Stall(String loop, long stallMs, long ranMs, long gcMs) {
    /** Neither on the loop's CPU nor in a collection: waiting for a CPU, or blocked in a call. */
    long notRunningMs() {
      return ranMs < 0 || gcMs < 0 ? -1 : Math.max(0, stallMs + PERIOD_MS - ranMs - gcMs);
    }

    @Override
    public String toString() {
      if (notRunningMs() < 0) {
        return "event loop " + loop + " stalled for " + stallMs
            + " ms: nothing on it ran (a long task on it, a GC pause, or no CPU)";
      }
      return "event loop " + loop + " stalled for " + stallMs + " ms: over it and the " + PERIOD_MS
          + " ms before, it ran tasks on a CPU for " + ranMs + " ms, GC pauses took " + gcMs
          + " ms, and for the rest (" + notRunningMs() + " ms) it was not running (no CPU free, or blocked in a call)";
    }
  }

  private final Consumer<Stall> onStall;

  private StallProbe(Consumer<Stall> onStall) {
    this.onStall = onStall;
  }

  /** Starts probing every event loop of {@code vertx}; stalls over {@link #WARN_MS} are logged. */
  public static StallProbe start(Vertx vertx) {
    return start(vertx, stall -> LOG.warn("{}", stall));
  }

  static StallProbe start(Vertx vertx, Consumer<Stall> onStall) {
    StallProbe probe = new StallProbe(onStall);
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

  /** The collectors' accumulated pause time, in milliseconds (what the JVM counts; -1 if it does not). */
  private static long gcMillis() {
    long total = 0;
    for (GarbageCollectorMXBean collector : COLLECTORS) {
      long t = collector.getCollectionTime();
      if (t < 0) {
        return -1;
      }
      total += t;
    }
    return total;
  }

  private final class Tick implements Runnable {
    private long last = System.nanoTime();
    /** The loop thread's CPU time and the collectors' time at {@link #last}. */
    private long lastCpuNanos = -1;
    private long lastGcMillis = -1;

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
      long cpuNanos = THREADS.isCurrentThreadCpuTimeSupported() ? THREADS.getCurrentThreadCpuTime() : -1;
      long gc = gcMillis();
      if (stall > TimeUnit.MILLISECONDS.toNanos(WARN_MS)) {
        // Over the stall and the period before it: the loop's own CPU time, the collectors' pauses.
        boolean known = lastCpuNanos >= 0 && cpuNanos >= 0 && lastGcMillis >= 0 && gc >= 0;
        onStall.accept(new Stall(Thread.currentThread().getName(), TimeUnit.NANOSECONDS.toMillis(stall),
            known ? TimeUnit.NANOSECONDS.toMillis(cpuNanos - lastCpuNanos) : -1, known ? gc - lastGcMillis : -1));
      }
      lastCpuNanos = cpuNanos;
      lastGcMillis = gc;
    }
  }
}
