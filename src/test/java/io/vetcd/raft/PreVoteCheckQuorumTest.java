package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.drain;
import static io.vetcd.raft.Fixtures.msg;
import static io.vetcd.raft.Fixtures.ofType;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Keeping a healthy leader in place: PreVote (thesis §9.6), CheckQuorum (thesis §6.2) and ignoring
 * vote requests while a leader is known (thesis §4.2.3).
 */
class PreVoteCheckQuorumTest {

  /**
   * Thesis §9.6: "a candidate only increments its term if it first learns from a majority of the
   * cluster that they would be willing to grant the candidate their votes". A member cut off from
   * everyone keeps pre-campaigning at its old term, and when the partition heals it follows the
   * leader: no election, no term change. Reference: thesis section 9.6
   */
  @Test
  void partitionedMemberWithPreVoteDoesNotDisruptOnReturn() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(1, "before");
    long term = net.node(1).term();
    net.isolate(3);
    for (int i = 0; i < 100; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    assertEquals(term, net.node(3).term(), "pre-votes never raised the term");
    assertEquals(Role.PRE_CANDIDATE, net.node(3).role());
    assertTrue(net.countSent(MessageType.PRE_VOTE) > 0);
    assertEquals(0, net.sent.stream().filter(m -> m.type() == MessageType.VOTE && m.from() == 3)
        .count());

    net.heal();
    for (int i = 0; i < 30; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    assertEquals(List.of(1L), net.leaders());
    assertEquals(term, net.node(1).term());
    assertEquals(1, net.node(3).leader());
    net.propose(1, "after");
    assertEquals(List.of("before", "after"), net.applied.get(3L));
  }

  /**
   * The pre-vote itself is refused by members that hear from a leader: a member that can reach only
   * some followers (an asymmetric partition) cannot start an election while the leader is healthy.
   * Reference: thesis section 9.6 and 4.2.3
   */
  @Test
  void preVoteIsIgnoredWhileFollowersHearFromTheLeader() {
    Network net = Network.of(3);
    net.elect(1);
    long term = net.node(1).term();
    net.cut(1, 3);
    for (int i = 0; i < 100; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    assertEquals(List.of(1L), net.leaders());
    assertEquals(term, net.node(1).term());
    assertEquals(term, net.node(2).term());
    assertEquals(term, net.node(3).term());
  }

  /**
   * Without PreVote the isolated member does raise its term (the disruption §9.6 exists to
   * prevent); with the lease, followers still ignore its vote requests while they hear from the
   * leader. Reference: thesis section 4.2.3
   */
  @Test
  void withoutPreVoteTheLeaseStillRefusesTheDisruptiveCandidate() {
    Network net = Network.of(3, b -> b.preVote(false));
    net.elect(1);
    long term = net.node(1).term();
    net.isolate(3);
    for (int i = 0; i < 50; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    assertTrue(net.node(3).term() > term + 1, "it campaigned again and again");
    long beforeHeal = net.sent.size();
    net.heal();
    // Deliver only its vote requests: the followers in lease ignore them without answering.
    net.node(3).tick();
    net.node(3).campaign();
    net.handleReady(3);
    List<RaftMessage> votes = net.queue.stream().filter(m -> m.type() == MessageType.VOTE).toList();
    assertEquals(2, votes.size());
    net.queue.clear();
    votes.forEach(net::deliver);
    net.handleReady(1);
    net.handleReady(2);
    assertEquals(term, net.node(2).term(), "2 heard from 1 recently: ignored");
    assertEquals(term, net.node(1).term(), "the leader too");
    assertTrue(net.queue.stream().noneMatch(m -> m.type() == MessageType.VOTE_RESP));
    assertTrue(net.sent.size() >= beforeHeal);
  }

  /**
   * The lease directly: a follower that heard from its leader within the election timeout neither
   * raises its term nor votes; once the timeout passes without a leader it does. Reference: thesis
   * section 4.2.3 ("if a server receives a RequestVote request within the minimum election timeout of
   * hearing from a current leader, it does not update its term or grant its vote")
   */
  @Test
  void followerInLeaseIgnoresVoteRequests() {
    RaftNode f = Fixtures.node(2, false, 1, List.of());
    f.step(msg(MessageType.HEARTBEAT, 1, 2, 1).build());
    drain(f);
    f.step(msg(MessageType.VOTE, 3, 2, 2).build());
    assertEquals(1, f.term());
    assertTrue(drain(f).isEmpty());
    for (int i = 0; i < 10; i++) {
      f.tick();
    }
    f.step(msg(MessageType.VOTE, 3, 2, 2).build());
    assertEquals(2, f.term());
    RaftMessage resp = ofType(drain(f), MessageType.VOTE_RESP).get(0);
    assertTrue(!resp.reject());
  }

  /**
   * Thesis §6.2: "a leader steps down if an election timeout elapses without a successful round of
   * heartbeats to a majority of its cluster". The cut-off leader becomes a follower within two
   * election timeouts, and the majority side elects a new leader. Reference: thesis section 6.2
   */
  @Test
  void leaderWithoutQuorumStepsDown() {
    Network net = Network.of(3);
    net.elect(1);
    net.isolate(1);
    int ticks = 0;
    while (net.node(1).isLeader() && ticks < 100) {
      net.tick(1, 1);
      net.stabilize();
      ticks++;
    }
    assertEquals(Role.FOLLOWER, net.node(1).role());
    assertTrue(ticks <= 20, "stepped down after " + ticks + " ticks");
    assertEquals(0, net.node(1).leader());
    assertEquals(false, net.node(1).propose(Fixtures.bytes("x")),
        "a stepped-down leader refuses proposals: no leader");
  }

  /** With CheckQuorum off, an isolated leader stays leader (for contrast). Reference: thesis section 6.2 */
  @Test
  void withoutCheckQuorumAnIsolatedLeaderStays() {
    Network net = Network.of(3, b -> b.checkQuorum(false));
    net.elect(1);
    net.isolate(1);
    net.tick(1, 50);
    net.stabilize();
    assertTrue(net.node(1).isLeader());
  }

  /**
   * "If a candidate or leader discovers that its term is out of date, it immediately reverts to
   * follower state": a stale leader that the rest of the cluster replaced learns the new term from
   * the answers to its heartbeats. Reference: section 5.1
   */
  @Test
  void deposedLeaderLearnsNewTermFromHeartbeatAnswers() {
    Network net = Network.of(3);
    net.elect(1);
    net.isolate(1);
    for (int i = 0; i < 50 && net.node(2).leader() == 1; i++) {
      net.tick(2, 1);
      net.tick(3, 1);
      net.stabilize();
    }
    net.elect(2);
    long newTerm = net.node(2).term();
    net.heal();
    assertTrue(net.node(1).isLeader(), "1 was not ticked: it still believes it leads");
    assertTrue(net.node(1).term() < newTerm);
    net.tick(1, 1); // its heartbeat reaches members of the newer term
    net.stabilize();
    assertEquals(List.of(2L), net.leaders());
    assertEquals(newTerm, net.node(1).term());
    assertEquals(Role.FOLLOWER, net.node(1).role());
    net.tick(2, 1); // and learns who leads from the next heartbeat
    net.stabilize();
    assertEquals(2, net.node(1).leader());
  }
}
