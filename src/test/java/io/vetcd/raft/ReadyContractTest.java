package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.bytes;
import static io.vetcd.raft.Fixtures.msg;
import static io.vetcd.raft.Fixtures.positions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The Ready/advance contract: what must be durable before which message leaves (Raft figure 2:
 * "Updated on stable storage before responding to RPCs"), pipelined Readies, restart from disk.
 */
class ReadyContractTest {

  /**
   * Figure 2: currentTerm and votedFor are "updated on stable storage before responding to RPCs". A
   * vote leaves in {@code messages} (sent after persisting) together with the hard state recording
   * it. Reference: section 5.1 and figure 2
   */
  @Test
  void voteTravelsWithTheHardStateThatRecordsIt() {
    RaftNode n = Fixtures.node(1, false, 0, List.of());
    n.step(msg(MessageType.VOTE, 2, 1, 4).build());
    Ready rd = n.ready();
    assertEquals(new HardState(4, 2, 0), rd.hardState());
    assertEquals(1, rd.messages().size());
    assertEquals(MessageType.VOTE_RESP, rd.messages().get(0).type());
    assertTrue(rd.leaderMessages().isEmpty());
    assertTrue(rd.needsPersist());
  }

  /**
   * A follower acknowledges entries only through the Ready that carries them for persisting.
   * Reference: section 5.3 and figure 2
   */
  @Test
  void followerAcknowledgesOnlyAfterPersisting() {
    RaftNode f = Fixtures.node(2, true, 1, List.of());
    f.step(msg(MessageType.APP, 1, 2, 1).entries(List.of(Fixtures.entry(1, 1))).build());
    Ready rd = f.ready();
    assertEquals(List.of("1@1"), positions(rd.entries()));
    assertEquals(MessageType.APP_RESP, rd.messages().get(0).type());
    assertEquals(1, rd.messages().get(0).index());
    assertTrue(rd.leaderMessages().isEmpty());
  }

  /**
   * Only replication traffic of a leader may bypass persistence; its responses and anything from
   * other roles wait. Reference: thesis section 10.2.1
   */
  @Test
  void leaderMessagesAreReplicationOnly() {
    Network net = Network.of(3);
    net.elect(1);
    for (RaftMessage m : net.sent) {
      boolean replication = m.type() == MessageType.APP || m.type() == MessageType.HEARTBEAT
          || m.type() == MessageType.SNAP || m.type() == MessageType.TIMEOUT_NOW;
      assertTrue(!replication || m.from() == 1, m.toString());
    }
    RaftNode leader = net.node(1);
    leader.propose(bytes("x"));
    leader.step(msg(MessageType.VOTE, 3, 1, leader.term()).build()); // refused: voted for itself
    Ready rd = leader.ready();
    assertTrue(rd.leaderMessages().stream().allMatch(m -> m.type() == MessageType.APP));
    assertEquals(List.of(MessageType.VOTE_RESP),
        rd.messages().stream().map(RaftMessage::type).toList());
  }

  /**
   * ready() may be called again before advance(): each Ready hands out only new work, and they must
   * be advanced in order. Reference: thesis section 10.2.1
   */
  @Test
  void pipelinedReadiesAreDisjointAndAdvancedInOrder() {
    RaftNode n = new RaftNode(RaftConfig.builder(1, List.of(1L)).build());
    n.campaign();
    Ready first = n.ready();
    assertEquals(1, first.entries().size());
    assertTrue(n.propose(bytes("y")));
    Ready second = n.ready();
    assertEquals(List.of("y"), Network.strings(second.entries()));
    assertNull(second.hardState(), "unchanged since the first Ready");
    assertNull(second.softState());
    assertEquals(2, n.outstandingReadies());
    assertThrows(IllegalStateException.class, () -> n.advance(second));
    n.advance(first);
    assertEquals(1, n.commitIndex());
    n.advance(second);
    assertEquals(2, n.commitIndex());
    assertThrows(IllegalStateException.class, () -> n.advance(second), "advanced twice");
    Ready third = n.ready();
    assertEquals(2, third.committedEntries().size());
    n.advance(third);
    assertFalse(n.hasReady());
  }

