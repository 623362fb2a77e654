package io.vetcd.wal;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.testing.Mappings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Raft log on Chronicle Queue: durability across reopen, the supersede rule, hard state. */
class WalTest {

  @TempDir
  Path dir;

  private static Entry entry(long term, long index, String data) {
    return new Entry(term, index, Entry.Type.NORMAL, data.getBytes(UTF_8));
  }

  /** term/index/data of each entry: records have array fields, so compare a rendering. */
  private static List<String> render(List<Entry> entries) {
    return entries.stream()
        .map(e -> e.term() + "/" + e.index() + "/" + e.type() + "/" + new String(e.data(), UTF_8))
        .toList();
  }

  @Test
  void emptyLogReplaysNothing() {
    try (Wal wal = Wal.open(dir)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(HardState.EMPTY, r.hardState());
      assertEquals(List.of(), r.entries());
      assertEquals(0, r.lastIndex());
    }
  }

  @Test
  void appendedEntriesSurviveReopen() {
    try (Wal wal = Wal.open(dir)) {
      wal.append(entry(1, 1, "one"));
      wal.append(Entry.empty(1, 2));
      wal.append(new Entry(1, 3, Entry.Type.CONF_CHANGE, new byte[] {0, (byte) 0xff, 7}));
      wal.append(new HardState(1, 5, 3));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(new HardState(1, 5, 3), r.hardState());
      assertEquals(List.of("1/1/NORMAL/one", "1/2/NORMAL/", "1/3/CONF_CHANGE/" + new String(new byte[] {0, (byte) 0xff, 7}, UTF_8)),
          render(r.entries()));
      assertArrayEquals(new byte[] {0, (byte) 0xff, 7}, r.entries().get(2).data());
      assertEquals(3, r.lastIndex());
    }
  }

  @Test
  void appendsAfterReopenContinueTheLog() {
    try (Wal wal = Wal.open(dir)) {
      wal.append(entry(1, 1, "a"));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      wal.append(entry(1, 2, "b"));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(List.of("1/1/NORMAL/a", "1/2/NORMAL/b"), render(wal.replay(0).entries()));
    }
  }

  @Test
  void anEntrySupersedesEarlierRecordsAtOrAboveItsIndex() {
    try (Wal wal = Wal.open(dir)) {
      wal.append(entry(1, 1, "1"));
      wal.append(entry(1, 2, "2"));
      wal.append(entry(1, 3, "3"));
      wal.append(entry(2, 2, "2'")); // a new leader overwrote the suffix from index 2
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(List.of("1/1/NORMAL/1", "2/2/NORMAL/2'"), render(wal.replay(0).entries()));
      wal.append(entry(2, 3, "3'"));
      wal.append(entry(3, 1, "1''")); // superseding from the very first index drops everything
      wal.append(entry(3, 2, "2''"));
      wal.sync();
      assertEquals(List.of("3/1/NORMAL/1''", "3/2/NORMAL/2''"), render(wal.replay(0).entries()));
    }
  }

  @Test
  void aReopenedLogReplaysWithoutReadingTheFilesAgainAndLoadsOnlyThePayloadsAskedFor() {
    try (Wal wal = Wal.open(dir)) {
      wal.append(new Wal.Identity(7, 8, new byte[] {1}));
      for (int i = 1; i <= 5; i++) {
        wal.append(entry(1, i, "e" + i));
      }
      wal.append(new HardState(1, 0, 4));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      Wal.Replay state = wal.replay(Long.MAX_VALUE);
      assertEquals(List.of(), state.entries(), "no entry asked for");
      assertEquals(5, state.lastIndex());
      assertEquals(new HardState(1, 0, 4), state.hardState());
      assertEquals(8, state.identity().memberId());
      assertEquals(List.of("1/4/NORMAL/e4", "1/5/NORMAL/e5"), render(wal.replay(3).entries()),
          "payloads read back from the files: the open kept none");
      assertEquals(List.of("1/1/NORMAL/e1", "1/2/NORMAL/e2", "1/3/NORMAL/e3", "1/4/NORMAL/e4", "1/5/NORMAL/e5"),
          render(wal.replay(0).entries()));
      // The Raft loop reads the files on a thread of its own (Chronicle's tailers belong to one thread).
      var raftLoop = java.util.concurrent.Executors.newSingleThreadExecutor();
      try {
        assertEquals(List.of("1/2/NORMAL/e2", "1/3/NORMAL/e3"),
            render(raftLoop.submit(() -> wal.storage().entries(2, 3, Long.MAX_VALUE)).get()));
      } catch (Exception e) {
        throw new AssertionError(e);
      } finally {
        raftLoop.shutdown();
      }
      wal.append(entry(2, 5, "e5'"));
      wal.sync();
      assertEquals(List.of("1/4/NORMAL/e4", "2/5/NORMAL/e5'"), render(wal.replay(3).entries()),
          "after an append: the files read again");
    }
  }

