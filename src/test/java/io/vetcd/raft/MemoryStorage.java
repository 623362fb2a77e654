package io.vetcd.raft;

import java.util.ArrayList;
import java.util.List;

/**
 * What one member has on "disk" in tests: the durable result of the Readies it persisted, by the same
 * rules the real log follows (a leader's snapshot resets the log; entry index i supersedes stored
 * records with index ≥ i). Restarting a member from it is a crash that lost nothing durable.
 */
final class MemoryStorage {

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

  long lastIndex() {
    return entries.isEmpty() ? (snapshot == null ? 0 : snapshot.index())
        : entries.get(entries.size() - 1).index();
  }
}
