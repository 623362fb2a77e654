package io.vetcd.wal;

import io.vetcd.raft.Entry;
import io.vetcd.raft.LogStorage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.wire.DocumentContext;

/**
 * The log read back by Raft index, for the core's entries that left memory ({@link LogStorage}): a
 * lagging follower is served from the files as long as they hold what it needs. Used by the Raft loop
 * only (Chronicle tailers belong to one thread): it reads the generation being appended to through the
 * appender's own queue, and older generations through queues it opens on first use and closes once
 * their entries are released.
 *
 * <p>Reads come from pages the member wrote recently (the page cache, mostly) and are bounded by the
 * core's bytes per message; the entries asked for are durable and committed, never superseded.
 */
final class WalStorage implements LogStorage {

  private final Wal wal;
  private final EntryPositions positions;
  private final long[] where = new long[2];
  /** Queues and tailers of older generations, opened on first use. */
  private final Map<Long, SingleChronicleQueue> olderQueues = new HashMap<>();
  private final Map<Long, ExcerptTailer> tailers = new HashMap<>();
  /** Set by {@link #close}: the log is closing (shutdown) and nothing is read any more. */
  private boolean closed;

  WalStorage(Wal wal, EntryPositions positions) {
    this.wal = wal;
    this.positions = positions;
  }

  @Override
  public long term(long index) {
    return positions.term(index);
  }

  /**
   * Synchronized with {@link #close} (the shutdown thread closes the log while the Raft loop may still
   * be reading): once closed, nothing is read, and the core sees the entries as unavailable rather than
   * the log as damaged.
   */
  @Override
  public synchronized List<Entry> entries(long lo, long hi, long maxBytes) {
    if (closed) {
      return List.of();
    }
    closeReleasedGenerations();
    List<Entry> out = new ArrayList<>();
    long bytes = 0;
    for (long i = lo; i <= hi; i++) {
      if (!positions.locate(i, where)) {
        break;
      }
      Entry e = read(i, where[0], where[1]);
      bytes += e.size();
      if (!out.isEmpty() && bytes > maxBytes) {
        break;
      }
      out.add(e);
    }
    return out;
  }

  /** Reads entry {@code index} at Chronicle index {@code position} of {@code generation}. */
  private Entry read(long index, long generation, long position) {
    ExcerptTailer tailer = tailer(generation);
    byte[] raw;
    try {
      if (!tailer.moveToIndex(position)) {
        throw missing(index, generation, position, "no record there");
      }
      try (DocumentContext dc = tailer.readingDocument()) {
        if (!dc.isPresent() || dc.index() != position) {
          throw missing(index, generation, position, "no record there");
        }
        Bytes<?> bytes = dc.wire().bytes();
        raw = new byte[(int) bytes.readRemaining()];
        bytes.read(raw);
      }
    } catch (WalException e) {
      throw e;
    } catch (RuntimeException e) {
      throw missing(index, generation, position, e.toString());
    }
    WalRecord record;
    try {
      record = WalRecord.decode(raw);
    } catch (WalRecord.BadRecord e) {
      throw missing(index, generation, position, e.getMessage());
    }
    if (!(record instanceof WalRecord.EntryRecord er) || er.entry().index() != index) {
      throw missing(index, generation, position, "it holds " + record);
    }
    return er.entry();
  }

  private ExcerptTailer tailer(long generation) {
    ExcerptTailer tailer = tailers.get(generation);
    if (tailer == null) {
      SingleChronicleQueue queue;
      if (generation == wal.generation()) {
        queue = wal.appendingQueue();
      } else {
        queue = Wal.readOnlyQueue(wal.generationDir(generation), wal.rollCycle());
        olderQueues.put(generation, queue);
      }
      tailer = queue.createTailer();
      tailers.put(generation, tailer);
    }
    return tailer;
  }

  /** Closes what was opened for generations whose entries are all released (their files go). */
  private void closeReleasedGenerations() {
    long oldest = positions.oldestGeneration();
    for (Iterator<Map.Entry<Long, SingleChronicleQueue>> it = olderQueues.entrySet().iterator(); it.hasNext(); ) {
      var older = it.next();
      if (oldest < 0 || older.getKey() < oldest) {
        closeQuietly(tailers.remove(older.getKey()));
        closeQuietly(older.getValue());
        it.remove();
      }
    }
  }

  /**
   * Closes the tailers, which belong to the thread that made them: after the restart's own reads (on
   * the thread that opens the member), the Raft loop makes its own.
   */
  synchronized void closeTailers() {
    tailers.values().forEach(WalStorage::closeQuietly);
    tailers.clear();
  }

  /** Closes the older generations' queues (at the log's close: nothing reads any more). */
  synchronized void close() {
    closed = true;
    olderQueues.values().forEach(WalStorage::closeQuietly);
    olderQueues.clear();
    tailers.clear();
  }

  private static void closeQuietly(AutoCloseable c) {
    if (c == null) {
      return;
    }
    try {
      c.close();
    } catch (Exception e) {
      // Its files are deleted already; nothing of it is read again.
    }
  }

  private WalException missing(long index, long generation, long position, String why) {
    return new WalException("the log is damaged: entry " + index + " should be at "
        + wal.where(generation, position) + " but cannot be read (" + why + ")");
  }
}
