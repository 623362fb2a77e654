package io.vetcd.mvcc;

import java.nio.ByteBuffer;

/**
 * A point in the keyspace's history: {@code main} is the store revision a change was made at (one per
 * write request or txn), {@code sub} orders the changes inside it (a txn that writes three keys makes
 * sub revisions 0, 1, 2 of one main revision).
 *
 * <p>Encoded as 16 big-endian bytes so that LMDB's byte order equals revision order: a cursor over the
 * revision table walks history oldest first.
 */
public record Revision(long main, long sub) implements Comparable<Revision> {

  public static final int BYTES = 16;

  public byte[] toBytes() {
    return ByteBuffer.allocate(BYTES).putLong(main).putLong(sub).array();
  }

  public static Revision fromBytes(byte[] bytes) {
    ByteBuffer buf = ByteBuffer.wrap(bytes);
    return new Revision(buf.getLong(), buf.getLong());
  }

  /** The smallest encoded key of main revision {@code main}: a cursor seek target. */
  public static byte[] startOf(long main) {
    return new Revision(main, 0).toBytes();
  }

  @Override
  public int compareTo(Revision o) {
    int c = Long.compare(main, o.main);
    return c != 0 ? c : Long.compare(sub, o.sub);
  }

  @Override
  public String toString() {
    return main + "." + sub;
  }
}
