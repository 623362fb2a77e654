package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Linearizable reads without writing to the log: thesis §6.4 (ReadIndex). */
class ReadIndexTest {

  /**
   * Thesis §6.4: "The leader saves its current commit index in a local variable readIndex ... It
   * issues a new round of heartbeats and waits for their acknowledgments from a majority of the
   * cluster." The read state arrives only after that round. Reference: thesis section 6.4
   */
  @Test
  void leaderAnswersAfterAHeartbeatQuorum() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(1, "a");
    RaftNode leader = net.node(1);
    long commit = leader.commitIndex();
    assertTrue(leader.readIndex(bytes("r1")));
    Ready rd = leader.ready();
    assertTrue(rd.readStates().isEmpty(), "not before the heartbeat round");
    List<Message> beats = rd.leaderMessages().stream()
        .filter(m -> m.type() == MessageType.HEARTBEAT).toList();
    assertEquals(2, beats.size());
    assertTrue(beats.stream().allMatch(m -> new String(m.context()).equals("r1")));
    net.disks.get(1L).persist(rd);
    net.enqueue(rd.leaderMessages());
    net.enqueue(rd.messages());
    leader.advance(rd);
    net.stabilize();
    assertEquals(List.of(new ReadState(commit, bytes("r1"))), net.reads.get(1L));
  }

  /**
   * Thesis §6.4 step 1: "If the leader has not yet marked an entry from its current term committed,
   * it waits until it has done so." A new leader's commit index may lag the previous leader's.
   * Reference: thesis section 6.4
   */
  @Test
  void newLeaderWaitsForAnEntryOfItsTermToCommit() {
    Network net = Network.of(3);
    net.dropType(MessageType.APP_RESP);
    net.elect(1);
    RaftNode leader = net.node(1);
    assertTrue(leader.isLeader());
    assertEquals(0, leader.commitIndex());
    assertTrue(leader.readIndex(bytes("early")));
    net.tick(1, 3);
    net.stabilize();
    assertTrue(net.reads.get(1L).isEmpty(), "heartbeats alone do not answer it");
    net.heal();
    net.tick(1, 1);
    net.stabilize();
    assertEquals(List.of(new ReadState(1, bytes("early"))), net.reads.get(1L));
  }

  /**
   * Thesis §6.4: "the follower could issue a request to the leader that just asks for a current
   * readIndex ... the follower can then proceed with steps 4 and 5". Reference: thesis section 6.4
   */
  @Test
  void followerGetsTheReadIndexFromTheLeader() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(2, "a");
    assertTrue(net.node(2).readIndex(bytes("f")));
    net.stabilize();
    assertEquals(List.of(new ReadState(net.node(1).commitIndex(), bytes("f"))),
        net.reads.get(2L));
    assertTrue(net.reads.get(1L).isEmpty(), "the leader's own server is not involved");
  }

  /**
   * A leader cut off from the majority cannot confirm it still leads, so it never answers: a read
   * there would risk returning stale data. Reference: thesis section 6.4
   */
  @Test
  void isolatedLeaderCannotServeReads() {
    Network net = Network.of(3);
    net.elect(1);
    net.isolate(1);
    assertTrue(net.node(1).readIndex(bytes("stale?")));
    for (int i = 0; i < 30; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    assertTrue(net.reads.get(1L).isEmpty());
  }

  /**
   * Several reads waiting at once are all confirmed by one heartbeat quorum (batching: ARCHITECTURE
   * §3 reads). Reference: thesis section 6.4
   */
  @Test
  void onlyTheLatestRoundNeedsAQuorum() {
    Network net = Network.of(3);
    net.elect(1);
    net.node(1).readIndex(bytes("a"));
    net.node(1).readIndex(bytes("b"));
    net.node(1).readIndex(bytes("c"));
    net.stabilize();
    assertEquals(List.of("a", "b", "c"),
        net.reads.get(1L).stream().map(r -> new String(r.context())).toList());
  }

  /**
   * A single-member cluster is its own quorum: the read state is immediate (once its term's entry
   * committed). Reference: thesis section 6.4
   */
  @Test
  void singleMemberAnswersAtOnce() {
    RaftNode n = new RaftNode(RaftConfig.builder(1, List.of(1L)).build());
    n.campaign();
    n.advance(n.ready());
    assertTrue(n.readIndex(bytes("x")));
    Ready rd = n.ready();
    assertEquals(List.of(new ReadState(1, bytes("x"))), rd.readStates());
  }

  /** Without a known leader there is nobody to ask: the caller fails fast. Reference: thesis section 6.4 */
  @Test
  void noLeaderNoRead() {
    RaftNode n = Fixtures.node(1);
    assertFalse(n.readIndex(bytes("x")));
    assertThrows(IllegalArgumentException.class, () -> n.readIndex(new byte[0]));
  }
}
