package io.vetcd.wal;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.raft.Snapshot;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.io.IOException;
import java.nio.file.Files;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import java.util.TreeMap;
import net.openhft.chronicle.bytes.SyncMode;
import net.openhft.chronicle.core.time.SystemTimeProvider;
import net.openhft.chronicle.core.time.TimeProvider;
import net.openhft.chronicle.queue.ChronicleQueue;
import net.openhft.chronicle.queue.RollCycle;
import net.openhft.chronicle.queue.rollcycles.LegacyRollCycles;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.posix.PosixAPI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Raft log and hard state on a Chronicle Queue. Records are only ever appended:
 * <ul>
 *   <li>ENTRY (term, index, type, data). Chronicle cannot cut its tail, so a follower that must drop a
 *       conflicting suffix simply appends the replacement: on replay, an entry with index i supersedes
 *       every earlier record with index ≥ i (etcd's WAL does the same).
 *   <li>HARD_STATE (term, vote, commit): the newest one wins.
 * </ul>
 * One thread at a time writes (see {@link #takeOver()}); {@link #sync()} returns once the records are
 * on disk.
 */
public final class Wal implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(Wal.class);
  private static final byte ENTRY = 1;
  private static final byte HARD_STATE = 2;
  /** The state up to an index is in the keyspace: earlier entries are no longer needed. */
  private static final byte COMPACTED = 3;
  /** A snapshot from the leader replaced the keyspace: the whole log before it is void. */
  private static final byte SNAPSHOT = 4;

  /**
   * What a restart finds: the newest hard state, the newest snapshot point (null if none) and the
   * log's live entries after it, in index order.
   */
  public record Replay(HardState hardState, Snapshot snapshot, List<Entry> entries) {
    public long lastIndex() {
      return entries.isEmpty() ? 0 : entries.get(entries.size() - 1).index();
    }
  }

  /**
   * A log file is left for the next one once this much was written to it. Syncing a memory-mapped
   * file got much slower past a few tens of MB (ext4 here: 0.06-0.1 ms per sync up to ~30 MB of
   * records, ~0.7 ms past ~40 MB), and Chronicle ends a file only when its time cycle ends: at a
   * steady hundred writes a second an hourly file passes that size, and every later write waited for
   * the slower sync. So files end by size too, well below it.
   */
  static final long ROLL_BYTES = 16L << 20;

  private final Path dir;
  private final SingleChronicleQueue queue;
  private final ExcerptAppender appender;
  private final RollingClock clock;
  /** Bytes written to the file of cycle {@link #cycleWritten} (only counted by this process). */
  private long bytesWritten;
  private int cycleWritten = Integer.MIN_VALUE;
  /** The highest entry index written to each cycle file: a file is deletable once all of it is void. */
  private final Map<Integer, Long> lastIndexByCycle = new TreeMap<>();
  /** The newest hard state written; repeated with each snapshot point so deleting files never loses it. */
  private HardState lastHardState;

  private Wal(Path dir, SingleChronicleQueue queue, RollingClock clock) {
    this.dir = dir;
    this.queue = queue;
    this.clock = clock;
    clock.cycles(queue.epoch(), queue.rollCycle().lengthInMillis()); // the file's cycle, if it had one
    int newest = queue.lastCycle();
    if (newest != Integer.MIN_VALUE) {
      // Files ended by size carry the names of cycles ahead of the real clock: after a restart within
      // them, Chronicle would write into an ended file (WriteAfterEOFException, no more writes) or
      // before the newest. Appends start a file past every existing one.
      clock.skipPast(newest);
    }
    this.appender = queue.createAppender();
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

  /** Opens the log in {@code dir}: a file per minute of writing, or per {@link #ROLL_BYTES}. */
  public static Wal open(Path dir) {
    return open(dir, LegacyRollCycles.MINUTELY, SystemTimeProvider.INSTANCE);
  }

  /** Opens the log with another roll cycle and clock (tests roll files by the second). */
  public static Wal open(Path dir, RollCycle rollCycle, TimeProvider clock) {
    checkDurableSync();
    RollingClock rolling = new RollingClock(clock);
    SingleChronicleQueue queue = ChronicleQueue.singleBuilder(dir)
        .syncMode(SyncMode.SYNC)
        .rollCycle(rollCycle)
        .timeProvider(rolling)
        .build();
    return new Wal(dir, queue, rolling);
  }

  /**
   * Chronicle's msync goes through its posix library; if that falls back to the no-op implementation,
   * sync() silently stops reaching the disk. Refuse to run without durability rather than lose writes.
   */
  private static void checkDurableSync() {
    String impl = PosixAPI.posix().getClass().getName();
    if (impl.contains("NoOp")) {
      throw new IllegalStateException("Chronicle's posix library did not load (" + impl
          + "): fsync of the log would be a no-op");
    }
    LOG.debug("log sync through {}", impl);
  }

  public void append(Entry entry) {
    appender.writeBytes(b -> {
      b.writeByte(ENTRY);
      b.writeLong(entry.term());
      b.writeLong(entry.index());
      b.writeByte((byte) entry.type().ordinal());
      b.writeInt(entry.data().length);
      b.write(entry.data());
    });
    lastIndexByCycle.merge(appender.cycle(), entry.index(), Math::max);
    written(1 + 8 + 8 + 1 + 4 + entry.data().length);
  }

  public void append(HardState state) {
    lastHardState = state;
    appender.writeBytes(b -> {
      b.writeByte(HARD_STATE);
      b.writeLong(state.term());
      b.writeLong(state.vote());
      b.writeLong(state.commit());
    });
    written(1 + 8 + 8 + 8);
  }

  /** Counts a record just appended; past {@link #ROLL_BYTES} the next one starts a new file. */
  private void written(int bytes) {
    int cycle = appender.cycle();
    if (cycle != cycleWritten) {
      cycleWritten = cycle;
      bytesWritten = 0;
    }
    bytesWritten += bytes + 4; // and Chronicle's header
    if (bytesWritten >= ROLL_BYTES) {
      clock.skipPast(cycle);
    }
  }

  /**
   * Hands the appender to the calling thread. Chronicle binds an appender to the first thread that
   * uses it; the member writes its bootstrap records on the start-up thread, then the append thread
   * takes over for good.
   */
  public void takeOver() {
    appender.singleThreadedCheckReset();
  }

  /**
   * Records that the keyspace durably holds the state up to {@code snapshot.index()}: on replay,
   * entries up to it are dropped, and {@code replace} (a snapshot received from the leader) drops
   * every earlier entry, whatever its index.
   */
  public void append(Snapshot snapshot, boolean replace) {
    appender.writeBytes(b -> {
      b.writeByte(replace ? SNAPSHOT : COMPACTED);
      b.writeLong(snapshot.index());
      b.writeLong(snapshot.term());
      b.writeInt(snapshot.voters().size());
      snapshot.voters().forEach(b::writeLong);
    });
    if (lastHardState != null) {
      append(lastHardState); // beside the point, so that deleting older files cannot lose it
    }
  }

  /**
   * Deletes the log files that hold nothing a replay still needs: files older than the one being
   * written whose entries are all at or below {@code snapshotIndex} (void after the snapshot point
   * written for it). Returns how many files went. Same thread as the appends.
   */
  public int release(long snapshotIndex) {
    int current = appender.cycle();
    DateTimeFormatter names = DateTimeFormatter.ofPattern(queue.rollCycle().format()).withZone(ZoneOffset.UTC);
    int deleted = 0;
    for (var it = lastIndexByCycle.entrySet().iterator(); it.hasNext(); ) {
      var cycle = it.next();
      if (cycle.getKey() >= current || cycle.getValue() > snapshotIndex) {
        break; // files are in cycle order: the first one still needed keeps every later one
      }
      Path file = dir.resolve(names.format(Instant.ofEpochMilli(
          (long) cycle.getKey() * queue.rollCycle().lengthInMillis())) + SingleChronicleQueue.SUFFIX);
      try {
        if (Files.deleteIfExists(file)) {
          deleted++;
        }
      } catch (IOException e) {
        LOG.warn("could not delete the old log file {}: {}", file, e.toString());
        break;
      }
      it.remove();
    }
    return deleted;
  }

  /** Forces every record appended so far to disk (msync MS_SYNC). */
  public void sync() {
    appender.sync();
  }

  /** Reads the whole log, applying the supersede rule; entries at or below {@code after} are skipped. */
  public Replay replay(long after) {
    List<Entry> entries = new ArrayList<>();
    HardState[] state = {HardState.EMPTY};
    Snapshot[] snapshot = {null};
    try (ExcerptTailer tailer = queue.createTailer()) {
      boolean more = true;
      while (more) {
        more = tailer.readBytes(b -> {
          byte kind = b.readByte();
          if (kind == HARD_STATE) {
            state[0] = new HardState(b.readLong(), b.readLong(), b.readLong());
            lastHardState = state[0];
            return;
          }
          if (kind == COMPACTED || kind == SNAPSHOT) {
            long index = b.readLong();
            long term = b.readLong();
            List<Long> voters = new ArrayList<>();
            for (int n = b.readInt(); n > 0; n--) {
              voters.add(b.readLong());
            }
            snapshot[0] = new Snapshot(index, term, voters, new byte[0]);
            entries.removeIf(e -> kind == SNAPSHOT || e.index() <= index);
            return;
          }
          long term = b.readLong();
          long index = b.readLong();
          Entry.Type type = Entry.Type.values()[b.readByte()];
          byte[] data = new byte[b.readInt()];
          b.read(data);
          // Drop what this record supersedes: everything kept with an index >= its own.
          while (!entries.isEmpty() && entries.get(entries.size() - 1).index() >= index) {
            entries.remove(entries.size() - 1);
          }
          lastIndexByCycle.merge(tailer.cycle(), index, Math::max);
          if (index > after && (snapshot[0] == null || index > snapshot[0].index())) {
            entries.add(new Entry(term, index, type, data));
          }
        });
      }
    }
    return new Replay(state[0], snapshot[0], entries);
  }

  @Override
  public void close() {
    appender.close();
    queue.close();
  }
}
