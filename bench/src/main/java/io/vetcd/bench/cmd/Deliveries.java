package io.vetcd.bench.cmd;

import io.vetcd.bench.report.Recorder;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The bookkeeping of {@code watch-latency}: for each put, when it was sent and how many watchers
 * have yet to see its event. The put's latency is recorded when its last watcher gets the event.
 *
 * <p>The first {@code warmUp} puts are not recorded: the clock of the run starts when the first
 * recorded one is sent.
 *
 * <p>Each put settles exactly once: delivered to every watcher, failed, or given up at the deadline.
 * A count at or below zero means settled ({@code -1}: failed or given up; events that come after
 * that decrement it further and are ignored).
 */
final class Deliveries {

  private final int warmUp;
  private final int watchers;
  private final Recorder recorder;
  private final AtomicLongArray sentNanos;
  /** Watchers yet to see put i's event; see the class comment for the settled values. */
  private final AtomicIntegerArray waiting;
  private final CountDownLatch unsettled;

  /** @param puts all puts, the {@code warmUp} first ones included */
  Deliveries(int warmUp, int puts, int watchers, Recorder recorder) {
    this.warmUp = warmUp;
    this.watchers = watchers;
    this.recorder = recorder;
    this.sentNanos = new AtomicLongArray(puts);
    this.waiting = new AtomicIntegerArray(puts);
    for (int i = 0; i < puts; i++) {
      waiting.set(i, watchers);
    }
    this.unsettled = new CountDownLatch(puts);
  }

  int puts() {
    return waiting.length();
  }

  /** Put {@code i} is about to be sent: its clock starts now. */
  void sending(int i) {
    if (i == warmUp) {
      recorder.start();
    }
    sentNanos.set(i, System.nanoTime());
  }

  /** One watcher got put {@code i}'s event. */
  void delivered(int i) {
    if (i < 0 || i >= waiting.length()) {
      return; // not one of ours
    }
    if (waiting.decrementAndGet(i) == 0) {
      if (i >= warmUp) {
        recorder.success(System.nanoTime() - sentNanos.get(i));
      }
      unsettled.countDown();
    }
  }

  /** Put {@code i} failed: no event will come for it. */
  void failed(int i, String error) {
    if (waiting.getAndSet(i, -1) > 0) {
      if (i >= warmUp) {
        recorder.failure(error);
      }
      unsettled.countDown();
    }
  }

  /** Waits until every put has settled, at most the given time. */
  boolean await(long millis) throws InterruptedException {
    return unsettled.await(millis, TimeUnit.MILLISECONDS);
  }

  /** Gives up on every put not yet settled, counting each as failed with the given error. */
  void giveUp(String error) {
    for (int i = 0; i < waiting.length(); i++) {
      int left = waiting.getAndSet(i, -1);
      if (left > 0) {
        if (i >= warmUp) {
          recorder.failure(left == watchers ? error + " (no watcher got it)" : error);
        }
        unsettled.countDown();
      }
    }
  }
}
