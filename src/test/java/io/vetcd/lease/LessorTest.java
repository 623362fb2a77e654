package io.vetcd.lease;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Lease expiry as etcd's lessor runs it, on a fake clock. */
class LessorTest {

  private static final long SECOND = 1_000_000_000L;

  private long now = 1_000 * SECOND;
  private final Lessor lessor = new Lessor(() -> now, 2);

  @Test
  void aGrantGetsAtLeastTheMinimumTtl() {
    assertEquals(2, lessor.grantedTtl(1));
    assertEquals(60, lessor.grantedTtl(60));
  }

  @Test
  void onlyThePrimaryExpiresLeases() {
    lessor.granted(7, 5);
    now += 100 * SECOND;
    assertEquals(List.of(), lessor.expiredToRevoke(10), "a follower never expires a lease");
    assertEquals(5, lessor.remainingSeconds(7), "on a follower the lease has not started to run down");
    assertThrows(Lessor.NotPrimaryException.class, () -> lessor.renew(7));
  }

  @Test
  void aLeaseExpiresAfterItsTtlWithoutKeepAlives() {
    lessor.promote(0);
    lessor.granted(7, 5);
    now += 4 * SECOND;
    assertEquals(List.of(), lessor.expiredToRevoke(10));
    assertEquals(1, lessor.remainingSeconds(7));
    now += SECOND;
    assertEquals(List.of(7L), lessor.expiredToRevoke(10));
    assertEquals(0, lessor.remainingSeconds(7));
  }

  @Test
  void keepAlivesRestartTheClock() {
    lessor.promote(0);
    lessor.granted(7, 5);
    for (int i = 0; i < 10; i++) {
      now += 4 * SECOND;
      assertEquals(5, lessor.renew(7));
      assertEquals(List.of(), lessor.expiredToRevoke(10));
    }
  }

  @Test
  void renewingAnUnknownOrExpiredLeaseSaysSo() {
    lessor.promote(0);
    assertEquals(-1, lessor.renew(99));
    lessor.granted(7, 5);
    now += 5 * SECOND;
    assertEquals(-1, lessor.renew(7), "expired: its revoke is on the way, it cannot come back");
  }

  @Test
  void anExpiredLeaseIsProposedForRevokeOnceThenAgainAfterTheRetryInterval() {
    lessor.promote(0);
    lessor.granted(7, 2);
    now += 2 * SECOND;
    assertEquals(List.of(7L), lessor.expiredToRevoke(10));
    now += SECOND;
    assertEquals(List.of(), lessor.expiredToRevoke(10), "the revoke is in flight");
    now += 2 * SECOND;
    assertEquals(List.of(7L), lessor.expiredToRevoke(10), "the proposal was lost: propose again");
    lessor.revoked(7);
    now += 10 * SECOND;
    assertEquals(List.of(), lessor.expiredToRevoke(10));
  }

  @Test
  void aNewLeaderGivesEveryLeaseItsTtlPlusAnElectionTimeout() {
    lessor.promote(0);
    lessor.granted(7, 10);
    now += 9 * SECOND; // about to expire on the old leader
    lessor.demote();
    now += 5 * SECOND; // the failover
    lessor.promote(SECOND);
    now += 10 * SECOND;
    assertEquals(List.of(), lessor.expiredToRevoke(10), "TTL + election timeout from the promotion");
    now += SECOND;
    assertEquals(List.of(7L), lessor.expiredToRevoke(10));
  }

  @Test
  void reloadStartsOverFromTheKeyspace() {
    lessor.granted(1, 5);
    lessor.reload(Map.of(2L, 30L, 3L, 40L));
    assertEquals(-1, lessor.ttl(1));
    assertEquals(30, lessor.ttl(2));
    assertTrue(lessor.ids().containsAll(List.of(2L, 3L)));
    lessor.promote(0);
    now += 30 * SECOND;
    assertEquals(List.of(2L), lessor.expiredToRevoke(10));
  }

  @Test
  void leasesAreListedSoonestExpiryFirst() {
    lessor.promote(0);
    lessor.granted(1, 30);
    lessor.granted(2, 10);
    lessor.granted(3, 30);
    assertEquals(List.of(2L, 1L, 3L), lessor.ids());
    now += SECOND;
    lessor.renew(1);
    assertEquals(List.of(2L, 3L, 1L), lessor.ids(), "a keep-alive moves a lease back");
  }

  @Test
  void expiryIsRateLimitedPerRound() {
    lessor.promote(0);
    for (long id = 1; id <= 5; id++) {
      lessor.granted(id, 2);
    }
    now += 3 * SECOND;
    assertEquals(3, lessor.expiredToRevoke(3).size());
    assertEquals(2, lessor.expiredToRevoke(3).size(), "the rest in the next round");
  }
}
