package io.vetcd.raft;

import java.util.ArrayList;
import java.util.List;

/**
 * What one member has on "disk" in tests: the durable result of the Readies it persisted, by the same
 * rules the real log follows (a leader's snapshot resets the log; entry index i supersedes stored
 * records with index ≥ i). Restarting a member from it is a crash that lost nothing durable.
 */
final class MemoryStorage implements LogStorage {

  HardState hardState = HardState.EMPTY;
  /** The latest snapshot (installed from a leader or taken locally), null if none. */
  Snapshot snapshot;
  /** Entries after the snapshot, contiguous. */
  final List<Entry> entries = new ArrayList<>();

  void persist(Ready rd) {
    if (rd.snapshot() != null) {
      snapshot = rd.snapshot();
      entries.clear();
    }
    if (!rd.entries().isEmpty()) {
      long first = rd.entries().get(0).index();
      entries.removeIf(e -> e.index() >= first);
      long expect = (entries.isEmpty() ? (snapshot == null ? 0 : snapshot.index())
          : entries.get(entries.size() - 1).index()) + 1;
      if (first != expect) {
        throw new AssertionError("gap in stored log: have up to " + (expect - 1) + ", got " + first);
      }
      entries.addAll(rd.entries());
    }
    if (rd.hardState() != null) {
      hardState = rd.hardState();
    }
  }

  /** The server took a snapshot: entries it covers leave the stored log. */
  void compact(Snapshot s) {
    snapshot = s;
    entries.removeIf(e -> e.index() <= s.index());
  }

  /** The core reads entries it trimmed from memory back from here, as the server does from its log. */
  @Override
  public long term(long index) {
    Entry e = stored(index);
    return e == null ? UNAVAILABLE : e.term();
  }

  @Override
  public List<Entry> entries(long lo, long hi, long maxBytes) {
    List<Entry> out = new ArrayList<>();
    long bytes = 0;
    for (long i = lo; i <= hi; i++) {
      Entry e = stored(i);
      if (e == null) {
        break;
      }
      bytes += e.size();
      if (!out.isEmpty() && bytes > maxBytes) {
        break;
      }
      out.add(e);
    }
    return out;
  }

  private Entry stored(long index) {
    if (entries.isEmpty()) {
      return null;
    }
    long first = entries.get(0).index();
    return index < first || index > lastIndex() ? null : entries.get((int) (index - first));
  }

  long lastIndex() {
    return entries.isEmpty() ? (snapshot == null ? 0 : snapshot.index())
        : entries.get(entries.size() - 1).index();
  }
}
