package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.THREE;
import static io.vetcd.raft.Fixtures.drain;
import static io.vetcd.raft.Fixtures.log;
import static io.vetcd.raft.Fixtures.msg;
import static io.vetcd.raft.Fixtures.node;
import static io.vetcd.raft.Fixtures.ofType;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** Terms and leader election: Raft §5.1, §5.2 and the election restriction of §5.4.1. */
class ElectionTest {

  /**
   * etcd's advanceTicks, as a starting member uses it: a follower fast-forwarded by electionTick - 2
   * ticks campaigns after 2 to electionTick + 1 more (its timeout is drawn from [electionTick,
   * 2·electionTick)); one that was not waits at least electionTick. Over many drawn timeouts.
   */
  @Test
  void advancedTicksBringTheFirstElectionForward() {
    for (long seed = 1; seed <= 50; seed++) {
      RaftConfig config = RaftConfig.builder(1, THREE).randomSeed(seed).build();
      int electionTick = config.electionTick();
      RaftNode advanced = new RaftNode(config, HardState.EMPTY, null, List.of());
      advanced.advanceTicks(electionTick - 2);
      int left = ticksUntilCampaign(advanced, 3 * electionTick);
      assertTrue(left >= 2 && left <= electionTick + 1, "seed " + seed + ": campaigned after " + left + " more ticks");
      RaftNode plain = new RaftNode(RaftConfig.builder(1, THREE).randomSeed(seed).build(), HardState.EMPTY, null, List.of());
      int waited = ticksUntilCampaign(plain, 3 * electionTick);
      assertTrue(waited >= electionTick && waited < 2 * electionTick, "seed " + seed + ": " + waited);
    }
  }

  private static int ticksUntilCampaign(RaftNode n, int most) {
    for (int ticks = 1; ticks <= most; ticks++) {
      n.tick();
      if (n.role() != Role.FOLLOWER) {
        return ticks;
      }
    }
    return Integer.MAX_VALUE;
  }

  /** "When servers start up, they begin as followers." Reference: section 5.2 */
  @Test
  void membersStartAsFollowers() {
    RaftNode n = node(1);
    assertEquals(Role.FOLLOWER, n.role());
    assertEquals(0, n.term());
    assertEquals(0, n.leader());
  }

  /**
   * "If one server's current term is smaller than the other's, then it updates its current term to
   * the larger value. If a candidate or leader discovers that its term is out of date, it immediately
   * reverts to follower state." Checked for a follower, a candidate and a leader. Reference: section
   * 5.1
   */
  @Test
  void higherTermMakesEveryRoleAFollowerOfThatTerm() {
    RaftNode follower = node(1, false, 1, List.of());
    follower.step(msg(MessageType.HEARTBEAT, 2, 1, 3).build());
    assertEquals(3, follower.term());
    assertEquals(Role.FOLLOWER, follower.role());
    assertEquals(2, follower.leader());

    RaftNode candidate = node(1, false, 1, List.of());
    candidate.campaign();
    assertEquals(Role.CANDIDATE, candidate.role());
    candidate.step(msg(MessageType.APP, 3, 1, 5).build());
    assertEquals(5, candidate.term());
    assertEquals(Role.FOLLOWER, candidate.role());
    assertEquals(3, candidate.leader());

    Network net = Network.of(3);
    net.elect(1);
    RaftNode leader = net.node(1);
    assertTrue(leader.isLeader());
    leader.step(msg(MessageType.APP_RESP, 2, 1, leader.term() + 4).build());
    assertEquals(Role.FOLLOWER, leader.role());
    assertEquals(5, leader.term());
    assertEquals(0, leader.leader(), "a response names no leader");
  }

  /**
   * "If a server receives a request with a stale term number, it rejects the request." A stale APP
   * changes nothing (the sender only learns our term); a stale vote request is not granted.
   * Reference: section 5.1
   */
  @Test
  void staleTermRequestsAreRejected() {
    RaftNode n = node(1, false, 2, log(1));
    n.step(msg(MessageType.APP, 2, 1, 1).index(1).logTerm(1)
        .entries(List.of(Fixtures.entry(2, 1))).build());
    assertEquals(1, n.lastIndex(), "nothing appended");
    assertEquals(2, n.term());
    assertEquals(0, n.leader());
    List<RaftMessage> out = drain(n);
    assertEquals(1, out.size());
    assertEquals(MessageType.APP_RESP, out.get(0).type());
    assertEquals(2, out.get(0).term(), "the stale leader learns the newer term");

    n.step(msg(MessageType.VOTE, 3, 1, 1).index(5).logTerm(1).build());
    assertEquals(0, n.vote());
    assertTrue(ofType(drain(n), MessageType.VOTE_RESP).isEmpty(), "no vote for a stale term");
  }

