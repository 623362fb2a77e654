package io.vetcd.backup;

import com.google.protobuf.CodedOutputStream;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.internal.LeaseRecord;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The keyspace as etcd's backend would hold it, written as a bbolt file: what {@code etcdctl snapshot
 * save} receives from {@code Maintenance.Snapshot} (followed by the SHA-256 of the file, which the
 * stream appends) and {@code etcdctl snapshot status} reads. etcd's bucket layout:
 * <ul>
 *   <li>{@code key}: every revision a read can still reach, keyed by etcd's revision bytes (8-byte
 *       big-endian main, {@code _}, 8-byte sub, and {@code t} for a tombstone), valued by the encoded
 *       mvccpb.KeyValue;
 *   <li>{@code lease}: each lease by its 8-byte big-endian id, valued by leasepb.Lease (ID, TTL);
 *   <li>{@code meta}: {@code consistent_index} (the applied index) and, after a compaction,
 *       {@code scheduledCompactRev}/{@code finishedCompactRev}.
 * </ul>
 * The member list is not in it: a restore makes a new cluster from its own flags, as etcd's does.
 */
public final class EtcdSnapshot {

  /** bbolt's page size on Linux (the OS page size), as etcd's files have it. */
  static final int PAGE_SIZE = 4096;

  private EtcdSnapshot() {}

  /** What a snapshot file holds: the keyspace's revision and applied index, and its size in bytes. */
  public record Written(long revision, long appliedIndex, long size) {}

  /** Writes the keyspace of {@code store} (one consistent state) to {@code file}, synced. */
  public static Written write(MvccStore store, Path file) throws IOException {
    try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      BoltWriter bolt = new BoltWriter(out, PAGE_SIZE);
      BoltWriter.Bucket keys = bolt.bucket("key");
      MvccStore.ExportPoint point = store.export((main, sub, tombstone, keyValue) ->
          keys.put(revisionKey(main, sub, tombstone), keyValue));
      BoltWriter.Bucket leases = bolt.bucket("lease");
      List<LeaseRecord> sorted = new ArrayList<>(point.leases());
      sorted.sort((a, b) -> Long.compareUnsigned(a.getId(), b.getId()));
      for (LeaseRecord l : sorted) {
        leases.put(ByteBuffer.allocate(8).putLong(l.getId()).array(), lease(l));
      }
      BoltWriter.Bucket meta = bolt.bucket("meta");
      meta.put(ascii("consistent_index"), ByteBuffer.allocate(8).putLong(point.appliedIndex()).array());
      if (point.compactRevision() > 0) {
        byte[] compacted = revisionKey(point.compactRevision(), 0, false);
        meta.put(ascii("finishedCompactRev"), compacted);
        meta.put(ascii("scheduledCompactRev"), compacted);
      }
      bolt.close();
      out.force(true);
      return new Written(point.revision(), point.appliedIndex(), bolt.size());
    }
  }

  /** etcd's revision key: main, '_', sub (8 bytes each, big-endian), and 't' for a tombstone. */
  static byte[] revisionKey(long main, long sub, boolean tombstone) {
    ByteBuffer b = ByteBuffer.allocate(tombstone ? 18 : 17).putLong(main).put((byte) '_').putLong(sub);
    if (tombstone) {
      b.put((byte) 't');
    }
    return b.array();
  }

  /** leasepb.Lease {ID = 1, TTL = 2}, as etcd stores a lease. */
  private static byte[] lease(LeaseRecord l) throws IOException {
    int size = CodedOutputStream.computeInt64Size(1, l.getId()) + CodedOutputStream.computeInt64Size(2, l.getTtl());
    byte[] out = new byte[size];
    CodedOutputStream o = CodedOutputStream.newInstance(out);
    o.writeInt64(1, l.getId());
    o.writeInt64(2, l.getTtl());
    o.checkNoSpaceLeft();
    return out;
  }

  /** A leasepb.Lease's ID and TTL, as {@link #lease} wrote it (or etcd did). */
  public static long[] parseLease(byte[] encoded) throws IOException {
    com.google.protobuf.CodedInputStream in = com.google.protobuf.CodedInputStream.newInstance(encoded);
    long id = 0;
    long ttl = 0;
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (tag) {
        case 8 -> id = in.readInt64();
        case 16 -> ttl = in.readInt64();
        default -> in.skipField(tag);
      }
    }
    return new long[] {id, ttl};
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }
}
