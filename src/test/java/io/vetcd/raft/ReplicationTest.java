package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.bytes;
import static io.vetcd.raft.Fixtures.drain;
import static io.vetcd.raft.Fixtures.log;
import static io.vetcd.raft.Fixtures.msg;
import static io.vetcd.raft.Fixtures.node;
import static io.vetcd.raft.Fixtures.ofType;
import static io.vetcd.raft.Fixtures.positions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Log replication and commitment: Raft §5.3 and §5.4.2, thesis §10.2.1. */
class ReplicationTest {

  /**
   * "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in
   * parallel to each of the other servers to replicate the entry. When the entry has been safely
   * replicated, the leader applies the entry to its state machine". Reference: section 5.3
   */
  @Test
  void leaderReplicatesCommitsAndEveryoneApplies() {
    Network net = Network.of(3);
    net.elect(1);
    long before = net.node(1).lastIndex();
    assertTrue(net.propose(1, "a"));
    assertTrue(net.propose(1, "b"));
    for (long id = 1; id <= 3; id++) {
      assertEquals(before + 2, net.node(id).commitIndex());
      assertEquals(List.of("a", "b"), net.applied.get(id));
      assertEquals(positions(net.node(1).entries()), positions(net.node(id).entries()));
    }
  }

  /**
   * "A log entry is committed once the leader that created the entry has replicated it on a majority
   * of the servers". With one of three followers of five cut off the entry still commits; with three
   * cut off it does not. Reference: section 5.3
   */
  @Test
  void entryCommitsOnMajorityOnly() {
    Network net = Network.of(5);
    net.elect(1);
    long base = net.node(1).commitIndex();
    net.isolate(4);
    net.isolate(5);
    net.propose(1, "ok");
    assertEquals(base + 1, net.node(1).commitIndex());
    net.isolate(3);
    net.propose(1, "stuck");
    assertEquals(base + 1, net.node(1).commitIndex(), "only 2 of 5 hold it");
    assertEquals(List.of("ok"), net.applied.get(1L));
  }

  /**
   * "Once a follower learns that a log entry is committed, it applies the entry to its local state
   * machine (in log order)." Followers learn the commit index from later APPs or from heartbeats.
   * Reference: section 5.3
   */
  @Test
  void followerAppliesOnlyOnceItLearnsTheCommit() {
    Network net = Network.of(3);
    net.elect(1);
    // Drop the empty APPs a leader sends just to spread a new commit index.
    net.drop(m -> m.type() == MessageType.APP && m.entries().isEmpty());
    net.propose(1, "a");
    assertEquals(List.of("a"), net.applied.get(1L));
    assertEquals(List.of(), net.applied.get(2L), "2 holds a but does not know it committed");
    assertEquals(net.node(1).lastIndex(), net.node(2).lastIndex());
    net.tick(1, 1);
    net.stabilize();
    assertEquals(List.of("a"), net.applied.get(2L), "the heartbeat carried the commit");
  }

  /**
   * "When sending an AppendEntries RPC, the leader includes the index and term of the entry in its
   * log that immediately precedes the new entries. If the follower does not find an entry in its log
   * with the same index and term, then it refuses the new entries." Reference: section 5.3
   */
  @Test
  void followerRefusesEntriesWithoutMatchingPredecessor() {
    RaftNode f = node(2, true, 2, log(1, 1, 2));
    f.step(msg(MessageType.APP, 1, 2, 2).index(3).logTerm(1)
        .entries(List.of(Fixtures.entry(4, 2))).commit(3).build());
    assertEquals(3, f.lastIndex(), "not appended");
    assertEquals(0, f.commitIndex(), "a refused APP teaches no commit");
    RaftMessage resp = ofType(drain(f), MessageType.APP_RESP).get(0);
    assertTrue(resp.reject());
    assertEquals(3, resp.index());
    assertEquals(2, resp.rejectHint(), "last entry with term <= 1 is index 2");
    assertEquals(1, resp.logTerm());

    f.step(msg(MessageType.APP, 1, 2, 2).index(7).logTerm(2).build());
    RaftMessage beyond = ofType(drain(f), MessageType.APP_RESP).get(0);
    assertTrue(beyond.reject());
    assertEquals(3, beyond.rejectHint(), "our log ends at 3");
  }

