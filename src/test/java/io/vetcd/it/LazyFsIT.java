package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.vetcd.it.LazyFs.PowerOffMode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import net.openhft.chronicle.bytes.SyncMode;
import net.openhft.chronicle.queue.ChronicleQueue;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.lmdbjava.ByteArrayProxy;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.EnvFlags;
import org.lmdbjava.Txn;

/**
 * Self-tests of the power-loss harness ({@link LazyFs}): what was synced survives a power off, what
 * was not is lost, and every "lost" case first checks that the data really was there (readable
 * through the mount, counted as dirty by the daemon), so that none of them can pass vacuously.
 */
class LazyFsIT {

    private static final int PAGE = 4096;

    @BeforeAll
    static void fuseWorks() {
        LazyFs.Availability a = LazyFs.available();
        if (System.getenv("VETCD_REQUIRE_LAZYFS") != null) {
            org.junit.jupiter.api.Assertions.assertTrue(a.available(), "FUSE is required here (VETCD_REQUIRE_LAZYFS): "
                    + a.reason());
        }
        assumeTrue(a.available(), a.reason());
    }

    // ------------------------------------------------------------------------------ file data

    @Test
    void syncedDataSurvivesAndUnsyncedAppendIsLost() throws Exception {
        try (LazyFs fs = LazyFs.mount("append")) {
            Path f = createDurably(fs, "log", bytes('A', 10_000));
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                ch.write(ByteBuffer.wrap(bytes('B', 5_000)));
            }
            assertEquals(15_000, Files.size(f));
            assertArrayEquals(concat(bytes('A', 10_000), bytes('B', 5_000)), Files.readAllBytes(f));
            assertTrue(fs.stats().dirtyPages() > 0, "the append reached the daemon: " + fs.stats());

            fs.powerOff();
            fs.remount();
            assertArrayEquals(bytes('A', 10_000), Files.readAllBytes(f));
        }
    }

    @Test
    void fdatasyncIsHonoured() throws Exception {
        try (LazyFs fs = LazyFs.mount("fdatasync")) {
            Path f = createDurably(fs, "log", bytes('A', 100));
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                ch.write(ByteBuffer.wrap(bytes('B', 9_000)));
                ch.force(false); // fdatasync
                ch.write(ByteBuffer.wrap(bytes('C', 50)));
            }
            assertEquals(9_150, Files.size(f));
            fs.powerOff();
            fs.remount();
            assertArrayEquals(concat(bytes('A', 100), bytes('B', 9_000)), Files.readAllBytes(f));
        }
    }

    @Test
    void overwriteInPlaceKeepsTheSyncedBytesUntilSynced() throws Exception {
        try (LazyFs fs = LazyFs.mount("overwrite")) {
            byte[] synced = random(3 * PAGE + 123, 1);
            Path f = createDurably(fs, "data", synced);
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(bytes('X', 10)), PAGE - 5); // across a page boundary
            }
            byte[] expected = synced.clone();
            Arrays.fill(expected, PAGE - 5, PAGE + 5, (byte) 'X');
            assertArrayEquals(expected, Files.readAllBytes(f));
            fs.powerOff();
            fs.remount();
            assertArrayEquals(synced, Files.readAllBytes(f));
        }
    }

    @Test
    void sharedWritableMappingIsLostWithoutForceAndKeptWithIt() throws Exception {
        try (LazyFs fs = LazyFs.mount("mmap")) {
            Path lost = createDurably(fs, "lost", new byte[4 * PAGE]);
            Path kept = createDurably(fs, "kept", new byte[4 * PAGE]);
            try (FileChannel a = FileChannel.open(lost, StandardOpenOption.READ, StandardOpenOption.WRITE);
                 FileChannel b = FileChannel.open(kept, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                MappedByteBuffer ma = a.map(FileChannel.MapMode.READ_WRITE, 0, 4 * PAGE);
                MappedByteBuffer mb = b.map(FileChannel.MapMode.READ_WRITE, 0, 4 * PAGE);
                ma.position(PAGE + 10);
                ma.put("through the mapping".getBytes(StandardCharsets.US_ASCII));
                mb.position(PAGE + 10);
                mb.put("through the mapping".getBytes(StandardCharsets.US_ASCII));
                mb.force(); // msync(MS_SYNC): writeback, then FUSE fsync
                // The kernel's dirty pages of the first mapping go to the daemon too (unsynced there):
                // the data reached the file system, and is lost all the same.
                fs.flushKernelCache();
                assertEquals(1, fs.stats().dirtyFiles(), "only the unforced file is dirty: " + fs.stats());
                ByteBuffer viaRead = ByteBuffer.allocate(19);
                a.read(viaRead, PAGE + 10);
                assertEquals("through the mapping", new String(viaRead.array(), StandardCharsets.US_ASCII));
            }
            fs.powerOff();
            fs.remount();
            assertArrayEquals(new byte[4 * PAGE], Files.readAllBytes(lost));
            byte[] expected = new byte[4 * PAGE];
            System.arraycopy("through the mapping".getBytes(StandardCharsets.US_ASCII), 0, expected, PAGE + 10, 19);
            assertArrayEquals(expected, Files.readAllBytes(kept));
        }
    }

    @Test
    void unsyncedSizeChangesAreLost() throws Exception {
        try (LazyFs fs = LazyFs.mount("size")) {
            Path grown = createDurably(fs, "grown", bytes('A', 1000));
            Path shrunk = createDurably(fs, "shrunk", bytes('B', 3 * PAGE));
            Path truncated = createDurably(fs, "truncated", bytes('C', 5000));
            Path syncedGrowth = createDurably(fs, "synced-growth", bytes('D', 10));
            try (RandomAccessFile r = new RandomAccessFile(grown.toFile(), "rw")) {
                r.setLength(1 << 20);
            }
            try (RandomAccessFile r = new RandomAccessFile(shrunk.toFile(), "rw")) {
                r.setLength(10);
                r.setLength(2 * PAGE); // the cut bytes read as zeros, not as the old ones
            }
            try (FileChannel ch = FileChannel.open(truncated, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) { // O_TRUNC
                ch.write(ByteBuffer.wrap(bytes('c', 7)));
            }
            try (RandomAccessFile r = new RandomAccessFile(syncedGrowth.toFile(), "rw")) {
                r.setLength(3 * PAGE);
                r.getFD().sync();
            }
            assertEquals(1 << 20, Files.size(grown));
            assertArrayEquals(concat(bytes('B', 10), new byte[2 * PAGE - 10]), Files.readAllBytes(shrunk));
            assertArrayEquals(bytes('c', 7), Files.readAllBytes(truncated));

            fs.powerOff();
            fs.remount();
            assertArrayEquals(bytes('A', 1000), Files.readAllBytes(grown));
            assertArrayEquals(bytes('B', 3 * PAGE), Files.readAllBytes(shrunk));
            assertArrayEquals(bytes('C', 5000), Files.readAllBytes(truncated));
            assertArrayEquals(concat(bytes('D', 10), new byte[3 * PAGE - 10]), Files.readAllBytes(syncedGrowth));
        }
    }

    @Test
    void handlesShareOneFileAndAnyFsyncPersistsAllOfIt() throws Exception {
        try (LazyFs fs = LazyFs.mount("handles")) {
            Path f = createDurably(fs, "shared", new byte[0]);
            try (FileChannel w1 = FileChannel.open(f, StandardOpenOption.WRITE);
                 FileChannel w2 = FileChannel.open(f, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
                 FileChannel r = FileChannel.open(f, StandardOpenOption.READ)) {
                w1.write(ByteBuffer.wrap(bytes('1', 100)), 0);
                w2.write(ByteBuffer.wrap(bytes('2', 100))); // O_APPEND: after the first handle's bytes
                ByteBuffer all = ByteBuffer.allocate(200);
                r.read(all, 0);
                assertArrayEquals(concat(bytes('1', 100), bytes('2', 100)), all.array());
                r.force(true); // through the read-only handle
                w1.write(ByteBuffer.wrap(bytes('3', 100)), 200);
            }
            fs.powerOff();
            fs.remount();
            assertArrayEquals(concat(bytes('1', 100), bytes('2', 100)), Files.readAllBytes(f));
        }
    }

    @Test
    void closeSyncsNothingButACleanRemountKeepsEverything() throws Exception {
        try (LazyFs fs = LazyFs.mount("clean")) {
            Path f = fs.mountPoint().resolve("f");
            Files.write(f, bytes('Z', 20_000));
            Files.createDirectories(fs.mountPoint().resolve("d/e"));
            assertTrue(fs.stats().dirtyPages() >= 5);
            fs.remount(); // a clean unmount: an orderly shutdown syncs everything
            assertArrayEquals(bytes('Z', 20_000), Files.readAllBytes(f));
            assertTrue(Files.isDirectory(fs.mountPoint().resolve("d/e")));
            assertEquals(new LazyFs.Stats(0, 0, 0), fs.stats());
        }
    }

    // ------------------------------------------------------------------------------ the namespace

    @Test
    void aCreatedFileVanishesUnlessItsDirectoryWasSynced() throws Exception {
        try (LazyFs fs = LazyFs.mount("create")) {
            Path vanishes = fs.mountPoint().resolve("vanishes");
            Path stays = fs.mountPoint().resolve("stays");
            Files.write(vanishes, bytes('v', 100));
            LazyFs.fsync(vanishes);
            Files.write(stays, bytes('s', 100));
            LazyFs.fsync(stays);
            LazyFs.fsyncDirectory(fs.mountPoint());
            Path late = fs.mountPoint().resolve("late");
            Files.write(late, bytes('l', 100));
            LazyFs.fsync(late);
            assertTrue(Files.exists(late));
            assertEquals(1, fs.stats().pendingNamespaceOps(), "late's creation is pending: " + fs.stats());

            fs.powerOff();
            assertFalse(Files.exists(fs.backingDir().resolve("late")), "SIGUSR1 undoes the namespace at once");
            fs.remount();
            assertArrayEquals(bytes('v', 100), Files.readAllBytes(vanishes), "created before the directory's fsync");
            assertArrayEquals(bytes('s', 100), Files.readAllBytes(stays));
            assertFalse(Files.exists(late), "created after the directory's last fsync");
        }
    }

    @Test
    void anUnlinkedFileComesBackUnlessItsDirectoryWasSynced() throws Exception {
        try (LazyFs fs = LazyFs.mount("unlink")) {
            Path back = createDurably(fs, "back", bytes('b', 5000));
            Path gone = createDurably(fs, "gone", bytes('g', 5000));
            Files.delete(gone);
            LazyFs.fsyncDirectory(fs.mountPoint());
            try (FileChannel ch = FileChannel.open(back, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                ch.write(ByteBuffer.wrap(bytes('x', 10))); // unsynced: not part of what comes back
            }
            Files.delete(back);
            assertFalse(Files.exists(back));
            assertEquals(List.of(), list(fs.mountPoint()));

            fs.powerOff();
            assertEquals(5000, Files.size(fs.backingDir().resolve("back")), "SIGUSR1 undoes the namespace at once");
            fs.remount();
            assertArrayEquals(bytes('b', 5000), Files.readAllBytes(back));
            assertFalse(Files.exists(gone));
            assertEquals(List.of("back"), list(fs.mountPoint()));
        }
    }

    @Test
    void aRenameIsUndoneUnlessItsDirectoriesWereSynced() throws Exception {
        try (LazyFs fs = LazyFs.mount("rename")) {
            Path mnt = fs.mountPoint();
            Path a = createDurably(fs, "a", bytes('o', 100));
            Path b = createDurably(fs, "b", bytes('o', 100));
            // The atomic-replace idiom, once without and once with the directory's fsync.
            replaceAtomically(a, bytes('n', 200), false);
            assertArrayEquals(bytes('n', 200), Files.readAllBytes(a));
            fs.powerOff();
            fs.remount();
            assertArrayEquals(bytes('o', 100), Files.readAllBytes(a));
            assertEquals(List.of("a", "b"), list(mnt), "the temporary file vanished too");

            replaceAtomically(b, bytes('n', 200), true);
            // Across directories: both must be synced.
            Files.createDirectories(mnt.resolve("x"));
            Files.createDirectories(mnt.resolve("y"));
            LazyFs.fsyncDirectory(mnt);
            Files.write(mnt.resolve("x/f"), bytes('f', 10));
            LazyFs.fsync(mnt.resolve("x/f"));
            LazyFs.fsyncDirectory(mnt.resolve("x"));
            Files.move(mnt.resolve("x/f"), mnt.resolve("y/f"));
            LazyFs.fsyncDirectory(mnt.resolve("y")); // not x
            fs.powerOff();
            fs.remount();
            assertArrayEquals(bytes('n', 200), Files.readAllBytes(b));
            assertTrue(Files.exists(mnt.resolve("x/f")) && !Files.exists(mnt.resolve("y/f")),
                    "a rename with one of its two directories synced is undone");

            Files.move(mnt.resolve("x/f"), mnt.resolve("y/f"));
            LazyFs.fsyncDirectory(mnt.resolve("y"));
            LazyFs.fsyncDirectory(mnt.resolve("x"));
            fs.powerOff();
            fs.remount();
            assertTrue(!Files.exists(mnt.resolve("x/f")) && Files.exists(mnt.resolve("y/f")));
        }
    }

    @Test
    void aNewDirectoryVanishesWithItsContentUnlessItsParentWasSynced() throws Exception {
        try (LazyFs fs = LazyFs.mount("mkdir")) {
            Path mnt = fs.mountPoint();
            Path kept = mnt.resolve("kept/sub");
            Path lost = mnt.resolve("lost/sub");
            for (Path dir : List.of(kept, lost)) {
                Files.createDirectories(dir);
                Files.write(dir.resolve("f"), bytes('f', 10));
                LazyFs.fsync(dir.resolve("f"));
                LazyFs.fsyncDirectory(dir);
                LazyFs.fsyncDirectory(dir.getParent());
            }
            LazyFs.fsyncDirectory(mnt);
            Files.createDirectories(mnt.resolve("lost2/sub"));
            Files.move(lost, mnt.resolve("lost2/sub/moved")); // a directory with content moves away, unsynced
            fs.powerOff();
            fs.remount();
            assertArrayEquals(bytes('f', 10), Files.readAllBytes(kept.resolve("f")));
            assertArrayEquals(bytes('f', 10), Files.readAllBytes(lost.resolve("f")), "the move was undone");
            assertFalse(Files.exists(mnt.resolve("lost2")), "its new home vanished");
        }
    }

    @Test
    void bookkeepingIsHidden() throws Exception {
        try (LazyFs fs = LazyFs.mount("hidden")) {
            Files.write(fs.mountPoint().resolve("f"), bytes('f', 1));
            Files.delete(fs.mountPoint().resolve("f")); // into the trash
            assertTrue(Files.isDirectory(fs.backingDir().resolve(".lazyfs/trash")));
            assertEquals(List.of(), list(fs.mountPoint()));
            assertFalse(Files.exists(fs.mountPoint().resolve(".lazyfs")));
            assertThrows(IOException.class, () -> Files.createDirectory(fs.mountPoint().resolve(".lazyfs")));
        }
    }

    // ------------------------------------------------------------------------------ power-off modes

    @Test
    void killNineLosesUnsyncedDataAndTheNextMountUndoesTheNamespace() throws Exception {
        try (LazyFs fs = LazyFs.mount("kill9", LazyFs.Options.defaults().withPowerOffMode(PowerOffMode.KILL))) {
            Path synced = createDurably(fs, "synced", bytes('s', 3000));
            Path removed = createDurably(fs, "removed", bytes('r', 10));
            Files.write(synced, bytes('u', 100), StandardOpenOption.APPEND);
            Path created = fs.mountPoint().resolve("created");
            Files.write(created, bytes('c', 10));
            LazyFs.fsync(created);
            Files.delete(removed);
            assertEquals(new LazyFs.Stats(1, 1, 2), fs.stats(), "synced's page; two names");

            fs.powerOff();
            // The daemon could not undo anything; the names are still as it left them...
            assertTrue(Files.exists(fs.backingDir().resolve("created")));
            assertFalse(Files.exists(fs.backingDir().resolve("removed")));
            assertEquals(3000, Files.size(fs.backingDir().resolve("synced")), "unsynced data never reached the disk");
            fs.remount(); // ...until the next daemon starts on the backing directory
            assertArrayEquals(bytes('s', 3000), Files.readAllBytes(synced));
            assertFalse(Files.exists(created));
            assertArrayEquals(bytes('r', 10), Files.readAllBytes(removed));
            assertTrue(Files.readString(fs.logFile()).contains("recovery: undid 2 of 2"), "the log tells");
        }
    }

    @Test
    void tornWritesKeepSomeButNotAllUnsyncedPages() throws Exception {
        int pages = 64;
        LazyFs.Options torn = LazyFs.Options.defaults().withTornWrites(0.5, 42);
        try (LazyFs fs = LazyFs.mount("torn", torn)) {
            Path f = createDurably(fs, "pages", bytes('A', pages * PAGE));
            Path grown = createDurably(fs, "grown", bytes('G', PAGE));
            Path mapped = createDurably(fs, "mapped", bytes('M', pages * PAGE));
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(bytes('B', pages * PAGE)), 0); // one write covering every page
            }
            Files.write(grown, bytes('H', 16 * PAGE), StandardOpenOption.APPEND);
            try (FileChannel ch = FileChannel.open(mapped, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_WRITE, 0, pages * PAGE);
                for (int i = 0; i < pages * PAGE; i++) {
                    m.put(i, (byte) 'N');
                }
            }
            fs.powerOff(); // flushes the kernel's dirty pages to the daemon first (torn mode)
            fs.remount();

            for (Path p : List.of(f, mapped)) {
                byte[] after = Files.readAllBytes(p);
                assertEquals(pages * PAGE, after.length);
                byte old = (byte) (p == f ? 'A' : 'M');
                byte neu = (byte) (p == f ? 'B' : 'N');
                boolean[] isNew = new boolean[pages];
                int newPages = 0;
                for (int i = 0; i < pages; i++) {
                    byte first = after[i * PAGE];
                    assertTrue(first == old || first == neu, p + " page " + i);
                    for (int j = 0; j < PAGE; j++) {
                        assertEquals(first, after[i * PAGE + j], p + ": page " + i + " is whole (old or new)");
                    }
                    isNew[i] = first == neu;
                    newPages += isNew[i] ? 1 : 0;
                }
                assertTrue(newPages > 0 && newPages < pages, p + ": some but not all pages survived: " + newPages);
                boolean tornRecord = false;
                for (int i = 0; i + 1 < pages; i++) {
                    tornRecord |= isNew[i] != isNew[i + 1]; // a record across this boundary is half old, half new
                }
                assertTrue(tornRecord);
            }
            // The extension: its size and pages each survive or not; whatever is there is the old
            // page, a new page, or a hole of zeros.
            byte[] g = Files.readAllBytes(grown);
            assertEquals(0, g.length % PAGE);
            assertArrayEquals(bytes('G', PAGE), Arrays.copyOf(g, PAGE));
            for (int i = PAGE; i < g.length; i += PAGE) {
                byte first = g[i];
                assertTrue(first == 'H' || first == 0, "page " + i / PAGE);
                for (int j = 0; j < PAGE; j++) {
                    assertEquals(first, g[i + j]);
                }
            }
        }
    }

    @Test
    void aFreshMountServesNoStalePagesFromTheOldMountsCache() throws Exception {
        try (LazyFs fs = LazyFs.mount("cache")) {
            byte[] synced = random(8 * PAGE, 7);
            Path f = createDurably(fs, "f", synced);
            byte[] unsynced = random(8 * PAGE, 8);
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(unsynced), 0);
                // Pull every page into the page cache, through read(2) and through a mapping.
                ByteBuffer back = ByteBuffer.allocate(unsynced.length);
                ch.read(back, 0);
                assertArrayEquals(unsynced, back.array());
                MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_ONLY, 0, unsynced.length);
                byte[] viaMap = new byte[unsynced.length];
                m.get(viaMap);
                assertArrayEquals(unsynced, viaMap);
            }
            assertArrayEquals(unsynced, Files.readAllBytes(f));
            fs.powerOff();
            fs.remount();
            assertArrayEquals(synced, Files.readAllBytes(f));
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_ONLY, 0, synced.length);
                byte[] viaMap = new byte[synced.length];
                m.get(viaMap);
                assertArrayEquals(synced, viaMap);
            }
        }
    }

    @Test
    void powerOffInTheMiddleOfConcurrentWritesAndSyncs() throws Exception {
        int writers = 4;
        try (LazyFs fs = LazyFs.mount("concurrent")) {
            List<Path> files = new ArrayList<>();
            for (int t = 0; t < writers; t++) {
                files.add(createDurably(fs, "w" + t, new byte[0]));
            }
            long[] acked = new long[writers];     // length at the last fsync that returned
            long[] attempted = new long[writers]; // length at the last fsync started
            java.util.concurrent.atomic.AtomicLong written = new java.util.concurrent.atomic.AtomicLong();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < writers; t++) {
                int id = t;
                Thread th = new Thread(() -> {
                    Random rnd = new Random(id);
                    try (FileChannel ch = FileChannel.open(files.get(id), StandardOpenOption.WRITE,
                            StandardOpenOption.READ)) {
                        long len = 0;
                        for (int i = 0; ; i++) {
                            byte[] rec = pattern(id, len, 1 + rnd.nextInt(20_000));
                            ch.write(ByteBuffer.wrap(rec), len);
                            len += rec.length;
                            written.addAndGet(rec.length);
                            if (i % 7 == 6) {
                                ByteBuffer check = ByteBuffer.allocate(rec.length);
                                ch.read(check, len - rec.length);
                                assertArrayEquals(rec, check.array());
                            }
                            if (i % 5 == 4) {
                                synchronized (acked) {
                                    attempted[id] = len;
                                }
                                ch.force(i % 2 == 0);
                                synchronized (acked) {
                                    acked[id] = len;
                                }
                            }
                        }
                    } catch (IOException e) {
                        // the power went off under this thread
                    }
                }, "writer-" + t);
                th.start();
                threads.add(th);
            }
            while (written.get() < 40L << 20) {
                Thread.sleep(5);
            }
            fs.powerOff();
            for (Thread th : threads) {
                th.join(10_000);
                assertFalse(th.isAlive());
            }
            fs.remount();
            for (int t = 0; t < writers; t++) {
                byte[] after = Files.readAllBytes(files.get(t));
                synchronized (acked) {
                    assertTrue(acked[t] > 0, "writer " + t + " synced something");
                    assertTrue(after.length >= acked[t] && after.length <= attempted[t],
                            "writer " + t + ": " + after.length + " bytes, acked " + acked[t] + ", attempted " + attempted[t]);
                }
                assertArrayEquals(pattern(t, 0, after.length), after, "writer " + t + "'s bytes");
            }
        }
    }

    private static byte[] pattern(int id, long from, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            long p = from + i;
            b[i] = (byte) (p * 31 + (p >>> 11) + id);
        }
        return b;
    }

    // ------------------------------------------------------------------------------ size and speed

    @Test
    void aLargeFileAndThroughput() throws Exception {
        try (LazyFs fs = LazyFs.mount("large")) {
            Path f = fs.mountPoint().resolve("large");
            int mb = 256;
            byte[] chunk = random(1 << 20, 3);
            MessageDigest synced = MessageDigest.getInstance("SHA-256");
            long t0 = System.nanoTime();
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                for (int i = 0; i < mb; i++) {
                    chunk[0] = (byte) i;
                    ch.write(ByteBuffer.wrap(chunk));
                    synced.update(chunk);
                }
                long t1 = System.nanoTime();
                ch.force(true);
                long t2 = System.nanoTime();
                System.out.printf("lazyfs: %d MiB in 1 MiB writes: %.0f MB/s; fsync of it: %.0f ms%n", mb,
                        mb * 1.048576 / ((t1 - t0) / 1e9), (t2 - t1) / 1e6);
                ch.write(ByteBuffer.wrap(chunk), 17L << 20); // unsynced, inside
                ch.write(ByteBuffer.wrap(chunk), (long) mb << 20); // unsynced, past the end
            }
            LazyFs.fsyncDirectory(fs.mountPoint());
            double small4k = writeRate(fs.mountPoint().resolve("w4k"), 4096, 20_000);
            double small100 = writeRate(fs.mountPoint().resolve("w100"), 100, 20_000);
            double mapped = mappedRate(fs.mountPoint().resolve("mapped"), 64 << 20);
            System.out.printf("lazyfs: 4 KiB writes: %.0f MB/s; 100 B writes: %.1f MB/s (%.0f writes/s); "
                    + "64 MiB through a mapping + force: %.0f MB/s%n", small4k, small100, small100 * 1e6 / 100, mapped);
            assertTrue(small4k > 5, "4 KiB writes at " + small4k + " MB/s");

            fs.powerOff();
            fs.remount();
            assertEquals((long) mb << 20, Files.size(f));
            MessageDigest after = MessageDigest.getInstance("SHA-256");
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                ByteBuffer buf = ByteBuffer.allocate(1 << 20);
                while (ch.read(buf.clear()) > 0) {
                    after.update(buf.flip());
                }
            }
            assertArrayEquals(synced.digest(), after.digest());
        }
    }

    // ------------------------------------------------------------------------------ the project's storage on it

    @Test
    void chronicleQueueWorksOnIt() throws Exception {
        try (LazyFs fs = LazyFs.mount("chronicle")) {
            Path dir = fs.mountPoint().resolve("wal");
            Files.createDirectories(dir);
            LazyFs.fsyncDirectory(fs.mountPoint());
            // Chronicle syncs its whole mapped chunk when it closes (SyncMode.SYNC): to see what an
            // unsynced record becomes, the queue is written by another process, killed with it open. (Kept
            // open in this JVM, its mapping of a file system that then lost power could stall this JVM.)
            List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                    .toString()));
            // The JVM flags Chronicle needs (the module opens), as the members get them.
            command.addAll(Arrays.stream(System.getProperty("vetcd.jvm.flags", "").trim().split("\\s+"))
                    .filter(f -> !f.isEmpty()).toList());
            command.addAll(List.of("-cp", System.getProperty("java.class.path"), ChronicleWriter.class.getName(),
                    dir.toString()));
            Process writer = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            List<String> files;
            long pendingNames;
            try {
                var toWriter = new java.io.PrintStream(writer.getOutputStream(), true, StandardCharsets.US_ASCII);
                var fromWriter = new java.io.BufferedReader(new java.io.InputStreamReader(writer.getInputStream(),
                        StandardCharsets.US_ASCII));
                awaitLine(fromWriter, "synced");
                files = list(dir);
                pendingNames = fs.stats().pendingNamespaceOps();
                LazyFs.fsyncDirectory(dir); // Chronicle does not: without it its files would vanish
                toWriter.println("go");
                awaitLine(fromWriter, "written");
                fs.flushKernelCache();
                assertTrue(fs.stats().dirtyPages() > 0, "the unsynced records reached the daemon: " + fs.stats());
            } finally {
                writer.destroyForcibly();
                assertTrue(writer.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "the writer did not die");
            }
            fs.powerOff();
            fs.remount();
            System.out.printf("lazyfs: Chronicle Queue's files: %s (%d names waiting for a directory fsync after"
                    + " appender.sync()); after the power off: %s%n", files, pendingNames, sizes(fs.backingDir().resolve("wal")));
            assertEquals(files, list(dir));
            List<String> read = new ArrayList<>();
            try (ChronicleQueue q2 = ChronicleQueue.singleBuilder(dir).syncMode(SyncMode.SYNC).build();
                 ExcerptTailer tailer = q2.createTailer()) {
                for (String s; (s = tailer.readText()) != null; ) {
                    read.add(s);
                }
                try (ExcerptAppender again = q2.createAppender()) {
                    again.writeText("after the power off");
                    again.sync();
                }
            }
            assertEquals(1000, read.size());
            assertEquals("record 0", read.get(0));
            assertEquals("record 999", read.get(999));
        }
    }

    @Test
    void lmdbWorksOnIt() throws Exception {
        for (boolean writeMap : new boolean[] {true, false}) {
            try (LazyFs fs = LazyFs.mount(writeMap ? "lmdb-writemap" : "lmdb")) {
                Path dir = fs.mountPoint().resolve("kv");
                Files.createDirectories(dir);
                LazyFs.fsyncDirectory(fs.mountPoint());
                EnvFlags[] flags = writeMap
                        ? new EnvFlags[] {EnvFlags.MDB_NOSYNC, EnvFlags.MDB_NOTLS, EnvFlags.MDB_WRITEMAP} // as MvccStore
                        : new EnvFlags[] {EnvFlags.MDB_NOTLS}; // pwrite + fdatasync at each commit
                try (Env<byte[]> env = lmdb(dir, flags)) {
                    Dbi<byte[]> db = env.openDbi("t", DbiFlags.MDB_CREATE);
                    put(env, db, 0, 500);
                    env.sync(true);
                    LazyFs.fsyncDirectory(dir); // LMDB does not: without it data.mdb would vanish
                    if (writeMap) {
                        put(env, db, 500, 1000); // committed, never synced (MDB_NOSYNC)
                        assertEquals(1000, count(env, db));
                    }
                }
                fs.powerOff();
                fs.remount();
                try (Env<byte[]> env = lmdb(dir, flags)) {
                    Dbi<byte[]> db = env.openDbi("t", DbiFlags.MDB_CREATE);
                    assertEquals(500, count(env, db), writeMap ? "the synced transaction, not the later one" : "");
                    try (Txn<byte[]> txn = env.txnRead()) {
                        assertArrayEquals(value(499), db.get(txn, key(499)));
                    }
                    put(env, db, 500, 600);
                    env.sync(true);
                    assertEquals(600, count(env, db));
                }
            }
        }
    }

    // ------------------------------------------------------------------------------ helpers

    /** A file created, written, fsynced, and its directory fsynced. */
    private static Path createDurably(LazyFs fs, String name, byte[] content) throws IOException {
        Path f = fs.mountPoint().resolve(name);
        Files.write(f, content);
        LazyFs.fsync(f);
        LazyFs.fsyncDirectory(f.getParent());
        return f;
    }

    private static void replaceAtomically(Path target, byte[] content, boolean syncDir) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        Files.write(tmp, content);
        LazyFs.fsync(tmp);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        if (syncDir) {
            LazyFs.fsyncDirectory(target.getParent());
        }
    }

    private static double writeRate(Path f, int size, int count) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(random(size, size));
        long t0 = System.nanoTime();
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (int i = 0; i < count; i++) {
                ch.write(buf.clear());
            }
        }
        return (double) size * count / ((System.nanoTime() - t0) / 1e9) / 1e6;
    }

    private static double mappedRate(Path f, int size) throws IOException {
        long t0 = System.nanoTime();
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
            byte[] chunk = random(PAGE, 5);
            for (int i = 0; i < size; i += PAGE) {
                m.put(i, chunk);
            }
            m.force();
        }
        return (double) size / ((System.nanoTime() - t0) / 1e9) / 1e6;
    }

    private static Env<byte[]> lmdb(Path dir, EnvFlags... flags) {
        return Env.create(ByteArrayProxy.PROXY_BA).setMapSize(256L << 20).setMaxDbs(4).open(dir.toFile(), flags);
    }

    private static void put(Env<byte[]> env, Dbi<byte[]> db, int from, int to) {
        try (Txn<byte[]> txn = env.txnWrite()) {
            for (int i = from; i < to; i++) {
                db.put(txn, key(i), value(i));
            }
            txn.commit();
        }
    }

    private static long count(Env<byte[]> env, Dbi<byte[]> db) {
        try (Txn<byte[]> txn = env.txnRead()) {
            return db.stat(txn).entries;
        }
    }

    private static byte[] key(int i) {
        return String.format("key-%06d", i).getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] value(int i) {
        byte[] v = new byte[300];
        Arrays.fill(v, (byte) i);
        return v;
    }

    private static String sizes(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().map(p -> p.getFileName() + "=" + p.toFile().length() + "B").collect(Collectors.joining(", "));
        }
    }

    private static List<String> list(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    private static byte[] bytes(char c, int n) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) c);
        return b;
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Reads the writer's output until {@code line} (Chronicle may print its own lines first). */
    private static void awaitLine(java.io.BufferedReader out, String line) throws IOException {
        for (String s; (s = out.readLine()) != null; ) {
            if (s.equals(line)) {
                return;
            }
        }
        throw new AssertionError("the Chronicle writer ended before saying \"" + line + "\"");
    }

    /**
     * The process that writes a queue for {@link #chronicleQueueWorksOnIt}: 1000 records and a sync,
     * "synced"; after "go" on its input, 10 more never synced, "written"; then it waits to be killed.
     */
    static final class ChronicleWriter {
        public static void main(String[] args) throws IOException {
            ChronicleQueue q = ChronicleQueue.singleBuilder(Path.of(args[0])).syncMode(SyncMode.SYNC).build();
            ExcerptAppender appender = q.createAppender();
            for (int i = 0; i < 1000; i++) {
                appender.writeText("record " + i);
            }
            appender.sync(); // msync(MS_SYNC) of the cycle file's mapping
            System.out.println("synced");
            System.out.flush();
            var in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in, StandardCharsets.US_ASCII));
            if (!"go".equals(in.readLine())) {
                System.exit(2);
            }
            for (int i = 1000; i < 1010; i++) {
                appender.writeText("unsynced " + i);
            }
            System.out.println("written");
            System.out.flush();
            while (true) {
                in.readLine(); // until killed
            }
        }
    }
}
