package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.GetOption.SortOrder;
import io.etcd.jetcd.options.GetOption.SortTarget;
import java.util.List;
import org.junit.jupiter.api.Test;

class KvRangeTest extends EtcdTestBase {

    /** Puts ns+a .. ns+e with value "v"+key, in key order; returns the revision before. */
    private long putAtoE() {
        long r0 = currentRevision();
        for (String s : List.of("a", "b", "c", "d", "e")) {
            await(kv.put(k(s), bs("v" + s)));
        }
        return r0;
    }

    private GetOption.Builder opt() {
        return GetOption.builder();
    }

    private GetResponse range(String from, String to, GetOption.Builder o) {
        return await(kv.get(k(from), o.withRange(k(to)).build()));
    }

    @Test
    void rangeWithEndKeyIsHalfOpen() {
        long r0 = putAtoE();
        GetResponse r = range("b", "d", opt());
        assertEquals(List.of("b", "c"), shortKeys(r));
        assertEquals(2, r.getCount());
        assertFalse(r.isMore());
        assertEquals(r0 + 5, r.getHeader().getRevision());
        assertKv(r.getKvs().get(0), ns + "b", "vb", r0 + 2, r0 + 2, 1);
        assertKv(r.getKvs().get(1), ns + "c", "vc", r0 + 3, r0 + 3, 1);
        // end key between stored keys
        assertEquals(List.of("a", "b", "c"), shortKeys(range("a", "c\u0000", opt())));
        // empty interval
        assertEquals(0, range("c", "c", opt()).getCount());
        // end before start: nothing
        GetResponse backwards = range("d", "b", opt());
        assertEquals(0, backwards.getCount());
        assertTrue(backwards.getKvs().isEmpty());
    }

    @Test
    void prefix() {
        await(kv.put(k("p"), bs("0")));
        await(kv.put(k("p/1"), bs("1")));
        await(kv.put(k("p/2"), bs("2")));
        await(kv.put(k("p/2/x"), bs("3")));
        await(kv.put(k("pp"), bs("4")));
        await(kv.put(k("p0"), bs("5")));
        await(kv.put(k("o"), bs("6")));
        GetResponse r = await(kv.get(k("p/"), opt().isPrefix(true).build()));
        assertEquals(List.of("p/1", "p/2", "p/2/x"), shortKeys(r));
        assertEquals(List.of("1", "2", "3"), values(r));
        assertEquals(3, r.getCount());
        GetResponse p = await(kv.get(k("p"), opt().isPrefix(true).build()));
        assertEquals(List.of("p", "p/1", "p/2", "p/2/x", "p0", "pp"), shortKeys(p));
        assertEquals(0, await(kv.get(k("q"), opt().isPrefix(true).build())).getCount());
    }

    @Test
    void limitSetsMoreAndCountIsTotal() {
        putAtoE();
        GetResponse r = range("a", "z", opt().withLimit(2));
        assertEquals(List.of("a", "b"), shortKeys(r));
        assertTrue(r.isMore());
        assertEquals(5, r.getCount());
        GetResponse four = range("a", "z", opt().withLimit(4));
        assertEquals(4, four.getKvs().size());
        assertTrue(four.isMore());
        GetResponse exact = range("a", "z", opt().withLimit(5));
        assertEquals(5, exact.getKvs().size());
        assertFalse(exact.isMore());
        assertEquals(5, exact.getCount());
        GetResponse over = range("a", "z", opt().withLimit(50));
        assertEquals(5, over.getKvs().size());
        assertFalse(over.isMore());
        GetResponse unlimited = range("a", "z", opt().withLimit(0));
        assertEquals(5, unlimited.getKvs().size());
        assertFalse(unlimited.isMore());
        GetResponse fromC = range("c", "z", opt().withLimit(1));
        assertEquals(List.of("c"), shortKeys(fromC));
        assertTrue(fromC.isMore());
        assertEquals(3, fromC.getCount());
    }