  /**
   * Figure 7: "the leader handles inconsistencies by forcing the followers' logs to duplicate its own.
   * This means that conflicting entries in follower logs will be overwritten with entries from the
   * leader's log." Each of the figure's followers (a)–(f) ends with the leader's log, with few
   * rejections thanks to the conflict-term optimization. Reference: section 5.3
   */
  @Test
  void figure7FollowersConvergeToTheLeadersLog() {
    long[] leaderLog = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    long[][] followers = {
        {1, 1, 1, 4, 4, 5, 5, 6, 6},
        {1, 1, 1, 4},
        {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},
        {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
        {1, 1, 1, 4, 4, 4, 4},
        {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},
    };
    for (long[] follower : followers) {
      Network net = Network.of(3);
      net.load(1, 7, log(leaderLog));
      net.load(2, 7, log(leaderLog));
      net.load(3, follower[follower.length - 1], log(follower));
      net.elect(1);
      assertTrue(net.node(1).isLeader());
      assertEquals(8, net.node(1).term());
      assertEquals(positions(net.node(1).entries()), positions(net.node(3).entries()),
          "follower " + java.util.Arrays.toString(follower));
      long rejects = net.sent.stream()
          .filter(m -> m.type() == MessageType.APP_RESP && m.from() == 3 && m.reject()).count();
      assertTrue(rejects <= 1, rejects + " rejections");
      assertEquals(11, net.node(3).commitIndex());
    }
  }

  /**
   * "when rejecting an AppendEntries request, the follower can include the term of the conflicting
   * entry and the first index it stores for that term. With this information, the leader can
   * decrement nextIndex to bypass all of the conflicting entries in that term; one AppendEntries RPC
   * will be required for each term with conflicting entries, rather than one RPC per entry." A 90-entry
   * divergent suffix is resolved with a single rejection. Reference: section 5.3
   */
  @Test
  void fastBacktrackingSkipsConflictingTermsAtOnce() {
    List<Entry> common = log(1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    List<Entry> leader = new ArrayList<>(common);
    List<Entry> stale = new ArrayList<>(common);
    for (long i = 11; i <= 60; i++) {
      leader.add(Fixtures.entry(i, 3));
    }
    for (long i = 11; i <= 100; i++) {
      stale.add(Fixtures.entry(i, 2));
    }
    Network net = Network.of(3, b -> b.maxEntriesPerMessage(1000));
    net.load(1, 3, leader);
    net.load(2, 3, leader);
    net.load(3, 2, stale);
    net.elect(1);
    assertEquals(positions(net.node(1).entries()), positions(net.node(3).entries()));
    long rejects = net.sent.stream()
        .filter(m -> m.type() == MessageType.APP_RESP && m.from() == 3 && m.reject()).count();
    assertEquals(1, rejects);
  }

  /**
   * Pipelining: a follower in the replicate state gets several APPs without the leader waiting for
   * answers, up to the inflight window; when the window is full, nothing more until answers come.
   * Reference: section 5.3 ("the leader ... issues AppendEntries RPCs in parallel") and thesis
   * section 10.2.2
   */
  @Test
  void leaderPipelinesUpToTheInflightWindow() {
    Network net = Network.of(3, b -> b.maxInflightMessages(3));
    net.elect(1);
    RaftNode leader = net.node(1);
    net.manual.add(1L);
    for (int i = 0; i < 5; i++) {
      assertTrue(leader.propose(bytes("p" + i)));
    }
    Ready rd = leader.ready();
    List<RaftMessage> toTwo = rd.leaderMessages().stream()
        .filter(m -> m.to() == 2 && m.type() == MessageType.APP).toList();
    assertEquals(3, toTwo.size(), "three in flight, the fourth waits");
    assertEquals(List.of(1, 1, 1), toTwo.stream().map(m -> m.entries().size()).toList());
    net.disks.get(1L).persist(rd);
    net.enqueue(rd.leaderMessages());
    leader.advance(rd);
    net.manual.clear();
    net.stabilize();
    assertEquals(List.of("p0", "p1", "p2", "p3", "p4"), net.applied.get(2L));
  }

  /**
   * A batch of proposals made together travels in one APP per follower.
   * Reference: section 5.3
   */
  @Test
  void proposalsMadeTogetherShareOneAppend() {
    Network net = Network.of(3);
    net.elect(1);
    int before = net.sent.size();
    assertTrue(net.node(1).propose(List.of(bytes("a"), bytes("b"), bytes("c"))));
    net.stabilize();
    List<RaftMessage> apps = net.sent.subList(before, net.sent.size()).stream()
        .filter(m -> m.type() == MessageType.APP && !m.entries().isEmpty()).toList();
    assertEquals(2, apps.size());
    assertEquals(List.of("a", "b", "c"), net.applied.get(3L));
  }

  /**
   * Thesis §10.2.1: "the leader can write to its disk in parallel with replicating to the followers".
   * It must then count its own copy only once durable: here one follower of two acknowledges while
   * the leader's Ready is not yet advanced, and nothing commits until it is. Reference: section 5.3
   * and thesis section 10.2.1
   */
  @Test
  void leaderCountsItsOwnEntriesOnlyAfterAdvance() {
    Network net = Network.of(3);
    net.elect(1);
    RaftNode leader = net.node(1);
    long commit = leader.commitIndex();
    net.manual.add(1L);
    net.isolate(3);
    assertTrue(leader.propose(bytes("x")));
    Ready rd = leader.ready();
    assertEquals(1, rd.entries().size());
    net.enqueue(rd.leaderMessages()); // sent before the leader's own write finishes
    net.stabilize();
    assertEquals(commit + 1, leader.matchIndex(2), "2 has it durably");
    assertEquals(commit, leader.commitIndex(), "1 of 3: the leader's copy is not durable yet");
    net.disks.get(1L).persist(rd);
    leader.advance(rd);
    assertEquals(commit + 1, leader.commitIndex());
    Ready next = leader.ready();
    assertEquals(List.of("x"), Network.strings(next.committedEntries()));
    assertEquals(commit + 1, next.hardState().commit());
    leader.advance(next);
  }

  /**
   * Thesis §10.2.1: "the leader may even commit an entry before it has been written to its own disk,
   * if a majority of other servers have written it to their disks". Reference: thesis section 10.2.1
   */
  @Test
  void majorityOfFollowersCommitsBeforeTheLeaderIsDurable() {
    Network net = Network.of(3);
    net.elect(1);
    RaftNode leader = net.node(1);
    long commit = leader.commitIndex();
    net.manual.add(1L);
    leader.propose(bytes("x"));
    Ready rd = leader.ready();
    net.enqueue(rd.leaderMessages());
    net.stabilize();
    assertEquals(commit + 1, leader.commitIndex());
    Ready next = leader.ready();
    assertTrue(next.committedEntries().isEmpty(), "not applied before it is durable here too");
    net.disks.get(1L).persist(rd);
    leader.advance(rd);
    leader.advance(next);
    assertEquals(List.of("x"), Network.strings(leader.ready().committedEntries()));
  }

  /** A single-member cluster commits when its own write is durable, not before. Reference: section 5.3 */
  @Test
  void singleMemberCommitsOnItsOwnDisk() {
    RaftNode n = new RaftNode(RaftConfig.builder(1, List.of(1L)).build());
    n.campaign();
    assertTrue(n.isLeader());
    assertTrue(n.propose(bytes("solo")));
    Ready rd = n.ready();
    assertEquals(2, rd.entries().size());
    assertEquals(0, n.commitIndex());
    n.advance(rd);
    assertEquals(2, n.commitIndex());
    Ready next = n.ready();
    assertEquals(List.of("", "solo"), Network.strings(next.committedEntries()));
    n.advance(next);
    assertFalse(n.hasReady());
  }

  /**
   * Figure 8: "Raft never commits log entries from previous terms by counting replicas. Only log
   * entries from the leader's current term are committed by counting replicas". (c): S1, leader of
   * term 4, replicates the term-2 entry at index 2 to S2 and S3 — a majority — but must not commit
   * it, because (d): S5 can still win (votes of S2, S3, S4) and overwrite it with its term-3 entry.
   * Reference: section 5.4.2
   */
  @Test
  void figure8OldTermEntryOnMajorityIsNotCommitted() {
    Network net = figure8();
    // One entry per APP, and S1's own term-4 entry is lost whenever it would be accepted: only
    // index 2 spreads.
    net.drop(m -> m.type() == MessageType.APP
        && m.entries().stream().anyMatch(e -> e.term() == 4)
        && net.node(m.to()).term(m.index()) == m.logTerm());
    net.isolate(5); // down in the figure
    net.elect(1);
    assertTrue(net.node(1).isLeader());
    assertEquals(4, net.node(1).term());
    assertEquals(2, net.node(1).matchIndex(2));
    assertEquals(2, net.node(1).matchIndex(3));
    assertEquals(1, net.node(1).commitIndex(), "index 2 is on S1, S2, S3 but is of term 2");

    // (d) S1 crashes; S5 is elected and replaces index 2 everywhere: it never was committed.
    net.crash(1);
    net.heal();
    net.elect(5); // refused: S5 was away and first learns of term 4
    assertEquals(4, net.node(5).term());
    net.elect(5);
    assertTrue(net.node(5).isLeader());
    assertEquals(5, net.node(5).term());
    for (long id = 2; id <= 5; id++) {
      assertEquals(3, net.node(id).term(2), "S" + id + " holds S5's entry at index 2");
      assertFalse(net.applied.get(id).contains("2@2"));
    }
  }

  /**
   * Figure 8 (e): once S1 replicates an entry of its own term to a majority, it commits it and, by
   * the Log Matching Property, the term-2 entry before it; S5 can no longer win. Reference: section
   * 5.4.2
   */
  @Test
  void figure8CurrentTermEntryCommitsTheOldOneWithIt() {
    Network net = figure8();
    net.isolate(4);
    net.isolate(5);
    net.elect(1);
    assertEquals(3, net.node(1).commitIndex());
    assertEquals(List.of("1@1", "2@2"), net.applied.get(3L));
    net.crash(1);
    net.heal();
    net.elect(5);
    assertNotEquals(Role.LEADER, net.node(5).role(), "S2 and S3 have a later last term");
    assertEquals(2, net.node(2).term(2));
  }

  /**
   * Figure 8 (c) set-up: S1 [1@1 2@2], S2, S3 and S4 [1@1], S5 [1@1 2@3], all in term 3 with index
   * 1 committed; S1 will campaign for term 4 and bring S2 and S3 its term-2 entry (in the figure S2
   * already had it; sending it makes the leader know S2 holds it).
   */
  private static Network figure8() {
    // No leader lease: the paper's model, where S5 may campaign as soon as S1 is gone.
    Network net = Network.of(5, b -> b.maxEntriesPerMessage(1).checkQuorum(false));
    net.load(1, 3, log(1, 2));
    net.load(2, 3, log(1));
    net.load(3, 3, log(1));
    net.load(4, 3, log(1));
    net.load(5, 3, log(1, 3));
    for (long id = 1; id <= 5; id++) {
      MemoryStorage disk = net.disks.get(id);
      disk.hardState = new HardState(3, 0, 1);
      net.nodes.put(id, new RaftNode(net.configs.get(id), disk.hardState, null, disk.entries));
    }
    return net;
  }
}
