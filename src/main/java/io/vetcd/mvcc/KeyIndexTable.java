package io.vetcd.mvcc;

import java.nio.ByteBuffer;
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
 *
 * <p>A key written over and over (etcd's benchmark writes one key by default) would make that value
 * grow with its whole history and every put rewrite it. So the table keeps only a key's newest changes
 * (fewer than {@link #SPILL_AT}); older ones move, {@link #CHUNK} at a time, to the table
 * {@code keyhist} under SHA-256(key) + the chunk's first revision: a put costs the same at the
 * millionth revision of a key as at the first, and reads of the newest revisions never touch the old
 * chunks. Reads at an older revision seek the one chunk that holds it; compaction loads a key's chunks,
 * compacts the whole history and stores what is left again.
 */
final class KeyIndexTable {

  static final int DIRECT_MAX = 480;
  /** Changes kept apart per chunk; a key's own record holds fewer than {@link #SPILL_AT}. */
  static final int CHUNK = 64;
  static final int SPILL_AT = 2 * CHUNK;
  // Formats of the key record: 0 and 1 (written before chunks existed) have no count of spilled
  // chunks; 2 and 3 carry one per key, before its changes.
  private static final byte SINGLE = 0;
  private static final byte GROUP = 1;
  private static final byte SINGLE_CHUNKED = 2;
  private static final byte GROUP_CHUNKED = 3;
  private static final int HASH_BYTES = 32;
  /** Where a {@code SINGLE_CHUNKED} record's changes start: kind, spilled chunks, count of changes. */
  private static final int SINGLE_CHANGES_AT = 1 + 4 + 4;

  /** {@link #appendPut}'s answer when a put must take the general way. */
  static final Revision NOT_APPENDED = new Revision(-1, -1);

  /** Receives keys in order; returns false to stop the scan. */
  interface Visitor {
    boolean visit(byte[] key, KeyIndex index);
  }

  private record Member(byte[] key, KeyIndex index) {}

  private final Dbi<byte[]> dbi;
  private final Dbi<byte[]> history;

  Dbi<byte[]> dbi() {
    return dbi;
  }

  Dbi<byte[]> historyDbi() {
    return history;
  }

  KeyIndexTable(Env<byte[]> env) {
    this.dbi = env.openDbi("key", DbiFlags.MDB_CREATE);
    this.history = env.openDbi("keyhist", DbiFlags.MDB_CREATE);
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

  /**
   * The revision holding {@code key}'s value as of store revision {@code atRevision} (see
   * {@link KeyIndex#find}), looking in the key's spilled chunks when {@code index} (its record, as
   * {@link #get} or a scan gave it) does not reach back that far.
   */
  Revision find(Txn<byte[]> txn, byte[] key, KeyIndex index, long atRevision) {
    if (index.covers(atRevision)) {
      return index.find(atRevision);
    }
    byte[] hash = hash(key);
    try (Cursor<byte[]> cursor = history.openCursor(txn)) {
      // The chunk that starts last at or before atRevision: the one before the first starting after it.
      boolean found = cursor.get(chunkKey(hash, new Revision(atRevision + 1, 0)), GetOp.MDB_SET_RANGE)
          ? cursor.prev() : cursor.last();
      if (!found || !Arrays.equals(cursor.key(), 0, HASH_BYTES, hash, 0, HASH_BYTES)) {
        return null; // the key's history starts after atRevision
      }
      return KeyIndex.decode(ByteBuffer.wrap(cursor.val())).find(atRevision);
    }
  }

  /** The key's whole history: its spilled chunks and {@code index} (its record) in one index. */
  KeyIndex whole(Txn<byte[]> txn, byte[] key, KeyIndex index) {
    if (index.spilled() == 0) {
      return index;
    }
    List<KeyIndex.Change> all = new ArrayList<>();
    byte[] hash = hash(key);
    try (Cursor<byte[]> cursor = history.openCursor(txn)) {
      for (boolean found = cursor.get(hash, GetOp.MDB_SET_RANGE);
          found && Arrays.equals(cursor.key(), 0, HASH_BYTES, hash, 0, HASH_BYTES); found = cursor.next()) {
        all.addAll(KeyIndex.decode(ByteBuffer.wrap(cursor.val())).changes());
      }
    }
    all.addAll(index.changes());
    return KeyIndex.of(all);
  }

  /**
   * Stores a key's whole history as {@link #whole} gave it (after compacting it): its old chunks go,
   * and it is split into chunks again if still long.
   */
  void replace(Txn<byte[]> txn, byte[] key, KeyIndex whole) {
    byte[] hash = hash(key);
    List<byte[]> chunks = new ArrayList<>();
    try (Cursor<byte[]> cursor = history.openCursor(txn)) {
      for (boolean found = cursor.get(hash, GetOp.MDB_SET_RANGE);
          found && Arrays.equals(cursor.key(), 0, HASH_BYTES, hash, 0, HASH_BYTES); found = cursor.next()) {
        chunks.add(cursor.key());
      }
    }
    chunks.forEach(k -> history.delete(txn, k));
    put(txn, key, whole);
  }

  /**
   * A put of {@code key} at {@code revision} appended to the key's record as it is stored, without
   * decoding its history: the common case of a put — a key that is its own LMDB key, a record of the
   * current format, and room before it spills. (Decoding up to {@code SPILL_AT - 1} changes into
   * objects and encoding them again on every put was most of what the apply thread allocated.)
   *
   * <p>Returns the key's live revision before the put, null when it did not exist then; or
   * {@link #NOT_APPENDED}, having changed nothing, when the put must go through {@link #get} and
   * {@link #put}.
   */
  Revision appendPut(Txn<byte[]> txn, byte[] key, Revision revision) {
    if (key.length > DIRECT_MAX) {
      return NOT_APPENDED;
    }
    byte[] stored = dbi.get(txn, key);
    Revision live = null;
    byte[] updated;
    if (stored == null) {
      updated = new byte[SINGLE_CHANGES_AT + KeyIndex.CHANGE_BYTES];
      ByteBuffer out = ByteBuffer.wrap(updated).put(SINGLE_CHUNKED).putInt(0).putInt(1);
      KeyIndex.encodeChange(out, revision, false);
    } else {
      if (stored.length < SINGLE_CHANGES_AT || stored[0] != SINGLE_CHUNKED) {
        return NOT_APPENDED;
      }
      ByteBuffer in = ByteBuffer.wrap(stored);
      int n = in.getInt(1 + 4);
      if (n < 1 || n + 1 >= SPILL_AT || stored.length != SINGLE_CHANGES_AT + n * KeyIndex.CHANGE_BYTES) {
        return NOT_APPENDED;
      }
      int last = SINGLE_CHANGES_AT + (n - 1) * KeyIndex.CHANGE_BYTES;
      Revision newest = new Revision(in.getLong(last), in.getLong(last + 8));
      if (newest.compareTo(revision) >= 0) {
        return NOT_APPENDED; // out of order: the general way refuses it
      }
      if (stored[last + 16] == 0) {
        live = newest;
      }
      updated = Arrays.copyOf(stored, stored.length + KeyIndex.CHANGE_BYTES);
      ByteBuffer out = ByteBuffer.wrap(updated).putInt(1 + 4, n + 1).position(stored.length);
      KeyIndex.encodeChange(out, revision, false);
    }
    dbi.put(txn, key, updated);
    return live;
  }

  /** Stores the key's index, or removes the key when the index is empty. */
  void put(Txn<byte[]> txn, byte[] key, KeyIndex index) {
    if (index.size() >= SPILL_AT) {
      byte[] hash = hash(key);
      while (index.size() >= SPILL_AT) {
        List<KeyIndex.Change> oldest = index.spillOldest(CHUNK);
        history.put(txn, chunkKey(hash, oldest.get(0).revision()), KeyIndex.of(oldest).encode());
      }
    }
    byte[] lmdbKey = lmdbKey(key);
    if (key.length <= DIRECT_MAX) {
      if (index.isEmpty()) {
        dbi.delete(txn, lmdbKey);
      } else {
        dbi.put(txn, lmdbKey, encode(SINGLE_CHUNKED, List.of(new Member(key, index))));
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
      dbi.put(txn, lmdbKey, encode(GROUP_CHUNKED, group));
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

  private static byte[] hash(byte[] key) {
    try {
      return java.security.MessageDigest.getInstance("SHA-256").digest(key);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }

  private static byte[] chunkKey(byte[] hash, Revision first) {
    return ByteBuffer.allocate(HASH_BYTES + Revision.BYTES).put(hash).put(first.toBytes()).array();
  }

  // These run on every put and read of a key, so they use bulk buffer access (DataInput/OutputStream's
  // per-byte synchronized calls cost ~10x more).
  private static byte[] encode(byte kind, List<Member> members) {
    boolean group = kind == GROUP_CHUNKED;
    int size = 1 + (group ? 4 : 0);
    for (Member m : members) {
      size += (group ? 4 + m.key().length : 0) + 4 + m.index().encodedSize();
    }
    ByteBuffer out = ByteBuffer.allocate(size);
    out.put(kind);
    if (group) {
      out.putInt(members.size());
    }
    for (Member m : members) {
      if (group) {
        out.putInt(m.key().length);
        out.put(m.key());
      }
      out.putInt(m.index().spilled());
      m.index().encodeTo(out);
    }
    return out.array();
  }

  private static List<Member> decode(byte[] lmdbKey, byte[] stored) {
    ByteBuffer in = ByteBuffer.wrap(stored);
    byte kind = in.get();
    boolean chunked = kind == SINGLE_CHUNKED || kind == GROUP_CHUNKED;
    if (kind == SINGLE || kind == SINGLE_CHUNKED) {
      return List.of(new Member(lmdbKey, KeyIndex.decode(in, chunked ? in.getInt() : 0)));
    }
    int n = in.getInt();
    List<Member> members = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      byte[] key = new byte[in.getInt()];
      in.get(key);
      members.add(new Member(key, KeyIndex.decode(in, chunked ? in.getInt() : 0)));
    }
    return members;
  }
}
