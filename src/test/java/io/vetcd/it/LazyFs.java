package io.vetcd.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A power-loss harness: a directory mounted through lazyfs ({@code src/test/c/lazyfs.c}), a FUSE
 * file system that keeps every unsynced change in its daemon's memory (data and sizes) or in an
 * undo journal (names), so that {@link #powerOff()} leaves the files as a disk would be after a
 * crash: what was fsynced (file data: fsync/fdatasync/msync/FileChannel.force; names: an fsync of
 * the directory) survives, nothing else does. The header comment of lazyfs.c states the model.
 *
 * <p>Typical use: {@code mount}, run the database on {@link #mountPoint()}, {@link #powerOff()},
 * kill the database (its files are gone from under it: it may see EIO/ENOTCONN or SIGBUS),
 * {@link #remount()}, start it again on the same path and check what it kept.
 *
 * <p>Each mount lives in a temporary directory ({@code backing/}, the real files, and {@code mnt/},
 * the mount point); the daemon's output goes to {@code target/it-logs/lazyfs-<name>.log}. The
 * daemon is built from source into {@code target/lazyfs/} the first time it is needed (gcc and
 * libfuse3's development files), or taken from the system property {@code lazyfs.binary}.
 * Mounts still up when the JVM exits are powered off and unmounted; the daemon also powers itself
 * off if the JVM dies ({@code -o die_with_parent}).
 */
public final class LazyFs implements AutoCloseable {

    /** How {@link #powerOff()} stops the daemon. */
    public enum PowerOffMode {
        /**
         * SIGUSR1: the daemon writes the torn subset (if {@link Options#tornWrites}), undoes the
         * unsynced namespace changes in the backing directory and exits.
         */
        SIGNAL,
        /**
         * kill -9: unsynced data dies with the daemon; the unsynced namespace changes are undone when
         * the next daemon starts on the backing directory ({@link #remount()}), not before.
         */
        KILL
    }

    /** How to mount. Immutable; the {@code with...} methods return changed copies. */
    public record Options(PowerOffMode powerOffMode, double crashWriteback, long crashSeed, boolean backingSync,
            boolean singleThreaded, boolean flushKernelCacheAtPowerOff) {

        /** SIGUSR1, nothing unsynced survives, backing files fsynced, multithreaded. */
        public static Options defaults() {
            return new Options(PowerOffMode.SIGNAL, 0.0, 0L, true, false, false);
        }

        public Options withPowerOffMode(PowerOffMode mode) {
            return new Options(mode, crashWriteback, crashSeed, backingSync, singleThreaded, flushKernelCacheAtPowerOff);
        }

        /**
         * Torn writes: at a {@link PowerOffMode#SIGNAL} power off each dirty 4 KiB page reaches the
         * backing file with probability {@code fraction} (each file's pending size too), drawn from
         * {@code seed}. Also turns on {@link #withFlushKernelCacheAtPowerOff}, so that the pages a
         * process dirtied through a mapping are among the candidates.
         */
        public Options withTornWrites(double fraction, long seed) {
            if (fraction < 0 || fraction > 1) {
                throw new IllegalArgumentException("fraction " + fraction);
            }
            return new Options(powerOffMode, fraction, seed, backingSync, singleThreaded, fraction > 0);
        }

        /** Whether an fsync through the mount also fsyncs the real file (only matters if the host crashes). */
        public Options withBackingSync(boolean sync) {
            return new Options(powerOffMode, crashWriteback, crashSeed, sync, singleThreaded, flushKernelCacheAtPowerOff);
        }

        /** One FUSE thread (-s) instead of libfuse's pool. */
        public Options withSingleThreaded(boolean single) {
            return new Options(powerOffMode, crashWriteback, crashSeed, backingSync, single, flushKernelCacheAtPowerOff);
        }

        /**
         * Before a SIGNAL power off, push the kernel's dirty pages of the mount (pages written through
         * a shared mapping and not yet written back) to the daemon with syncfs: they become unsynced
         * data there, candidates for the torn write-back. Without it they are simply lost.
         */
        public Options withFlushKernelCacheAtPowerOff(boolean flush) {
            return new Options(powerOffMode, crashWriteback, crashSeed, backingSync, singleThreaded, flush);
        }
    }

    /** Whether lazyfs mounts work here, and if not, why (for a skip message). */
    public record Availability(boolean available, String reason) {}

    /** What a power off would lose now, as the daemon counts it. */
    public record Stats(long dirtyPages, long dirtyFiles, long pendingNamespaceOps) {}

    static final Path LOG_DIR = Path.of(System.getProperty("it.logs.dir", "target/it-logs"));
    private static final Duration MOUNT_TIMEOUT = Duration.ofSeconds(20);
    private static final Duration EXIT_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration CLEAN_UNMOUNT_TIMEOUT = Duration.ofSeconds(120);
    private static final String STATS_FILE = ".lazyfs-stats";
    private static final Set<LazyFs> LIVE = ConcurrentHashMap.newKeySet();
    private static final Map<String, Integer> LOG_NAMES = new ConcurrentHashMap<>();
    private static volatile Availability availability;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (LazyFs fs : LIVE) {
                fs.emergencyStop();
            }
        }, "lazyfs-cleanup"));
    }

    private final String name;
    private final Options options;
    private final Path root;
    private final Path backing;
    private final Path mountPoint;
    private final Path logFile;
    private Process daemon;
    private boolean closed;

    private LazyFs(String name, Options options, Path root, Path logFile) {
        this.name = name;
        this.options = options;
        this.root = root;
        this.backing = root.resolve("backing");
        this.mountPoint = root.resolve("mnt");
        this.logFile = logFile;
    }

    // ------------------------------------------------------------------------------ public API

    /** Mounts a fresh, empty directory with the default options. */
    public static LazyFs mount(String name) throws IOException {
        return mount(name, Options.defaults());
    }

    /** Mounts a fresh, empty directory; {@code name} names the temporary directory and the log. */
    public static LazyFs mount(String name, Options options) throws IOException {
        Path root = Files.createTempDirectory("lazyfs-" + name + "-").toRealPath();
        Files.createDirectories(LOG_DIR);
        int seq = LOG_NAMES.merge(name, 1, Integer::sum); // a name mounted again in this JVM gets -2, -3, ...
        Path log = LOG_DIR.resolve(seq == 1 ? "lazyfs-" + name + ".log" : "lazyfs-" + name + "-" + seq + ".log");
        Files.deleteIfExists(log);
        LazyFs fs = new LazyFs(name, options, root, log.toAbsolutePath());
        Files.createDirectories(fs.backing);
        Files.createDirectories(fs.mountPoint);
        LIVE.add(fs);
        try {
            fs.start();
        } catch (IOException | RuntimeException e) {
            fs.close();
            throw e;
        }
        return fs;
    }

    /**
     * Whether lazyfs mounts work on this machine (Linux, /dev/fuse, fusermount3, the daemon built,
     * and a trial mount that writes, syncs and reads a file). Computed once.
     */
    public static Availability available() {
        Availability a = availability;
        if (a == null) {
            synchronized (LazyFs.class) {
                a = availability;
                if (a == null) {
                    a = probe();
                    availability = a;
                }
            }
        }
        return a;
    }

    /** Where the database should keep its files. */
    public Path mountPoint() {
        return mountPoint;
    }

    /** The real files under the mount (what a power off left, once unmounted). Hidden: {@code .lazyfs/}. */
    public Path backingDir() {
        return backing;
    }

    public Path logFile() {
        return logFile;
    }

    public Options options() {
        return options;
    }

    public synchronized boolean isMounted() {
        return daemon != null && daemon.isAlive();
    }

    /** The daemon's pid (while mounted). */
    public synchronized long daemonPid() {
        requireMounted();
        return daemon.pid();
    }

    /** What a power off would lose now. */
    public Stats stats() throws IOException {
        requireMounted();
        String text = Files.readString(mountPoint.resolve(STATS_FILE), StandardCharsets.US_ASCII).trim();
        long pages = -1;
        long files = -1;
        long ops = -1;
        for (String field : text.split("\\s+")) {
            String[] kv = field.split("=", 2);
            long v = Long.parseLong(kv[1]);
            switch (kv[0]) {
                case "dirty_pages" -> pages = v;
                case "dirty_files" -> files = v;
                case "pending_namespace_ops" -> ops = v;
                default -> { }
            }
        }
        return new Stats(pages, files, ops);
    }

    /**
     * syncfs on the mount: the kernel writes every dirty page it holds for the mount (those written
     * through a shared mapping) back to the daemon, where they are unsynced data like any other write.
     * It syncs nothing: lazyfs has no syncfs of its own.
     */
    public void flushKernelCache() throws IOException {
        requireMounted();
        run(List.of("sync", "-f", mountPoint.toString()), Duration.ofSeconds(60));
    }

    /** Powers off the way the options say. */
    public void powerOff() throws IOException {
        powerOff(options.powerOffMode());
    }

    /**
     * Cuts the power: the daemon dies without syncing anything (see {@link PowerOffMode}) and the
     * mount is lazily detached; the processes that use it see errors from now on. Then
     * {@link #remount()} shows what survived.
     */
    public synchronized void powerOff(PowerOffMode mode) throws IOException {
        requireMounted();
        if (mode == PowerOffMode.SIGNAL) {
            if (options.flushKernelCacheAtPowerOff()) {
                flushKernelCache();
            }
            run(List.of("kill", "-USR1", Long.toString(daemon.pid())), Duration.ofSeconds(10));
            int status = waitForExit(EXIT_TIMEOUT);
            if (status != 0) {
                throw new IOException("lazyfs exited with status " + status + " at the power off; see " + logFile);
            }
        } else {
            daemon.destroyForcibly();
            waitForExit(EXIT_TIMEOUT);
        }
        detach();
    }

    /**
     * A new daemon on the same backing directory and mount point: after a power off, it shows what
     * survived (with a cold page cache: the old mount's cache went with it). While still mounted,
     * first a clean unmount (everything synced, as at an orderly shutdown); that needs every file on
     * the mount closed and unmapped.
     */
    public synchronized void remount() throws IOException {
        if (closed) {
            throw new IllegalStateException("closed");
        }
        if (isMounted()) {
            unmount();
        }
        start();
    }

    /** A clean unmount: the daemon syncs everything (an orderly shutdown) and exits. */
    public synchronized void unmount() throws IOException {
        requireMounted();
        Result r = runQuietly(List.of("fusermount3", "-u", mountPoint.toString()), Duration.ofSeconds(30));
        if (r.status != 0) {
            throw new IllegalStateException("cannot unmount " + mountPoint + " cleanly (files still open or mapped?): "
                    + r.output.trim());
        }
        int status = waitForExit(CLEAN_UNMOUNT_TIMEOUT);
        if (status != 0) {
            throw new IOException("lazyfs exited with status " + status + " at a clean unmount; see " + logFile);
        }
        waitUntilMounted(false);
    }

    /**
     * Unmounts (cleanly if nothing is open, else by a power off) and deletes the temporary
     * directory unless the system property {@code lazyfs.keep} is true.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (isMounted()) {
                try {
                    unmount();
                } catch (IllegalStateException | IOException e) {
                    powerOff(PowerOffMode.KILL);
                }
            } else if (isListedInMountinfo()) {
                detach();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            LIVE.remove(this);
            if (!Boolean.getBoolean("lazyfs.keep") && !isListedInMountinfo()) {
                deleteTree(root);
            }
        }
    }

    /** fsync of a directory (what makes names created, removed or renamed in it durable). */
    public static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /** fsync of a file. */
    public static void fsync(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }

    /**
     * The daemon's executable: {@code lazyfs.binary} if set, else {@code target/lazyfs/lazyfs},
     * (re)built from {@code src/test/c/lazyfs.c} when missing or older than the source.
     */
    public static synchronized Path binary() throws IOException {
        String given = System.getProperty("lazyfs.binary");
        if (given != null && !given.isBlank()) {
            return Path.of(given);
        }
        Path base = Path.of(System.getProperty("basedir", System.getProperty("user.dir")));
        Path source = base.resolve("src/test/c/lazyfs.c");
        Path dir = base.resolve("target/lazyfs");
        Path bin = dir.resolve("lazyfs");
        if (!Files.exists(source)) {
            if (Files.isExecutable(bin)) {
                return bin;
            }
            throw new IOException("neither " + source + " nor " + bin + " exists");
        }
        Files.createDirectories(dir);
        try (FileChannel lockFile = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE);
             FileLock ignored = lockFile.lock()) {
            if (Files.isExecutable(bin)
                    && Files.getLastModifiedTime(bin).compareTo(Files.getLastModifiedTime(source)) >= 0) {
                return bin;
            }
            Result flags = runQuietly(List.of("pkg-config", "fuse3", "--cflags", "--libs"), Duration.ofSeconds(30));
            if (flags.status != 0) {
                throw new IOException("pkg-config fuse3 failed (is libfuse3-dev installed?): " + flags.output.trim());
            }
            Path tmp = dir.resolve("lazyfs.tmp");
            List<String> cmd = new ArrayList<>(List.of("gcc", "-O2", "-Wall", "-o", tmp.toString(), source.toString()));
            for (String f : flags.output.trim().split("\\s+")) {
                if (!f.isEmpty()) {
                    cmd.add(f);
                }
            }
            Result cc = runQuietly(cmd, Duration.ofSeconds(120));
            if (cc.status != 0) {
                throw new IOException("cannot compile " + source + ": " + cc.output.trim());
            }
            Files.move(tmp, bin, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            Files.setLastModifiedTime(bin, FileTime.fromMillis(System.currentTimeMillis()));
            return bin;
        }
    }

    @Override
    public String toString() {
        return "LazyFs[" + name + " " + mountPoint + "]";
    }

    // ------------------------------------------------------------------------------ internals

    private void requireMounted() {
        if (!isMounted()) {
            throw new IllegalStateException("lazyfs " + name + " is not mounted");
        }
    }

    private synchronized void start() throws IOException {
        if (isListedInMountinfo()) {
            detach(); // a dead mount left behind
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(binary().toString());
        cmd.add("-f");
        if (options.singleThreaded()) {
            cmd.add("-s");
        }
        cmd.add("-o");
        cmd.add("die_with_parent,backing_sync=" + (options.backingSync() ? 1 : 0)
                + ",crash_writeback=" + options.crashWriteback() + ",crash_seed=" + Long.toUnsignedString(options.crashSeed()));
        cmd.add(backing.toString());
        cmd.add(mountPoint.toString());
        Files.writeString(logFile, "### " + java.time.Instant.now() + " " + String.join(" ", cmd) + "\n",
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        daemon = pb.start();
        try {
            waitUntilMounted(true);
        } catch (IOException e) {
            daemon.destroyForcibly();
            throw e;
        }
    }

    /** Waits for the mount to appear in (or vanish from) /proc/self/mountinfo. */
    private void waitUntilMounted(boolean present) throws IOException {
        long deadline = System.nanoTime() + MOUNT_TIMEOUT.toNanos();
        while (isListedInMountinfo() != present) {
            if (present && !daemon.isAlive()) {
                throw new IOException("lazyfs exited with status " + daemon.exitValue() + " before mounting: "
                        + tail(logFile));
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("lazyfs mount " + mountPoint + (present ? " did not appear" : " did not go")
                        + " within " + MOUNT_TIMEOUT + ": " + tail(logFile));
            }
            sleep(10);
        }
    }

    private boolean isListedInMountinfo() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                if (f.length > 4 && unescapeMountinfo(f[4]).equals(mountPoint.toString())) {
                    return true;
                }
            }
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String unescapeMountinfo(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    /** Lazy unmount of a mount whose daemon is gone. */
    private void detach() throws IOException {
        Result r = runQuietly(List.of("fusermount3", "-u", "-z", mountPoint.toString()), Duration.ofSeconds(30));
        if (r.status != 0 && isListedInMountinfo()) {
            Result u = runQuietly(List.of("umount", "-l", mountPoint.toString()), Duration.ofSeconds(30));
            if (u.status != 0 && isListedInMountinfo()) {
                throw new IOException("cannot detach " + mountPoint + ": " + r.output.trim() + " / " + u.output.trim());
            }
        }
        if (daemon != null) {
            waitUntilMounted(false);
        }
    }

    private int waitForExit(Duration timeout) throws IOException {
        try {
            if (!daemon.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                daemon.destroyForcibly();
                daemon.waitFor(10, TimeUnit.SECONDS);
                throw new IOException("lazyfs did not exit within " + timeout + "; killed. " + tail(logFile));
            }
            return daemon.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** At JVM exit: kill -9 and detach, delete nothing (the JVM is going). */
    private void emergencyStop() {
        try {
            Process p = daemon;
            if (p != null && p.isAlive()) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
            if (isListedInMountinfo()) {
                runQuietly(List.of("fusermount3", "-u", "-z", mountPoint.toString()), Duration.ofSeconds(10));
            }
        } catch (Exception e) {
            // best effort
        }
    }

    private static Availability probe() {
        if (!System.getProperty("os.name", "").toLowerCase().contains("linux")) {
            return new Availability(false, "lazyfs needs Linux (os.name=" + System.getProperty("os.name") + ")");
        }
        Path fuse = Path.of("/dev/fuse");
        if (!Files.exists(fuse)) {
            return new Availability(false, "no /dev/fuse on this machine");
        }
        if (!Files.isReadable(fuse) || !Files.isWritable(fuse)) {
            return new Availability(false, "/dev/fuse is not readable and writable by this user");
        }
        try {
            if (runQuietly(List.of("fusermount3", "-V"), Duration.ofSeconds(10)).status != 0) {
                return new Availability(false, "fusermount3 does not run (install fuse3)");
            }
        } catch (IOException e) {
            return new Availability(false, "no fusermount3 (install fuse3): " + e.getMessage());
        }
        try {
            binary();
        } catch (IOException e) {
            return new Availability(false, "cannot build the lazyfs daemon: " + e.getMessage());
        }
        try (LazyFs fs = mount("probe")) {
            Path f = fs.mountPoint().resolve("probe");
            Files.writeString(f, "probe");
            fsync(f);
            if (!Files.readString(f).equals("probe")) {
                return new Availability(false, "a trial lazyfs mount read back something else");
            }
        } catch (IOException | RuntimeException e) {
            return new Availability(false, "a trial lazyfs mount failed: " + e);
        }
        return new Availability(true, "lazyfs mounts work");
    }

    private record Result(int status, String output) {}

    private static Result runQuietly(List<String> cmd, Duration timeout) throws IOException {
        Path out = Files.createTempFile("lazyfs-cmd-", ".out");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + " did not finish within " + timeout);
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } finally {
            Files.deleteIfExists(out);
        }
    }

    private static void run(List<String> cmd, Duration timeout) throws IOException {
        Result r = runQuietly(cmd, timeout);
        if (r.status != 0) {
            throw new IOException(String.join(" ", cmd) + " failed (" + r.status + "): " + r.output.trim());
        }
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private static void sleep(long ms) throws IOException {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // best effort
                }
            });
        } catch (IOException | UncheckedIOException e) {
            // best effort
        }
    }
}
