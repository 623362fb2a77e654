package io.vetcd.wal;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vetcd.raft.Entry;
import io.vetcd.raft.LogStorage;
import io.vetcd.raft.Snapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import net.openhft.chronicle.core.time.SetTimeProvider;
import net.openhft.chronicle.queue.rollcycles.TestRollCycles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The log read back by Raft index: what the core asks for once entries left its memory. */
class WalStorageTest {

  @TempDir
  Path dir;

  private final SetTimeProvider clock = new SetTimeProvider(java.time.Instant.parse("2026-01-01T00:00:00Z"));

  private Wal open() {
    return Wal.open(dir, TestRollCycles.TEST_SECONDLY, clock);
  }

  private static Entry entry(long term, long index) {
    return new Entry(term, index, Entry.Type.NORMAL, ("v" + index + "@" + term).getBytes(UTF_8));
  }

  private static List<String> render(List<Entry> entries) {
    return entries.stream().map(e -> e.index() + "@" + e.term() + "=" + new String(e.data(), UTF_8)).toList();
  }

  private static List<String> expected(long lo, long hi, long term) {
    return java.util.stream.LongStream.rangeClosed(lo, hi).mapToObj(i -> i + "@" + term + "=v" + i + "@" + term).toList();
  }

  @Test
  void entriesAreReadBackByIndexAcrossFilesAndGenerations() {
    // Generation 1: entries 1-6 over three files; generation 2 (after a restart): 7-10.
    try (Wal wal = open()) {
      for (long i = 1; i <= 6; i++) {
        wal.append(entry(1, i));
        if (i % 2 == 0) {
          clock.advanceMillis(1000);
        }
      }
      wal.sync();
    }
    try (Wal wal = open()) {
      for (long i = 7; i <= 10; i++) {
        wal.append(entry(2, i));
      }
      wal.sync();
      LogStorage storage = wal.storage();
      assertEquals(1, storage.term(6));
      assertEquals(2, storage.term(7));
      assertEquals(LogStorage.UNAVAILABLE, storage.term(11));
      assertEquals(LogStorage.UNAVAILABLE, storage.term(0));
      List<Entry> all = storage.entries(1, 10, Long.MAX_VALUE);
      assertEquals(expected(1, 6, 1), render(all.subList(0, 6)));
      assertEquals(expected(7, 10, 2), render(all.subList(6, 10)));
      assertEquals(expected(3, 4, 1), render(storage.entries(3, 4, Long.MAX_VALUE)), "a range from the middle");
      assertEquals(List.of(), storage.entries(11, 12, Long.MAX_VALUE), "nothing past the end");
    }
  }

  @Test
  void aReadStopsBeforeMaxBytesButReturnsAtLeastOneEntry() {
    try (Wal wal = open()) {
      for (long i = 1; i <= 5; i++) {
        wal.append(new Entry(1, i, Entry.Type.NORMAL, new byte[100]));
      }
      wal.sync();
      assertEquals(2, wal.storage().entries(1, 5, 250).size());
      assertEquals(1, wal.storage().entries(1, 5, 10).size());
    }
  }

  @Test
  void aSupersedingEntryReplacesTheSuffixAndAReplacingSnapshotVoidsEverything() {
    try (Wal wal = open()) {
      for (long i = 1; i <= 5; i++) {
        wal.append(entry(1, i));
      }
      wal.append(entry(3, 4)); // a new leader's entry 4 supersedes the old 4 and 5
      wal.sync();
      assertEquals(List.of("1@1=v1@1", "2@1=v2@1", "3@1=v3@1", "4@3=v4@3"),
          render(wal.storage().entries(1, 5, Long.MAX_VALUE)));
      assertEquals(LogStorage.UNAVAILABLE, wal.storage().term(5));
      wal.append(new Snapshot(20, 4, List.of(1L), new byte[0]), true);
      assertEquals(LogStorage.UNAVAILABLE, wal.storage().term(2));
      wal.append(entry(4, 21));
      wal.sync();
      assertEquals(List.of("21@4=v21@4"), render(wal.storage().entries(21, 21, Long.MAX_VALUE)));
    }
  }

  @Test
  void aClosedLogReadsNothingInsteadOfFailing() {
    Wal wal = open();
    wal.append(entry(1, 1));
    wal.sync();
    LogStorage storage = wal.storage();
    wal.close();
    // The shutdown thread closes the log while the Raft loop may still ask: "unavailable", not damage.
    assertEquals(List.of(), storage.entries(1, 1, Long.MAX_VALUE));
  }

  @Test
  void afterARestartTheReplayedEntriesAreReadFromTheOlderGeneration() {
    try (Wal wal = open()) {
      for (long i = 1; i <= 4; i++) {
        wal.append(entry(1, i));
      }
      wal.append(new Snapshot(2, 1, List.of(1L), new byte[0]), false);
      wal.sync();
    }
    try (Wal wal = open()) {
      // The point at 2 voids 1-2 for replay, not for the storage: the files still hold them (a follower
      // that far behind catches up from them); all four are in generation 1.
      assertEquals(1, wal.storage().term(2));
      assertEquals(expected(1, 4, 1), render(wal.storage().entries(1, 4, Long.MAX_VALUE)));
    }
  }

  @Test
  void releasedEntriesAreNoLongerServedAndTheirGenerationIsClosed() throws Exception {
    try (Wal wal = open()) {
      for (long i = 1; i <= 4; i++) {
        wal.append(entry(1, i));
      }
      wal.sync();
    }
    try (Wal wal = open()) {
      wal.append(entry(1, 5));
      wal.sync();
      assertEquals(expected(1, 5, 1), render(wal.storage().entries(1, 5, Long.MAX_VALUE)), "opens generation 1");
      wal.append(new Snapshot(4, 1, List.of(1L), new byte[0]), false);
      wal.sync();
      wal.release(4);
      assertEquals(false, Files.exists(dir.resolve("0000000001")), "generation 1 held only released entries");
      assertEquals(List.of(), wal.storage().entries(4, 5, Long.MAX_VALUE));
      assertEquals(expected(5, 5, 1), render(wal.storage().entries(5, 5, Long.MAX_VALUE)));
    }
  }

  @Test
  void anEntryThatCannotBeReadWhereTheLogSaysIsDamageNotAGap() throws Exception {
    try (Wal wal = open()) {
      for (long i = 1; i <= 3; i++) {
        wal.append(entry(1, i));
      }
      wal.sync();
    }
    try (Wal wal = open()) {
      wal.append(entry(1, 4));
      wal.sync();
      // Generation 1's files vanish behind the log's back.
      try (var files = Files.walk(dir.resolve("0000000001"))) {
        for (Path f : files.filter(f -> f.toString().endsWith(".cq4")).toList()) {
          Files.delete(f);
        }
      }
      WalException e = assertThrows(WalException.class, () -> wal.storage().entries(2, 3, Long.MAX_VALUE));
      assertEquals(true, e.getMessage().startsWith("the log is damaged: entry 2 should be at "), e.getMessage());
    }
  }
}
