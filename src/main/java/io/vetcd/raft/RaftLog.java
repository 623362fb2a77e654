package io.vetcd.raft;

import java.util.ArrayList;
import java.util.List;

/**
 * A member's log as the core sees it (etcd-io/raft log.go + log_unstable.go): a snapshot standing in
 * for the compacted prefix, the entries after it — the older ones only in the {@link LogStorage}, the
 * recent ones also in memory — plus the four positions that tell how far each entry has travelled
 * through the server.
 *
 * <pre>
 *   snapshot.index  <  firstIndex ... offset  <  offset+1 ... applied ... committed ... lastIndex
 *                      \ in the storage only /   \ in memory (and, once persisted, the storage) /
 *                                                       \ persisted /      handed ... lastIndex
 * </pre>
 *
 * Memory and compaction are separate: entries leave memory ({@link #trimMemory}) once applied, long
 * before the server takes a snapshot point and compacts ({@link #compact}); until then the storage
 * serves them to a follower that needs them, and only a follower behind the compaction point needs a
 * snapshot.
 *
 * <p>Invariants: {@code snapshot.index <= offset <= applied <= committed <= lastIndex};
 * {@code applied <= max(persisted, snapshot.index)} (only durable entries are applied);
 * {@code persisted <= handed <= lastIndex}; {@code entries.get(i).index() == offset + 1 + i}. Entries up
 * to {@code offset} are durable, committed, and never superseded.
 */
final class RaftLog {

  /** Returned by {@link #term} for an index outside [snapshot.index, lastIndex]. */
  static final long UNAVAILABLE = -1;

  /**
   * The compaction point: every entry up to {@code snapshot.index} lives only in it. {@link
   * Snapshot#EMPTY} (position 0 of term 0) for a log never compacted. This is also the snapshot the
   * leader ships to a follower that needs compacted entries.
   */
  private Snapshot snapshot;
  /** The entries after {@code offset}, contiguous. */
  private final ArrayList<Entry> entries = new ArrayList<>();
  /**
   * The payload bytes of {@code entries}: {@link #trimPointKeeping} answers from it without walking
   * thousands of entries on every applied batch (a tenth of the leader's loop once measured).
   */
  private long memoryBytes;
  /**
   * The payload bytes of the entries after {@code committed} (all in memory: only applied entries are
   * trimmed): what proposals not yet committed hold, which the server bounds.
   */
  private long uncommittedBytes;
  /**
   * The last index not in memory: entries from {@code snapshot.index + 1} to it are read from {@link
   * #storage}. Equal to {@code snapshot.index} while nothing was trimmed.
   */
  private long offset;
  /** The durable log, for the entries before {@code offset + 1}. */
  private final LogStorage storage;
  /** The highest index known committed (Raft §5.3). Never decreases. */
  private long committed;
  /**
   * The highest index handed to the server for applying, through {@code committedEntries} or a
   * snapshot. The server may still be applying it.
   */
  private long applied;
  /** The last index handed to the server for persisting in a Ready; entries after it are new. */
  private long handed;
  /**
   * The highest index whose whole prefix is durable (its Ready was advanced) and still matches the log:
   * lowered when a conflicting suffix is replaced, so a superseded write never counts.
   */
  private long persisted;
  /** A snapshot received from the leader and restored, not yet handed to the server. */
  private Snapshot pendingSnapshot;

  /**
   * A log as restored from disk: everything given is durable. Entries at or below the snapshot index
   * are skipped (the snapshot covers them); the rest must follow it contiguously.
   */
  RaftLog(Snapshot snapshot, List<Entry> restored, long committed, long applied) {
    this(snapshot, restored, committed, applied, LogStorage.NONE);
  }