  @Test
  void replayAfterAnIndexSkipsAppliedEntries() {
    try (Wal wal = Wal.open(dir)) {
      for (int i = 1; i <= 5; i++) {
        wal.append(entry(1, i, "e" + i));
      }
      wal.sync();
      Wal.Replay r = wal.replay(3);
      assertEquals(List.of("1/4/NORMAL/e4", "1/5/NORMAL/e5"), render(r.entries()));
      assertEquals(5, r.lastIndex());
      assertEquals(List.of(), wal.replay(5).entries());
      wal.append(entry(2, 5, "e5'"));
      wal.sync();
      assertEquals(List.of("1/4/NORMAL/e4", "2/5/NORMAL/e5'"), render(wal.replay(3).entries()),
          "the supersede rule still applies to the entries kept");
    }
  }

  @Test
  void theNewestHardStateWins() {
    try (Wal wal = Wal.open(dir)) {
      wal.append(new HardState(1, 1, 0));
      wal.append(entry(1, 1, "a"));
      wal.append(new HardState(2, 3, 1));
      wal.append(entry(2, 2, "b"));
      wal.append(new HardState(2, 3, 2));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(new HardState(2, 3, 2), wal.replay(0).hardState());
      assertEquals(new HardState(2, 3, 2), wal.replay(2).hardState(), "replay(after) still reads the hard state");
      wal.append(new HardState(3, 0, 2));
      wal.sync();
      assertEquals(new HardState(3, 0, 2), wal.replay(0).hardState());
    }
  }

