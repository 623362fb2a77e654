package io.vetcd.raft;

/**
 * One entry of the replicated log. {@code index} is its position (dense, from 1), {@code term} the
 * leader term that created it; the pair identifies the entry (Raft's Log Matching property).
 * {@code data} is opaque to the log: an encoded client request, or empty for the entry a new leader
 * appends to commit entries of earlier terms (Raft §5.4.2).
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
}