  /**
   * As above, with the storage that serves entries once they leave memory. The restored entries may
   * start after {@code snapshot.index + 1}: a restart loads only what is not applied yet (and the last
   * entry), and the storage serves those before.
   */
  RaftLog(Snapshot snapshot, List<Entry> restored, long committed, long applied, LogStorage storage) {
    this.snapshot = snapshot;
    this.storage = storage;
    long expect = snapshot.index() + 1;
    for (Entry e : restored) {
      if (e.index() > snapshot.index()) {
        expect = e.index();
        break;
      }
    }
    if (expect > snapshot.index() + 1 && storage == LogStorage.NONE) {
      throw new IllegalArgumentException("restored entries start at " + expect + ", after snapshot "
          + snapshot.index() + " + 1, with no storage to read those before from");
    }
    this.offset = expect - 1;
    for (Entry e : restored) {
      if (e.index() <= snapshot.index()) {
        continue;
      }
      if (e.index() != expect) {
        throw new IllegalArgumentException("restored entries not contiguous after snapshot "
            + snapshot.index() + ": got " + e.index() + ", want " + expect);
      }
      entries.add(e);
      memoryBytes += e.size();
      expect++;
    }
    long c = Math.max(committed, snapshot.index());
    if (c > lastIndex()) {
      throw new IllegalArgumentException("commit " + c + " beyond last index " + lastIndex());
    }
    this.committed = c;
    for (long i = c + 1; i <= lastIndex(); i++) {
      uncommittedBytes += entries.get((int) (i - offset - 1)).size();
    }
    long a = Math.max(applied, snapshot.index());
    if (a > c) {
      throw new IllegalArgumentException("applied " + a + " beyond commit " + c);
    }
    if (offset > a) {
      throw new IllegalArgumentException("restored entries start at " + (offset + 1) + ", after applied " + a
          + " + 1: the entries not applied yet must be in memory");
    }
    this.applied = a;
    this.handed = lastIndex();
    this.persisted = lastIndex();
  }

  Snapshot snapshot() {
    return snapshot;
  }

  long firstIndex() {
    return snapshot.index() + 1;
  }

  long lastIndex() {
    return offset + entries.size();
  }

  /** The first index held in memory (lastIndex + 1 if none). */
  long firstInMemory() {
    return offset + 1;
  }

  long committed() {
    return committed;
  }

  long applied() {
    return applied;
  }

  long persisted() {
    return persisted;
  }

  long handed() {
    return handed;
  }

  /** The term of the entry at {@code index}, or {@link #UNAVAILABLE} if compacted or beyond the end. */
  long term(long index) {
    if (index == snapshot.index()) {
      return snapshot.term();
    }
    if (index < snapshot.index() || index > lastIndex()) {
      return UNAVAILABLE;
    }
    if (index <= offset) {
      return storage.term(index);
    }
    return entries.get((int) (index - offset - 1)).term();
  }

  long lastTerm() {
    return term(lastIndex());
  }

  boolean matchTerm(long index, long term) {
    long t = term(index);
    return t != UNAVAILABLE && t == term;
  }

  /**
   * Raft §5.4.1: a log ending at ({@code index}, {@code term}) is at least as up-to-date as ours if
   * its last term is later, or the same with an index at least as high.
   */
  boolean isUpToDate(long index, long term) {
    long lastTerm = lastTerm();
    return term > lastTerm || (term == lastTerm && index >= lastIndex());
  }

  /** Entries [lo, hi] (inclusive), copied; both must be in memory. */
  List<Entry> slice(long lo, long hi) {
    if (lo > hi) {
      return List.of();
    }
    if (lo <= offset || hi > lastIndex()) {
      throw new IllegalArgumentException("slice [" + lo + "," + hi + "] outside [" + (offset + 1)
          + "," + lastIndex() + "]");
    }
    return List.copyOf(entries.subList((int) (lo - offset - 1), (int) (hi - offset)));
  }

  /**
   * Up to {@code maxCount} entries from {@code lo}, stopping before {@code maxBytes} of payload (but
   * always at least one). Null if {@code lo} is compacted, or the storage lacks it: the reader needs
   * the snapshot. Entries no longer in memory come from the storage, up to the first in memory.
   */
  List<Entry> entriesFrom(long lo, int maxCount, long maxBytes) {
    if (lo < firstIndex()) {
      return null;
    }
    if (lo <= offset) {
      List<Entry> stored = storage.entries(lo, Math.min(offset, lo + maxCount - 1), maxBytes);
      return stored.isEmpty() ? null : stored;
    }
    List<Entry> out = new ArrayList<>();
    long bytes = 0;
    for (long i = lo; i <= lastIndex() && out.size() < maxCount; i++) {
      Entry e = entries.get((int) (i - offset - 1));
      bytes += e.size();
      if (!out.isEmpty() && bytes > maxBytes) {
        break;
      }
      out.add(e);
    }
    return out;
  }

  /** The leader appends its own new entries; they must follow the last one. */
  void append(List<Entry> ents) {
    if (!ents.isEmpty() && ents.get(0).index() != lastIndex() + 1) {
      throw new IllegalArgumentException("append at " + ents.get(0).index() + " after " + lastIndex());
    }
    entries.addAll(ents);
    memoryBytes += Entry.size(ents);
    uncommittedBytes += Entry.size(ents); // after the last entry, so after the commit index
  }