  /**
   * "The leader sends periodic heartbeats (AppendEntries RPCs that carry no log entries) to all
   * followers in order to maintain its authority." Reference: section 5.2
   */
  @Test
  void leaderSendsHeartbeatsEveryHeartbeatTick() {
    Network net = Network.of(3, b -> b.heartbeatTick(2));
    net.elect(1);
    RaftNode leader = net.node(1);
    leader.tick();
    assertTrue(ofType(drain(leader), MessageType.HEARTBEAT).isEmpty());
    leader.tick();
    List<RaftMessage> beats = ofType(drain(leader), MessageType.HEARTBEAT);
    assertEquals(Set.of(2L, 3L), new TreeSet<>(beats.stream().map(RaftMessage::to).toList()));
    assertTrue(beats.stream().allMatch(m -> m.entries().isEmpty() && m.term() == leader.term()));
  }

  /**
   * "If a follower receives no communication over a period of time called the election timeout ...
   * it begins an election ... a follower increments its current term and transitions to candidate
   * state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other
   * servers." The new term and self-vote are in the same Ready as the requests, which must only be
   * sent once that hard state is durable. Reference: section 5.2
   */
  @Test
  void followerStartsElectionAfterElectionTimeout() {
    RaftNode n = node(1, false, 1, log(1));
    for (int i = 0; i < 20 && n.role() == Role.FOLLOWER; i++) {
      n.tick();
    }
    assertEquals(Role.CANDIDATE, n.role());
    assertEquals(2, n.term());
    assertEquals(1, n.vote());
    Ready rd = n.ready();
    assertEquals(new HardState(2, 1, 0), rd.hardState());
    assertTrue(rd.leaderMessages().isEmpty());
    assertEquals(2, rd.messages().size());
    for (RaftMessage m : rd.messages()) {
      assertEquals(MessageType.VOTE, m.type());
      assertEquals(2, m.term());
      assertEquals(1, m.index());
      assertEquals(1, m.logTerm());
    }
  }

  /**
   * "Raft uses randomized election timeouts ... election timeouts are chosen randomly from a fixed
   * interval". Ours: [electionTick, 2·electionTick), different across members and seeds, identical
   * for the same seed. Reference: section 5.2
   */
  @Test
  void electionTimeoutsAreRandomizedWithinOneToTwoTimeouts() {
    Set<Integer> seen = new TreeSet<>();
    for (long seed = 0; seed < 200; seed++) {
      int ticks = ticksToCampaign(1, seed);
      assertTrue(ticks >= 10 && ticks < 20, "timeout " + ticks);
      assertEquals(ticks, ticksToCampaign(1, seed), "deterministic for a seed");
      seen.add(ticks);
    }
    assertEquals(10, seen.size(), "every value in [10, 20) occurs");
    Set<Integer> perMember = new TreeSet<>();
    for (long id = 1; id <= 5; id++) {
      perMember.add(ticksToCampaign(id, 99));
    }
    assertTrue(perMember.size() > 1, "members given the same seed draw different timeouts");
  }

  private static int ticksToCampaign(long id, long seed) {
    RaftNode n = new RaftNode(RaftConfig.builder(id, List.of(1L, 2L, 3L, 4L, 5L)).preVote(false)
        .randomSeed(seed).build());
    int ticks = 0;
    while (n.role() == Role.FOLLOWER) {
      n.tick();
      ticks++;
    }
    return ticks;
  }

  /**
   * "A candidate wins an election if it receives votes from a majority of the servers in the full
   * cluster for the same term ... it then sends heartbeat messages to all of the other servers to
   * establish its authority". Reference: section 5.2
   */
  @Test
  void candidateWithMajorityBecomesTheOnlyLeader() {
    for (boolean preVote : new boolean[] {false, true}) {
      Network net = Network.of(5, b -> b.preVote(preVote));
      net.elect(3);
      assertEquals(List.of(3L), net.leaders());
      for (RaftNode n : net.nodes.values()) {
        assertEquals(1, n.term());
        assertEquals(3, n.leader());
        assertEquals(n.commitIndex(), net.node(3).commitIndex());
      }
    }
  }

  /** A candidate that a majority refuses gives up and waits for the next timeout. Reference: section 5.2 */
  @Test
  void candidateRefusedByMajorityReturnsToFollower() {
    RaftNode n = node(1, false, 1, List.of());
    n.campaign();
    assertEquals(2, n.term());
    n.step(msg(MessageType.VOTE_RESP, 2, 1, 2).reject(true).build());
    assertEquals(Role.CANDIDATE, n.role());
    n.step(msg(MessageType.VOTE_RESP, 3, 1, 2).reject(true).build());
    assertEquals(Role.FOLLOWER, n.role());
    assertEquals(2, n.term());
  }

  /**
   * "Each server will vote for at most one candidate in a given term, on a first-come-first-served
   * basis". Repeating the vote to the same candidate (a retried request) is allowed. Reference:
   * section 5.2
   */
  @Test
  void atMostOneVotePerTerm() {
    RaftNode n = node(1, false, 0, List.of());
    n.step(msg(MessageType.VOTE, 2, 1, 1).build());
    n.step(msg(MessageType.VOTE, 3, 1, 1).build());
    n.step(msg(MessageType.VOTE, 2, 1, 1).build());
    List<RaftMessage> resp = ofType(drain(n), MessageType.VOTE_RESP);
    assertEquals(3, resp.size());
    assertFalse(resp.get(0).reject());
    assertTrue(resp.get(1).reject(), "already voted for 2 in term 1");
    assertFalse(resp.get(2).reject());
    assertEquals(new HardState(1, 2, 0), n.hardState());
  }

