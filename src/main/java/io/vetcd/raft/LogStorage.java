package io.vetcd.raft;

import java.util.List;

/**
 * Where the core reads back entries it dropped from memory (etcd-io/raft's {@code Storage}, reduced to
 * what the core asks of it): the durable log, which holds every entry after the compaction point while
 * the core keeps only the recent ones. The core asks only for entries that are durable and committed,
 * so nothing it reads can be superseded while it reads. One thread (the core's) calls it.
 */
public interface LogStorage {

  /** The term of the durable entry at {@code index}, or {@link #UNAVAILABLE} if the storage lacks it. */
  long term(long index);

  /**
   * The durable entries from {@code lo} to at most {@code hi} (inclusive), in order, stopping before
   * {@code maxBytes} of payload (but at least one); empty if the storage lacks the entry at {@code lo}.
   * A read that fails throws: the log is damaged or the disk failing, and the member must stop.
   */
  List<Entry> entries(long lo, long hi, long maxBytes);

  long UNAVAILABLE = -1;

  /** A storage that holds nothing: the core keeps its whole log in memory (tests, the simulator). */
  LogStorage NONE = new LogStorage() {
    @Override
    public long term(long index) {
      return UNAVAILABLE;
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
      return List.of();
    }
  };
}