    /** Keys above everything else in this class's store: 0xFF 0xFF + suffix. */
    private static ByteSequence high(String suffix) {
        byte[] s = suffix.getBytes();
        byte[] b = new byte[s.length + 2];
        b[0] = (byte) 0xFF;
        b[1] = (byte) 0xFF;
        System.arraycopy(s, 0, b, 2, s.length);
        return ByteSequence.from(b);
    }

    @Test
    void fromKeyWithEndKeyZeroByte() {
        for (String s : List.of("a", "b", "c", "d")) {
            await(kv.put(high(s), bs(s)));
        }
        ByteSequence zero = ByteSequence.from(new byte[] {0});
        GetResponse r = await(kv.get(high("b"), opt().withRange(zero).build()));
        assertEquals(3, r.getCount());
        assertEquals(List.of("b", "c", "d"), values(r));
        assertArrayEquals(high("b").getBytes(), r.getKvs().get(0).getKey().getBytes());
        GetResponse limited = await(kv.get(high("b"), opt().withRange(zero).withLimit(1).build()));
        assertEquals(List.of("b"), values(limited));
        assertTrue(limited.isMore());
        assertEquals(3, limited.getCount());
        // key "\0" with end "\0" is the whole keyspace: at least our 4 keys, and it ends with them
        GetResponse all = await(kv.get(zero, opt().withRange(zero).build()));
        assertTrue(all.getCount() >= 4);
        assertEquals(all.getCount(), all.getKvs().size());
        List<String> vals = values(all);
        assertEquals(List.of("a", "b", "c", "d"), vals.subList(vals.size() - 4, vals.size()));
        // prefix of all-0xFF bytes has no successor: jetcd sends end key "\0" (from-key)
        GetResponse ffPrefix = await(kv.get(ByteSequence.from(new byte[] {(byte) 0xFF, (byte) 0xFF}),
                opt().isPrefix(true).build()));
        assertEquals(List.of("a", "b", "c", "d"), values(ffPrefix));
    }

    @Test
    void keysOnly() {
        long r0 = putAtoE();
        await(kv.put(k("b"), bs("vb2")));
        GetResponse r = range("a", "c", opt().withKeysOnly(true));
        assertEquals(List.of("a", "b"), shortKeys(r));
        assertEquals(2, r.getCount());
        for (KeyValue x : r.getKvs()) {
            assertTrue(x.getValue().isEmpty(), "keys-only returns no value");
        }
        KeyValue b = r.getKvs().get(1);
        assertEquals(r0 + 2, b.getCreateRevision());
        assertEquals(r0 + 6, b.getModRevision());
        assertEquals(2, b.getVersion());
    }

    @Test
    void countOnly() {
        long r0 = putAtoE();
        GetResponse r = range("a", "z", opt().withCountOnly(true));
        assertEquals(5, r.getCount());
        assertTrue(r.getKvs().isEmpty());
        assertFalse(r.isMore());
        assertEquals(r0 + 5, r.getHeader().getRevision());
        // with a limit: still the full count, no kvs, and more stays false
        GetResponse limited = range("a", "z", opt().withCountOnly(true).withLimit(2));
        assertEquals(5, limited.getCount());
        assertTrue(limited.getKvs().isEmpty());
        assertFalse(limited.isMore());
        assertEquals(1, await(kv.get(k("c"), opt().withCountOnly(true).build())).getCount());
        assertEquals(0, await(kv.get(k("zz"), opt().withCountOnly(true).build())).getCount());
    }

    /**
     * Builds five keys whose orders by key, version, create revision, mod revision and value all differ.
     * <pre>
     * key  created(order)  version  last mod(order)  value
     * a    2nd             3        6th (last)        "m"
     * b    4th             1        2nd               "z"
     * c    1st             2        5th               "a"
     * d    5th             1        3rd               "q"
     * e    3rd             4        4th               "b"
     * </pre>
     */
    private void putSortFixture() {
        await(kv.put(k("c"), bs("x")));   // r+1
        await(kv.put(k("a"), bs("x")));   // r+2
        await(kv.put(k("e"), bs("x")));   // r+3
        await(kv.put(k("a"), bs("x")));   // r+4
        await(kv.put(k("e"), bs("x")));   // r+5
        await(kv.put(k("b"), bs("z")));   // r+6  b final
        await(kv.put(k("e"), bs("x")));   // r+7
        await(kv.put(k("d"), bs("q")));   // r+8  d final
        await(kv.put(k("e"), bs("b")));   // r+9  e final (version 4)
        await(kv.put(k("c"), bs("a")));   // r+10 c final (version 2)
        await(kv.put(k("a"), bs("m")));   // r+11 a final (version 3)
    }

