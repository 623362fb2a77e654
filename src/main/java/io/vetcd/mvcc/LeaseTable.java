package io.vetcd.mvcc;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.internal.LeaseRecord;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.lmdbjava.Cursor;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.GetOp;
import org.lmdbjava.Txn;

/**
 * Leases on disk, beside the keys they hold, so that attaching, detaching and revoking commit (or roll
 * back) with the write that does them:
 * <ul>
 *   <li>{@code lease}: lease id (8 bytes) → {@link LeaseRecord} (id and granted TTL);
 *   <li>{@code leasekey}: lease id + key part → the full key, one row per key attached. The key part
 *       is the key itself, or for a key longer than {@link #DIRECT_MAX} bytes its first bytes and its
 *       SHA-256 (LMDB keys are at most 511 bytes).
 * </ul>
 * Revoking reads the lease's rows in one cursor pass; nothing about attachments lives in the heap.
 */
final class LeaseTable {

  /** With the 8-byte id and a 32-byte hash, a row key stays within LMDB's 511 bytes. */
  private static final int DIRECT_MAX = 440;

  private final Dbi<byte[]> leases;
  private final Dbi<byte[]> attached;

  LeaseTable(Env<byte[]> env) {
    this.leases = env.openDbi("lease", DbiFlags.MDB_CREATE);
    this.attached = env.openDbi("leasekey", DbiFlags.MDB_CREATE);
  }

  List<Dbi<byte[]>> dbis() {
    return List.of(leases, attached);
  }

  LeaseRecord get(Txn<byte[]> txn, long id) {
    byte[] stored = leases.get(txn, idBytes(id));
    if (stored == null) {
      return null;
    }
    try {
      return LeaseRecord.parseFrom(stored);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("corrupt lease record " + id, e);
    }
  }

  void put(Txn<byte[]> txn, LeaseRecord lease) {
    leases.put(txn, idBytes(lease.getId()), lease.toByteArray());
  }

  void delete(Txn<byte[]> txn, long id) {
    leases.delete(txn, idBytes(id));
  }

  /** Every lease, in id order (as unsigned 8-byte big-endian). */
  List<LeaseRecord> all(Txn<byte[]> txn) {
    List<LeaseRecord> all = new ArrayList<>();
    try (Cursor<byte[]> cursor = leases.openCursor(txn)) {
      for (boolean found = cursor.first(); found; found = cursor.next()) {
        try {
          all.add(LeaseRecord.parseFrom(cursor.val()));
        } catch (InvalidProtocolBufferException e) {
          throw new IllegalStateException("corrupt lease record", e);
        }
      }
    }
    return all;
  }

  void attach(Txn<byte[]> txn, long id, byte[] key) {
    attached.put(txn, rowKey(id, key), key);
  }

  void detach(Txn<byte[]> txn, long id, byte[] key) {
    attached.delete(txn, rowKey(id, key));
  }

  /** The keys attached to a lease, in key order. */
  List<byte[]> keys(Txn<byte[]> txn, long id) {
    byte[] prefix = idBytes(id);
    List<byte[]> keys = new ArrayList<>();
    try (Cursor<byte[]> cursor = attached.openCursor(txn)) {
      for (boolean found = cursor.get(prefix, GetOp.MDB_SET_RANGE); found; found = cursor.next()) {
        byte[] k = cursor.key();
        if (k.length < 8 || !Arrays.equals(k, 0, 8, prefix, 0, 8)) {
          break;
        }
        keys.add(cursor.val());
      }
    }
    keys.sort(Arrays::compareUnsigned); // long keys' rows are ordered by their hash, not the key
    return keys;
  }

  private static byte[] idBytes(long id) {
    return ByteBuffer.allocate(8).putLong(id).array();
  }

  private static byte[] rowKey(long id, byte[] key) {
    byte[] part = key;
    if (key.length > DIRECT_MAX) {
      part = Arrays.copyOf(key, DIRECT_MAX);
      byte[] hash = sha256(key);
      part = ByteBuffer.allocate(DIRECT_MAX + hash.length).put(part).put(hash).array();
    }
    return ByteBuffer.allocate(8 + part.length).putLong(id).put(part).array();
  }

  private static byte[] sha256(byte[] key) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(key);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
