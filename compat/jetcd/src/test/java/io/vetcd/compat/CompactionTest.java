package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.Maintenance;
import io.etcd.jetcd.kv.CompactResponse;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.maintenance.HashKVResponse;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.CompactOption;
import io.etcd.jetcd.options.GetOption;
import io.grpc.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Compaction is store-wide and monotonic: each test compacts only above the revision it started at.
 */
class CompactionTest extends EtcdTestBase {

    static final String COMPACTED = "etcdserver: mvcc: required revision has been compacted";
    static final String FUTURE = "etcdserver: mvcc: required revision is a future revision";

    private static final CompactOption PHYSICAL = CompactOption.builder().withCompactPhysical(true).build();

    private GetResponse getAt(String key, long rev) {
        return await(kv.get(k(key), GetOption.builder().withRevision(rev).build()));
    }

    private void assertCompactedAt(String key, long rev) {
        assertGrpcError(kv.get(k(key), GetOption.builder().withRevision(rev).build()),
                Status.Code.OUT_OF_RANGE, COMPACTED);
    }

    @Test
    void physicalCompactionThenReadsBelowItFail() {
        long r0 = currentRevision();
        await(kv.put(k("k"), bs("v1")));      // r0+1
        await(kv.put(k("k"), bs("v2")));      // r0+2
        await(kv.put(k("k"), bs("v3")));      // r0+3
        await(kv.put(k("other"), bs("o")));   // r0+4

        CompactResponse c = await(kv.compact(r0 + 3, PHYSICAL));
        assertEquals(r0 + 4, c.getHeader().getRevision(), "compaction does not create a revision");
        assertEquals(r0 + 4, currentRevision());

        assertCompactedAt("k", r0 + 2);
        assertCompactedAt("k", r0 + 1);
        assertCompactedAt("k", 1);
        // also for keys that did not exist then, and for ranges
        assertCompactedAt("nothing", r0 + 2);
        assertGrpcError(kv.get(k(""), GetOption.builder().isPrefix(true).withRevision(r0 + 2).build()),
                Status.Code.OUT_OF_RANGE, COMPACTED);
        // serializable reads too
        assertGrpcError(kv.get(k("k"), GetOption.builder().withRevision(r0 + 2).withSerializable(true).build()),
                Status.Code.OUT_OF_RANGE, COMPACTED);

        // reading exactly at the compaction revision, and after, works
        assertKv(getAt("k", r0 + 3).getKvs().get(0), ns + "k", "v3", r0 + 1, r0 + 3, 3);
        assertKv(getAt("k", r0 + 4).getKvs().get(0), ns + "k", "v3", r0 + 1, r0 + 3, 3);
        // the latest version keeps its create revision and version
        assertKv(await(kv.get(k("k"))).getKvs().get(0), ns + "k", "v3", r0 + 1, r0 + 3, 3);
        assertEquals(List.of("k"),
                shortKeys(await(kv.get(k(""), GetOption.builder().isPrefix(true).withRevision(r0 + 3).build()))));
        assertEquals(List.of("k", "other"),
                shortKeys(await(kv.get(k(""), GetOption.builder().isPrefix(true).withRevision(r0 + 4).build()))));

        // a future revision is a different error
        assertGrpcError(kv.get(k("k"), GetOption.builder().withRevision(r0 + 5).build()),
                Status.Code.OUT_OF_RANGE, FUTURE);

        // a range inside a txn at a compacted revision fails the whole txn
        assertGrpcError(kv.txn().Then(Op.get(k("k"), GetOption.builder().withRevision(r0 + 2).build())).commit(),
                Status.Code.OUT_OF_RANGE, COMPACTED);
        assertGrpcError(kv.txn().Then(Op.get(k("k"), GetOption.builder().withRevision(r0 + 9).build())).commit(),
                Status.Code.OUT_OF_RANGE, FUTURE);

        // HashKV reports the compaction revision and refuses compacted revisions
        Maintenance m = client.getMaintenanceClient();
        HashKVResponse h = await(m.hashKV(server.clientUrl(), 0));
        assertEquals(r0 + 3, h.getCompacted());
        assertGrpcError(m.hashKV(server.clientUrl(), r0 + 2), Status.Code.OUT_OF_RANGE, COMPACTED);
    }

    @Test
    void compactingAgainAtOrBelowTheCompactedRevisionFails() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        await(kv.put(k("a"), bs("2")));   // r0+2
        await(kv.compact(r0 + 2));
        assertGrpcError(kv.compact(r0 + 2), Status.Code.OUT_OF_RANGE, COMPACTED);
        assertGrpcError(kv.compact(r0 + 1, PHYSICAL), Status.Code.OUT_OF_RANGE, COMPACTED);
        assertGrpcError(kv.compact(r0 + 3), Status.Code.OUT_OF_RANGE, FUTURE);
        assertGrpcError(kv.compact(r0 + 1000), Status.Code.OUT_OF_RANGE, FUTURE);
        assertEquals(r0 + 2, currentRevision());
    }

    @Test
    void nonPhysicalCompactionIsVisibleImmediately() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        await(kv.put(k("a"), bs("2")));   // r0+2
        await(kv.put(k("a"), bs("3")));   // r0+3
        CompactResponse c = await(kv.compact(r0 + 2));
        assertEquals(r0 + 3, c.getHeader().getRevision());
        assertCompactedAt("a", r0 + 1);
        assertEquals("2", str(getAt("a", r0 + 2).getKvs().get(0).getValue()));
        assertEquals("3", str(await(kv.get(k("a"))).getKvs().get(0).getValue()));
    }

    @Test
    void compactionAtCurrentRevisionKeepsLiveKeysAndDropsDeletedOnes() {
        long r0 = currentRevision();
        await(kv.put(k("live"), bs("1")));   // r0+1
        await(kv.put(k("gone"), bs("1")));   // r0+2
        await(kv.delete(k("gone")));         // r0+3
        await(kv.compact(r0 + 3, PHYSICAL));
        GetResponse all = await(kv.get(k(""), GetOption.builder().isPrefix(true).build()));
        assertEquals(List.of("live"), shortKeys(all));
        assertKv(all.getKvs().get(0), ns + "live", "1", r0 + 1, r0 + 1, 1);
        assertEquals(0, getAt("gone", r0 + 3).getCount());
        assertCompactedAt("gone", r0 + 2);
        // writes go on from the same revision
        assertEquals(r0 + 4, await(kv.put(k("gone"), bs("2"))).getHeader().getRevision());
        assertKv(await(kv.get(k("gone"))).getKvs().get(0), ns + "gone", "2", r0 + 4, r0 + 4, 1);
    }

    @Test
    void hashKvIsDeterministicPerRevision() {
        Maintenance m = client.getMaintenanceClient();
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        await(kv.put(k("a"), bs("2")));   // r0+2
        await(kv.put(k("b"), bs("1")));   // r0+3
        HashKVResponse h1 = await(m.hashKV(server.clientUrl(), r0 + 3));
        HashKVResponse h2 = await(m.hashKV(server.clientUrl(), r0 + 3));
        assertEquals(h1.getHash(), h2.getHash());
        HashKVResponse older = await(m.hashKV(server.clientUrl(), r0 + 2));
        assertNotEquals(h1.getHash(), older.getHash());
        assertTrue(h1.getHeader().getRevision() >= r0 + 3);
    }
}