    private List<String> sorted(SortTarget target, SortOrder order) {
        GetOption.Builder o = opt().isPrefix(true).withSortField(target);
        if (order != null) {
            o.withSortOrder(order);
        }
        return shortKeys(await(kv.get(k(""), o.build())));
    }

    @Test
    void sortByEveryTargetAndOrder() {
        putSortFixture();
        assertEquals(List.of("a", "b", "c", "d", "e"), sorted(SortTarget.KEY, SortOrder.NONE));
        assertEquals(List.of("a", "b", "c", "d", "e"), sorted(SortTarget.KEY, SortOrder.ASCEND));
        assertEquals(List.of("e", "d", "c", "b", "a"), sorted(SortTarget.KEY, SortOrder.DESCEND));

        // versions: a3 b1 c2 d1 e4 -> ties (b,d) stay in key order in both directions
        assertEquals(List.of("b", "d", "c", "a", "e"), sorted(SortTarget.VERSION, SortOrder.ASCEND));
        assertEquals(List.of("e", "a", "c", "b", "d"), sorted(SortTarget.VERSION, SortOrder.DESCEND));

        // create order: c a e b d
        assertEquals(List.of("c", "a", "e", "b", "d"), sorted(SortTarget.CREATE, SortOrder.ASCEND));
        assertEquals(List.of("d", "b", "e", "a", "c"), sorted(SortTarget.CREATE, SortOrder.DESCEND));

        // mod order: b d e c a
        assertEquals(List.of("b", "d", "e", "c", "a"), sorted(SortTarget.MOD, SortOrder.ASCEND));
        assertEquals(List.of("a", "c", "e", "d", "b"), sorted(SortTarget.MOD, SortOrder.DESCEND));

        // values: a=m b=z c=a d=q e=b
        assertEquals(List.of("c", "e", "a", "d", "b"), sorted(SortTarget.VALUE, SortOrder.ASCEND));
        assertEquals(List.of("b", "d", "a", "e", "c"), sorted(SortTarget.VALUE, SortOrder.DESCEND));
    }

    @Test
    void sortTargetOtherThanKeyWithOrderNoneSortsAscending() {
        putSortFixture();
        assertEquals(List.of("c", "a", "e", "b", "d"), sorted(SortTarget.CREATE, SortOrder.NONE));
        assertEquals(List.of("b", "d", "e", "c", "a"), sorted(SortTarget.MOD, SortOrder.NONE));
        assertEquals(List.of("c", "e", "a", "d", "b"), sorted(SortTarget.VALUE, SortOrder.NONE));
        assertEquals(List.of("b", "d", "c", "a", "e"), sorted(SortTarget.VERSION, SortOrder.NONE));
    }

    @Test
    void sortIsAppliedBeforeLimit() {
        putSortFixture();
        GetResponse r = await(kv.get(k(""), opt().isPrefix(true)
                .withSortField(SortTarget.CREATE).withSortOrder(SortOrder.DESCEND).withLimit(2).build()));
        assertEquals(List.of("d", "b"), shortKeys(r));
        assertTrue(r.isMore());
        assertEquals(5, r.getCount());
        GetResponse byValue = await(kv.get(k(""), opt().isPrefix(true)
                .withSortField(SortTarget.VALUE).withSortOrder(SortOrder.ASCEND).withLimit(3).build()));
        assertEquals(List.of("c", "e", "a"), shortKeys(byValue));
        assertTrue(byValue.isMore());
    }

