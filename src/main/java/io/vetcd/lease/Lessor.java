package io.vetcd.lease;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * When leases expire (etcd's lessor, without its storage: the keyspace keeps leases and their keys).
 * Only the primary — the member that leads — runs expiry clocks: leases expire on the leader alone,
 * which revokes them through the log, so every member deletes the same keys at the same revision.
 * A member that becomes primary gives every lease its TTL again plus an election timeout ({@link
 * #promote}), so a lease kept alive through the old leader does not expire during the failover.
 *
 * <p>Pure: the clock is passed in. Thread-safe: the apply thread reports grants and revokes, API
 * handlers renew and ask, the consensus loop promotes, demotes and collects expired leases.
 */
public final class Lessor {

  /** etcd's MaxLeaseTTL: 9,000,000,000 seconds. */
  public static final long MAX_TTL_SECONDS = 9_000_000_000L;
  /** A revoke proposed for an expired lease that is still here after this long is proposed again. */
  private static final long REVOKE_RETRY_NANOS = 3_000_000_000L;
  private static final long FOREVER = Long.MAX_VALUE;

  private static final class Lease {
    final long ttlSeconds;
    /** When it expires on the primary's clock; FOREVER on other members. */
    long expiryNanos;
    /** When its revoke was last proposed (0: never). */
    long revokeProposedNanos;

    Lease(long ttlSeconds, long expiryNanos) {
      this.ttlSeconds = ttlSeconds;
      this.expiryNanos = expiryNanos;
    }
  }

  private final LongSupplier clock;
  private final long minTtlSeconds;
  /** In grant order, which {@link #ids} keeps among leases that expire at the same time. */
  private final Map<Long, Lease> leases = new java.util.LinkedHashMap<>();
  private boolean primary;

  /**
   * @param clock monotonic nanoseconds
   * @param minTtlSeconds the shortest TTL a lease gets (etcd: 1.5 election timeouts, rounded up), so
   *     that a lease cannot expire before a new leader could be elected
   */
  public Lessor(LongSupplier clock, long minTtlSeconds) {
    this.clock = clock;
    this.minTtlSeconds = minTtlSeconds;
  }

  /** The TTL a grant asking for {@code requested} seconds gets. */
  /** The shortest TTL a lease gets. */
  public long minTtlSeconds() {
    return minTtlSeconds;
  }

  public long grantedTtl(long requested) {
    return Math.max(requested, minTtlSeconds);
  }

  /** A lease was granted (applied). */
  public synchronized void granted(long id, long ttlSeconds) {
    leases.put(id, new Lease(ttlSeconds, primary ? expiry(ttlSeconds, 0) : FOREVER));
  }

  /** A lease was revoked (applied): its keys are gone. */
  public synchronized void revoked(long id) {
    leases.remove(id);
  }

  /** Forgets every lease and starts over from the keyspace's (after a restart or a snapshot). */
  public synchronized void reload(Map<Long, Long> ttlById) {
    leases.clear();
    ttlById.forEach((id, ttl) -> leases.put(id, new Lease(ttl, primary ? expiry(ttl, 0) : FOREVER)));
  }

  /** This member now leads: every lease gets its full TTL plus {@code extendNanos}. */
  public synchronized void promote(long extendNanos) {
    primary = true;
    for (Lease l : leases.values()) {
      l.expiryNanos = expiry(l.ttlSeconds, extendNanos);
      l.revokeProposedNanos = 0;
    }
  }

  /** This member no longer leads: nothing expires here. */
  public synchronized void demote() {
    primary = false;
    for (Lease l : leases.values()) {
      l.expiryNanos = FOREVER;
    }
  }

  public synchronized boolean isPrimary() {
    return primary;
  }

  /**
   * A keep-alive: the lease's clock restarts at its TTL. Returns the TTL, or -1 if there is no such
   * lease or it has already expired (its revoke is on the way).
   *
   * @throws NotPrimaryException on a member that does not lead
   */
  public synchronized long renew(long id) {
    if (!primary) {
      throw new NotPrimaryException();
    }
    Lease l = leases.get(id);
    if (l == null || l.expiryNanos - clock.getAsLong() <= 0) {
      return -1;
    }
    l.expiryNanos = expiry(l.ttlSeconds, 0);
    return l.ttlSeconds;
  }

  /** The granted TTL, or -1 if there is no such lease. */
  public synchronized long ttl(long id) {
    Lease l = leases.get(id);
    return l == null ? -1 : l.ttlSeconds;
  }

  /**
   * Whole seconds left (as etcd truncates them), 0 once expired, -1 if there is no such lease. On a
   * member that does not lead the lease has not started to run down: its TTL.
   */
  public synchronized long remainingSeconds(long id) {
    Lease l = leases.get(id);
    if (l == null) {
      return -1;
    }
    if (l.expiryNanos == FOREVER) {
      return l.ttlSeconds;
    }
    return Math.max(0, (l.expiryNanos - clock.getAsLong()) / 1_000_000_000L);
  }

  /** Every lease, soonest expiry first (etcd's order for LeaseLeases). */
  public synchronized List<Long> ids() {
    List<Map.Entry<Long, Lease>> all = new ArrayList<>(leases.entrySet());
    all.sort(java.util.Comparator.comparingLong(e -> e.getValue().expiryNanos));
    return all.stream().map(Map.Entry::getKey).toList();
  }

  /**
   * The expired leases whose revoke should be proposed now (at most {@code max}): those not proposed
   * yet, or proposed so long ago that the proposal must have been lost. Primary only.
   */
  public synchronized List<Long> expiredToRevoke(int max) {
    List<Long> due = new ArrayList<>();
    if (!primary) {
      return due;
    }
    long now = clock.getAsLong();
    for (Map.Entry<Long, Lease> e : leases.entrySet()) {
      Lease l = e.getValue();
      boolean expired = l.expiryNanos - now <= 0;
      boolean proposable = l.revokeProposedNanos == 0 || now - l.revokeProposedNanos >= REVOKE_RETRY_NANOS;
      if (expired && proposable) {
        l.revokeProposedNanos = now;
        due.add(e.getKey());
        if (due.size() >= max) {
          break;
        }
      }
    }
    return due;
  }

  private long expiry(long ttlSeconds, long extendNanos) {
    long ttlNanos = ttlSeconds > Long.MAX_VALUE / 2_000_000_000L ? Long.MAX_VALUE / 4 : ttlSeconds * 1_000_000_000L;
    return clock.getAsLong() + extendNanos + ttlNanos;
  }

  /** Renewing needs the primary, which knows when leases expire. */
  public static final class NotPrimaryException extends RuntimeException {
    public NotPrimaryException() {
      super("not the primary lessor", null, false, false);
    }
  }
}
