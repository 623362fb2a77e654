package io.vetcd.server;

import io.vetcd.backup.BoltReader;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.proto.mvccpb.KeyValue;
import io.vetcd.wal.Wal;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code vetcd snapshot restore}: a new member's data directory from a snapshot file (one that
 * {@code etcdctl snapshot save} wrote, from vetcd or from etcd), as {@code etcdctl snapshot restore}
 * makes one: the keyspace with every revision, version and lease the snapshot holds, and the log of a
 * new cluster made from the flags. Run it once per member, with the same file and cluster flags.
 *
 * <p>The file is checked first (its SHA-256 trailer, unless --skip-hash-check; its bbolt structure),
 * then the directory is built beside the target and renamed into place once complete and synced: a
 * bad file or a failure midway leaves nothing behind.
 */
public final class SnapshotRestore {

  /** Records per write transaction while importing. */
  private static final int BATCH = 10_000;

  private SnapshotRestore() {}

  /** What was restored: the keyspace's revision and keys, and the new member. */
  public record Restored(long revision, long records, long memberId, long clusterId) {}

  /** A snapshot file that cannot be restored, or a target that must not be written; nothing was. */
  public static final class RestoreException extends Exception {
    RestoreException(String message) {
      super(message);
    }
  }

  public static Restored restore(Path snapshot, Path dataDir, String name, String initialCluster, String token,
      List<String> advertisePeerUrls, boolean skipHashCheck) throws RestoreException, IOException {
    if (!Files.isRegularFile(snapshot)) {
      throw new RestoreException("stat " + snapshot + ": no such file or directory");
    }
    if (Files.exists(dataDir)) {
      throw new RestoreException("data-dir \"" + dataDir + "\" exists");
    }
    Membership initial;
    try {
      initial = Membership.initial(initialCluster, token);
    } catch (IllegalArgumentException e) {
      throw new RestoreException(e.getMessage());
    }
    Membership.MemberInfo local = initial.byName(name);
    if (local == null) {
      throw new RestoreException("couldn't find local name \"" + name + "\" in the initial cluster configuration");
    }
    if (!new java.util.HashSet<>(local.peerUrls()).equals(new java.util.HashSet<>(advertisePeerUrls))) {
      throw new RestoreException("--initial-cluster has " + name + "=" + local.peerUrls()
          + " but missing from --initial-advertise-peer-urls=" + advertisePeerUrls);
    }
    checkHash(snapshot, skipHashCheck);
    Path parent = dataDir.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path building = Files.createTempDirectory(parent, dataDir.getFileName() + ".restoring-");
    try {
      Restored restored = build(snapshot, building, initial, local.id());
      LocalMember.syncDirectories(building);
      Files.move(building, dataDir, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      try (io.vetcd.wal.FileSyncer disk = io.vetcd.wal.FileSyncer.disk()) {
        disk.forceDirectory(parent);
      }
      return restored;
    } catch (IOException | RuntimeException | RestoreException e) {
      if (Files.exists(building)) {
        SnapshotTransfer.deleteTree(building);
      }
      throw e;
    }
  }

  /**
   * etcd's check: a file whose size is 32 bytes more than a multiple of 512 ends with the SHA-256 of
   * what comes before; one without it is refused unless the hash check is skipped (a copy of a live
   * member's db file has none).
   */
  private static void checkHash(Path snapshot, boolean skip) throws IOException, RestoreException {
    long size = Files.size(snapshot);
    boolean hasHash = size % 512 == 32;
    if (!hasHash) {
      if (!skip) {
        throw new RestoreException("snapshot missing hash but --skip-hash-check=false");
      }
      return;
    }
    if (skip) {
      return;
    }
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] trailer = new byte[32];
    try (InputStream in = Files.newInputStream(snapshot)) {
      byte[] buf = new byte[1 << 16];
      long left = size - 32;
      while (left > 0) {
        int n = in.read(buf, 0, (int) Math.min(buf.length, left));
        if (n < 0) {
          throw new RestoreException("the snapshot file ended early");
        }
        sha.update(buf, 0, n);
        left -= n;
      }
      if (in.readNBytes(trailer, 0, 32) != 32) {
        throw new RestoreException("the snapshot file ended early");
      }
    }
    byte[] actual = sha.digest();
    if (!java.util.Arrays.equals(actual, trailer)) {
      throw new RestoreException("expected sha256 " + toGoBytes(trailer) + ", got " + toGoBytes(actual));
    }
  }