    /**
     * etcd 3.4 quirk: with sort order NONE (and no revision filters) the limit is applied while
     * reading in key order (limit+1 keys are read), and only those keys get sorted by the
     * non-key target. So VERSION/NONE/limit 2 looks only at a, b, c.
     */
    @Test
    void sortOrderNoneWithLimitSortsOnlyTheFirstLimitPlusOneKeys() {
        putSortFixture();
        // a3 b1 c2 read (limit+1 = 3 keys), sorted ascending by version: b c a, truncated to 2
        GetResponse r = await(kv.get(k(""), opt().isPrefix(true)
                .withSortField(SortTarget.VERSION).withLimit(2).build()));
        assertEquals(List.of("b", "c"), shortKeys(r));
        assertTrue(r.isMore());
        assertEquals(5, r.getCount());
        // with an explicit ASCEND the whole range is sorted first: b(1) d(1)
        GetResponse asc = await(kv.get(k(""), opt().isPrefix(true)
                .withSortField(SortTarget.VERSION).withSortOrder(SortOrder.ASCEND).withLimit(2).build()));
        assertEquals(List.of("b", "d"), shortKeys(asc));
        // CREATE/NONE/limit 1 reads a, b -> sorted by create: a (2nd created) before b (4th)
        GetResponse create = await(kv.get(k(""), opt().isPrefix(true)
                .withSortField(SortTarget.CREATE).withLimit(1).build()));
        assertEquals(List.of("a"), shortKeys(create));
        assertTrue(create.isMore());
    }

