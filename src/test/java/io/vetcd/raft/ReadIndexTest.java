package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
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
    List<RaftMessage> beats = rd.leaderMessages().stream()
        .filter(m -> m.type() == MessageType.HEARTBEAT).toList();
    assertEquals(2, beats.size());
    // They carry the leader's round for this read (not the requester's context, see PendingReads).
    assertTrue(beats.stream().allMatch(m -> m.context() != null));
    assertEquals(1, beats.stream().map(m -> new String(m.context())).distinct().count());
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
   * Each member numbers its own reads (the server counts them from 1), so the leader sees the same
   * context from several members at once: every one of them is answered (issue 22: the leader kept
   * one request per context and silently dropped the others, whose reads then timed out).
   * Reference: thesis section 6.4
   */
  @Test
  void readsOfDifferentMembersWithTheSameContextAreAllAnswered() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(2, "a");
    long commit = net.node(1).commitIndex();
    for (long id = 1; id <= 3; id++) {
      assertTrue(net.node(id).readIndex(bytes("ctx-1")));
    }
    net.stabilize();
    for (long id = 1; id <= 3; id++) {
      assertEquals(List.of(new ReadState(commit, bytes("ctx-1"))), net.reads.get(id), "member " + id);
    }
  }

  /**
   * A heartbeat answer confirms only reads that arrived before that heartbeat left (thesis §6.4 step
   * 3: the round proves nobody else led when the read arrived). Here an answer held back by the
   * network arrives after the members that answered it elected a new leader, which committed "b";
   * the old leader, not yet stepped down, takes a read whose context happens to be the one the held
   * heartbeat carried. That answer must not confirm the read: its index is older than "b", so the read
   * would miss a write acknowledged before it started (issue 22).
   * Reference: thesis section 6.4
   */
  @Test
  void aHeartbeatAnswerHeldBackCannotConfirmALaterRead() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(1, "a");
    // Member 2 reads with its context "r"; member 3's answer to that round's heartbeat is held back.
    List<RaftMessage> held = new ArrayList<>();
    net.drop(m -> m.type() == MessageType.HEARTBEAT_RESP && m.from() == 3 && held.add(m));
    assertTrue(net.node(2).readIndex(bytes("r")));
    net.stabilize();
    assertEquals(1, net.reads.get(2L).size(), "answered with member 2's own acknowledgement");
    assertEquals(1, held.size());
    // Member 1 is cut off (and not ticked, so it still believes it leads); 2 and 3 elect a new
    // leader, which commits "b".
    net.heal();
    net.isolate(1);
    for (int i = 0; i < 40 && net.leaders().stream().noneMatch(id -> id != 1); i++) {
      net.tick(2, 1);
      net.tick(3, 1);
      net.stabilize();
    }
    long newLeader = net.leaders().stream().filter(id -> id != 1).findFirst().orElseThrow();
    assertTrue(net.propose(newLeader, "b"));
    long indexOfB = net.node(newLeader).commitIndex();
    assertTrue(net.node(1).isLeader(), "the old leader has not noticed yet");
    // The old leader's server numbers its reads too; its next one happens to use "r" as well.
    assertTrue(net.node(1).readIndex(bytes("r")));
    net.stabilize();
    // Now the held answer arrives.
    net.node(1).step(held.get(0));
    net.stabilize();
    for (ReadState rs : net.reads.get(1L)) {
      assertTrue(rs.index() >= indexOfB, "the old leader answered a read at index " + rs.index()
          + ", before \"b\" (index " + indexOfB + "), acknowledged before the read started");
    }
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
