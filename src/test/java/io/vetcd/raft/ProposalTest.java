package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Client requests reaching the leader: Raft §8 ("clients ... may contact any server"). */
class ProposalTest {

  /**
   * "If the client's first choice is not the leader, that server will reject the client's request and
   * supply information about the most recent leader it has heard from". etcd instead forwards the
   * proposal to the leader; the entry commits and applies everywhere. Reference: section 8
   */
  @Test
  void followerForwardsProposalsToTheLeader() {
    Network net = Network.of(3);
    net.elect(1);
    assertTrue(net.propose(3, "via-3"));
    for (long id = 1; id <= 3; id++) {
      assertEquals(List.of("via-3"), net.applied.get(id));
    }
    RaftMessage forwarded = net.sent.stream().filter(m -> m.type() == MessageType.PROP)
        .findFirst().orElseThrow();
    assertEquals(3, forwarded.from());
    assertEquals(1, forwarded.to());
    assertEquals(0, forwarded.term(), "proposals are term-less requests");
  }

  /**
   * Without a known leader a proposal has nowhere to go: propose returns false so the server answers
   * "etcdserver: no leader" at once instead of hanging. Reference: section 8
   */
  @Test
  void noLeaderRejectsProposals() {
    Network net = Network.of(3);
    assertFalse(net.node(1).propose(bytes("x")), "nobody elected yet");
    net.isolate(1);
    net.node(1).campaign();
    net.stabilize();
    assertEquals(Role.PRE_CANDIDATE, net.node(1).role());
    assertFalse(net.node(1).propose(bytes("x")), "a (pre-)candidate knows no leader");
    assertTrue(net.sent.stream().noneMatch(m -> m.type() == MessageType.PROP));
  }

  /**
   * A forwarded proposal that arrives at a member that is no longer leader is dropped (the server's
   * timeout answers the client), never appended by a non-leader. Reference: section 5.2
   */
  @Test
  void proposalReachingANonLeaderIsDropped() {
    Network net = Network.of(3);
    RaftNode candidate = Fixtures.node(1, false, 0, List.of());
    candidate.campaign();
    candidate.step(Fixtures.msg(MessageType.PROP, 2, 1, 0)
        .entries(List.of(new Entry(0, 0, Entry.Type.NORMAL, bytes("lost")))).build());
    assertEquals(0, candidate.lastIndex());
    assertTrue(net.leaders().isEmpty());
  }

  /** Entry types survive the trip; the leader stamps term and index. Reference: section 5.3 */
  @Test
  void leaderStampsTermAndIndex() {
    Network net = Network.of(3);
    net.elect(1);
    long last = net.node(1).lastIndex();
    byte[] change = new ConfChange(ConfChange.Type.ADD_LEARNER, 4, null).encode();
    net.node(2).proposeEntries(List.of(new Entry(0, 0, Entry.Type.CONF_CHANGE, change)));
    net.stabilize();
    Entry e = net.node(3).entries().get(net.node(3).entries().size() - 1);
    assertEquals(last + 1, e.index());
    assertEquals(net.node(1).term(), e.term());
    assertEquals(Entry.Type.CONF_CHANGE, e.type());
  }
}