    @Test
    void historicalReadsAtRevision() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));            // r0+1
        await(kv.put(k("a"), bs("2")));            // r0+2
        await(kv.put(k("b"), bs("1")));            // r0+3
        await(kv.delete(k("a")));                  // r0+4
        await(kv.put(k("c"), bs("1")));            // r0+5
        long now = r0 + 5;

        GetResponse at0 = await(kv.get(k(""), opt().isPrefix(true).withRevision(r0).build()));
        assertEquals(0, at0.getCount());
        assertEquals(now, at0.getHeader().getRevision(), "header has the current revision, not the requested one");

        GetResponse at1 = await(kv.get(k(""), opt().isPrefix(true).withRevision(r0 + 1).build()));
        assertEquals(1, at1.getCount());
        assertKv(at1.getKvs().get(0), ns + "a", "1", r0 + 1, r0 + 1, 1);

        GetResponse at2 = await(kv.get(k(""), opt().isPrefix(true).withRevision(r0 + 2).build()));
        assertKv(at2.getKvs().get(0), ns + "a", "2", r0 + 1, r0 + 2, 2);

        GetResponse at3 = await(kv.get(k(""), opt().isPrefix(true).withRevision(r0 + 3).build()));
        assertEquals(List.of("a", "b"), shortKeys(at3));
        assertEquals(2, at3.getCount());

        GetResponse at4 = await(kv.get(k(""), opt().isPrefix(true).withRevision(r0 + 4).build()));
        assertEquals(List.of("b"), shortKeys(at4));

        GetResponse atNow = await(kv.get(k(""), opt().isPrefix(true).withRevision(now).build()));
        assertEquals(List.of("b", "c"), shortKeys(atNow));
        GetResponse latest = await(kv.get(k(""), opt().isPrefix(true).withRevision(0).build()));
        assertEquals(List.of("b", "c"), shortKeys(latest));

        // historical read with limit/count
        GetResponse at3Limited = await(kv.get(k(""), opt().isPrefix(true).withRevision(r0 + 3).withLimit(1).build()));
        assertEquals(List.of("a"), shortKeys(at3Limited));
        assertTrue(at3Limited.isMore());
        assertEquals(2, at3Limited.getCount());

        // revision 1 of the store is always empty
        assertEquals(0, await(kv.get(k(""), opt().isPrefix(true).withRevision(1).build())).getCount());
    }

    @Test
    void serializableReadsSeeTheSameData() {
        long r0 = putAtoE();
        GetResponse lin = range("a", "z", opt());
        GetResponse ser = range("a", "z", opt().withSerializable(true));
        assertEquals(shortKeys(lin), shortKeys(ser));
        assertEquals(values(lin), values(ser));
        assertEquals(5, ser.getCount());
        assertEquals(r0 + 5, ser.getHeader().getRevision());
        GetResponse serHist = range("a", "z", opt().withSerializable(true).withRevision(r0 + 2));
        assertEquals(List.of("a", "b"), shortKeys(serHist));
    }

    /** Keys with create/mod revisions: a(c1,m6) b(c2,m2) c(c3,m5) d(c4,m4), relative to r0. */
    private long putFilterFixture() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        await(kv.put(k("b"), bs("1")));   // r0+2
        await(kv.put(k("c"), bs("1")));   // r0+3
        await(kv.put(k("d"), bs("1")));   // r0+4
        await(kv.put(k("c"), bs("2")));   // r0+5
        await(kv.put(k("a"), bs("2")));   // r0+6
        return r0;
    }

    private GetResponse filtered(GetOption.Builder o) {
        return await(kv.get(k(""), o.isPrefix(true).build()));
    }

    @Test
    void minAndMaxModAndCreateRevisionFilters() {
        long r0 = putFilterFixture();
        assertEquals(List.of("a", "c", "d"), shortKeys(filtered(opt().withMinModRevision(r0 + 4))));
        assertEquals(List.of("b", "d"), shortKeys(filtered(opt().withMaxModRevision(r0 + 4))));
        assertEquals(List.of("c", "d"), shortKeys(filtered(opt().withMinModRevision(r0 + 4).withMaxModRevision(r0 + 5))));
        assertEquals(List.of("c", "d"), shortKeys(filtered(opt().withMinCreateRevision(r0 + 3))));
        assertEquals(List.of("a", "b"), shortKeys(filtered(opt().withMaxCreateRevision(r0 + 2))));
        assertEquals(List.of("b", "c"), shortKeys(filtered(opt().withMinCreateRevision(r0 + 2).withMaxCreateRevision(r0 + 3))));
        // bounds are inclusive
        assertEquals(List.of("a"), shortKeys(filtered(opt().withMinModRevision(r0 + 6).withMaxModRevision(r0 + 6))));
        // mixed: created at or after r0+2, modified at or before r0+4
        assertEquals(List.of("b", "d"), shortKeys(filtered(opt().withMinCreateRevision(r0 + 2).withMaxModRevision(r0 + 4))));
        assertTrue(filtered(opt().withMinModRevision(r0 + 7)).getKvs().isEmpty());
    }

    /**
     * etcd 3.4 reports in count the number of keys in the range before the revision filters are
     * applied; limit and more are applied after filtering.
     */
    @Test
    void revisionFiltersDoNotChangeCountButDriveLimitAndMore() {
        long r0 = putFilterFixture();
        GetResponse r = filtered(opt().withMinModRevision(r0 + 4));
        assertEquals(List.of("a", "c", "d"), shortKeys(r));
        assertEquals(4, r.getCount(), "count is the unfiltered range size");
        assertFalse(r.isMore());

        GetResponse limited = filtered(opt().withMinModRevision(r0 + 4).withLimit(2));
        assertEquals(List.of("a", "c"), shortKeys(limited));
        assertTrue(limited.isMore());
        assertEquals(4, limited.getCount());

        GetResponse exact = filtered(opt().withMinModRevision(r0 + 4).withLimit(3));
        assertEquals(3, exact.getKvs().size());
        assertFalse(exact.isMore());

        GetResponse none = filtered(opt().withMinModRevision(r0 + 100));
        assertTrue(none.getKvs().isEmpty());
        assertEquals(4, none.getCount());
    }

    @Test
    void filtersCombineWithSort() {
        long r0 = putFilterFixture();
        GetResponse r = filtered(opt().withMinModRevision(r0 + 4)
                .withSortField(SortTarget.MOD).withSortOrder(SortOrder.DESCEND).withLimit(2));
        assertEquals(List.of("a", "c"), shortKeys(r));
        assertTrue(r.isMore());
        GetResponse asc = filtered(opt().withMinModRevision(r0 + 4)
                .withSortField(SortTarget.MOD).withSortOrder(SortOrder.ASCEND));
        assertEquals(List.of("d", "c", "a"), shortKeys(asc));
    }
}
