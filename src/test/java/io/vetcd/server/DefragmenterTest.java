package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.internal.InternalRequest;
import io.vetcd.raft.Entry;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The defragmentation's copy of a keyspace whose physical compaction is still under way. */
class DefragmenterTest {

  private static final long MAP_SIZE = 1L << 28;

  @TempDir
  Path tmp;

  /**
   * A compaction requested through another member may still be deleting history here when the copy is
   * taken: the copy must leave that history out, or the file does not shrink (DefragmentIT failed so,
   * now and then).
   */
  @Test
  void theCopyOfAKeyspaceWithACompactionUnderWayLeavesTheCompactedHistoryOut() throws Exception {
    int keys = 3 * MvccStore.COMPACT_STEP_KEYS;
    int rounds = 8;
    String value = "v".repeat(500);
    try (MvccStore store = MvccStore.open(tmp.resolve("db"), MAP_SIZE);
        MvccStore compactedInPlace = MvccStore.open(tmp.resolve("reference"), MAP_SIZE)) {
      List<Entry> entries = new ArrayList<>();
      long index = 0;
      for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < keys; k++) {
          index++;
          entries.add(entry(index, InternalRequest.newBuilder().setPut(PutRequest.newBuilder()
              .setKey(ByteString.copyFromUtf8("k" + k)).setValue(ByteString.copyFromUtf8(value + round)))));
        }
      }
      long revision = index + 1; // puts from revision 2
      entries.add(entry(++index, InternalRequest.newBuilder().setCompaction(
          CompactionRequest.newBuilder().setRevision(revision).setPhysical(true))));
      for (MvccStore s : List.of(store, compactedInPlace)) {
        ApplyThread.apply(s, new Lessor(System::nanoTime, 1), entries); // the compaction's steps not yet run
        assertTrue(s.compactionPending());
      }
      while (compactedInPlace.compactStep()) {
        // as the apply thread would
      }

      Path plainDir = tmp.resolve("plain");
      java.nio.file.Files.createDirectories(plainDir);
      store.copyTo(plainDir);
      Path copyDir = Defragmenter.compactingCopy(store, tmp.resolve("work"));
      try (MvccStore plain = MvccStore.open(plainDir, MAP_SIZE); MvccStore copy = MvccStore.open(copyDir, MAP_SIZE)) {
        assertFalse(copy.compactionPending(), "the copy's compaction ran to its end");
        assertTrue(store.compactionPending(), "the keyspace itself is left to its apply thread");
        assertTrue(copy.dbSize() < plain.dbSize() / 2,
            "the history deleted is not in the file: " + plain.dbSize() + " -> " + copy.dbSize());
        assertEquals(compactedInPlace.hashKv(0), copy.hashKv(0));
        assertEquals(store.appliedIndex(), copy.appliedIndex());
      }
      try (var left = java.nio.file.Files.list(tmp.resolve("work"))) {
        assertEquals(List.of(copyDir), left.toList(), "the intermediate copy is deleted");
      }
    }
  }

  private static Entry entry(long index, InternalRequest.Builder request) {
    return new Entry(1, index, Entry.Type.NORMAL, request.setId(index).build().toByteArray());
  }
}