  /**
   * Committed entries are handed out for applying only once they are durable locally, even on a
   * follower that learns the commit index before its own write finished. Reference: section 5.3
   */
  @Test
  void committedEntriesAreDurableFirst() {
    RaftNode f = Fixtures.node(2, true, 1, List.of());
    f.step(msg(MessageType.APP, 1, 2, 1).entries(List.of(Fixtures.entry(1, 1))).build());
    Ready write = f.ready();
    f.step(msg(MessageType.HEARTBEAT, 1, 2, 1).commit(1).build());
    assertEquals(1, f.commitIndex());
    Ready beforeDurable = f.ready();
    assertTrue(beforeDurable.committedEntries().isEmpty());
    assertEquals(1, beforeDurable.hardState().commit(), "commit 1 is durable with entry 1 before it");
    f.advance(write);
    f.advance(beforeDurable);
    assertEquals(List.of("1@1"), positions(f.ready().committedEntries()));
  }

  /**
   * A member restarted from what it persisted resumes with the same term, vote and log and rejoins
   * the cluster; entries it had not persisted are simply sent again. Reference: section 5.1 and
   * figure 2 ("persistent state on all servers")
   */
  @Test
  void restartFromDiskKeepsTermVoteAndLog() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(1, "a");
    net.crash(2);
    net.propose(1, "b");
    HardState before = net.node(2).hardState();
    net.restart(2);
    RaftNode r = net.node(2);
    assertEquals(before.term(), r.term());
    assertEquals(before.vote(), r.vote());
    assertEquals(Role.FOLLOWER, r.role());
    for (int i = 0; i < 5; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    assertEquals(List.of("a", "b"), net.applied.get(2L));
    assertEquals(positions(net.node(1).entries()), positions(r.entries()));
  }

  /** Restored state is checked: a commit beyond the log is a corrupt disk. Reference: figure 2 */
  @Test
  void inconsistentRestoredStateIsRefused() {
    RaftConfig c = RaftConfig.builder(1, List.of(1L)).build();
    assertThrows(IllegalArgumentException.class,
        () -> new RaftNode(c, new HardState(1, 0, 5), null, Fixtures.log(1, 1)));
    assertThrows(IllegalArgumentException.class,
        () -> new RaftNode(c, new HardState(1, 0, 0), null, List.of(Fixtures.entry(2, 1))));
  }

  /**
   * A replay may hand back entries the snapshot already covers (written before it): they are
   * ignored, and the member's log starts after the snapshot. Reference: section 7
   */
  @Test
  void restoredEntriesCoveredByTheSnapshotAreSkipped() {
    RaftConfig c = RaftConfig.builder(1, List.of(1L, 2L, 3L)).build();
    Snapshot s = new Snapshot(2, 1, List.of(1L, 2L, 3L), new byte[0]);
    RaftNode n = new RaftNode(c, new HardState(1, 0, 2), s, Fixtures.log(1, 1, 1));
    assertEquals(3, n.firstIndex());
    assertEquals(List.of("3@1"), positions(n.entries()));
    assertEquals(2, n.status().applied());
    assertEquals(2, n.status().commit());
  }

  /** A restored member does not re-apply what its state machine already holds. Reference: section 5.3 */
  @Test
  void restoredAppliedIndexIsNotHandedOutAgain() {
    RaftConfig c = RaftConfig.builder(1, List.of(1L, 2L, 3L)).build();
    RaftNode n = new RaftNode(c, new HardState(1, 0, 3), null, Fixtures.log(1, 1, 1), 2);
    Ready rd = n.ready();
    assertEquals(List.of("3@1"), positions(rd.committedEntries()));
    assertNull(rd.hardState());
  }
}
