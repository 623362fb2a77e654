package io.vetcd.raft;

import static io.vetcd.raft.Fixtures.entry;
import static io.vetcd.raft.Fixtures.log;
import static io.vetcd.raft.Fixtures.positions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class RaftLogTest {

  private static RaftLog raftLog(List<Entry> entries, long commit) {
    return new RaftLog(Snapshot.EMPTY, entries, commit, 0);
  }

  /**
   * "If the logs have last entries with different terms, then the log with the later term is more
   * up-to-date. If the logs end with the same term, then whichever log is longer is more
   * up-to-date." Reference: section 5.4.1
   */
  @Test
  void upToDateComparesLastTermThenLength() {
    RaftLog l = raftLog(log(1, 2, 2), 0);
    assertTrue(l.isUpToDate(1, 3), "later term wins even if shorter");
    assertFalse(l.isUpToDate(9, 1), "earlier term loses even if longer");
    assertTrue(l.isUpToDate(3, 2), "same term, same length");
    assertFalse(l.isUpToDate(2, 2), "same term, shorter");
  }

  /**
   * "If an existing entry conflicts with a new one (same index but different terms), delete the
   * existing entry and all that follow it" (figure 2); entries already present are kept. Reference:
   * section 5.3
   */
  @Test
  void maybeAppendReplacesOnlyTheConflictingSuffix() {
    RaftLog l = raftLog(log(1, 1, 2, 2), 1);
    assertEquals(-1, l.maybeAppend(2, 2, 1, List.of(entry(3, 3))), "consistency check fails");
    assertEquals(4, l.maybeAppend(2, 1, 3, List.of(entry(3, 2), entry(4, 2))));
    assertEquals(List.of("1@1", "2@1", "3@2", "4@2"), positions(l.entries()), "nothing to replace");
    assertEquals(3, l.committed(), "commit follows the leader's");
    assertEquals(4, l.maybeAppend(3, 2, 9, List.of(entry(4, 3))));
    assertEquals(List.of("1@1", "2@1", "3@2", "4@3"), positions(l.entries()));
    assertEquals(4, l.committed(), "commit is capped at the last entry the APP vouches for");
  }

  @Test
  void anAppendThatWouldRewriteACommittedEntryIsABug() {
    RaftLog l = raftLog(log(1, 1, 2), 3);
    assertThrows(IllegalStateException.class, () -> l.maybeAppend(1, 1, 3, List.of(entry(2, 5))));
  }

  /** A stale APP must not truncate entries that a newer APP already appended. */
  @Test
  void staleShorterAppendDoesNotTruncate() {
    RaftLog l = raftLog(log(1, 1, 1, 1), 0);
    assertEquals(2, l.maybeAppend(1, 1, 0, List.of(entry(2, 1))));
    assertEquals(4, l.lastIndex());
  }

  @Test
  void findConflictByTermSkipsWholeTerms() {
    RaftLog l = raftLog(log(1, 1, 1, 4, 4, 5, 5, 6, 6, 6), 0);
    assertEquals(10, l.findConflictByTerm(10, 6));
    assertEquals(7, l.findConflictByTerm(10, 5));
    assertEquals(3, l.findConflictByTerm(10, 3));
    assertEquals(0, l.findConflictByTerm(10, 0));
    assertEquals(10, l.findConflictByTerm(15, 9), "clamped to the last index");
  }

  @Test
  void compactionKeepsTermOfTheSnapshotIndex() {
    RaftLog l = raftLog(log(1, 1, 2, 2, 3), 5);
    l.appliedTo(4);
    l.compact(new Snapshot(4, 2, List.of(1L), new byte[0]));
    assertEquals(5, l.firstIndex());
    assertEquals(2, l.term(4));
    assertEquals(RaftLog.UNAVAILABLE, l.term(3));
    assertNull(l.entriesFrom(4, 10, 100), "compacted: the reader needs the snapshot");
    assertEquals(List.of("5@3"), positions(l.entriesFrom(5, 10, 100)));
    assertThrows(IllegalArgumentException.class,
        () -> l.compact(new Snapshot(5, 3, List.of(1L), new byte[0])), "5 is not applied yet");
  }

  @Test
  void entriesFromHonoursCountAndByteLimitsButSendsAtLeastOne() {
    RaftLog l = raftLog(log(1, 1, 1, 1, 1), 0);
    assertEquals(2, l.entriesFrom(1, 2, 1_000).size());
    assertEquals(1, l.entriesFrom(1, 10, 1).size(), "one entry even if over the byte limit");
    assertEquals(2, l.entriesFrom(1, 10, 6).size(), "each payload is 3 bytes");
    assertEquals(0, l.entriesFrom(6, 10, 100).size());
  }

  /** Only entries both committed and durable here are handed out for applying. */
  @Test
  void committedEntriesWaitForPersistence() {
    RaftLog l = new RaftLog(Snapshot.EMPTY, log(1), 1, 0);
    l.append(List.of(entry(2, 1), entry(3, 1)));
    l.commitTo(3);
    assertEquals(List.of("1@1"), positions(l.nextCommittedEntries()));
    l.markHanded();
    l.entriesPersisted(List.of(entry(2, 1), entry(3, 1)));
    assertEquals(List.of("1@1", "2@1", "3@1"), positions(l.nextCommittedEntries()));
  }

  /** A write superseded before it was reported durable does not count as durable. */
  @Test
  void persistedIgnoresSupersededWrites() {
    RaftLog l = new RaftLog(Snapshot.EMPTY, log(1), 1, 0);
    List<Entry> first = List.of(entry(2, 1), entry(3, 1), entry(4, 1));
    l.append(first);
    l.markHanded();
    l.truncateAndAppend(List.of(entry(3, 2)));
    assertEquals(List.of("3@2"), positions(l.unhandedEntries()));
    l.entriesPersisted(first);
    assertEquals(2, l.persisted(), "entry 2 still matches; 3 and 4 were replaced");
    l.markHanded();
    l.entriesPersisted(List.of(entry(3, 2)));
    assertEquals(3, l.persisted());
  }
}
