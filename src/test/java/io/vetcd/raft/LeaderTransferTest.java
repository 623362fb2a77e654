package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Leadership transfer (thesis §3.10), as used by etcd's Maintenance.MoveLeader. */
class LeaderTransferTest {

  /**
   * Thesis §3.10: "The prior leader sends a TimeoutNow request to the target server. This request has
   * the same effect as the target server's election timer firing: the target server starts a new
   * election". With PreVote and the lease on, the target still wins at once: TimeoutNow bypasses
   * both. Reference: thesis section 3.10
   */
  @Test
  void transferToAnUpToDateFollower() {
    Network net = Network.of(3);
    net.elect(1);
    long term = net.node(1).term();
    long preVotesBefore = net.countSent(MessageType.PRE_VOTE);
    assertTrue(net.node(1).transferLeadership(2));
    net.stabilize();
    assertEquals(List.of(2L), net.leaders());
    assertEquals(term + 1, net.node(2).term());
    assertEquals(2, net.node(1).leader());
    assertEquals(2, net.node(3).leader());
    assertEquals(preVotesBefore, net.countSent(MessageType.PRE_VOTE), "no pre-vote round");
    net.propose(1, "after");
    assertEquals(List.of("after"), net.applied.get(3L));
  }

  /**
   * Thesis §3.10: "The prior leader fully updates the target server's log to match its own" before
   * sending TimeoutNow. Reference: thesis section 3.10
   */
  @Test
  void laggingTargetIsCaughtUpFirst() {
    Network net = Network.of(3);
    net.elect(1);
    net.isolate(3);
    net.propose(1, "a");
    net.propose(1, "b");
    net.heal();
    assertTrue(net.node(3).lastIndex() < net.node(1).lastIndex());
    net.node(1).transferLeadership(3);
    net.stabilize();
    assertEquals(List.of(3L), net.leaders());
    assertEquals(List.of("a", "b"), net.applied.get(3L));
    RaftMessage timeoutNow = net.sent.stream()
        .filter(m -> m.type() == MessageType.TIMEOUT_NOW).findFirst().orElseThrow();
    int at = net.sent.indexOf(timeoutNow);
    assertTrue(net.sent.subList(0, at).stream().anyMatch(
        m -> m.type() == MessageType.APP && m.to() == 3 && !m.entries().isEmpty()),
        "entries went to 3 before TimeoutNow");
  }

  /**
   * Thesis §3.10: "The prior leader stops accepting new client requests" while the transfer runs, and
   * "if the transfer does not complete within an election timeout, the prior leader aborts the
   * transfer and resumes accepting client requests." Reference: thesis section 3.10
   */
  @Test
  void proposalsStopDuringTransferAndResumeWhenItTimesOut() {
    Network net = Network.of(3);
    net.elect(1);
    net.isolate(3);
    RaftNode leader = net.node(1);
    leader.transferLeadership(3);
    assertEquals(3, leader.leadTransferee());
    assertFalse(leader.propose(bytes("refused")));
    for (int i = 0; i < 10; i++) {
      net.tick(1, 1);
      net.tick(2, 1);
      net.stabilize();
    }
    assertEquals(0, leader.leadTransferee());
    assertTrue(leader.isLeader());
    assertTrue(leader.propose(bytes("accepted")));
  }

  /** A follower forwards a transfer request to the leader. Reference: thesis section 3.10 */
  @Test
  void followerForwardsTheRequest() {
    Network net = Network.of(3);
    net.elect(1);
    assertTrue(net.node(2).transferLeadership(3));
    net.stabilize();
    assertEquals(List.of(3L), net.leaders());
  }

  /** Transferring to oneself or a non-member does nothing. Reference: thesis section 3.10 */
  @Test
  void pointlessTransfersAreIgnored() {
    Network net = Network.of(3);
    net.elect(1);
    net.node(1).transferLeadership(1);
    net.node(1).transferLeadership(9);
    net.stabilize();
    assertEquals(List.of(1L), net.leaders());
    assertEquals(0, net.node(1).leadTransferee());
    assertFalse(Fixtures.node(2).transferLeadership(3), "no leader to ask");
  }
}
