package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.vetcd.backup.EtcdSnapshot;
import io.vetcd.backup.SnapshotStatus;
import io.vetcd.mvcc.MvccStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A keyspace written to a snapshot file and restored from it is the same keyspace (in-process). */
class SnapshotRestoreTest {

  private static final long MAP = 64L << 20;

  @TempDir
  Path tmp;

  private static void request(MvccStore store, Consumer<MvccStore.StoreTxn> change) {
    try (MvccStore.WriteBatch batch = store.write()) {
      MvccStore.StoreTxn txn = batch.begin();
      change.accept(txn);
      txn.end();
      batch.commit();
    }
  }

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** What etcdctl snapshot save writes: the file the member streamed, then its SHA-256. */
  private Path saved(MvccStore store) throws Exception {
    Path file = tmp.resolve("snap.db");
    EtcdSnapshot.write(store, file);
    byte[] sha = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file));
    Files.write(file, sha, StandardOpenOption.APPEND);
    return file;
  }

  @Test
  void aCompactionPastTheLastKeptRevisionKeepsTheRevisionWhereItWas() throws Exception {
    Path file;
    try (MvccStore store = MvccStore.open(tmp.resolve("source"), MAP)) {
      request(store, t -> t.put(b("kept"), ByteString.copyFromUtf8("1"), 0)); // rev 2
      request(store, t -> t.put(b("gone"), ByteString.copyFromUtf8("2"), 0)); // rev 3
      request(store, t -> t.deleteRange(b("gone"), null));                     // rev 4
      try (MvccStore.WriteBatch batch = store.write()) {
        batch.compact(4); // the last revision the file holds is 2: the tombstone at 4 is compacted away
        batch.commit();
      }
      while (store.compactStep()) {
        // the physical deletes
      }
      file = saved(store);
    }
    assertEquals(2, SnapshotStatus.of(file).revision(), "etcdctl status: the revision of the last key kept");
    Path dir = tmp.resolve("restored");
    SnapshotRestore.restore(file, dir, "m1", "m1=http://127.0.0.1:2380", "t", List.of("http://127.0.0.1:2380"), false);
    try (MvccStore restored = MvccStore.open(dir.resolve("member").resolve("db"), MAP)) {
      try (MvccStore.ReadView view = restored.read()) {
        assertEquals(4, view.revision(), "the revision is at least the compaction's, as etcd's");
        assertEquals(4, view.compactRevision());
        assertEquals(1, view.range(b("kept"), null, 0, 0, false).kvs().size());
        assertTrue(view.range(b("gone"), null, 0, 0, false).kvs().isEmpty());
      }
      request(restored, t -> t.put(b("next"), ByteString.copyFromUtf8("3"), 0));
      try (MvccStore.ReadView view = restored.read()) {
        assertEquals(5, view.revision(), "writes go on from the snapshot's revision");
      }
    }
  }

  @Test
  void aFileWithoutItsHashOrIntoAnExistingDirectoryIsRefusedAndNothingIsWritten() throws Exception {
    Path file = tmp.resolve("nohash.db");
    try (MvccStore store = MvccStore.open(tmp.resolve("source"), MAP)) {
      request(store, t -> t.put(b("a"), ByteString.copyFromUtf8("1"), 0));
      EtcdSnapshot.write(store, file);
    }
    Path dir = tmp.resolve("r");
    SnapshotRestore.RestoreException e = assertThrows(SnapshotRestore.RestoreException.class, () ->
        SnapshotRestore.restore(file, dir, "m1", "m1=http://127.0.0.1:2380", "t", List.of("http://127.0.0.1:2380"), false));
    assertEquals("snapshot missing hash but --skip-hash-check=false", e.getMessage());
    assertFalse(Files.exists(dir));
    SnapshotRestore.restore(file, dir, "m1", "m1=http://127.0.0.1:2380", "t", List.of("http://127.0.0.1:2380"), true);
    assertTrue(Files.exists(dir.resolve("member").resolve("wal")));
  }
}
