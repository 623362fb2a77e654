package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.kv.DeleteResponse;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class KvDeleteTest extends EtcdTestBase {

    private long putAtoE() {
        long r0 = currentRevision();
        for (String s : List.of("a", "b", "c", "d", "e")) {
            await(kv.put(k(s), bs("v" + s)));
        }
        return r0;
    }

    private List<String> remaining() {
        return shortKeys(await(kv.get(k(""), GetOption.builder().isPrefix(true).build())));
    }

    private List<String> prevKeys(DeleteResponse d) {
        return d.getPrevKvs().stream().map(x -> str(x.getKey()).substring(ns.length())).collect(Collectors.toList());
    }

    @Test
    void deleteSingleKey() {
        long r0 = putAtoE();
        DeleteResponse d = await(kv.delete(k("c")));
        assertEquals(1, d.getDeleted());
        assertEquals(r0 + 6, d.getHeader().getRevision());
        assertTrue(d.getPrevKvs().isEmpty(), "no prev kvs unless asked");
        assertEquals(List.of("a", "b", "d", "e"), remaining());
        assertEquals(0, await(kv.get(k("c"))).getCount());
        // still visible in history
        GetResponse before = await(kv.get(k("c"), GetOption.builder().withRevision(r0 + 5).build()));
        assertKv(before.getKvs().get(0), ns + "c", "vc", r0 + 3, r0 + 3, 1);
    }

    @Test
    void deleteMissingKeyDoesNotBumpRevision() {
        long r0 = putAtoE();
        DeleteResponse d = await(kv.delete(k("zzz")));
        assertEquals(0, d.getDeleted());
        assertEquals(r0 + 5, d.getHeader().getRevision());
        assertEquals(r0 + 5, currentRevision());
        DeleteResponse again = await(kv.delete(k("c")));
        assertEquals(1, again.getDeleted());
        DeleteResponse twice = await(kv.delete(k("c"), DeleteOption.builder().withPrevKV(true).build()));
        assertEquals(0, twice.getDeleted());
        assertTrue(twice.getPrevKvs().isEmpty());
        assertEquals(r0 + 6, twice.getHeader().getRevision());
        // empty range
        DeleteResponse emptyRange = await(kv.delete(k("x"), DeleteOption.builder().withRange(k("y")).build()));
        assertEquals(0, emptyRange.getDeleted());
        assertEquals(r0 + 6, currentRevision());
    }

    @Test
    void deleteRangeIsOneRevision() {
        long r0 = putAtoE();
        DeleteResponse d = await(kv.delete(k("b"), DeleteOption.builder().withRange(k("d")).build()));
        assertEquals(2, d.getDeleted());
        assertEquals(r0 + 6, d.getHeader().getRevision());
        assertEquals(List.of("a", "d", "e"), remaining());
        assertEquals(r0 + 6, currentRevision());
    }

    @Test
    void deletePrefix() {
        await(kv.put(k("p/1"), bs("1")));
        await(kv.put(k("p/2"), bs("2")));
        await(kv.put(k("p0"), bs("3")));
        await(kv.put(k("o"), bs("4")));
        DeleteResponse d = await(kv.delete(k("p/"), DeleteOption.builder().isPrefix(true).build()));
        assertEquals(2, d.getDeleted());
        assertEquals(List.of("o", "p0"), remaining());
    }

    @Test
    void deleteWithPrevKvReturnsDeletedPairsInKeyOrder() {
        long r0 = putAtoE();
        await(kv.put(k("b"), bs("vb2")));   // r0+6
        DeleteResponse d = await(kv.delete(k("a"),
                DeleteOption.builder().withRange(k("c\u0000")).withPrevKV(true).build()));
        assertEquals(3, d.getDeleted());
        assertEquals(List.of("a", "b", "c"), prevKeys(d));
        assertKv(d.getPrevKvs().get(0), ns + "a", "va", r0 + 1, r0 + 1, 1);
        assertKv(d.getPrevKvs().get(1), ns + "b", "vb2", r0 + 2, r0 + 6, 2);
        assertKv(d.getPrevKvs().get(2), ns + "c", "vc", r0 + 3, r0 + 3, 1);
        DeleteResponse single = await(kv.delete(k("e"), DeleteOption.builder().withPrevKV(true).build()));
        assertEquals(1, single.getDeleted());
        assertKv(single.getPrevKvs().get(0), ns + "e", "ve", r0 + 5, r0 + 5, 1);
    }

    @Test
    void deleteFromKey() {
        ByteSequence base = ByteSequence.from(new byte[] {(byte) 0xFF, (byte) 0xFE});
        for (String s : List.of("a", "b", "c")) {
            await(kv.put(base.concat(bs(s)), bs(s)));
        }
        DeleteResponse d = await(kv.delete(base.concat(bs("b")),
                DeleteOption.builder().withRange(ByteSequence.from(new byte[] {0})).build()));
        assertEquals(2, d.getDeleted());
        GetResponse left = await(kv.get(base, GetOption.builder().isPrefix(true).build()));
        assertEquals(List.of("a"), values(left));
    }

    @Test
    void recreateAfterDeleteStartsNewGeneration() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        await(kv.put(k("a"), bs("2")));   // r0+2
        await(kv.delete(k("a")));         // r0+3
        await(kv.put(k("a"), bs("3")));   // r0+4
        assertKv(await(kv.get(k("a"))).getKvs().get(0), ns + "a", "3", r0 + 4, r0 + 4, 1);
    }
}
