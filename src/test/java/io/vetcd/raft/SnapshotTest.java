package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.THREE;
import static io.vetcd.raft.Fixtures.drain;
import static io.vetcd.raft.Fixtures.log;
import static io.vetcd.raft.Fixtures.msg;
import static io.vetcd.raft.Fixtures.ofType;
import static io.vetcd.raft.Fixtures.positions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Log compaction and InstallSnapshot: Raft §7. */
class SnapshotTest {

  /** Leader 1 of {1,2,3}; 3 misses "a".."e"; the leader snapshots at its applied index. */
  private static Network laggingFollowerAfterCompaction() {
    Network net = Network.of(3);
    net.elect(1);
    net.isolate(3);
    for (String s : List.of("a", "b", "c", "d", "e")) {
      net.propose(1, s);
    }
    net.compact(1, net.node(1).appliedIndex());
    return net;
  }

  private static void settle(Network net) {
    for (int i = 0; i < 10; i++) {
      net.tickAll(1);
      net.stabilize();
    }
  }

  /**
   * "the leader must occasionally send snapshots to followers that lag behind. This happens when the
   * leader has already discarded the next log entry that it needs to send to a follower." After the
   * snapshot, ordinary replication continues. Reference: section 7
   */
  @Test
  void laggingFollowerIsCaughtUpWithASnapshot() {
    Network net = laggingFollowerAfterCompaction();
    long snapIndex = net.node(1).snapshot().index();
    assertTrue(snapIndex > 0);
    net.heal();
    settle(net);
    assertEquals(1, net.countSent(MessageType.SNAP));
    RaftNode f = net.node(3);
    assertEquals(snapIndex, f.snapshot().index());
    assertEquals(THREE, f.snapshot().voters(), "the voter set travels in the snapshot");
    assertEquals(List.of("a", "b", "c", "d", "e"), net.applied.get(3L));
    assertEquals(snapIndex, net.disks.get(3L).snapshot.index());

    net.propose(1, "f");
    assertEquals(List.of("a", "b", "c", "d", "e", "f"), net.applied.get(3L));
    assertEquals(positions(net.node(1).entries()), positions(f.entries()));
  }

  /**
   * "If the snapshot contains new information not already in the recipient's log ... the follower
   * discards its entire log; it is all superseded by the snapshot". The Ready carries the snapshot
   * (to persist and install), the commit moves to its index, and the acknowledgement waits in
   * messages. Reference: section 7
   */
  @Test
  void followerReplacesItsLogWithTheSnapshot() {
    RaftNode f = Fixtures.node(2, true, 1, log(1, 1, 1));
    Snapshot s = new Snapshot(10, 3, THREE, Fixtures.bytes("state"));
    f.step(msg(MessageType.SNAP, 1, 2, 3).snapshot(s).build());
    assertEquals(List.of(), f.entries());
    assertEquals(10, f.commitIndex());
    assertEquals(10, f.lastIndex());
    assertEquals(3, f.lastTerm());
    Ready rd = f.ready();
    assertEquals(s, rd.snapshot());
    assertEquals(new HardState(3, 0, 10), rd.hardState());
    assertTrue(rd.committedEntries().isEmpty());
    RaftMessage ack = ofType(rd.messages(), MessageType.APP_RESP).get(0);
    assertEquals(10, ack.index());
    assertTrue(rd.leaderMessages().isEmpty());
    f.advance(rd);
    assertEquals(10, f.persistedIndex());
    assertEquals(10, f.appliedIndex());
  }

  /**
   * "If instead the follower receives a snapshot that describes a prefix of its log ... entries
   * covered by the snapshot are deleted but entries following the snapshot are still valid and must
   * be retained." Here the log already holds the snapshot's last entry: only the commit moves.
   * Reference: section 7
   */
  @Test
  void snapshotOfAPrefixKeepsTheLog() {
    RaftNode f = Fixtures.node(2, true, 2, log(1, 2, 2, 2));
    f.step(msg(MessageType.SNAP, 1, 2, 2).snapshot(new Snapshot(3, 2, THREE, new byte[0]))
        .build());
    assertEquals(4, f.lastIndex());
    assertEquals(3, f.commitIndex());
    Ready rd = f.ready();
    assertNull(rd.snapshot());
    assertEquals(3, ofType(rd.messages(), MessageType.APP_RESP).get(0).index());
  }

  /**
   * A lost snapshot is reported by the transport; the leader probes again and sends a new one.
   * Reference: section 7
   */
  @Test
  void failedSnapshotIsRetried() {
    Network net = laggingFollowerAfterCompaction();
    net.heal();
    net.dropType(MessageType.SNAP); // the Network reports each lost SNAP as failed
    settle(net);
    assertTrue(net.countSent(MessageType.SNAP) >= 2, "retried after each failure");
    assertEquals(List.of(), net.applied.get(3L));
    net.heal();
    settle(net);
    assertEquals(List.of("a", "b", "c", "d", "e"), net.applied.get(3L));
  }

  /**
   * A member restarted after installing a snapshot comes back from it (and the entries after it).
   * Reference: section 7
   */
  @Test
  void restartAfterSnapshotRestoresFromIt() {
    Network net = laggingFollowerAfterCompaction();
    net.heal();
    settle(net);
    net.propose(1, "f");
    net.crash(3);
    net.restart(3);
    settle(net);
    assertEquals(List.of("a", "b", "c", "d", "e", "f"), net.applied.get(3L));
    assertEquals(net.node(1).snapshot().index(), net.node(3).snapshot().index());
  }

  /** The app may compact only what it applied, at the log's term. Reference: section 7 */
  @Test
  void createSnapshotUsesTheEntrysTermAndTheVoters() {
    Network net = Network.of(3);
    net.elect(1);
    net.propose(1, "a");
    RaftNode n = net.node(1);
    Snapshot s = n.createSnapshot(n.appliedIndex(), new byte[0]);
    assertEquals(n.term(n.appliedIndex()), s.term());
    assertEquals(THREE, s.voters());
    n.compact(s);
    assertEquals(s.index() + 1, n.firstIndex());
    assertTrue(drain(n).isEmpty());
  }
}