  @Test
  void aSnapshotPointVoidsEarlierEntriesOnReplay() {
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 5; i++) {
        wal.append(entry(1, i, "e" + i));
      }
      wal.append(new HardState(1, 7, 5));
      wal.append(new io.vetcd.raft.Snapshot(3, 1, List.of(7L), new byte[0]), false);
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(3, r.snapshot().index());
      assertEquals(List.of("1/4/NORMAL/e4", "1/5/NORMAL/e5"), render(r.entries()));
      assertEquals(new HardState(1, 7, 5), r.hardState());
    }
  }

  @Test
  void aSnapshotPointKeepsItsMembershipVotersAndLearners() {
    io.vetcd.raft.Snapshot point = new io.vetcd.raft.Snapshot(3, 1, List.of(7L, 8L, 9L), List.of(10L), new byte[0]);
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 3; i++) {
        wal.append(entry(1, i, "e" + i));
      }
      wal.append(point, false);
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(point, wal.replay(0).snapshot());
    }
  }

  @Test
  void entriesBeforeASnapshotPointStayReadableAfterAReopenUntilTheirFilesGo() {
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 5; i++) {
        wal.append(entry(1, i, "e" + i));
      }
      wal.append(new HardState(1, 7, 5));
      wal.append(new io.vetcd.raft.Snapshot(3, 1, List.of(7L), new byte[0]), false);
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(1, wal.oldestEntry(), "the point does not take what the files hold");
      assertEquals(List.of("1/2/NORMAL/e2", "1/3/NORMAL/e3", "1/4/NORMAL/e4"),
          render(wal.storage().entries(2, 4, Long.MAX_VALUE)));
      assertEquals(1, wal.storage().term(1));
    }
  }

  @Test
  void aSnapshotFromTheLeaderLeavesNothingBeforeItReadable() {
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 5; i++) {
        wal.append(entry(1, i, "e" + i));
      }
      wal.append(new io.vetcd.raft.Snapshot(3, 2, List.of(7L), new byte[0]), true);
      wal.append(entry(2, 4, "new4"));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(4, wal.oldestEntry());
      assertEquals(-1, wal.storage().term(3));
    }
  }

  @Test
  void aSnapshotFromTheLeaderVoidsTheWholeEarlierLog() {
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 5; i++) {
        wal.append(entry(1, i, "e" + i)); // a follower's log, possibly conflicting after index 3
      }
      wal.append(new io.vetcd.raft.Snapshot(3, 2, List.of(7L), new byte[0]), true);
      wal.append(entry(2, 4, "new4"));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(List.of("2/4/NORMAL/new4"), render(r.entries()));
    }
  }

  @Test
  void releaseDeletesOnlyFilesWhoseEntriesAreAllVoid() throws Exception {
    // One file per second of a clock the test moves: entries 1-2, 3-4, 5-6 land in three files.
    net.openhft.chronicle.core.time.SetTimeProvider clock =
        new net.openhft.chronicle.core.time.SetTimeProvider(java.time.Instant.parse("2026-01-01T00:00:00Z"));
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.TestRollCycles.TEST_SECONDLY, clock)) {
      for (long i = 1; i <= 6; i++) {
        wal.append(entry(1, i, "e" + i));
        wal.append(new HardState(1, 7, i));
        if (i % 2 == 0) {
          clock.advanceMillis(1000);
        }
      }
      wal.append(new io.vetcd.raft.Snapshot(4, 1, List.of(7L), new byte[0]), false);
      wal.sync();
      assertEquals(4, cq4Files());
      assertEquals(2, wal.release(4), "the files of entries 1-2 and 3-4 are void; 5-6 is not");
      assertEquals(2, cq4Files());
    }
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.TestRollCycles.TEST_SECONDLY, clock)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(4, r.snapshot().index());
      assertEquals(List.of("1/5/NORMAL/e5", "1/6/NORMAL/e6"), render(r.entries()));
      assertEquals(new HardState(1, 7, 6), r.hardState());
    }
  }

  @Test
  void aFileEndsOnceItHoldsRollBytesEvenWithinOneCycle() throws Exception {
    // The clock stands still: only size can end a file. 1 MiB entries: the 17th passes 16 MiB.
    var clock = new net.openhft.chronicle.core.time.SetTimeProvider(java.time.Instant.parse("2026-01-01T00:00:00Z"));
    int n = MIB_ENTRIES_FOR_THREE_FILES;
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
      appendMibEntries(wal, n);
      wal.append(new io.vetcd.raft.Snapshot(n - 1, 1, List.of(7L), new byte[0]), false);
      wal.append(entry(1, n + 1, "last"));
      wal.sync();
      assertEquals(3, cq4Files(), "16 MiB per file: three files for " + n + " MiB");
      assertEquals(2, wal.release(n - 1), "the two full files hold only void entries");
    }
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(n - 1, r.snapshot().index());
      assertEquals(List.of((long) n, n + 1L), r.entries().stream().map(Entry::index).toList());
    }
  }

  @Test
  void appendsAfterReopenGoPastFilesEndedEarlyBySize() throws Exception {
    // Files ended by size within one cycle take the names of later cycles; a restart inside the same
    // real cycle must not write into one of them again (Chronicle: "You should not be able to write
    // at EOF", the member's log dead) nor before the newest.
    var clock = new net.openhft.chronicle.core.time.SetTimeProvider(java.time.Instant.parse("2026-01-01T00:00:00Z"));
    int n = MIB_ENTRIES_FOR_THREE_FILES;
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
      appendMibEntries(wal, n);
    }
    for (long restart = 1; restart <= 2; restart++) {
      try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
        wal.append(entry(1, n + restart, "after restart " + restart));
        wal.sync();
      }
    }
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
      List<Entry> entries = wal.replay(0).entries();
      assertEquals(n + 2, entries.size());
      assertEquals(List.of(n + 1L, n + 2L), entries.subList(n, n + 2).stream().map(Entry::index).toList());
    }
  }

  @Test
  void theMappingBeingWrittenIsAdvisedNotToReadAheadAndNothingElseIs() throws Exception {
    // The kernel shows MADV_RANDOM as "rr" in a mapping's VmFlags. A length past the chunk once made
    // madvise apply the advice to every mapping above the log's (the keyspace's, the JDK's) and fail
    // with ENOMEM, silently.
    try (Wal wal = Wal.open(dir)) {
      wal.append(entry(1, 1, "x"));
      wal.sync();
      List<Mappings.Mapping> mappings = Mappings.all();
      List<Mappings.Mapping> log = mappings.stream().filter(m -> m.of(dir, ".cq4")).toList();
      assertTrue(!log.isEmpty(), "no mapping of a log file found");
      assertEquals(List.of(), log.stream().filter(m -> !m.advisedRandom()).toList(), "log mappings not advised");
      // The JVM's own library was mapped before the log, above it: nobody else advises it.
      List<Mappings.Mapping> jvm = mappings.stream().filter(m -> m.line().endsWith("/libjvm.so")).toList();
      assertTrue(!jvm.isEmpty(), "libjvm.so not found in the mappings");
      assertEquals(List.of(), jvm.stream().filter(Mappings.Mapping::advisedRandom).toList(), "advised beyond the log");
    }
  }

  @Test
  void payloadsOfEverySizeReadBackByteForByteAcrossFiles() throws Exception {
    // Large payloads go into the file with pwrite beside Chronicle's mapping (Wal.PWRITE_PAYLOAD_BYTES):
    // at the offsets Chronicle reserved, also for records that cross a mapped chunk or end a file.
    var clock = new net.openhft.chronicle.core.time.SetTimeProvider(java.time.Instant.parse("2026-01-01T00:00:00Z"));
    int[] sizes = {0, 1, Wal.PWRITE_PAYLOAD_BYTES - 1, Wal.PWRITE_PAYLOAD_BYTES, Wal.PWRITE_PAYLOAD_BYTES + 1,
        65536, 300, (1 << 20) + 3, 4095, 4096, 4097};
    java.util.Random random = new java.util.Random(21);
    List<byte[]> written = new java.util.ArrayList<>();
    long bytes = 0;
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
      for (int i = 0; bytes < 2 * Wal.ROLL_BYTES + (1 << 20); i++) {
        byte[] data = new byte[sizes[i % sizes.length]];
        random.nextBytes(data);
        written.add(data);
        bytes += data.length;
        wal.append(new Entry(1, i + 1, Entry.Type.NORMAL, data));
        if (i % 3 == 0) {
          wal.sync();
        }
      }
      wal.sync();
    }
    try (Wal wal = Wal.open(dir, net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY, clock)) {
      List<Entry> entries = wal.replay(0).entries();
      assertEquals(written.size(), entries.size());
      for (int i = 0; i < written.size(); i++) {
        assertArrayEquals(written.get(i), entries.get(i).data(), "entry " + (i + 1));
      }
    }
    assertEquals(3, cq4Files(), "the payloads filled two files and started a third");
  }

  /** Entries of 1 MiB that fill two files ended by size and start a third. */
  private static final int MIB_ENTRIES_FOR_THREE_FILES = (int) (2 * Wal.ROLL_BYTES / (1 << 20)) + 2;

  /** Appends entries 1..n of 1 MiB each, each synced. */
  private static void appendMibEntries(Wal wal, int n) {
    byte[] big = new byte[1 << 20];
    for (long i = 1; i <= n; i++) {
      wal.append(new Entry(1, i, Entry.Type.NORMAL, big));
      wal.sync();
    }
  }

  /** Log files of every generation. */
  private long cq4Files() throws java.io.IOException {
    try (var files = java.nio.file.Files.walk(dir)) {
      return files.filter(f -> f.toString().endsWith(".cq4")).count();
    }
  }
}