  /**
   * "While waiting for votes, a candidate may receive an AppendEntries RPC from another server
   * claiming to be leader. If the leader's term ... is at least as large as the candidate's current
   * term, then the candidate recognizes the leader as legitimate and returns to follower state."
   * Reference: section 5.2
   */
  @Test
  void candidateStepsDownForLeaderOfItsTerm() {
    RaftNode n = node(1, false, 0, List.of());
    n.campaign();
    assertEquals(1, n.term());
    n.step(msg(MessageType.APP, 2, 1, 1).index(0).logTerm(0).build());
    assertEquals(Role.FOLLOWER, n.role());
    assertEquals(2, n.leader());
    assertEquals(1, n.vote(), "the vote of this term stays recorded");

    RaftNode stale = node(1, false, 0, List.of());
    stale.campaign();
    stale.campaign(); // term 2
    stale.step(msg(MessageType.APP, 2, 1, 1).build());
    assertEquals(Role.CANDIDATE, stale.role(), "a leader of an older term is not legitimate");
  }

  /**
   * "If many followers become candidates at the same time, votes could be split so that no candidate
   * obtains a majority ... each candidate will time out and start a new election ... randomized
   * election timeouts ensure that split votes are rare and that they are resolved quickly."
   * Reference: section 5.2
   */
  @Test
  void splitVoteIsResolvedByRandomizedTimeouts() {
    Network net = Network.of(4, b -> b.preVote(false));
    net.cut(1, 4);
    net.cut(3, 2);
    net.node(1).campaign();
    net.node(3).campaign();
    net.stabilize();
    assertEquals(Role.CANDIDATE, net.node(1).role());
    assertEquals(Role.CANDIDATE, net.node(3).role());
    assertTrue(net.leaders().isEmpty(), "2 of 4 votes each: nobody wins term 1");

    net.heal();
    Map<Long, Long> leaderOfTerm = new HashMap<>();
    for (int t = 0; t < 100 && net.leaders().isEmpty(); t++) {
      net.tickAll(1);
      net.stabilize();
      for (long id : net.leaders()) {
        Long prev = leaderOfTerm.putIfAbsent(net.node(id).term(), id);
        assertTrue(prev == null || prev == id, "two leaders in one term");
      }
    }
    assertEquals(1, net.leaders().size());
    long leader = net.leaders().get(0);
    assertTrue(net.node(leader).term() >= 2);
    for (RaftNode n : net.nodes.values()) {
      assertEquals(leader, n.leader());
    }
  }

  /**
   * "the voter denies its vote if its own log is more up-to-date than that of the candidate ... If the
   * logs have last entries with different terms, then the log with the later term is more
   * up-to-date. If the logs end with the same term, then whichever log is longer is more
   * up-to-date." Reference: section 5.4.1
   */
  @Test
  void voterRefusesCandidateWithLessUpToDateLog() {
    long[][] cases = {
        // candidate last index, last term, granted? (voter log: 1@1 2@2)
        {3, 1, 0}, {1, 2, 0}, {2, 2, 1}, {3, 2, 1}, {1, 3, 1},
    };
    for (long[] c : cases) {
      RaftNode voter = node(1, false, 2, log(1, 2));
      voter.step(msg(MessageType.VOTE, 2, 1, 3).index(c[0]).logTerm(c[1]).build());
      RaftMessage resp = ofType(drain(voter), MessageType.VOTE_RESP).get(0);
      assertEquals(c[2] == 0, resp.reject(), "candidate log ends " + c[0] + "@" + c[1]);
      assertEquals(c[2] == 1 ? 2 : 0, voter.vote());
    }
  }

  /**
   * Leader Completeness via the election restriction: a member missing a committed entry cannot
   * become leader, so the entry survives the leader's crash. Reference: section 5.4.1
   */
  @Test
  void memberMissingCommittedEntryCannotWin() {
    Network net = Network.of(3, b -> b.preVote(false));
    net.elect(1);
    net.isolate(3);
    assertTrue(net.propose(1, "x"));
    long committed = net.node(1).commitIndex();
    assertEquals(List.of("x"), net.applied.get(2L));
    net.crash(1);
    net.heal();
    net.elect(3);
    assertNotEquals(Role.LEADER, net.node(3).role(), "2 refuses: its log is more up-to-date");
    for (int t = 0; t < 200 && net.leaders().isEmpty(); t++) {
      net.tickAll(1);
      net.stabilize();
      assertNotEquals(Role.LEADER, net.node(3).role());
    }
    assertEquals(List.of(2L), net.leaders());
    assertTrue(net.node(2).commitIndex() >= committed);
    assertEquals(List.of("x"), net.applied.get(3L), "3 gets x from the new leader");
    assertEquals(THREE.size(), net.nodes.size());
  }
}
