package io.vetcd.raft;

import java.util.Arrays;
import java.util.List;

/**
 * One entry of the replicated log. {@code index} is its position (dense, from 1), {@code term} the
 * leader term that created it; the pair identifies the entry (Raft's Log Matching property).
 * {@code data} is opaque to the log: an encoded client request, or empty for the entry a new leader
 * appends to commit entries of earlier terms (Raft §5.4.2).
 *
 * <p>A proposal travels as an entry with term 0 and index 0 until the leader stamps it with its own
 * term and the next index. Equality compares {@code data} by content: two entries are equal when they
 * carry the same bytes at the same place of the same term.
 */
public record Entry(long term, long index, Type type, byte[] data) {

  public enum Type {
    /** A client request (or an empty leader entry when data is empty). */
    NORMAL,
    /** A change of membership. */
    CONF_CHANGE,
  }

  public static Entry empty(long term, long index) {
    return new Entry(term, index, Type.NORMAL, new byte[0]);
  }

  /** The same payload placed at {@code index} of {@code term}: how a leader stamps a proposal. */
  public Entry at(long term, long index) {
    return new Entry(term, index, type, data);
  }

  /** Payload bytes, what message size limits count. */
  public int size() {
    return data == null ? 0 : data.length;
  }

  /** The payload bytes of all of {@code entries}. */
  public static long size(List<Entry> entries) {
    long total = 0;
    for (Entry e : entries) {
      total += e.size();
    }
    return total;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Entry e && term == e.term && index == e.index && type == e.type
        && Arrays.equals(data, e.data);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(term) * 31 * 31 + Long.hashCode(index) * 31 + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return index + "@" + term + (type == Type.CONF_CHANGE ? "(conf)" : "") + "[" + size() + "B]";
  }
}
