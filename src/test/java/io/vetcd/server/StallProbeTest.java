package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class StallProbeTest {

  @Test
  void aLoopHeldByATaskIsSeenStalledAtLeastThatLong() throws Exception {
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    try (StallProbe probe = StallProbe.start(vertx)) {
      CountDownLatch held = new CountDownLatch(1);
      long holdMs = 3 * StallProbe.WARN_MS;
      vertx.getOrCreateContext().runOnContext(v -> {
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(holdMs);
        while (System.nanoTime() < until) {
          Thread.onSpinWait(); // the loop is busy: its probe cannot run
        }
        held.countDown();
      });
      assertTrue(held.await(10, TimeUnit.SECONDS));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      // The probe's next run after the hold measures it (less one period it was not yet due).
      while (probe.longestMs() < holdMs - StallProbe.PERIOD_MS && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertTrue(probe.longestMs() >= holdMs - StallProbe.PERIOD_MS, "longest stall " + probe.longestMs() + " ms");
      probe.serving();
      assertTrue(probe.longestMs() < holdMs - StallProbe.PERIOD_MS, "counted apart once serving: " + probe.longestMs());
    } finally {
      vertx.close().await();
    }
  }

  @Test
  void aStallThatBeganBeforeServingIsTheStartUpsEvenIfSeenAfter() throws Exception {
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    try (StallProbe probe = StallProbe.start(vertx)) {
      CountDownLatch holding = new CountDownLatch(1);
      CountDownLatch held = new CountDownLatch(1);
      long holdMs = 3 * StallProbe.WARN_MS;
      vertx.getOrCreateContext().runOnContext(v -> {
        holding.countDown();
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(holdMs);
        while (System.nanoTime() < until) {
          Thread.onSpinWait();
        }
        held.countDown();
      });
      assertTrue(holding.await(10, TimeUnit.SECONDS));
      Thread.sleep(StallProbe.PERIOD_MS * 2); // past the probe's due time: the stall has begun
      probe.serving(); // while the loop is still held (what the client server's start did)
      assertTrue(held.await(10, TimeUnit.SECONDS));
      CountDownLatch ranAfter = new CountDownLatch(2);
      vertx.setPeriodic(StallProbe.PERIOD_MS, id -> ranAfter.countDown()); // the probe has run again by then
      assertTrue(ranAfter.await(10, TimeUnit.SECONDS));
      assertTrue(probe.longestMs() < holdMs / 2, "counted as serving: " + probe.longestMs() + " ms");
    } finally {
      vertx.close().await();
    }
  }

  @Test
  void aStallOfALongTaskSaysTheLoopRanOnACpu() throws Exception {
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    long spinCpuMs = 2 * StallProbe.WARN_MS;
    StallProbe.Stall stall = stallOf(spinCpuMs, () -> {
      // Spins until the loop thread has used this much CPU (not wall time: a busy machine may hold it
      // off a CPU too, which is the other part of the answer).
      long until = threads.getCurrentThreadCpuTime() + TimeUnit.MILLISECONDS.toNanos(spinCpuMs);
      while (threads.getCurrentThreadCpuTime() < until) {
        Thread.onSpinWait();
      }
    });
    assertTrue(stall.ranMs() >= spinCpuMs, stall.toString());
  }

  @Test
  void aStallOfABlockedLoopSaysItWasNotRunning() throws Exception {
    long blockedMs = 2 * StallProbe.WARN_MS;
    StallProbe.Stall stall = stallOf(blockedMs, () -> {
      try {
        Thread.sleep(blockedMs); // blocked in a call: no CPU used
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    assertTrue(stall.ranMs() < StallProbe.WARN_MS / 2, stall.toString());
    assertTrue(stall.notRunningMs() >= blockedMs - stall.gcMs() - stall.ranMs(), stall.toString());
    assertTrue(stall.toString().contains("it was not running"), stall.toString());
  }

  /**
   * Runs {@code task} on an event loop, after the probe has run there, and returns the stall it caused:
   * the first at least {@code causedMs} long less a period (a busy machine may add shorter ones).
   */
  private static StallProbe.Stall stallOf(long causedMs, Runnable task) throws Exception {
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    BlockingQueue<StallProbe.Stall> stalls = new LinkedBlockingQueue<>();
    try (StallProbe probe = StallProbe.start(vertx, stalls::add)) {
      CountDownLatch probed = new CountDownLatch(3);
      vertx.setPeriodic(StallProbe.PERIOD_MS, id -> probed.countDown()); // the probe has run by then
      assertTrue(probed.await(10, TimeUnit.SECONDS));
      stalls.clear(); // any of the start's own
      vertx.getOrCreateContext().runOnContext(v -> task.run());
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      StallProbe.Stall stall;
      do {
        stall = stalls.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } while (stall != null && stall.stallMs() < causedMs - StallProbe.PERIOD_MS);
      assertNotNull(stall, "no stall of " + causedMs + " ms reported");
      return stall;
    } finally {
      vertx.close().await();
    }
  }
}
