package io.vetcd.wal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.CRC32C;
import net.openhft.chronicle.core.time.SetTimeProvider;
import net.openhft.chronicle.queue.rollcycles.TestRollCycles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the log promises across a crash: every record appended before a successful {@link Wal#sync()}
 * is on disk, whichever file it landed in; a failed sync is an error; a record cut short at the tail
 * is dropped and the log goes on; damage anywhere else stops it, naming the file and record.
 */
class WalDurabilityTest {

  @TempDir
  Path dir;

  /**
   * A disk that keeps only what was forced: a file's content as of its last {@code force}, a
   * directory's entries as of its last {@code forceDirectory}. What a power loss right after a sync
   * would leave, for a disk that writes nothing back on its own.
   */
  static final class ForcedImage implements FileSyncer {
    private final Map<Path, byte[]> contents = new HashMap<>();
    private final Map<Path, Set<String>> listings = new HashMap<>();
    private final Set<Path> directories = new TreeSet<>();
    int forces;

    @Override
    public void force(Path file) throws IOException {
      forces++;
      contents.put(file.toAbsolutePath(), Files.readAllBytes(file));
    }

    /** Only the range: a sync that misses a page it should have covered leaves it out of the image. */
    @Override
    public void forceMapped(Path file, long offset, long length, long address) throws IOException {
      forces++;
      byte[] now = Files.readAllBytes(file);
      byte[] image = contents.computeIfAbsent(file.toAbsolutePath(), f -> new byte[0]);
      if (image.length < now.length) {
        image = java.util.Arrays.copyOf(image, now.length);
      }
      System.arraycopy(now, (int) offset, image, (int) offset, (int) Math.min(length, now.length - offset));
      contents.put(file.toAbsolutePath(), image);
    }

    @Override
    public void forceDirectory(Path directory) throws IOException {
      Set<String> names = new TreeSet<>();
      try (var children = Files.list(directory)) {
        for (Path c : children.toList()) {
          names.add(c.getFileName().toString());
          if (Files.isDirectory(c)) {
            directories.add(c.toAbsolutePath());
          }
        }
      }
      listings.put(directory.toAbsolutePath(), names);
    }

    /** Writes what survived into {@code target}: the tree under {@code root} as last forced. */
    void materialize(Path root, Path target) throws IOException {
      Files.createDirectories(target);
      for (String name : listings.getOrDefault(root.toAbsolutePath(), Set.of())) {
        Path source = root.toAbsolutePath().resolve(name);
        if (directories.contains(source)) {
          materialize(source, target.resolve(name));
        } else {
          // A file whose entry is on disk but whose data never was: empty.
          Files.write(target.resolve(name), contents.getOrDefault(source, new byte[0]));
        }
      }
    }
  }

  private static byte[] payload(long index, int size) {
    byte[] data = new byte[size];
    new Random(index).nextBytes(data);
    byte[] tag = ("entry-" + index + "-").getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(tag, 0, data, 0, Math.min(tag.length, size));
    return data;
  }

  @Test
  void everyRecordBeforeASyncSurvivesLosingAllElseAcrossSizeAndCycleRolls() throws Exception {
    // Files end by size (16 MiB) and by the clock (one file per second of a clock the test moves).
    // After each sync, a copy of what was forced is opened as the disk a power loss would leave.
    SetTimeProvider clock = new SetTimeProvider(Instant.parse("2026-01-01T00:00:00Z"));
    ForcedImage image = new ForcedImage();
    Path log = dir.resolve("log");
    Random random = new Random(42);
    Wal.Options options = Wal.Options.defaults().withClock(TestRollCycles.TEST_SECONDLY, clock).withSyncer(image);
    int checks = 0;
    try (Wal wal = Wal.open(log, options)) {
      long index = 0;
      int filesBefore = 0;
      while (index < 200) {
        int batch = 1 + random.nextInt(8);
        for (int i = 0; i < batch; i++) {
          index++;
          wal.append(new Entry(1, index, Entry.Type.NORMAL, payload(index, 200 + random.nextInt(250 << 10))));
          wal.append(new HardState(1, 0, index));
        }
        if (random.nextInt(4) == 0) {
          clock.advanceMillis(1000); // the next record starts a new file by the clock
        }
        wal.sync();
        int files = logFiles(log);
        // Check every sync that follows a new file, and some others.
        if (files != filesBefore || random.nextInt(6) == 0) {
          Path copy = dir.resolve("power-loss-" + checks++);
          image.materialize(log, copy);
          try (Wal after = Wal.open(copy)) {
            Wal.Replay r = after.replay(0);
            assertEquals(index, r.entries().size(), "entries after a power loss at index " + index);
            for (Entry e : r.entries()) {
              assertArrayEquals(payload(e.index(), e.data().length), e.data());
            }
            assertEquals(new HardState(1, 0, index), r.hardState());
          }
        }
        filesBefore = files;
      }
      assertTrue(filesBefore >= 6, "rolled by size and by clock: " + filesBefore + " files");
    }
    assertTrue(checks >= 6, checks + " power losses checked");
  }

  @Test
  void aFailedSyncIsAnErrorNotASilentSuccess() {
    FileSyncer failing = new FileSyncer() {
      @Override
      public void force(Path file) throws IOException {
        throw new IOException("Input/output error");
      }

      @Override
      public void forceDirectory(Path d) {}
    };
    try (Wal wal = Wal.open(dir, Wal.Options.defaults().withSyncer(failing))) {
      wal.append(new Entry(1, 1, Entry.Type.NORMAL, new byte[10]));
      WalException e = assertThrows(WalException.class, wal::sync);
      assertTrue(e.getMessage().contains("Input/output error"), e.getMessage());
    }
  }

  @Test
  void aRecordCutShortAtTheTailIsDroppedAndAppendsGoOnInANewGeneration() throws Exception {
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 5; i++) {
        wal.append(new Entry(1, i, Entry.Type.NORMAL, payload(i, 100)));
      }
      wal.append(new Entry(1, 6, Entry.Type.NORMAL, payload(6, 20_000)));
      wal.sync();
    }
    // A power loss kept the page with entry 6's header but not one of its later pages.
    zeroAPageInside(find(dir, "entry-6-"), 20_000);
    try (Wal wal = Wal.open(dir)) {
      assertEquals(List.of(1L, 2L, 3L, 4L, 5L), indexes(wal.replay(0)));
      wal.append(new Entry(2, 6, Entry.Type.NORMAL, payload(60, 100)));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L), indexes(r));
      assertEquals(2, r.entries().get(5).term());
    }
    try (var generations = Files.list(dir)) {
      assertEquals(List.of("0000000001", "0000000002"),
          generations.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void aRecordCutShortByAFullDiskIsATearToo() throws Exception {
    // A write stopped by SIGBUS (no space behind a mapped page) copied several pages at a time: each
    // page it reached holds the start of its part, zeros after; its checksum never got written.
    try (Wal wal = Wal.open(dir)) {
      wal.append(new Entry(1, 1, Entry.Type.NORMAL, payload(1, 100)));
      wal.append(new Entry(1, 2, Entry.Type.NORMAL, payload(2, 20_000)));
      wal.sync();
    }
    Location second = find(dir, "entry-2-");
    try (RandomAccessFile f = new RandomAccessFile(second.file().toFile(), "rw")) {
      long end = second.offset() + 20_000 + 4;
      for (long page = (second.offset() / 4096) * 4096; page < end; page += 4096) {
        long from = Math.max(page + 1024, second.offset() + 64);
        if (from < end) {
          f.seek(from);
          f.write(new byte[(int) (Math.min(page + 4096, end) - from)]);
        }
      }
    }
    try (Wal wal = Wal.open(dir)) {
      assertEquals(List.of(1L), indexes(wal.replay(0)));
    }
  }

  @Test
  void aRecordWhoseWriteFailsPartWayIsNotLeftInTheFile() throws Exception {
    // What a SIGBUS in the copy looks like to the appender: some bytes written, then an Error. Chronicle
    // would close the document anyway and a short "complete" record would read as damage at restart.
    Path queueDir = dir.resolve("queue");
    try (var queue = net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder.binary(queueDir.toFile())
             .rollCycle(TestRollCycles.TEST_DAILY).build();
         var appender = queue.createAppender()) {
      Wal.writeWhole(appender, out -> out.writeLong(1));
      InternalError sigbus = new InternalError("a fault occurred in an unsafe memory access operation");
      assertEquals(sigbus, assertThrows(InternalError.class, () -> Wal.writeWhole(appender, out -> {
        out.writeLong(2);
        throw sigbus;
      })));
      Wal.writeWhole(appender, out -> out.writeLong(3));
      List<Long> read = new ArrayList<>();
      try (var tailer = queue.createTailer()) {
        while (true) {
          try (var dc = tailer.readingDocument()) {
            if (!dc.isPresent()) {
              break;
            }
            read.add(dc.wire().bytes().readLong());
          }
        }
      }
      assertEquals(List.of(1L, 3L), read);
    }
  }

  @Test
  @org.junit.jupiter.api.Timeout(60)
  void aFileCreatedButNeverWrittenIsRemovedNotWaitedFor() throws Exception {
    // A run that stops between creating the next file and writing its header (a full disk, a kill)
    // leaves a file of zeros after one ended by Chronicle's end-of-file marker; Chronicle's reader
    // would wait for the new file's header forever.
    SetTimeProvider clock = new SetTimeProvider(Instant.parse("2026-01-01T00:00:00Z"));
    var minutely = net.openhft.chronicle.queue.rollcycles.LegacyRollCycles.MINUTELY;
    try (Wal wal = Wal.open(dir, minutely, clock)) {
      wal.append(new Entry(1, 1, Entry.Type.NORMAL, payload(1, 100)));
      wal.sync();
      clock.advanceMillis(60_000);
      wal.append(new Entry(1, 2, Entry.Type.NORMAL, payload(2, 100)));
      wal.sync();
    }
    Path second = find(dir, "entry-2-").file();
    assertTrue(!second.equals(find(dir, "entry-1-").file()), "the entries are in two files");
    long length = Files.size(second);
    Files.delete(second);
    try (RandomAccessFile f = new RandomAccessFile(second.toFile(), "rw")) {
      f.setLength(length);
    }
    try (Wal wal = Wal.open(dir, minutely, clock)) {
      assertEquals(List.of(1L), indexes(wal.replay(0)));
      assertTrue(Files.notExists(second), "the unwritten file is gone");
      wal.append(new Entry(1, 2, Entry.Type.NORMAL, payload(2, 100)));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir, minutely, clock)) {
      assertEquals(List.of(1L, 2L), indexes(wal.replay(0)));
    }
  }

  @Test
  void damageBeforeTheTailStopsTheLogNamingTheFileAndRecord() throws Exception {
    try (Wal wal = Wal.open(dir)) {
      for (long i = 1; i <= 5; i++) {
        wal.append(new Entry(1, i, Entry.Type.NORMAL, payload(i, 100)));
      }
      wal.sync();
    }
    Location third = find(dir, "entry-3-");
    flipByte(third.file(), third.offset() + 50);
    WalException e = assertThrows(WalException.class, () -> Wal.open(dir));
    assertTrue(e.getMessage().contains(third.file().toString()) && e.getMessage().contains("record 3"),
        e.getMessage());
  }

  @Test
  void aWrongByteInTheLastRecordIsDamageNotATear() throws Exception {
    try (Wal wal = Wal.open(dir)) {
      wal.append(new Entry(1, 1, Entry.Type.NORMAL, payload(1, 100)));
      wal.append(new Entry(1, 2, Entry.Type.NORMAL, payload(2, 100)));
      wal.sync();
    }
    Location last = find(dir, "entry-2-");
    flipByte(last.file(), last.offset() + 20);
    assertThrows(WalException.class, () -> Wal.open(dir));
  }

  @Test
  void aTearInAGenerationALaterRunHadReadWholeIsDamage() throws Exception {
    try (Wal wal = Wal.open(dir)) {
      wal.append(new Entry(1, 1, Entry.Type.NORMAL, payload(1, 100)));
      wal.append(new Entry(1, 2, Entry.Type.NORMAL, payload(2, 20_000)));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir)) {
      wal.append(new Entry(1, 3, Entry.Type.NORMAL, payload(3, 100)));
      wal.sync();
    }
    // Entry 2 was whole when the second run read it: losing a page of it now is damage, not a tear.
    zeroAPageInside(find(dir, "entry-2-"), 20_000);
    WalException e = assertThrows(WalException.class, () -> Wal.open(dir));
    assertTrue(e.getMessage().contains("0000000001"), e.getMessage());
  }

  @Test
  void recordsCarryAVersionAChecksumAndStableTypeCodes() throws Exception {
    assertEquals(0, WalRecord.typeCode(Entry.Type.NORMAL));
    assertEquals(1, WalRecord.typeCode(Entry.Type.CONF_CHANGE));
    // An ENTRY record built by hand, as the format defines it: version, kind, body, CRC32C.
    ByteBuffer b = ByteBuffer.allocate(2 + 8 + 8 + 1 + 4 + 3 + 4);
    b.put((byte) 1).put((byte) 1).putLong(7).putLong(9).put((byte) 1).putInt(3).put(new byte[] {1, 2, 3});
    CRC32C crc = new CRC32C();
    crc.update(b.array(), 0, b.position());
    b.putInt((int) crc.getValue());
    WalRecord.EntryRecord r = (WalRecord.EntryRecord) WalRecord.decode(b.array());
    assertEquals(new Entry(7, 9, Entry.Type.CONF_CHANGE, new byte[] {1, 2, 3}), r.entry());
    byte[] otherVersion = b.array().clone();
    otherVersion[0] = 2;
    assertThrows(WalRecord.BadRecord.class, () -> WalRecord.decode(otherVersion));
    byte[] flipped = b.array().clone();
    flipped[12] ^= 1;
    assertThrows(WalRecord.BadRecord.class, () -> WalRecord.decode(flipped));
  }

  @Test
  void theMemberIdentitySurvivesTheReleaseOfTheFilesItWasWrittenIn() throws Exception {
    SetTimeProvider clock = new SetTimeProvider(Instant.parse("2026-01-01T00:00:00Z"));
    Wal.Options options = Wal.Options.defaults().withClock(TestRollCycles.TEST_SECONDLY, clock);
    Wal.Identity id = new Wal.Identity(11, 22, new byte[] {3, 4});
    try (Wal wal = Wal.open(dir, options)) {
      wal.append(id);
      wal.append(new Entry(1, 1, Entry.Type.NORMAL, new byte[1]));
      wal.append(new HardState(1, 0, 1));
      wal.sync();
    }
    try (Wal wal = Wal.open(dir, options)) { // a second generation
      clock.advanceMillis(1000);
      wal.append(new Entry(1, 2, Entry.Type.NORMAL, new byte[1]));
      clock.advanceMillis(1000);
      wal.append(new io.vetcd.raft.Snapshot(2, 1, List.of(22L), new byte[0]), false);
      clock.advanceMillis(1000);
      wal.append(new Entry(1, 3, Entry.Type.NORMAL, new byte[1]));
      wal.sync();
      assertTrue(wal.release(2) >= 2, "the first generation and the second's first file go");
    }
    try (Wal wal = Wal.open(dir, options)) {
      Wal.Replay r = wal.replay(0);
      assertEquals(22, r.identity().memberId());
      assertArrayEquals(new byte[] {3, 4}, r.identity().membership());
      assertEquals(new HardState(1, 0, 1), r.hardState());
      assertEquals(List.of(3L), indexes(r));
    }
  }

  // ---------------------------------------------------------------- helpers

  private static List<Long> indexes(Wal.Replay r) {
    return r.entries().stream().map(Entry::index).toList();
  }

  private static int logFiles(Path log) throws IOException {
    try (var files = Files.walk(log)) {
      return (int) files.filter(f -> f.toString().endsWith(".cq4")).count();
    }
  }

  record Location(Path file, long offset) {}

  /** Where {@code tag} (the start of an entry's payload) lies in the log's files. */
  private static Location find(Path log, String tag) throws IOException {
    byte[] needle = tag.getBytes(StandardCharsets.US_ASCII);
    List<Path> files;
    try (var all = Files.walk(log)) {
      files = new ArrayList<>(all.filter(f -> f.toString().endsWith(".cq4")).sorted().toList());
    }
    for (Path f : files) {
      try (FileChannel ch = FileChannel.open(f)) {
        MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
        outer:
        for (int i = 0; i + needle.length <= m.limit(); i++) {
          for (int j = 0; j < needle.length; j++) {
            if (m.get(i + j) != needle[j]) {
              continue outer;
            }
          }
          return new Location(f, i);
        }
      }
    }
    throw new AssertionError(tag + " not found in " + files);
  }

  /** Zeroes a whole 4 KiB page that lies inside a payload of {@code length} bytes at {@code at}. */
  private static void zeroAPageInside(Location at, int length) throws IOException {
    long page = (at.offset() / 4096 + 1) * 4096;
    assertTrue(page + 4096 <= at.offset() + length, "the payload spans a whole page");
    try (RandomAccessFile f = new RandomAccessFile(at.file().toFile(), "rw")) {
      f.seek(page);
      f.write(new byte[4096]);
    }
  }

  private static void flipByte(Path file, long offset) throws IOException {
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.seek(offset);
      int b = f.read();
      f.seek(offset);
      f.write(b ^ 0x55);
    }
  }
}
