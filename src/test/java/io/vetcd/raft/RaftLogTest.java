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

  // ---- entries trimmed from memory, read back from the storage ----

  /** A storage holding {@code entries} (1..n), counting the entries read. */
  private static class ListStorage implements LogStorage {
    final List<Entry> entries;
    int read;

    ListStorage(List<Entry> entries) {
      this.entries = entries;
    }

    @Override
    public long term(long index) {
      return index >= 1 && index <= entries.size() ? entries.get((int) index - 1).term() : UNAVAILABLE;
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
      List<Entry> out = entries.subList((int) lo - 1, (int) Math.min(hi, entries.size()));
      read += out.size();
      return List.copyOf(out);
    }
  }

  @Test
  void aRestartMayLoadOnlyTheEntriesNotAppliedAndTheStorageServesTheRest() {
    List<Entry> ents = log(1, 1, 2, 2, 3, 3);
    ListStorage storage = new ListStorage(ents);
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents.subList(4, 6), 6, 4, storage);
    assertEquals(5, l.firstInMemory());
    assertEquals(6, l.lastIndex());
    assertEquals(1, l.firstIndex());
    assertEquals(2, l.term(3), "terms of entries left in the files come from the storage");
    assertEquals(List.of("2@1", "3@2", "4@2"), positions(l.entriesFrom(2, 10, Long.MAX_VALUE)),
        "a follower behind is served from the storage up to the first in memory");
    assertEquals(List.of("5@3", "6@3"), positions(l.entriesFrom(5, 10, Long.MAX_VALUE)));
    assertEquals(3, storage.read);
    assertThrows(IllegalArgumentException.class, () -> new RaftLog(Snapshot.EMPTY, ents.subList(4, 6), 6, 4,
        LogStorage.NONE), "with nothing to read the others from");
    assertThrows(IllegalArgumentException.class, () -> new RaftLog(Snapshot.EMPTY, ents.subList(4, 6), 6, 3,
        storage), "entry 4 is not applied yet: it must be in memory");
  }

  @Test
  void trimmedEntriesAreServedFromTheStorageUntilTheFirstInMemory() {
    List<Entry> ents = log(1, 1, 2, 2, 3, 3);
    ListStorage storage = new ListStorage(ents);
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 6, 5, storage);
    l.trimMemory(4);
    assertEquals(5, l.firstInMemory());
    assertEquals(List.of("5@3", "6@3"), positions(l.entries()), "only the recent entries stay in memory");
    assertEquals(1, l.firstIndex(), "trimming is not compacting");
    assertEquals(2, l.term(3), "terms of trimmed entries come from the storage");
    assertEquals(List.of("2@1", "3@2", "4@2"), positions(l.entriesFrom(2, 100, Long.MAX_VALUE)),
        "a read from the storage stops before the first entry in memory");
    assertEquals(3, storage.read);
    assertEquals(List.of("5@3", "6@3"), positions(l.entriesFrom(5, 100, Long.MAX_VALUE)));
    assertEquals(3, storage.read, "entries in memory are not read from the storage");
    assertEquals(List.of("2@1"), positions(l.entriesFrom(2, 1, Long.MAX_VALUE)), "maxCount holds for the storage too");
    assertEquals(2, l.findConflictByTerm(4, 1), "backtracking walks through the trimmed entries");
    assertTrue(l.matchTerm(4, 2));
  }

  @Test
  void compactionAfterATrimVoidsTheStoredPrefix() {
    List<Entry> ents = log(1, 1, 2, 2, 3, 3);
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 6, 6, new ListStorage(ents));
    l.trimMemory(5);
    l.compact(new Snapshot(2, 1, List.of(1L), new byte[0]));
    assertEquals(3, l.firstIndex());
    assertEquals(6, l.firstInMemory(), "compacting below the trim point keeps memory as it was");
    assertNull(l.entriesFrom(2, 100, Long.MAX_VALUE), "a follower behind the compaction point needs the snapshot");
    assertEquals(List.of("3@2", "4@2", "5@3"), positions(l.entriesFrom(3, 100, Long.MAX_VALUE)));
    assertEquals(RaftLog.UNAVAILABLE, l.term(1));
    l.compact(new Snapshot(6, 3, List.of(1L), new byte[0]));
    assertEquals(List.of(), l.entries());
    assertEquals(7, l.firstInMemory());
  }

  @Test
  void aStorageThatLacksAnEntryMeansASnapshotNotAHole() {
    List<Entry> ents = log(1, 1, 2, 2);
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 4, 4, new ListStorage(List.of()));
    l.trimMemory(3);
    assertNull(l.entriesFrom(1, 100, Long.MAX_VALUE));
    assertEquals(RaftLog.UNAVAILABLE, l.term(2));
  }

  @Test
  void onlyAppliedDurableEntriesCanLeaveMemoryAndOnlyWithAStorage() {
    List<Entry> ents = log(1, 1, 2, 2);
    RaftLog withoutStorage = new RaftLog(Snapshot.EMPTY, ents, 4, 4);
    assertThrows(IllegalStateException.class, () -> withoutStorage.trimMemory(2));
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 3, 2, new ListStorage(ents));
    assertThrows(IllegalArgumentException.class, () -> l.trimMemory(3), "entry 3 is not applied");
    l.trimMemory(2);
    l.trimMemory(1); // behind the trim point: nothing to do
    assertEquals(3, l.firstInMemory());
    assertThrows(IllegalStateException.class, () -> l.truncateAndAppend(List.of(entry(2, 5))),
        "committed entries, trimmed from memory or not, are never replaced");
  }

  @Test
  void theTrimPointByBytesKeepsAtMostThatMuchPayloadInMemory() {
    List<Entry> ents = new java.util.ArrayList<>();
    for (long i = 1; i <= 6; i++) {
      ents.add(new Entry(1, i, Entry.Type.NORMAL, new byte[100]));
    }
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 6, 6, new ListStorage(ents));
    assertEquals(3, l.trimPointKeeping(5, 200), "entries 4 and 5 fit in 200 bytes, 3 does not");
    assertEquals(5, l.trimPointKeeping(5, 50), "not even entry 5 fits");
    assertEquals(0, l.trimPointKeeping(6, 10_000), "everything fits");
    l.trimMemory(2);
    assertEquals(2, l.trimPointKeeping(6, 10_000), "the trim point when everything in memory fits");
    assertEquals(2, l.trimPointKeeping(6, 400), "entries 3 to 6 are exactly 400 bytes");
    assertEquals(3, l.trimPointKeeping(6, 399));
  }

  @Test
  void reachingBackServesEntriesBeforeTheRestoredSnapshotFromTheStorage() {
    List<Entry> ents = new java.util.ArrayList<>();
    for (long i = 1; i <= 8; i++) {
      ents.add(entry(i, i < 4 ? 1 : 2));
    }
    // Restored from a point at 5; the files still hold entries 1..8.
    RaftLog l = new RaftLog(new Snapshot(5, 2, List.of(1L), new byte[0]), ents, 8, 5, new ListStorage(ents));
    assertEquals(6, l.firstIndex());
    assertTrue(l.reachBack(2));
    assertEquals(3, l.firstIndex(), "entry 2 is the compaction point now: 3 is the first a follower can get");
    assertEquals(6, l.firstInMemory(), "nothing more in memory");
    assertEquals(1, l.term(2));
    assertEquals(2, l.term(5));
    assertEquals(List.of(3L, 4L, 5L), l.entriesFrom(3, 10, Long.MAX_VALUE).stream().map(Entry::index).toList(),
        "from the storage, up to the first in memory");
    assertFalse(l.reachBack(4), "not forward");
    RaftLog noStorage = new RaftLog(new Snapshot(5, 2, List.of(1L), new byte[0]), ents, 8, 5);
    assertFalse(noStorage.reachBack(2));
    ListStorage fromFour = new ListStorage(ents) {
      @Override
      public long term(long index) {
        return index < 4 ? UNAVAILABLE : super.term(index);
      }
    };
    RaftLog missing = new RaftLog(new Snapshot(5, 2, List.of(1L), new byte[0]), ents, 8, 5, fromFour);
    assertFalse(missing.reachBack(2), "the storage starts at 4");
    assertEquals(6, missing.firstIndex());
  }

  @Test
  void uncommittedBytesFollowAppendsCommitsSupersedingAndRestores() {
    List<Entry> ents = new java.util.ArrayList<>();
    for (long i = 1; i <= 6; i++) {
      ents.add(new Entry(1, i, Entry.Type.NORMAL, new byte[(int) i * 10]));
    }
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 3, 3, new ListStorage(ents));
    assertEquals(40 + 50 + 60, l.uncommittedBytes(), "restored: 4..6 after commit 3");
    l.append(List.of(new Entry(1, 7, Entry.Type.NORMAL, new byte[70])));
    assertEquals(220, l.uncommittedBytes());
    l.commitTo(5);
    assertEquals(60 + 70, l.uncommittedBytes());
    l.truncateAndAppend(List.of(new Entry(2, 7, Entry.Type.NORMAL, new byte[1000])));
    assertEquals(60 + 1000, l.uncommittedBytes(), "entry 7 replaced");
    l.commitTo(7);
    assertEquals(0, l.uncommittedBytes());
    l.append(List.of(new Entry(2, 8, Entry.Type.NORMAL, new byte[5])));
    l.restore(new Snapshot(20, 3, List.of(1L), new byte[0]));
    assertEquals(0, l.uncommittedBytes(), "a leader's snapshot voids the log");
  }

  @Test
  void theTrimPointByBytesCountsEntriesThatReplacedOthers() {
    List<Entry> ents = new java.util.ArrayList<>();
    for (long i = 1; i <= 6; i++) {
      ents.add(new Entry(1, i, Entry.Type.NORMAL, new byte[100]));
    }
    RaftLog l = new RaftLog(Snapshot.EMPTY, ents, 3, 3, new ListStorage(ents));
    l.truncateAndAppend(List.of(new Entry(2, 4, Entry.Type.NORMAL, new byte[1000])));
    assertEquals(0, l.trimPointKeeping(4, 1300), "1..3 and the new 4: 1,300 bytes");
    assertEquals(1, l.trimPointKeeping(4, 1299));
    l.restore(new Snapshot(9, 2, List.of(1L), new byte[0]));
    l.append(List.of(new Entry(2, 10, Entry.Type.NORMAL, new byte[100])));
    assertEquals(9, l.trimPointKeeping(10, 100), "only entry 10 is in memory after the restore");
    assertEquals(10, l.trimPointKeeping(10, 99));
  }
}
