package io.vetcd.mvcc;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.lmdbjava.Cursor;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Dbi;
import org.lmdbjava.Env;
import org.lmdbjava.GetOp;
import org.lmdbjava.Txn;

/**
 * The key index on disk: user key → {@link KeyIndex}, in user-key byte order.
 *
 * <p>LMDB keys are at most 511 bytes, etcd keys may be as long as a request. A key of up to
 * {@link #DIRECT_MAX} bytes is its own LMDB key. Longer keys are grouped by their first
 * {@code DIRECT_MAX} bytes P under the LMDB key P + 0x00, whose value lists the group's keys sorted by
 * the full key. The order stays the user-key order: the only user key that starts with P and is not
 * longer than {@code DIRECT_MAX} is P itself, which sorts before P + 0x00 and before every longer key;
 * every other key compares with the group as it compares with P. Nothing lives in the heap and a
 * restart rebuilds nothing.
 */
final class KeyIndexTable {

  static final int DIRECT_MAX = 480;
  private static final byte SINGLE = 0;
  private static final byte GROUP = 1;

  /** Receives keys in order; returns false to stop the scan. */
  interface Visitor {
    boolean visit(byte[] key, KeyIndex index);
  }

  private record Member(byte[] key, KeyIndex index) {}

  private final Dbi<byte[]> dbi;

  Dbi<byte[]> dbi() {
    return dbi;
  }

  KeyIndexTable(Env<byte[]> env) {
    this.dbi = env.openDbi("key", DbiFlags.MDB_CREATE);
  }

  KeyIndex get(Txn<byte[]> txn, byte[] key) {
    byte[] lmdbKey = lmdbKey(key);
    byte[] stored = dbi.get(txn, lmdbKey);
    if (stored == null) {
      return null;
    }
    for (Member m : decode(lmdbKey, stored)) {
      if (Arrays.equals(m.key(), key)) {
        return m.index();
      }
    }
    return null;
  }

  /** Stores the key's index, or removes the key when the index is empty. */
  void put(Txn<byte[]> txn, byte[] key, KeyIndex index) {
    byte[] lmdbKey = lmdbKey(key);
    if (key.length <= DIRECT_MAX) {
      if (index.isEmpty()) {
        dbi.delete(txn, lmdbKey);
      } else {
        dbi.put(txn, lmdbKey, encode(SINGLE, List.of(new Member(key, index))));
      }
      return;
    }
    byte[] stored = dbi.get(txn, lmdbKey);
    List<Member> group = stored == null ? new ArrayList<>() : new ArrayList<>(decode(lmdbKey, stored));
    group.removeIf(m -> Arrays.equals(m.key(), key));
    if (!index.isEmpty()) {
      group.add(new Member(key, index));
      group.sort((a, b) -> Arrays.compareUnsigned(a.key(), b.key()));
    }
    if (group.isEmpty()) {
      dbi.delete(txn, lmdbKey);
    } else {
      dbi.put(txn, lmdbKey, encode(GROUP, group));
    }
  }

  /**
   * Visits the keys k with {@code from <= k < end} in order; a null {@code end} means no upper bound.
   */
  void scan(Txn<byte[]> txn, byte[] from, byte[] end, Visitor visitor) {
    byte[] seek = from.length <= DIRECT_MAX ? from : Arrays.copyOf(from, DIRECT_MAX);
    try (Cursor<byte[]> cursor = dbi.openCursor(txn)) {
      boolean found = seek.length == 0 ? cursor.first() : cursor.get(seek, GetOp.MDB_SET_RANGE);
      while (found) {
        for (Member m : decode(cursor.key(), cursor.val())) {
          if (Arrays.compareUnsigned(m.key(), from) < 0) {
            continue;
          }
          if (end != null && Arrays.compareUnsigned(m.key(), end) >= 0) {
            return;
          }
          if (!visitor.visit(m.key(), m.index())) {
            return;
          }
        }
        found = cursor.next();
      }
    }
  }

  static byte[] lmdbKey(byte[] key) {
    if (key.length <= DIRECT_MAX) {
      return key;
    }
    return Arrays.copyOf(key, DIRECT_MAX + 1); // the prefix followed by one 0x00 byte
  }

  private static byte[] encode(byte kind, List<Member> members) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(kind);
      if (kind == GROUP) {
        out.writeInt(members.size());
      }
      for (Member m : members) {
        if (kind == GROUP) {
          out.writeInt(m.key().length);
          out.write(m.key());
        }
        out.write(m.index().encode());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private static List<Member> decode(byte[] lmdbKey, byte[] stored) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(stored))) {
      byte kind = in.readByte();
      if (kind == SINGLE) {
        return List.of(new Member(lmdbKey, KeyIndex.decode(in)));
      }
      int n = in.readInt();
      List<Member> members = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        byte[] key = in.readNBytes(in.readInt());
        members.add(new Member(key, KeyIndex.decode(in)));
      }
      return members;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
