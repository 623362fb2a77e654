package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.PutResponse;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class KvPutGetTest extends EtcdTestBase {

    @Test
    void putThenGetSingleKey() {
        long r0 = currentRevision();
        PutResponse p = await(kv.put(k("a"), bs("hello")));
        assertEquals(r0 + 1, p.getHeader().getRevision());
        assertFalse(p.hasPrevKv());
        GetResponse g = await(kv.get(k("a")));
        assertEquals(r0 + 1, g.getHeader().getRevision());
        assertEquals(1, g.getCount());
        assertFalse(g.isMore());
        assertEquals(1, g.getKvs().size());
        assertKv(g.getKvs().get(0), ns + "a", "hello", r0 + 1, r0 + 1, 1);
        assertEquals(0, g.getKvs().get(0).getLease());
    }

    @Test
    void getMissingKey() {
        long r0 = currentRevision();
        GetResponse g = await(kv.get(k("missing")));
        assertEquals(0, g.getCount());
        assertTrue(g.getKvs().isEmpty());
        assertFalse(g.isMore());
        assertEquals(r0, g.getHeader().getRevision());
    }

    @Test
    void overwriteIncrementsVersionAndModRevisionKeepsCreateRevision() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));
        await(kv.put(k("other"), bs("x")));
        await(kv.put(k("a"), bs("2")));
        PutResponse p = await(kv.put(k("a"), bs("3")));
        assertEquals(r0 + 4, p.getHeader().getRevision());
        KeyValue v = await(kv.get(k("a"))).getKvs().get(0);
        assertKv(v, ns + "a", "3", r0 + 1, r0 + 4, 3);
        // same value again still makes a new revision and version
        await(kv.put(k("a"), bs("3")));
        assertKv(await(kv.get(k("a"))).getKvs().get(0), ns + "a", "3", r0 + 1, r0 + 5, 4);
    }

    @Test
    void putWithPrevKvReturnsPreviousKeyValue() {
        long r0 = currentRevision();
        PutResponse first = await(kv.put(k("a"), bs("one"), PutOption.builder().withPrevKV().build()));
        assertFalse(first.hasPrevKv(), "no previous kv for a new key");
        PutResponse second = await(kv.put(k("a"), bs("two"), PutOption.builder().withPrevKV().build()));
        assertTrue(second.hasPrevKv());
        assertKv(second.getPrevKv(), ns + "a", "one", r0 + 1, r0 + 1, 1);
        PutResponse third = await(kv.put(k("a"), bs("three"), PutOption.builder().withPrevKV().build()));
        assertKv(third.getPrevKv(), ns + "a", "two", r0 + 1, r0 + 2, 2);
        // without the option, no prev kv
        PutResponse fourth = await(kv.put(k("a"), bs("four")));
        assertFalse(fourth.hasPrevKv());
    }

    @Test
    void emptyValueIsStored() {
        long r0 = currentRevision();
        await(kv.put(k("empty"), ByteSequence.EMPTY));
        GetResponse g = await(kv.get(k("empty")));
        assertEquals(1, g.getCount());
        assertKv(g.getKvs().get(0), ns + "empty", "", r0 + 1, r0 + 1, 1);
    }

    @Test
    void binaryKeysAndValuesRoundTrip() {
        byte[] key = concat(ns.getBytes(StandardCharsets.UTF_8), new byte[] {0, 1, (byte) 0x80, (byte) 0xFF, 0});
        byte[] value = new byte[256];
        for (int i = 0; i < value.length; i++) {
            value[i] = (byte) i;
        }
        await(kv.put(bs(key), bs(value)));
        GetResponse g = await(kv.get(bs(key)));
        assertEquals(1, g.getCount());
        assertArrayEquals(key, g.getKvs().get(0).getKey().getBytes());
        assertArrayEquals(value, g.getKvs().get(0).getValue().getBytes());
    }

    @Test
    void valueOfOneMebibyteWorks() {
        byte[] value = new byte[1024 * 1024];
        new Random(42).nextBytes(value);
        await(kv.put(k("big"), bs(value)));
        assertArrayEquals(value, await(kv.get(k("big"))).getKvs().get(0).getValue().getBytes());
    }

    @Test
    void keyOf2000BytesWorks() {
        byte[] key = longKey(2000, 'k');
        long r0 = currentRevision();
        PutResponse p = await(kv.put(bs(key), bs("v2000")));
        assertEquals(r0 + 1, p.getHeader().getRevision());
        GetResponse g = await(kv.get(bs(key)));
        assertEquals(1, g.getCount());
        assertArrayEquals(key, g.getKvs().get(0).getKey().getBytes());
        assertEquals("v2000", str(g.getKvs().get(0).getValue()));
        // overwrite of the same long key is the same key, not a new one
        await(kv.put(bs(key), bs("again")));
        GetResponse g2 = await(kv.get(bs(key)));
        assertEquals(1, g2.getCount());
        assertEquals(2, g2.getKvs().get(0).getVersion());
        assertEquals(r0 + 1, g2.getKvs().get(0).getCreateRevision());
        // a key sharing its first 1999 bytes is a different key
        byte[] sibling = key.clone();
        sibling[sibling.length - 1] = 'z';
        assertEquals(0, await(kv.get(bs(sibling))).getCount());
    }

    @Test
    void keyOf100KilobytesWorks() {
        byte[] key = longKey(100 * 1024, 'q');
        await(kv.put(bs(key), bs("v100k")));
        GetResponse g = await(kv.get(bs(key)));
        assertEquals(1, g.getCount());
        assertArrayEquals(key, g.getKvs().get(0).getKey().getBytes());
        assertEquals("v100k", str(g.getKvs().get(0).getValue()));
        GetResponse byPrefix = await(kv.get(k(""), GetOption.builder().isPrefix(true).withKeysOnly(true).build()));
        assertEquals(1, byPrefix.getCount());
        assertArrayEquals(key, byPrefix.getKvs().get(0).getKey().getBytes());
    }

    @Test
    void prefixRangeOverLongKeysSharingFirst600BytesIsInByteOrder() {
        byte[] common = longKey(600, 'c');
        // suffixes chosen so that signed-byte or truncated comparisons would misorder them
        byte[][] suffixes = {
            {},
            {0x00},
            {0x01},
            {0x01, 0x00},
            {0x41},
            {0x7F},
            {(byte) 0x80},
            {(byte) 0x80, 0x41},
            {(byte) 0xFE},
            {(byte) 0xFF},
            {(byte) 0xFF, (byte) 0xFF},
        };
        List<byte[]> expected = new ArrayList<>();
        for (byte[] s : suffixes) {
            expected.add(concat(common, s));
        }
        List<byte[]> shuffled = new ArrayList<>(expected);
        Collections.shuffle(shuffled, new Random(7));
        for (byte[] key : shuffled) {
            await(kv.put(bs(key), bs("v" + Arrays.hashCode(key))));
        }
        GetResponse g = await(kv.get(bs(common), GetOption.builder().isPrefix(true).build()));
        assertEquals(expected.size(), g.getCount());
        assertEquals(expected.size(), g.getKvs().size());
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), g.getKvs().get(i).getKey().getBytes(), "key #" + i);
            assertEquals("v" + Arrays.hashCode(expected.get(i)), str(g.getKvs().get(i).getValue()));
        }
        // descending by key is the exact reverse
        GetResponse desc = await(kv.get(bs(common), GetOption.builder().isPrefix(true)
                .withSortField(GetOption.SortTarget.KEY).withSortOrder(GetOption.SortOrder.DESCEND).build()));
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(expected.size() - 1 - i), desc.getKvs().get(i).getKey().getBytes());
        }
        // each long key is read back on its own
        for (byte[] key : expected) {
            GetResponse one = await(kv.get(bs(key)));
            assertEquals(1, one.getCount());
            assertArrayEquals(key, one.getKvs().get(0).getKey().getBytes());
        }
        // range between two long keys: [common+0x01, common+0x80) = 0x01, 0x01 0x00, 0x41, 0x7F
        GetResponse mid = await(kv.get(bs(concat(common, new byte[] {0x01})),
                GetOption.builder().withRange(bs(concat(common, new byte[] {(byte) 0x80}))).build()));
        assertEquals(4, mid.getCount());
        assertArrayEquals(expected.get(2), mid.getKvs().get(0).getKey().getBytes());
        assertArrayEquals(expected.get(5), mid.getKvs().get(3).getKey().getBytes());
    }

    private byte[] longKey(int length, char fill) {
        byte[] prefix = ns.getBytes(StandardCharsets.UTF_8);
        byte[] key = new byte[length];
        Arrays.fill(key, (byte) fill);
        System.arraycopy(prefix, 0, key, 0, prefix.length);
        return key;
    }

    static byte[] concat(byte[] a, byte[] b) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(a, 0, a.length);
        out.write(b, 0, b.length);
        return out.toByteArray();
    }
}