  /** Go's %v of a byte slice, as etcd prints the two hashes. */
  private static String toGoBytes(byte[] b) {
    StringBuilder s = new StringBuilder("[");
    for (int i = 0; i < b.length; i++) {
      s.append(i == 0 ? "" : " ").append(b[i] & 0xff);
    }
    return s.append(']').toString();
  }

  private static Restored build(Path snapshot, Path dir, Membership initial, long self)
      throws IOException, RestoreException {
    Path member = dir.resolve("member");
    Files.createDirectories(member);
    ClusterRecord cluster;
    long records;
    long revision;
    try (BoltReader bolt = BoltReader.open(snapshot);
        // Room for the snapshot's data several times over (a member's own map size comes with its flags).
        MvccStore store = MvccStore.open(member.resolve("db"),
            Math.max(2 * Config.DEFAULT_QUOTA_BYTES, 4 * Files.size(snapshot)))) {
      try (Wal wal = Wal.open(member.resolve("wal"))) {
        cluster = LocalMember.bootstrap(wal, initial, self);
      }
      // The compaction point: the scheduled one if a compaction was under way (etcd deletes in batches,
      // so the file may hold part of what it drops; restoreCompaction finishes the job).
      long[] compacted = {0};
      bolt.forEach("meta", (k, v) -> {
        String name = new String(k, java.nio.charset.StandardCharsets.US_ASCII);
        if ((name.equals("finishedCompactRev") || name.equals("scheduledCompactRev")) && v.length >= 8) {
          compacted[0] = Math.max(compacted[0], ByteBuffer.wrap(v).getLong());
        }
      });
      Importer importer = new Importer(store);
      bolt.forEach("lease", (k, v) -> importer.lease(io.vetcd.backup.EtcdSnapshot.parseLease(v)));
      if (!bolt.forEach("key", importer::record)) {
        throw new RestoreException("the snapshot has no key bucket: it is not an etcd keyspace");
      }
      importer.finish(cluster, initial.members().size(), compacted[0]);
      store.sync();
      records = importer.records;
      revision = importer.revision;
    } catch (IllegalArgumentException | com.google.protobuf.InvalidProtocolBufferException e) {
      throw new RestoreException("the snapshot does not hold a valid keyspace: " + e.getMessage());
    }
    return new Restored(revision, records, self, cluster.getClusterId());
  }

  /** Writes records into the store in batches of {@link #BATCH} transactions' worth. */
  private static final class Importer {
    private final MvccStore store;
    private final List<Runnable> pending = new ArrayList<>();
    private MvccStore.WriteBatch batch;
    private MvccStore.StoreTxn txn;
    private int inBatch;
    long records;
    long revision = 1;

    Importer(MvccStore store) {
      this.store = store;
    }

    private MvccStore.StoreTxn txn() {
      if (batch == null) {
        batch = store.write();
        txn = batch.begin();
      }
      return txn;
    }

    void lease(long[] idTtl) {
      txn().grantLease(idTtl[0], idTtl[1]);
      next();
    }

    void record(byte[] key, byte[] value) throws com.google.protobuf.InvalidProtocolBufferException {
      if (key.length < 17 || key[8] != '_') {
        throw new IllegalArgumentException("a key-bucket key of " + key.length + " bytes is not a revision");
      }
      ByteBuffer k = ByteBuffer.wrap(key);
      long main = k.getLong(0);
      long sub = k.getLong(9);
      boolean tombstone = key.length == 18 && key[17] == 't';
      txn().restore(main, sub, tombstone, KeyValue.parseFrom(value));
      revision = Math.max(revision, main);
      records++;
      next();
    }

    private void next() {
      if (++inBatch == BATCH) {
        batch.commit();
        batch.close();
        batch = null;
        inBatch = 0;
      }
    }

    /** The last batch: the founding members applied, the compaction point, the member list. */
    void finish(ClusterRecord cluster, long appliedIndex, long compacted) {
      MvccStore.StoreTxn last = txn();
      if (compacted > 0) {
        last.restoreCompaction(compacted);
      }
      batch.setAppliedIndex(appliedIndex);
      batch.putRecord(LocalMember.CLUSTER_RECORD, cluster.toByteArray());
      batch.commit();
      batch.close();
      batch = null;
    }
  }
}
