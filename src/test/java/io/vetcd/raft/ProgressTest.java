package io.vetcd.raft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ProgressTest {

  @Test
  void probeSendsOneMessageAtATime() {
    Progress pr = new Progress(0, 5, 4);
    assertFalse(pr.isPaused());
    pr.sentEntries(2, 6);
    assertTrue(pr.isPaused(), "a probe waits for its answer");
    assertEquals(5, pr.next, "probing does not move next optimistically");
    assertTrue(pr.maybeUpdate(6));
    assertFalse(pr.isPaused());
    assertEquals(7, pr.next);
  }

  @Test
  void replicateStreamsUntilTheWindowIsFull() {
    Progress pr = new Progress(4, 5, 2);
    pr.becomeReplicate();
    pr.sentEntries(1, 5);
    pr.sentEntries(3, 8);
    assertEquals(9, pr.next);
    assertTrue(pr.isPaused());
    pr.maybeUpdate(5);
    pr.inflights.freeLE(5);
    assertFalse(pr.isPaused());
  }

  /** A stale rejection (not for the latest probe, or below match) must not move next back. */
  @Test
  void staleRejectionsAreIgnored() {
    Progress probe = new Progress(2, 10, 4);
    assertFalse(probe.maybeDecrTo(7, 3), "we probed at 9, not 7");
    assertTrue(probe.maybeDecrTo(9, 4));
    assertEquals(5, probe.next, "jumps to the hint, not one back");

    Progress rep = new Progress(6, 7, 4);
    rep.becomeReplicate();
    rep.sentEntries(3, 9);
    assertFalse(rep.maybeDecrTo(5, 5), "5 is below match 6");
    assertTrue(rep.maybeDecrTo(8, 5));
    assertEquals(7, rep.next, "REPLICATE falls back to match + 1");
  }

  @Test
  void nextNeverFallsBelowMatchPlusOne() {
    Progress pr = new Progress(5, 9, 4);
    assertTrue(pr.maybeDecrTo(8, 1));
    assertEquals(6, pr.next);
  }

  @Test
  void probeAfterSnapshotStartsAfterIt() {
    Progress pr = new Progress(3, 4, 4);
    pr.becomeSnapshot(20);
    assertTrue(pr.isPaused());
    pr.becomeProbe();
    assertEquals(21, pr.next);

    Progress failed = new Progress(3, 4, 4);
    failed.becomeSnapshot(20);
    failed.pendingSnapshot = 0;
    failed.becomeProbe();
    assertEquals(4, failed.next, "a failed snapshot leaves the follower where it was");
  }
}
