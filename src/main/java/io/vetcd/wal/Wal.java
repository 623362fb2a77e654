package io.vetcd.wal;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.raft.LogStorage;
import io.vetcd.raft.Snapshot;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.zip.CRC32C;
import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.bytes.MappedBytesStore;
import net.openhft.chronicle.bytes.SyncMode;
import net.openhft.chronicle.bytes.WriteBytesMarshallable;
import net.openhft.chronicle.core.time.SystemTimeProvider;
import net.openhft.chronicle.core.time.TimeProvider;
import net.openhft.chronicle.queue.ChronicleQueue;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.RollCycle;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.rollcycles.LegacyRollCycles;
import net.openhft.chronicle.wire.DocumentContext;
import net.openhft.chronicle.wire.Wires;
import net.openhft.posix.MAdviseFlag;
import net.openhft.posix.PosixAPI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Raft log, hard state and member identity on Chronicle Queue. Records ({@link WalRecord}: a
 * version, a kind, a body and a CRC32C) are only ever appended:
 * <ul>
 *   <li>ENTRY (term, index, type, data). Chronicle cannot cut its tail, so a follower that must drop a
 *       conflicting suffix appends the replacement: on replay, an entry with index i supersedes every
 *       earlier record with index ≥ i (etcd's WAL does the same).
 *   <li>HARD_STATE (term, vote, commit) and MEMBER (cluster id, member id, initial membership): the
 *       newest wins; both are written again beside every snapshot point, so deleting the files before
 *       a point never loses them.
 *   <li>COMPACTED / SNAPSHOT: the keyspace holds the state up to an index; earlier entries are void.
 * </ul>
 *
 * <p><b>Generations.</b> Each run of the process appends to a queue of its own, {@code dir/<generation>},
 * and never writes into an older one. After a crash the newest files may end in a record that was cut
 * short (a power loss keeps some of the pages written since the last sync and not others); appending
 * behind such a record would make it look like damage in the middle of the log, and Chronicle would
 * first wait out its timeout on a half-written header. A new generation starts with a GENERATION record
 * naming the last record the process read from the one before. So on replay:
 * <ul>
 *   <li>a generation that a later one names is read up to the record named, and must hold every
 *       record up to it intact: a bad or missing record there is damage, and replay stops with the
 *       file and index;
 *   <li>the newest generation may end in a torn record (one whose checksum fails where some of its
 *       sectors read as zeros, the trace of a write that never reached the disk): it and anything after
 *       it were never synced, hence never acknowledged, and are dropped; any other bad record is damage.
 * </ul>
 * Before the first record of a new generation, every file of the older ones is synced: what this run
 * read is then on disk, whatever the previous run had synced.
 *
 * <p><b>Durability.</b> {@link #sync()} forces every file written since the last sync (the previous file
 * too when a batch crossed into a new one: it got its end-of-file marker), and the directories whose
 * entries changed, with fdatasync/fsync through a {@link FileSyncer}; a failure is a {@link WalException}.
 * One thread at a time writes (see {@link #takeOver()}).
 */
public final class Wal implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(Wal.class);

  /** Who this member is, as bootstrap recorded it; {@code membership} is opaque to the log. */
  public record Identity(long clusterId, long memberId, byte[] membership) {}

  /**
   * What a restart finds: the newest hard state, the newest snapshot point (null if none), the log's
   * live entries after it in index order (those after the index asked for), the member's identity
   * (null: a new member), and the index of the last live entry after the point (0: none).
   */
  public record Replay(HardState hardState, Snapshot snapshot, List<Entry> entries, Identity identity,
      long lastIndex) {}

  /** What an entry read at open holds instead of its payload (see {@link #opened}). */
  private static final byte[] PAYLOAD_LEFT_IN_FILE = new byte[0];

  /**
   * A log file is left for the next one once this much was written to it. Syncing a memory-mapped
   * file got much slower past a few tens of MB (ext4 here: 0.06-0.1 ms per sync up to ~30 MB of
   * records, ~0.7 ms past ~40 MB), and Chronicle ends a file only when its time cycle ends: at a
   * steady hundred writes a second an hourly file passes that size, and every later write waited for
   * the slower sync. So files end by size too, well below it.
   */
  static final long ROLL_BYTES = 16L << 20;

  /**
   * An entry payload at least this large is written into the log file with pwrite, not through
   * Chronicle's mapping (its record's head and checksum still go through the mapping). Why: every page
   * dirtied through a shared mapping must be write-protected again when a sync cleans it, a TLB
   * shootdown across CPUs per page; with 64 KiB values that was the largest single cost of a put (11 %
   * of all CPU on three members, in the append threads' msync), and msync of 512 KiB written through
   * the mapping took 2.2 ms against 0.8 ms for the same bytes written with pwrite (ext4, this machine).
   * A pwrite also reports a full disk as ENOSPC, where a store into the mapping is a SIGBUS.
   */
  static final int PWRITE_PAYLOAD_BYTES = 8 << 10;

  /** msync works on whole pages. */
  private static final long PAGE = 4096;

  /**
   * Appends stop (the member with them) when the disk has less free space than this beyond what they
   * write. Chronicle writes through a mapping of a sparse file: a page with no block behind it on a
   * full disk is a SIGBUS, which the JVM turns into an InternalError at best and an abort at worst,
   * after part of a record is written. Refusing first keeps the failure a clear one. (The system
   * property {@code vetcd.wal.min-free-bytes} changes it: the full-disk test switches it off with a negative value, to reach the SIGBUS.)
   */
  public static final long MIN_FREE_BYTES = Long.getLong("vetcd.wal.min-free-bytes", 16L << 20);

  /** How a log is opened: the roll cycle and clock (tests roll files by the second), the syncer. */
  public record Options(RollCycle rollCycle, TimeProvider clock, FileSyncer syncer) {
    public static Options defaults() {
      return new Options(LegacyRollCycles.MINUTELY, SystemTimeProvider.INSTANCE, FileSyncer.disk());
    }

    public Options withClock(RollCycle rollCycle, TimeProvider clock) {
      return new Options(rollCycle, clock, syncer);
    }

    public Options withSyncer(FileSyncer syncer) {
      return new Options(rollCycle, clock, syncer);
    }
  }

  private final Path dir;
  private final Options options;
  /** The generation this process appends to, and its directory (created at the first append). */
  private final long generation;
  private final Path generationDir;
  /** The generation and Chronicle index of the last record read at open: the GENERATION record's body. */
  private final long previousGeneration;
  private final long previousLastIndex;
  private final FileStore fileStore;

  /** This generation's queue, once the first append created it; the storage reads through it too. */
  private volatile SingleChronicleQueue queue;
  private ExcerptAppender appender;
  /** Where each live entry lies, for reading it back ({@link #storage()}). */
  private final EntryPositions positions = new EntryPositions();
  private final WalStorage storage = new WalStorage(this, positions);
  private RollingClock clock;
  private final RecordWriter writer = new RecordWriter();
  /** Bytes written to the file of cycle {@link #cycleWritten}. */
  private long bytesWritten;
  private int cycleWritten = Integer.MIN_VALUE;
  private Path fileWritten;
  /**
   * The records read at open, entry payloads left out (a log of gigabytes would be a heap of gigabytes),
   * while nothing has been appended since: a replay reads them, and the payloads it needs through
   * {@link #storage}, instead of reading every file again. Null once anything changed.
   */
  private Resolved opened;
  /** The file large payloads are being written into with pwrite, and its channel. */
  private Path payloadFile;
  private FileChannel payloadChannel;
  /**
   * Files written since the last sync other than the one written now, in the order written: a group of
   * records crossed into a new file (the old one got its end-of-file marker), and each is forced whole.
   */
  private final Set<Path> unsyncedFiles = new LinkedHashSet<>();
  /** The mapped chunk told that reads ahead are useless (see {@link #adviseNoReadAhead()}). */
  private MappedBytesStore advisedStore;
  private boolean adviceRefused;
  /** The mapped chunk of {@link #fileWritten} the last sync covered, and the offset it covered up to. */
  private MappedBytesStore syncedStore;
  private long syncedUpTo;
  /** Whether records were appended since the last sync. */
  private boolean written;
  /** Whether this generation's directory, or the log's, gained or lost entries since the last sync. */
  private boolean generationDirChanged;
  private boolean logDirChanged;
  /** The highest entry index written to each file of this generation, by cycle. */
  private final Map<Integer, Long> lastIndexByCycle = new TreeMap<>();
  /** The highest entry index in each older generation: it can go once all of it is void. */
  private final TreeMap<Long, Long> lastIndexByGeneration = new TreeMap<>();
  /** The newest hard state and identity written or read; repeated with each snapshot point. */
  private HardState lastHardState;
  private Identity identity;

  private Wal(Path dir, Options options, long generation, long previousGeneration, long previousLastIndex,
      FileStore fileStore) {
    this.dir = dir;
    this.options = options;
    this.generation = generation;
    this.generationDir = dir.resolve(generationName(generation));
    this.previousGeneration = previousGeneration;
    this.previousLastIndex = previousLastIndex;
    this.fileStore = fileStore;
  }

  /** Opens the log in {@code dir}: a file per minute of writing, or per {@link #ROLL_BYTES}. */
  public static Wal open(Path dir) {
    return open(dir, Options.defaults());
  }

  /** Opens the log with another roll cycle and clock. */
  public static Wal open(Path dir, RollCycle rollCycle, TimeProvider clock) {
    return open(dir, Options.defaults().withClock(rollCycle, clock));
  }

  /**
   * Opens the log: reads every generation (refusing a damaged log, see the class comment), makes what it
   * read durable, and removes generations that hold no record at all. Appends start a new generation.
   */
  public static Wal open(Path dir, Options options) {
    try {
      Files.createDirectories(dir);
      refuseOldLayout(dir);
      dropUnwrittenFiles(dir, options.syncer());
      List<GenerationScan> scans = scanAll(dir, options.rollCycle(), Long.MAX_VALUE);
      Resolved resolved = resolve(scans, true);
      GenerationScan last = null;
      for (GenerationScan s : scans) {
        if (!s.valid.isEmpty()) {
          last = s;
          for (Path f : s.files()) {
            options.syncer().force(f); // what this run read is now on disk
          }
        }
      }
      boolean removed = false;
      for (GenerationScan s : scans) {
        if (s.valid.isEmpty()) {
          deleteTree(s.dir); // created by a run that died before its first record reached the disk
          removed = true;
        }
      }
      options.syncer().forceDirectory(dir);
      long newest = scans.isEmpty() ? 0 : scans.get(scans.size() - 1).generation;
      Wal wal = new Wal(dir, options, newest + 1, last == null ? 0 : last.generation,
          last == null ? -1 : resolved.lastAccepted.get(last.generation), Files.getFileStore(dir));
      for (GenerationScan s : scans) {
        if (!s.valid.isEmpty()) {
          wal.lastIndexByGeneration.put(s.generation, s.maxEntryIndex(resolved.lastAccepted.get(s.generation)));
        }
      }
      State state = replay(resolved, 0);
      for (Located e : state.located()) {
        wal.positions.add(e.entry().index(), e.entry().term(), e.generation(), e.position());
      }
      wal.lastHardState = state.hardState.isEmpty() ? null : state.hardState;
      wal.identity = state.identity;
      wal.opened = resolved;
      if (removed) {
        LOG.debug("removed log generations that held no record");
      }
      return wal;
    } catch (IOException e) {
      throw new WalException("opening the log in " + dir + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * Removes the files at the end of a generation that Chronicle created but never gave a complete
   * header: the run that made them stopped (a full disk, a kill) between creating a file and writing
   * its first record. They hold nothing, and a reader that meets one waits for its header forever.
   * Nothing in them was acknowledged: a sync covers a file from its header on. Such a file followed by
   * a written one is damage.
   */
  private static void dropUnwrittenFiles(Path dir, FileSyncer syncer) throws IOException {
    List<Path> generations;
    try (var entries = Files.list(dir)) {
      generations = entries.filter(g -> Files.isDirectory(g) && g.getFileName().toString().matches("\\d{10}"))
          .toList();
    }
    for (Path g : generations) {
      List<Path> files;
      try (var entries = Files.list(g)) {
        files = entries.filter(f -> f.getFileName().toString().endsWith(SingleChronicleQueue.SUFFIX)).sorted().toList();
      }
      List<Path> unwritten = new ArrayList<>();
      for (Path f : files) {
        if (hasCompleteHeader(f)) {
          if (!unwritten.isEmpty()) {
            throw new WalException("the log is damaged: " + unwritten.get(0) + " has no complete file header, yet "
                + f.getFileName() + " after it was written. The member cannot tell what it acknowledged: restore "
                + "its data directory from a backup, or remove the member and add it back");
          }
        } else {
          unwritten.add(f);
        }
      }
      for (Path f : unwritten) {
        LOG.warn("removing {}: the log file was created but never written (the member stopped while creating it)", f);
        Files.delete(f);
      }
      if (!unwritten.isEmpty()) {
        syncer.forceDirectory(g);
      }
    }
  }

  /** Whether Chronicle finished writing the file's first header (a length without its working bit). */
  private static boolean hasCompleteHeader(Path file) throws IOException {
    ByteBuffer header = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      while (header.hasRemaining() && ch.read(header, header.position()) > 0) {
        // a short file reads as far as it goes
      }
    }
    if (header.hasRemaining()) {
      return false;
    }
    int value = header.getInt(0);
    return value != 0 && (value & Wires.NOT_COMPLETE) == 0;
  }

  private static void refuseOldLayout(Path dir) throws IOException {
    try (var files = Files.list(dir)) {
      if (files.anyMatch(f -> f.getFileName().toString().endsWith(SingleChronicleQueue.SUFFIX))) {
        throw new WalException("the log in " + dir + " was written by an earlier vetcd, in a format without "
            + "checksums that this one does not read: start this member with a new data directory (its "
            + "data comes back from the other members) or with the earlier vetcd");
      }
    }
  }

  // ---------------------------------------------------------------- writing

  public void append(Entry entry) {
    openForAppends();
    write(writer.entry(entry));
    lastIndexByCycle.merge(appender.cycle(), entry.index(), Math::max);
    positions.add(entry.index(), entry.term(), generation, appender.lastIndexAppended());
  }

  public void append(HardState state) {
    lastHardState = state;
    openForAppends();
    write(writer.hardState(state));
  }

  /** Records who this member is (bootstrap); repeated beside every snapshot point from then on. */
  public void append(Identity identity) {
    this.identity = identity;
    openForAppends();
    write(writer.member(identity));
  }

  /**
   * Records that the keyspace durably holds the state up to {@code snapshot.index()}: on replay,
   * entries up to it are dropped, and {@code replace} (a snapshot received from the leader) drops
   * every earlier entry, whatever its index.
   */
  public void append(Snapshot snapshot, boolean replace) {
    openForAppends();
    write(writer.point(snapshot, replace));
    if (replace) {
      positions.clear();
    }
    // Beside the point, so that deleting older files cannot lose them.
    if (identity != null) {
      write(writer.member(identity));
    }
    if (lastHardState != null) {
      write(writer.hardState(lastHardState));
    }
  }

  /**
   * Refuses (a {@link WalException}) to write {@code bytes} more when that would leave the disk with
   * less than {@link #MIN_FREE_BYTES} free: called before each group of records.
   */
  public void reserve(long bytes) {
    long free;
    try {
      free = fileStore.getUsableSpace();
    } catch (IOException e) {
      throw new WalException("cannot tell the free space of the disk of " + dir + ": " + e.getMessage(), e);
    }
    if (free < bytes + MIN_FREE_BYTES) {
      throw new WalException("no space left on the disk of " + dir + " (" + free + " bytes free, "
          + MIN_FREE_BYTES + " kept in reserve): the log cannot grow");
    }
  }

  /** Appends an encoded record (the appender is open: encoding the first record would clobber it). */
  private void write(RecordWriter.Encoded record) {
    writeWhole(appender, out -> record.writeChecked(out, this::writePayload));
    written = true;
    adviseNoReadAhead();
    int cycle = appender.cycle();
    if (cycle != cycleWritten) {
      // A new file: Chronicle wrote the end-of-file marker into the previous one, a sync covers both.
      if (fileWritten != null) {
        unsyncedFiles.add(fileWritten);
      }
      fileWritten = appender.currentFile().toPath();
      syncedStore = null;
      generationDirChanged = true;
      cycleWritten = cycle;
      bytesWritten = 0;
    }
    bytesWritten += record.length() + 4; // and Chronicle's header
    if (bytesWritten >= ROLL_BYTES) {
      clock.skipPast(cycle);
    }
  }

  /**
   * Writes one record, or nothing if writing it fails. Chronicle's own {@code writeBytes} closes the
   * document whatever happened inside, so a copy cut short (a SIGBUS on a full disk surfaces as an
   * InternalError part way) would stand in the file as a complete record with the rest of its bytes
   * missing: at restart, a checksum failure with no zeros in it, which reads as damage, not as a tear.
   */
  static void writeWhole(ExcerptAppender appender, WriteBytesMarshallable record) {
    try (DocumentContext dc = appender.writingDocument()) {
      try {
        record.writeMarshallable(dc.wire().bytes());
      } catch (Throwable e) {
        dc.rollbackOnClose();
        throw e;
      }
    }
  }

  /**
   * Tells the kernel not to read ahead on faults in the mapped chunk being written (MADV_RANDOM). Why:
   * each page the appender first touches is a hole of the sparse file, and a fault there reads ahead
   * the device's read_ahead_kb (8 MiB on this machine's disk), zero-filling page-cache pages that the
   * log then overwrites; with 64 KiB values that zeroing was 12 % of all CPU on three members, and with
   * read-ahead at 128 KiB puts were ~15 % faster. Advice only: if the kernel refuses it, nothing breaks.
   */
  private void adviseNoReadAhead() {
    if (appender.wire().bytes().bytesStore() instanceof MappedBytesStore store && store != advisedStore) {
      advisedStore = store;
      long address = store.addressForRead(store.start());
      // realCapacity: the chunk as mapped (underlyingCapacity is not a mapped length; madvise refused it, ENOMEM)
      if (PosixAPI.posix().madvise(address, store.realCapacity(), MAdviseFlag.MADV_RANDOM) != 0 && !adviceRefused) {
        adviceRefused = true; // once: it costs speed, not data
        LOG.warn("madvise(MADV_RANDOM) on the log's mapping failed ({}): faults on it read ahead",
            PosixAPI.posix().lastErrorStr());
      }
    }
  }

  /** Writes an entry's payload at {@code offset} of the file being appended to (see {@link #PWRITE_PAYLOAD_BYTES}). */
  private void writePayload(long offset, byte[] data) {
    Path file = appender.currentFile().toPath();
    try {
      if (!file.equals(payloadFile)) {
        closePayloadChannel();
        payloadChannel = FileChannel.open(file, StandardOpenOption.WRITE);
        payloadFile = file;
      }
      ByteBuffer b = ByteBuffer.wrap(data);
      while (b.hasRemaining()) {
        payloadChannel.write(b, offset + b.position());
      }
    } catch (IOException e) {
      throw new WalException("writing an entry of " + data.length + " bytes to the log file " + file + " failed: "
          + e.getMessage(), e);
    }
  }

  private void closePayloadChannel() throws IOException {
    if (payloadChannel != null) {
      payloadChannel.close();
      payloadChannel = null;
      payloadFile = null;
    }
  }

  /** Creates this run's generation and writes its first record (at the first append). */
  private void openForAppends() {
    if (appender != null) {
      return;
    }
    opened = null; // the log changes from here on
    try {
      Files.createDirectories(generationDir);
    } catch (IOException e) {
      throw new WalException("creating the log directory " + generationDir + " failed: " + e.getMessage(), e);
    }
    logDirChanged = true;
    generationDirChanged = true;
    clock = new RollingClock(options.clock());
    queue = queue(generationDir, options.rollCycle(), clock);
    clock.cycles(queue.epoch(), queue.rollCycle().lengthInMillis());
    appender = queue.createAppender();
    RecordWriter.Encoded first = writer.generation(generation, previousGeneration, previousLastIndex);
    writeWhole(appender, out -> first.writeChecked(out, this::writePayload));
    written = true;
    adviseNoReadAhead();
    cycleWritten = appender.cycle();
    fileWritten = appender.currentFile().toPath();
    syncedStore = null;
    bytesWritten = first.length() + 4;
  }

  static SingleChronicleQueue queue(Path dir, RollCycle rollCycle, TimeProvider clock) {
    // SyncMode.NONE: this class syncs (see sync()); Chronicle's own msync, at a file's release, would
    // only repeat it, and swallow its errors.
    return ChronicleQueue.singleBuilder(dir)
        .syncMode(SyncMode.NONE)
        .rollCycle(rollCycle)
        .timeProvider(clock)
        .build();
  }

  /** An older generation's queue, to read back from: read-only, so that no reader can add to it. */
  static SingleChronicleQueue readOnlyQueue(Path dir, RollCycle rollCycle) {
    return ChronicleQueue.singleBuilder(dir)
        .readOnly(true)
        .rollCycle(rollCycle)
        .build();
  }

  /**
   * Chronicle starts a new file when its clock enters a new cycle; this clock can be moved to the next
   * cycle ahead of time, so that a file ends once it is big enough. It never goes back: cycles only
   * grow, and a file's name is the start of its (possibly early) cycle.
   */
  private static final class RollingClock implements TimeProvider {
    private final TimeProvider real;
    private volatile long floorMillis;
    private long epoch;
    private long cycleMillis;

    RollingClock(TimeProvider real) {
      this.real = real;
    }

    void cycles(long epoch, long cycleMillis) {
      this.epoch = epoch;
      this.cycleMillis = cycleMillis;
    }

    /** From now on the time is at least the start of the cycle after {@code cycle}. */
    void skipPast(int cycle) {
      floorMillis = Math.max(floorMillis, epoch + (cycle + 1L) * cycleMillis);
    }

    @Override
    public long currentTimeMillis() {
      return Math.max(real.currentTimeMillis(), floorMillis);
    }
  }

  /**
   * Hands the appender to the calling thread. Chronicle binds an appender to the first thread that
   * uses it; the member writes its bootstrap records on the start-up thread, then the append thread
   * takes over for good.
   */
  public void takeOver() {
    if (appender != null) {
      appender.singleThreadedCheckReset();
    }
  }

  /**
   * Forces every record appended so far to disk: each file written since the last sync, then the
   * directories that gained or lost files. Throws {@link WalException} if any of it fails; then nothing
   * since the last successful sync may be taken as durable.
   */
  public void sync() {
    if (!written && unsyncedFiles.isEmpty() && !generationDirChanged && !logDirChanged) {
      return;
    }
    try {
      for (Path file : unsyncedFiles) {
        options.syncer().force(file);
      }
      syncWritten();
      if (generationDirChanged) {
        try (var tables = Files.list(generationDir)) {
          for (Path table : tables.filter(f -> f.toString().endsWith(".cq4t")).toList()) {
            options.syncer().force(table); // Chronicle's listing of the files, updated as they are made
          }
        }
        options.syncer().forceDirectory(generationDir);
      }
      if (logDirChanged) {
        options.syncer().forceDirectory(dir);
      }
    } catch (IOException e) {
      throw new WalException("syncing the log in " + generationDir + " failed: " + e.getMessage(), e);
    }
    unsyncedFiles.clear();
    written = false;
    generationDirChanged = false;
    logDirChanged = false;
  }

  /**
   * Forces what was written to the current file since the last sync: the pages from the last synced
   * offset to the write position of the mapped chunk being written (from the chunk's start, the file's
   * header and first index included, when it is new to us), or the whole file if it is not mapped as
   * expected. Chronicle also updates its header and index in place further back; a replay does not
   * need those (it reads record after record, each framed by its own header, from the file's first),
   * and a generation is never appended to after a restart.
   */
  private void syncWritten() throws IOException {
    if (!written) {
      return;
    }
    Bytes<?> bytes = appender.wire().bytes();
    long end = bytes.writePosition();
    if (!(bytes.bytesStore() instanceof MappedBytesStore store) || !store.inside(Math.max(store.start(), end - 1))) {
      options.syncer().force(fileWritten);
      syncedStore = null;
      return;
    }
    if (store != syncedStore) {
      if (syncedStore != null) {
        options.syncer().force(fileWritten); // the chunk before this one: whatever of it is unsynced
      }
      syncedStore = store;
      syncedUpTo = store.start();
    }
    long from = Math.max(store.start(), syncedUpTo - Math.floorMod(syncedUpTo, PAGE));
    if (end > from) {
      options.syncer().forceMapped(fileWritten, from, end - from, store.addressForRead(from));
    }
    syncedUpTo = end;
  }

  /**
   * Deletes the log files that hold nothing a replay still needs: older generations, then files of
   * this one older than the one being written, whose entries are all at or below {@code
   * snapshotIndex} (void after the snapshot point written for it), in order: the first one still
   * needed keeps every later one. The directories are synced before it returns. Returns how many
   * files went. Same thread as the appends.
   */
  public int release(long snapshotIndex) {
    int deleted = 0;
    opened = null;
    positions.releaseUpTo(snapshotIndex); // before the files go: the storage no longer looks there
    try {
      for (var it = lastIndexByGeneration.entrySet().iterator(); it.hasNext(); ) {
        var older = it.next();
        if (older.getValue() > snapshotIndex) {
          return finishRelease(deleted);
        }
        deleted += deleteTree(dir.resolve(generationName(older.getKey())));
        logDirChanged = true;
        it.remove();
      }
      if (appender == null) {
        return finishRelease(deleted);
      }
      int current = appender.cycle();
      DateTimeFormatter names = DateTimeFormatter.ofPattern(queue.rollCycle().format()).withZone(ZoneOffset.UTC);
      for (var it = lastIndexByCycle.entrySet().iterator(); it.hasNext(); ) {
        var cycle = it.next();
        if (cycle.getKey() >= current || cycle.getValue() > snapshotIndex) {
          break;
        }
        Path file = generationDir.resolve(names.format(Instant.ofEpochMilli(
            (long) cycle.getKey() * queue.rollCycle().lengthInMillis())) + SingleChronicleQueue.SUFFIX);
        if (Files.deleteIfExists(file)) {
          deleted++;
          generationDirChanged = true;
        }
        unsyncedFiles.remove(file);
        it.remove();
      }
      return finishRelease(deleted);
    } catch (IOException e) {
      throw new WalException("deleting old log files in " + dir + " failed: " + e.getMessage(), e);
    }
  }

  private int finishRelease(int deleted) {
    if (deleted > 0) {
      sync();
    }
    return deleted;
  }

  // ---------------------------------------------------------------- reading

  /**
   * The log as the Raft core's storage: live entries read back by index. For one thread, the Raft
   * loop; the entries it asks for must be durable (appended and synced).
   */
  public LogStorage storage() {
    return storage;
  }

  /**
   * The index of the oldest entry the log files hold (-1: none), which may be below the last snapshot
   * point: the log is cut thousands of entries before a point, and what lies between stays readable
   * through {@link #storage()}, after a restart too.
   */
  public long oldestEntry() {
    return positions.firstIndex();
  }

  long generation() {
    return generation;
  }

  SingleChronicleQueue appendingQueue() {
    return queue;
  }

  Path generationDir(long generation) {
    return dir.resolve(generationName(generation));
  }

  RollCycle rollCycle() {
    return options.rollCycle();
  }

  /** A record's place in words: its file and number. */
  String where(long generation, long chronicleIndex) {
    return where(generationDir(generation), options.rollCycle(), chronicleIndex);
  }

  private static String where(Path generationDir, RollCycle rollCycle, long chronicleIndex) {
    int cycle = rollCycle.toCycle(chronicleIndex);
    String file = DateTimeFormatter.ofPattern(rollCycle.format()).withZone(ZoneOffset.UTC)
        .format(Instant.ofEpochMilli((long) cycle * rollCycle.lengthInMillis())) + SingleChronicleQueue.SUFFIX;
    return generationDir.resolve(file) + ", record " + rollCycle.toSequenceNumber(chronicleIndex);
  }

  /**
   * Reads the whole log, applying the supersede rule; entries at or below {@code after} are skipped.
   * Throws {@link WalException} if the log is damaged anywhere but in a torn tail.
   */
  public Replay replay(long after) {
    Resolved read = opened;
    State state = replay(read != null ? read : resolve(scanAll(dir, options.rollCycle(), after), false), after);
    List<Entry> entries = state.entries();
    if (read != null && !entries.isEmpty()) {
      entries = readPayloads(entries);
    }
    long point = state.snapshot == null ? 0 : state.snapshot.index();
    return new Replay(state.hardState, state.snapshot, entries, state.identity,
        state.lastEntry > point ? state.lastEntry : 0);
  }

  /** The entries (read at open without their payloads) read again, whole, from the files. */
  private List<Entry> readPayloads(List<Entry> heads) {
    long first = heads.get(0).index();
    long last = heads.get(heads.size() - 1).index();
    List<Entry> whole = new ArrayList<>(heads.size());
    try {
      while (whole.size() < heads.size()) {
        List<Entry> read = storage.entries(first + whole.size(), last, Long.MAX_VALUE);
        if (read.isEmpty()) {
          throw new WalException("the log files no longer hold entry " + (first + whole.size())
              + ", which they held when the log was opened");
        }
        whole.addAll(read);
      }
    } finally {
      storage.closeTailers(); // made on this thread; the Raft loop reads on its own
    }
    for (int i = 0; i < heads.size(); i++) {
      Entry h = heads.get(i);
      Entry w = whole.get(i);
      if (w.index() != h.index() || w.term() != h.term()) {
        throw new WalException("entry " + h.index() + " read back from the log files is " + w.index() + "/"
            + w.term() + ", not what was read at open (term " + h.term() + ")");
      }
    }
    return whole;
  }

  /** One record read, where it was read (Chronicle's index, which holds the file's cycle). */
  private record Read(long index, WalRecord record) {}

  /** What one generation holds. */
  private static final class GenerationScan {
    final long generation;
    final Path dir;
    final RollCycle rollCycle;
    /** The records read before the first bad one, in order. */
    final List<Read> valid = new ArrayList<>();
    /** The first record that could not be read (null: none), and whether it looks torn. */
    String bad;
    long badIndex = -1;
    boolean badLooksTorn;

    GenerationScan(long generation, Path dir, RollCycle rollCycle) {
      this.generation = generation;
      this.dir = dir;
      this.rollCycle = rollCycle;
    }

    List<Path> files() throws IOException {
      try (var files = Files.list(dir)) {
        return files.filter(Files::isRegularFile).sorted().toList();
      }
    }

    long maxEntryIndex(long upToChronicleIndex) {
      long max = 0;
      for (Read r : valid) {
        if (r.index() <= upToChronicleIndex && r.record() instanceof WalRecord.EntryRecord e) {
          max = Math.max(max, e.entry().index());
        }
      }
      return max;
    }

    String where(long chronicleIndex) {
      return Wal.where(dir, rollCycle, chronicleIndex);
    }
  }

  /** Reads every generation; entry payloads at or below {@code payloadsAfter} are not kept. */
  private static List<GenerationScan> scanAll(Path dir, RollCycle rollCycle, long payloadsAfter) {
    List<GenerationScan> scans = new ArrayList<>();
    try (var entries = Files.list(dir)) {
      for (Path g : entries.filter(Files::isDirectory).sorted().toList()) {
        String name = g.getFileName().toString();
        if (name.matches("\\d{10}")) {
          scans.add(scan(new GenerationScan(Long.parseLong(name), g, rollCycle), payloadsAfter));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    scans.sort(Comparator.comparingLong(s -> s.generation));
    return scans;
  }

  private static GenerationScan scan(GenerationScan scan, long payloadsAfter) {
    try (SingleChronicleQueue q = queue(scan.dir, scan.rollCycle, SystemTimeProvider.INSTANCE);
         ExcerptTailer tailer = q.createTailer()) {
      while (true) {
        long index;
        byte[] raw;
        long position;
        try (DocumentContext dc = tailer.readingDocument()) {
          if (!dc.isPresent()) {
            return scan;
          }
          index = dc.index();
          Bytes<?> bytes = dc.wire().bytes();
          position = bytes.readPosition();
          raw = new byte[(int) bytes.readRemaining()];
          bytes.read(raw);
        }
        if (scan.bad != null) {
          continue; // nothing after a bad record counts; read on only to reach the end
        }
        try {
          WalRecord record = WalRecord.decode(raw); // the checksum covers the payload: checked, then dropped
          if (record instanceof WalRecord.EntryRecord er && er.entry().index() <= payloadsAfter
              && er.entry().size() > 0) {
            Entry e = er.entry();
            record = new WalRecord.EntryRecord(new Entry(e.term(), e.index(), e.type(), PAYLOAD_LEFT_IN_FILE));
          }
          scan.valid.add(new Read(index, record));
        } catch (WalRecord.BadRecord e) {
          scan.bad = e.getMessage();
          scan.badIndex = index;
          scan.badLooksTorn = hasZeroSector(raw, position);
        }
      }
    } catch (RuntimeException e) {
      // Chronicle itself could not go on (a header it cannot make sense of): as a bad record there.
      if (scan.bad == null) {
        scan.bad = "the queue could not be read on: " + e;
        scan.badIndex = scan.valid.isEmpty() ? -1 : scan.valid.get(scan.valid.size() - 1).index() + 1;
        scan.badLooksTorn = false;
      }
      return scan;
    }
  }

  /**
   * Whether some 512-byte sector of the record, as it lies in the file from {@code position}, reads as
   * zeros only (etcd's test for a torn entry): the trace of a write that never reached the disk. A
   * power loss loses whole pages written through the mapping while the page with the record's header
   * was kept; a write cut short by a full disk (SIGBUS) leaves each page it reached partly written
   * (large copies go several pages at a time) and the rest as zeros. A record whose bytes are all
   * there but wrong is damage, not a tear.
   */
  static boolean hasZeroSector(byte[] raw, long position) {
    final int sector = 512;
    long start = position;
    long end = position + raw.length;
    for (long p = start - Math.floorMod(start, sector); p < end; p += sector) {
      int from = (int) (Math.max(p, start) - start);
      int to = (int) (Math.min(p + sector, end) - start);
      boolean zeros = to > from;
      for (int i = from; i < to && zeros; i++) {
        zeros = raw[i] == 0;
      }
      if (zeros) {
        return true;
      }
    }
    return false;
  }

  /** The generations with the Chronicle index of the last record accepted from each, in order. */
  private record Resolved(List<GenerationScan> scans, Map<Long, Long> lastAccepted) {}

  /**
   * Decides how much of each generation counts, or throws if the log is damaged (class comment);
   * {@code report}: log a dropped torn tail (at open; a later replay reads the same log again).
   */
  private static Resolved resolve(List<GenerationScan> scans, boolean report) {
    Map<Long, Long> lastAccepted = new TreeMap<>();
    List<GenerationScan> withRecords = scans.stream().filter(s -> !s.valid.isEmpty()).toList();
    for (int i = 0; i < withRecords.size(); i++) {
      GenerationScan s = withRecords.get(i);
      // Only the oldest generation left may lack its first record: its first files were released.
      boolean starts = s.valid.get(0).record() instanceof WalRecord.GenerationRecord own
          && own.generation() == s.generation;
      if (!starts && i > 0) {
        throw new WalException("the log is damaged: " + s.where(s.valid.get(0).index())
            + " should be the start of generation " + s.generation);
      }
      GenerationScan next = i + 1 < withRecords.size() ? withRecords.get(i + 1) : null;
      if (next == null) {
        // The newest: it may end in a torn record, never synced, never acknowledged.
        if (s.bad != null && !s.badLooksTorn) {
          throw damaged(s, "a record that is not a torn tail");
        }
        if (s.bad != null && report) {
          LOG.warn("the log ends in a record cut short ({}: {}), written but never synced before the member "
              + "stopped: it and anything after it are dropped", s.where(s.badIndex), s.bad);
        }
        lastAccepted.put(s.generation, s.valid.get(s.valid.size() - 1).index());
        continue;
      }
      WalRecord.GenerationRecord successor = (WalRecord.GenerationRecord) next.valid.get(0).record();
      if (successor.previous() != s.generation) {
        throw new WalException("the log is damaged: generation " + s.generation + " holds records that the "
            + "start which wrote generation " + next.generation + " did not find (it continued generation "
            + successor.previous() + ")");
      }
      long named = successor.previousLastIndex();
      int end = -1;
      for (int r = 0; r < s.valid.size(); r++) {
        if (s.valid.get(r).index() == named) {
          end = r;
        }
      }
      if (end < 0) {
        throw damaged(s, "a record that an earlier start had read whole (" + s.where(named) + ")");
      }
      lastAccepted.put(s.generation, named);
    }
    for (GenerationScan s : scans) {
      if (s.valid.isEmpty() && s.bad != null && !s.badLooksTorn) {
        throw damaged(s, "the start of a generation"); // a torn start was never synced; this was written whole
      }
      // Named by a later generation, yet nothing read: damage (a generation deleted whole is not here).
      if (s.valid.isEmpty()) {
        for (GenerationScan later : withRecords) {
          if (later.generation > s.generation
              && later.valid.get(0).record() instanceof WalRecord.GenerationRecord g && g.previous() == s.generation) {
            throw damaged(s, "the records an earlier start had read up to " + s.where(g.previousLastIndex()));
          }
        }
      }
    }
    return new Resolved(withRecords, lastAccepted);
  }

  private static WalException damaged(GenerationScan s, String what) {
    String at = s.bad == null ? s.dir + " ends early" : s.where(s.badIndex) + " (" + s.bad + ")";
    return new WalException("the log is damaged: " + at + "; missing: " + what + ". The member cannot tell what "
        + "it acknowledged: restore its data directory from a backup, or remove the member and add it back");
  }

  /**
   * The state the accepted records describe; {@code located}: the live entries and where they lie,
   * including those at or below the snapshot point that the files still hold (the log is cut thousands
   * of entries before a point, so that a follower behind can catch up from them).
   */
  private record State(HardState hardState, Snapshot snapshot, List<Located> located, Identity identity,
      long lastEntry) {
    /** The entries after the snapshot point: what a restart replays. */
    List<Entry> entries() {
      long point = snapshot == null ? 0 : snapshot.index();
      return located.stream().map(Located::entry).filter(e -> e.index() > point).toList();
    }
  }

  /** A live entry and where it lies: its generation and Chronicle index there. */
  private record Located(Entry entry, long generation, long position) {}

  private static State replay(Resolved resolved, long after) {
    List<Located> entries = new ArrayList<>();
    HardState state = HardState.EMPTY;
    Snapshot snapshot = null;
    Identity identity = null;
    long lastEntry = 0; // the index of the last live entry, whether or not it is kept (after)
    for (GenerationScan s : resolved.scans()) {
      long last = resolved.lastAccepted().get(s.generation);
      for (Read read : s.valid) {
        if (read.index() > last) {
          break;
        }
        WalRecord record = read.record();
        if (record instanceof WalRecord.HardStateRecord h) {
          state = h.state();
        } else if (record instanceof WalRecord.MemberRecord m) {
          identity = m.identity();
        } else if (record instanceof WalRecord.PointRecord p) {
          snapshot = p.point();
          if (p.replace()) {
            entries.clear(); // a snapshot from the leader voids the whole log before it
            lastEntry = 0;
          }
        } else if (record instanceof WalRecord.EntryRecord er) {
          Entry e = er.entry();
          lastEntry = e.index(); // it supersedes every record at or above its index
          // Drop what this record supersedes: everything kept with an index >= its own.
          while (!entries.isEmpty() && entries.get(entries.size() - 1).entry().index() >= e.index()) {
            entries.remove(entries.size() - 1);
          }
          if (e.index() > after && (snapshot == null || e.index() > snapshot.index())) {
            entries.add(new Located(e, s.generation, read.index()));
          }
        }
      }
    }
    return new State(state, snapshot, entries, identity, lastEntry);
  }

  private static String generationName(long generation) {
    return String.format("%010d", generation);
  }

  private static int deleteTree(Path dir) throws IOException {
    int files = 0;
    try (var paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        if (Files.deleteIfExists(p) && !p.equals(dir)) {
          files++;
        }
      }
    }
    return files;
  }

  @Override
  public void close() {
    storage.close();
    try {
      closePayloadChannel();
    } catch (IOException e) {
      LOG.warn("closing the log file {} failed: {}", payloadFile, e.getMessage());
    }
    if (appender != null) {
      appender.close();
      queue.close();
    }
    options.syncer().close();
  }

  /** Writes a payload at an offset of the file being appended to. */
  @FunctionalInterface
  private interface PayloadWriter {
    void write(long offset, byte[] data);
  }

  /** Encodes records into one reusable buffer, with their checksums. */
  private static final class RecordWriter {
    private final CRC32C crc = new CRC32C();
    private ByteBuffer head = ByteBuffer.allocate(256);
    private final Encoded encoded = new Encoded();
    private final WrittenCheck check = new WrittenCheck();
    private final byte[] crcBytes = new byte[4];

    /** One encoded record: {@code head}, then {@code data} (an entry's payload, not copied), then the CRC. */
    final class Encoded {
      private byte[] data;
      private int crcValue;

      int length() {
        return head.position() + (data == null ? 0 : data.length) + 4;
      }

      /**
       * Writes the record, a large payload with pwrite (through {@code payloads}), then reads back what
       * went through the mapping (see {@link WrittenCheck}: a full disk can tear it silently; a pwrite
       * reports it).
       */
      void writeChecked(net.openhft.chronicle.bytes.BytesOut<?> out, PayloadWriter payloads) {
        long start = out.writePosition();
        // Big-endian, as the head (Chronicle's writeInt is little-endian).
        crcBytes[0] = (byte) (crcValue >>> 24);
        crcBytes[1] = (byte) (crcValue >>> 16);
        crcBytes[2] = (byte) (crcValue >>> 8);
        crcBytes[3] = (byte) crcValue;
        int headBytes = head.position();
        int dataBytes = data == null ? 0 : data.length;
        boolean aside = dataBytes >= PWRITE_PAYLOAD_BYTES;
        out.write(head.array(), 0, headBytes);
        if (aside) {
          out.writeSkip(dataBytes); // (Chronicle's positions are offsets in the file)
        } else if (data != null) {
          out.write(data);
        }
        out.write(crcBytes); // before the pwrite: the mapping then reaches past the payload, the file too
        if (aside) {
          payloads.write(start + headBytes, data);
        }
        var in = (net.openhft.chronicle.bytes.RandomDataInput) out;
        check.expect(in, start, head.array(), 0, headBytes);
        if (data != null && !aside) {
          check.expect(in, start + headBytes, data, 0, dataBytes);
        }
        check.expect(in, start + headBytes + dataBytes, crcBytes, 0, 4);
      }
    }

    private ByteBuffer start(byte kind, int bodyBytes) {
      if (head.capacity() < 2 + bodyBytes) {
        head = ByteBuffer.allocate(2 + bodyBytes);
      }
      head.clear();
      return head.put(WalRecord.VERSION).put(kind);
    }

    private Encoded finish(byte[] data) {
      crc.reset();
      crc.update(head.array(), 0, head.position());
      if (data != null) {
        crc.update(data, 0, data.length);
      }
      encoded.data = data;
      encoded.crcValue = (int) crc.getValue();
      return encoded;
    }

    Encoded entry(Entry e) {
      start(WalRecord.ENTRY, 8 + 8 + 1 + 4).putLong(e.term()).putLong(e.index())
          .put(WalRecord.typeCode(e.type())).putInt(e.data().length);
      return finish(e.data());
    }

    Encoded hardState(HardState s) {
      start(WalRecord.HARD_STATE, 24).putLong(s.term()).putLong(s.vote()).putLong(s.commit());
      return finish(null);
    }

    Encoded point(Snapshot s, boolean replace) {
      // The learners' part only when there are any: without it the record is the one earlier versions
      // wrote and read, so a member can still be rolled back to them.
      int learnersPart = s.learners().isEmpty() ? 0 : 4 + 8 * s.learners().size();
      ByteBuffer b = start(replace ? WalRecord.SNAPSHOT : WalRecord.COMPACTED, 8 + 8 + 4 + 8 * s.voters().size() + learnersPart)
          .putLong(s.index()).putLong(s.term()).putInt(s.voters().size());
      s.voters().forEach(b::putLong);
      if (learnersPart > 0) {
        b.putInt(s.learners().size());
        s.learners().forEach(b::putLong);
      }
      return finish(null);
    }

    Encoded member(Identity id) {
      start(WalRecord.MEMBER, 8 + 8 + 4 + id.membership().length).putLong(id.clusterId()).putLong(id.memberId())
          .putInt(id.membership().length).put(id.membership());
      return finish(null);
    }

    Encoded generation(long generation, long previous, long previousLastIndex) {
      start(WalRecord.GENERATION, 24).putLong(generation).putLong(previous).putLong(previousLastIndex);
      return finish(null);
    }
  }
}
