package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.util.concurrent.CountDownLatch;
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
}
