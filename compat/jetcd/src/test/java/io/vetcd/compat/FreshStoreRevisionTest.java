package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.kv.DeleteResponse;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.PutResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Absolute revision numbers on a brand-new store: one walk-through on its own server. */
class FreshStoreRevisionTest extends EtcdTestBase {

    @Test
    void revisionsOnFreshStore() {
        // an empty store is at revision 1
        GetResponse empty = get("foo");
        assertEquals(1, empty.getHeader().getRevision());
        assertEquals(0, empty.getCount());
        assertTrue(empty.getKvs().isEmpty());
        assertFalse(empty.isMore());

        // deleting a missing key does not bump the revision
        DeleteResponse d0 = await(kv.delete(bs("foo")));
        assertEquals(0, d0.getDeleted());
        assertEquals(1, d0.getHeader().getRevision());

        // the first put gets revision 2
        PutResponse p1 = put("foo", "bar");
        assertEquals(2, p1.getHeader().getRevision());
        assertFalse(p1.hasPrevKv());
        GetResponse g1 = get("foo");
        assertEquals(2, g1.getHeader().getRevision());
        assertEquals(1, g1.getCount());
        assertKv(g1.getKvs().get(0), "foo", "bar", 2, 2, 1);
        assertEquals(0, g1.getKvs().get(0).getLease());

        // overwrite with prevKV
        PutResponse p2 = await(kv.put(bs("foo"), bs("baz"), PutOption.builder().withPrevKV().build()));
        assertEquals(3, p2.getHeader().getRevision());
        assertTrue(p2.hasPrevKv());
        assertKv(p2.getPrevKv(), "foo", "bar", 2, 2, 1);
        assertKv(get("foo").getKvs().get(0), "foo", "baz", 2, 3, 2);

        assertEquals(4, put("other", "1").getHeader().getRevision());

        // a txn with several puts is one revision
        TxnResponse t = await(kv.txn()
                .If(new Cmp(bs("foo"), Cmp.Op.EQUAL, CmpTarget.version(2)))
                .Then(Op.put(bs("t1"), bs("a"), PutOption.DEFAULT), Op.put(bs("t2"), bs("b"), PutOption.DEFAULT))
                .commit());
        assertTrue(t.isSucceeded());
        assertEquals(5, t.getHeader().getRevision());
        assertEquals(5, t.getPutResponses().get(0).getHeader().getRevision());
        GetResponse ts = get("t", GetOption.builder().isPrefix(true).build());
        assertEquals(List.of("t1", "t2"), keys(ts));
        assertKv(ts.getKvs().get(0), "t1", "a", 5, 5, 1);
        assertKv(ts.getKvs().get(1), "t2", "b", 5, 5, 1);

        // read-only txn: no new revision
        TxnResponse ro = await(kv.txn().Then(Op.get(bs("foo"), GetOption.DEFAULT)).commit());
        assertEquals(5, ro.getHeader().getRevision());

        // delete of one key: revision 6
        DeleteResponse d1 = await(kv.delete(bs("foo")));
        assertEquals(1, d1.getDeleted());
        assertEquals(6, d1.getHeader().getRevision());
        assertEquals(0, get("foo").getCount());

        // re-creating starts a new generation: version 1, new create_revision
        assertEquals(7, put("foo", "again").getHeader().getRevision());
        assertKv(get("foo").getKvs().get(0), "foo", "again", 7, 7, 1);

        // historical reads; header revision is always the current one
        GetResponse at2 = get("foo", GetOption.builder().withRevision(2).build());
        assertEquals(7, at2.getHeader().getRevision());
        assertKv(at2.getKvs().get(0), "foo", "bar", 2, 2, 1);
        assertKv(get("foo", GetOption.builder().withRevision(3).build()).getKvs().get(0), "foo", "baz", 2, 3, 2);
        assertKv(get("foo", GetOption.builder().withRevision(5).build()).getKvs().get(0), "foo", "baz", 2, 3, 2);
        GetResponse at6 = get("foo", GetOption.builder().withRevision(6).build());
        assertEquals(0, at6.getCount());
        assertTrue(at6.getKvs().isEmpty());
        GetResponse at1 = get("foo", GetOption.builder().withRevision(1).build());
        assertEquals(0, at1.getCount());

        // deleting a range bumps the revision once, whatever the number of keys
        DeleteResponse d2 = await(kv.delete(bs("t"), DeleteOption.builder().isPrefix(true).build()));
        assertEquals(2, d2.getDeleted());
        assertEquals(8, d2.getHeader().getRevision());
        assertEquals(8, currentRevision());
    }
}
