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
import io.vetcd.watch.WatchHub;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A compaction on the apply thread: logical at once, physical in steps between batches. */
class ApplyThreadCompactionTest {

  @TempDir
  Path tmp;

  /** For each request id answered: whether a physical compaction was still under way at that moment. */
  private final Map<Long, Boolean> pendingWhenAnswered = new ConcurrentHashMap<>();
  private final List<Long> answerOrder = java.util.Collections.synchronizedList(new ArrayList<>());
  private final List<Long> held = java.util.Collections.synchronizedList(new ArrayList<>());

  @Test
  void aPhysicalCompactIsAnsweredOnlyOnceItsLastStepCommittedAPlainOneAtOnce() throws Exception {
    int keys = 3 * MvccStore.COMPACT_STEP_KEYS;
    try (MvccStore store = MvccStore.open(tmp.resolve("db"), 1L << 28)) {
      CountDownLatch bothAnswered = new CountDownLatch(2);
      long plainId = 1_000_001;
      long physicalId = 1_000_002;
      ApplyThread apply = new ApplyThread(store, new WatchHub(store), new Lessor(System::nanoTime, 1), new Alarms(),
          new Auth(300, 4, false), new ApplyThread.Sink() {
            @Override
            public void answering(long index, List<ApplyThread.Result> results) {
              for (ApplyThread.Result r : results) {
                if (r.requestId() == plainId || r.requestId() == physicalId) {
                  pendingWhenAnswered.put(r.requestId(), store.compactionPending());
                  answerOrder.add(r.requestId());
                  bothAnswered.countDown();
                }
              }
            }

            @Override
            public void applied(long index) {}

            @Override
            public void held(long requestId) {
              held.add(requestId);
            }
          }, new FailStop(() -> { }));
      try {
        List<Entry> entries = new ArrayList<>();
        long index = 0;
        for (int round = 0; round < 2; round++) {
          for (int k = 0; k < keys; k++) {
            entries.add(entry(++index, index, InternalRequest.newBuilder().setPut(PutRequest.newBuilder()
                .setKey(ByteString.copyFromUtf8("k" + k)).setValue(ByteString.copyFromUtf8("r" + round)))));
          }
        }
        apply.submit(entries);
        // The second compaction takes over the first's physical work: the physical answer waits for it.
        apply.submit(List.of(
            entry(++index, physicalId, InternalRequest.newBuilder().setCompaction(
                CompactionRequest.newBuilder().setRevision(keys).setPhysical(true))),
            entry(++index, plainId, InternalRequest.newBuilder().setCompaction(
                CompactionRequest.newBuilder().setRevision(keys + 10)))));
        assertTrue(bothAnswered.await(30, TimeUnit.SECONDS), "answered: " + pendingWhenAnswered);
      } finally {
        apply.close();
      }
      assertEquals(Boolean.FALSE, pendingWhenAnswered.get(physicalId),
          "the physical compaction was answered while its deletes were still under way");
      assertEquals(List.of(plainId, physicalId), answerOrder, "the plain compaction is answered with its batch");
      assertEquals(List.of(physicalId), held, "the physical one's deadline was lifted once it applied");
      assertFalse(store.compactionPending());
      assertEquals(keys + 10, store.hashKv(0).compactRevision());
    }
  }

  private static Entry entry(long index, long id, InternalRequest.Builder request) {
    return new Entry(1, index, Entry.Type.NORMAL, request.setId(id).build().toByteArray());
  }
}
