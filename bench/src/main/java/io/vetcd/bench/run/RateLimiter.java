package io.vetcd.bench.run;

/**
 * Spaces requests evenly at a given rate, like the {@code rate.Limiter} etcd's tool uses for
 * {@code --rate}: each caller reserves the next free slot and waits until it comes.
 *
 * <p>Vert.x timers fire a millisecond or two late on a busy machine. A slot missed by less than
 * {@link #SLACK_NANOS} is still given out, so that lateness is caught up and the mean rate is the
 * one asked for; slots left unused longer ago are lost, so an idle spell buys no burst beyond that.
 */
public final class RateLimiter {

  /** How far behind schedule the limiter lets callers catch up. */
  static final long SLACK_NANOS = 10_000_000;

  private final long intervalNanos;
  /** The time of the next free slot; guarded by this. */
  private long nextSlotNanos = System.nanoTime();

  /** @param perSecond requests per second; 0 means no limit */
  public RateLimiter(int perSecond) {
    this.intervalNanos = perSecond <= 0 ? 0 : 1_000_000_000L / perSecond;
  }

  /** Reserves a slot and returns how long to wait for it, in nanoseconds (0: send now). */
  public long reserve() {
    if (intervalNanos == 0) {
      return 0;
    }
    long now = System.nanoTime();
    synchronized (this) {
      long slot = Math.max(now - SLACK_NANOS, nextSlotNanos);
      nextSlotNanos = slot + intervalNanos;
      return Math.max(0, slot - now);
    }
  }
}