  /**
   * The follower's side of an APP (Raft §5.3, figure 2 "AppendEntries receiver implementation"): if
   * our log holds ({@code index}, {@code logTerm}), append {@code ents} after it, replacing a
   * conflicting suffix, and learn the leader's commit (up to the last entry the APP vouches for).
   * Returns the last index the APP vouches for, or -1 if the consistency check fails.
   */
  long maybeAppend(long index, long logTerm, long leaderCommit, List<Entry> ents) {
    if (!matchTerm(index, logTerm)) {
      return -1;
    }
    long lastNew = index + ents.size();
    long conflict = findConflict(ents);
    if (conflict != 0) {
      if (conflict <= committed) {
        throw new IllegalStateException(
            "entry " + conflict + " conflicts with committed entry (commit " + committed + ")");
      }
      truncateAndAppend(ents.subList((int) (conflict - index - 1), ents.size()));
    }
    commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /**
   * The index of the first entry of {@code ents} that our log lacks or holds with another term; 0 if
   * we already hold them all. Entries must be contiguous.
   */
  long findConflict(List<Entry> ents) {
    for (Entry e : ents) {
      if (!matchTerm(e.index(), e.term())) {
        return e.index();
      }
    }
    return 0;
  }

  /**
   * The highest index at or below {@code index} whose term is at or below {@code term} (or the
   * snapshot index if none in memory). Fast backtracking: every entry after it has a term above
   * {@code term}, so it cannot match a log whose entry at that place has term {@code term} or less.
   */
  long findConflictByTerm(long index, long term) {
    index = Math.min(index, lastIndex());
    while (index > snapshot.index() && term(index) > term) {
      index--;
    }
    return Math.max(index, snapshot.index());
  }

  /** Writes {@code ents} from their first index, dropping whatever our log holds there and after. */
  void truncateAndAppend(List<Entry> ents) {
    if (ents.isEmpty()) {
      return;
    }
    long first = ents.get(0).index();
    if (first <= committed || first <= offset || first > lastIndex() + 1) {
      throw new IllegalStateException("cannot write entries from " + first + " (commit " + committed
          + ", last " + lastIndex() + ")");
    }
    List<Entry> superseded = entries.subList((int) (first - offset - 1), entries.size());
    long supersededBytes = Entry.size(superseded);
    memoryBytes -= supersededBytes;
    uncommittedBytes -= supersededBytes; // all after the commit index (checked above)
    superseded.clear();
    entries.addAll(ents);
    memoryBytes += Entry.size(ents);
    uncommittedBytes += Entry.size(ents);
    // The superseded entries are no longer ours: neither handed nor durable any more.
    handed = Math.min(handed, first - 1);
    persisted = Math.min(persisted, first - 1);
  }

  void commitTo(long index) {
    if (index > committed) {
      if (index > lastIndex()) {
        throw new IllegalStateException("commit " + index + " beyond last index " + lastIndex());
      }
      for (long i = committed + 1; i <= index; i++) {
        uncommittedBytes -= entries.get((int) (i - offset - 1)).size();
      }
      committed = index;
    }
  }

  /**
   * Replaces the whole log with a snapshot from the leader (Raft §7, "InstallSnapshot receiver"):
   * the caller checked that {@code s} is newer than our commit and does not match our log.
   */
  void restore(Snapshot s) {
    // Only the committed prefix of what was durable stays meaningful: it is part of the snapshot.
    persisted = Math.min(persisted, committed);
    snapshot = s;
    offset = s.index();
    entries.clear();
    memoryBytes = 0;
    uncommittedBytes = 0;
    committed = s.index();
    applied = s.index();
    handed = s.index();
    pendingSnapshot = s;
  }

  /**
   * The server has captured its state at {@code s.index()}: the entries it covers are void, and a
   * follower that needs them gets a snapshot. The index must be applied and durable; the term must be
   * the log's.
   */
  void compact(Snapshot s) {
    if (s.index() <= snapshot.index()) {
      throw new IllegalArgumentException(
          "snapshot " + s.index() + " not after compaction point " + snapshot.index());
    }
    if (s.index() > applied || s.index() > persisted) {
      throw new IllegalArgumentException("snapshot " + s.index() + " beyond applied " + applied
          + " or persisted " + persisted);
    }
    if (term(s.index()) != s.term()) {
      throw new IllegalArgumentException(
          "snapshot term " + s.term() + " but entry " + s.index() + " has term " + term(s.index()));
    }
    dropFromMemory(s.index());
    snapshot = s;
  }

  /**
   * Moves the compaction point back to {@code index}, whose entries up to the current point the storage
   * holds: after a restart the log is restored from a snapshot point, but the files still hold the
   * entries before it down to where they were cut, and a follower that far behind should catch up from
   * them, not through a snapshot. They stay out of memory (the trim point is unchanged). False (and
   * nothing changes) if the storage does not have entry {@code index}.
   */
  boolean reachBack(long index) {
    if (index >= snapshot.index() || storage == LogStorage.NONE) {
      return false;
    }
    long t = storage.term(index);
    if (t < 0) {
      return false;
    }
    snapshot = new Snapshot(index, t, snapshot.voters(), snapshot.learners(), new byte[0]);
    return true;
  }

  /**
   * Drops the entries up to {@code index} from memory; the storage serves them from now on. Only
   * applied, durable entries can go (nothing at or below them changes any more), and only with a
   * storage to read them back from.
   */
  void trimMemory(long index) {
    if (index <= offset) {
      return;
    }
    if (storage == LogStorage.NONE) {
      throw new IllegalStateException("no storage to read trimmed entries back from");
    }
    if (index > applied || index > persisted) {
      throw new IllegalArgumentException("cannot drop entries up to " + index + " from memory: applied "
          + applied + ", persisted " + persisted);
    }
    dropFromMemory(index);
  }

  /**
   * The highest index at or below {@code upTo} whose entries from it through {@code upTo} hold more than
   * {@code maxBytes} of payload: trimming up to it leaves at most {@code maxBytes} of them in memory.
   * The trim point itself ({@code firstInMemory - 1}) if they fit.
   */
  long trimPointKeeping(long upTo, long maxBytes) {
    if (memoryBytes <= maxBytes) {
      return offset; // all of memory fits, so the part up to upTo does
    }
    long bytes = 0;
    for (long i = Math.min(upTo, lastIndex()); i > offset; i--) {
      bytes += entries.get((int) (i - offset - 1)).size();
      if (bytes > maxBytes) {
        return i;
      }
    }
    return offset;
  }

  private void dropFromMemory(long index) {
    if (index > offset) {
      List<Entry> dropped = entries.subList(0, (int) (index - offset));
      memoryBytes -= Entry.size(dropped);
      dropped.clear();
      offset = index;
    }
  }

  /** The payload bytes of the entries not yet committed. */
  long uncommittedBytes() {
    return uncommittedBytes;
  }

  // ---- Ready bookkeeping ----

  /** Entries not yet handed out for persisting. */
  List<Entry> unhandedEntries() {
    return slice(handed + 1, lastIndex());
  }

  void markHanded() {
    handed = lastIndex();
  }

  /** The snapshot to persist and install, or null. */
  Snapshot pendingSnapshot() {
    return pendingSnapshot;
  }

  void markSnapshotHanded() {
    pendingSnapshot = null;
  }

  /** Committed, durable entries not yet handed for applying. */
  List<Entry> nextCommittedEntries() {
    return slice(applied + 1, Math.min(committed, persisted));
  }

  boolean hasNextCommittedEntries() {
    return Math.min(committed, persisted) > applied;
  }

  void appliedTo(long index) {
    applied = Math.max(applied, index);
  }

  /** The server made a handed-out snapshot durable. */
  void snapshotPersisted(Snapshot s) {
    // Committed never falls and s.index() was committed at restore: the prefix is still ours.
    persisted = Math.max(persisted, s.index());
  }

  /**
   * The server made handed-out entries durable. Only the part still in our log counts: the last of
   * them whose (index, term) still matches vouches for all before it (Log Matching), and all before
   * the first were durable already (Readies are persisted in order).
   */
  void entriesPersisted(List<Entry> written) {
    if (written.isEmpty() || written.get(0).index() - 1 > persisted) {
      return;
    }
    for (int i = written.size() - 1; i >= 0; i--) {
      Entry e = written.get(i);
      if (e.index() > offset && matchTerm(e.index(), e.term())) {
        persisted = Math.max(persisted, e.index());
        return;
      }
    }
  }

  /** A copy of the entries in memory (after {@link #firstInMemory}). */
  List<Entry> entries() {
    return List.copyOf(entries);
  }
}
