package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.api.Compare;
import io.etcd.jetcd.api.KVGrpc;
import io.etcd.jetcd.api.PutRequest;
import io.etcd.jetcd.api.RangeRequest;
import io.etcd.jetcd.api.RequestOp;
import io.etcd.jetcd.api.TxnRequest;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class TxnTest extends EtcdTestBase {

    private ManagedChannel channel;

    /** Plain gRPC stub, for what jetcd's API cannot express (LEASE compares, compare range_end). */
    private KVGrpc.KVBlockingStub rawKv() {
        if (channel == null) {
            channel = ManagedChannelBuilder.forAddress("127.0.0.1", server.clientPort()).usePlaintext().build();
        }
        return KVGrpc.newBlockingStub(channel).withDeadlineAfter(TIMEOUT_S, TimeUnit.SECONDS);
    }

    @AfterAll
    void closeChannel() throws InterruptedException {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private ByteString raw(String suffix) {
        return ByteString.copyFrom(ns + suffix, StandardCharsets.UTF_8);
    }

    private static Op put(ByteSequence key, String value) {
        return Op.put(key, bs(value), PutOption.DEFAULT);
    }

    private static Op get(ByteSequence key) {
        return Op.get(key, GetOption.DEFAULT);
    }

    private Cmp cmp(String key, Cmp.Op op, CmpTarget<?> target) {
        return new Cmp(k(key), op, target);
    }

    /** Runs If(cmp) Then(put then=1) Else(put else=1) and returns whether it succeeded. */
    private boolean check(Cmp... cmps) {
        TxnResponse r = await(kv.txn().If(cmps).Then(put(k("then"), "1")).Else(put(k("else"), "1")).commit());
        // exactly the chosen branch ran
        assertEquals(1, r.getPutResponses().size());
        return r.isSucceeded();
    }

    @Test
    void compareVersion() {
        await(kv.put(k("a"), bs("1")));
        await(kv.put(k("a"), bs("2")));   // version 2
        assertTrue(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.version(2))));
        assertFalse(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.version(1))));
        assertTrue(check(cmp("a", Cmp.Op.GREATER, CmpTarget.version(1))));
        assertFalse(check(cmp("a", Cmp.Op.GREATER, CmpTarget.version(2))));
        assertTrue(check(cmp("a", Cmp.Op.LESS, CmpTarget.version(3))));
        assertFalse(check(cmp("a", Cmp.Op.LESS, CmpTarget.version(2))));
        assertTrue(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.version(5))));
        assertFalse(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.version(2))));
        // a missing key has version 0
        assertTrue(check(cmp("missing", Cmp.Op.EQUAL, CmpTarget.version(0))));
        assertFalse(check(cmp("missing", Cmp.Op.GREATER, CmpTarget.version(0))));
    }

    @Test
    void compareCreateRevision() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // created r0+1
        await(kv.put(k("a"), bs("2")));
        assertTrue(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.createRevision(r0 + 1))));
        assertFalse(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.createRevision(r0 + 2))));
        assertTrue(check(cmp("a", Cmp.Op.GREATER, CmpTarget.createRevision(r0))));
        assertFalse(check(cmp("a", Cmp.Op.GREATER, CmpTarget.createRevision(r0 + 1))));
        assertTrue(check(cmp("a", Cmp.Op.LESS, CmpTarget.createRevision(r0 + 2))));
        assertFalse(check(cmp("a", Cmp.Op.LESS, CmpTarget.createRevision(r0 + 1))));
        assertTrue(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.createRevision(r0 + 2))));
        assertFalse(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.createRevision(r0 + 1))));
        // "create if absent" idiom: create_revision of a missing key is 0
        assertTrue(check(cmp("missing", Cmp.Op.EQUAL, CmpTarget.createRevision(0))));
    }

    @Test
    void compareModRevision() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        await(kv.put(k("b"), bs("1")));   // r0+2
        await(kv.put(k("a"), bs("2")));   // r0+3 : mod of a
        assertTrue(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.modRevision(r0 + 3))));
        assertFalse(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.modRevision(r0 + 1))));
        assertTrue(check(cmp("a", Cmp.Op.GREATER, CmpTarget.modRevision(r0 + 2))));
        assertFalse(check(cmp("a", Cmp.Op.GREATER, CmpTarget.modRevision(r0 + 3))));
        assertTrue(check(cmp("a", Cmp.Op.LESS, CmpTarget.modRevision(r0 + 4))));
        assertFalse(check(cmp("a", Cmp.Op.LESS, CmpTarget.modRevision(r0 + 3))));
        assertTrue(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.modRevision(r0 + 1))));
        assertFalse(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.modRevision(r0 + 3))));
        assertTrue(check(cmp("missing", Cmp.Op.EQUAL, CmpTarget.modRevision(0))));
        assertTrue(check(cmp("missing", Cmp.Op.LESS, CmpTarget.modRevision(1))));
    }

    @Test
    void compareValue() {
        await(kv.put(k("a"), bs("abc")));
        assertTrue(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.value(bs("abc")))));
        assertFalse(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.value(bs("abd")))));
        // byte-wise comparison
        assertTrue(check(cmp("a", Cmp.Op.GREATER, CmpTarget.value(bs("abb")))));
        assertTrue(check(cmp("a", Cmp.Op.GREATER, CmpTarget.value(bs("ab")))));
        assertFalse(check(cmp("a", Cmp.Op.GREATER, CmpTarget.value(bs("abc")))));
        assertTrue(check(cmp("a", Cmp.Op.LESS, CmpTarget.value(bs("abd")))));
        assertTrue(check(cmp("a", Cmp.Op.LESS, CmpTarget.value(bs("abc\u0000")))));
        assertFalse(check(cmp("a", Cmp.Op.LESS, CmpTarget.value(bs("abc")))));
        assertTrue(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.value(bs("x")))));
        assertFalse(check(cmp("a", Cmp.Op.NOT_EQUAL, CmpTarget.value(bs("abc")))));
        // unsigned bytes: 0x80 > 0x7f
        await(kv.put(k("bin"), ByteSequence.from(new byte[] {(byte) 0x80})));
        assertTrue(check(cmp("bin", Cmp.Op.GREATER, CmpTarget.value(ByteSequence.from(new byte[] {0x7F})))));
        // a VALUE compare on a missing key is always false, even NOT_EQUAL
        assertFalse(check(cmp("missing", Cmp.Op.EQUAL, CmpTarget.value(bs("")))));
        assertFalse(check(cmp("missing", Cmp.Op.NOT_EQUAL, CmpTarget.value(bs("x")))));
        assertFalse(check(cmp("missing", Cmp.Op.LESS, CmpTarget.value(bs("x")))));
        // empty value on an existing key
        await(kv.put(k("empty"), ByteSequence.EMPTY));
        assertTrue(check(cmp("empty", Cmp.Op.EQUAL, CmpTarget.value(ByteSequence.EMPTY))));
    }

    private boolean rawCheck(Compare c) {
        io.etcd.jetcd.api.TxnResponse r = rawKv().txn(TxnRequest.newBuilder()
                .addCompare(c)
                .addSuccess(RequestOp.newBuilder().setRequestPut(
                        PutRequest.newBuilder().setKey(raw("then")).setValue(ByteString.copyFromUtf8("1"))))
                .addFailure(RequestOp.newBuilder().setRequestPut(
                        PutRequest.newBuilder().setKey(raw("else")).setValue(ByteString.copyFromUtf8("1"))))
                .build());
        return r.getSucceeded();
    }

    /** etcd's Compare.target LEASE = 4; jetcd 0.8.7's generated proto predates it. */
    private static final int TARGET_LEASE = 4;
    /** etcd's Compare.lease (target_union) field number. */
    private static final int FIELD_LEASE = 8;

    /**
     * A LEASE compare. jetcd 0.8.7's proto lacks both the LEASE target and the lease field, so the
     * target is set by number and the lease value is written as an unknown field 8 (varint).
     */
    private Compare leaseCmp(String key, Compare.CompareResult result, long lease) {
        return Compare.newBuilder().setKey(raw(key)).setTargetValue(TARGET_LEASE).setResult(result)
                .setUnknownFields(UnknownFieldSet.newBuilder()
                        .addField(FIELD_LEASE, UnknownFieldSet.Field.newBuilder().addVarint(lease).build())
                        .build())
                .build();
    }

    @Test
    void compareLeaseOfKeysWithoutALease() {
        await(kv.put(k("plain"), bs("1")));
        // no lease = lease 0, also for a missing key
        assertTrue(rawCheck(leaseCmp("plain", Compare.CompareResult.EQUAL, 0)));
        assertFalse(rawCheck(leaseCmp("plain", Compare.CompareResult.GREATER, 0)));
        assertTrue(rawCheck(leaseCmp("plain", Compare.CompareResult.LESS, 1)));
        assertTrue(rawCheck(leaseCmp("missing", Compare.CompareResult.EQUAL, 0)));
        assertFalse(rawCheck(leaseCmp("missing", Compare.CompareResult.NOT_EQUAL, 0)));
    }

    @Test
    void compareLease() {
        long lease = await(client.getLeaseClient().grant(600)).getID();
        assertTrue(lease > 0);
        await(kv.put(k("leased"), bs("1"), PutOption.builder().withLeaseId(lease).build()));
        assertEquals(lease, await(kv.get(k("leased"))).getKvs().get(0).getLease());

        assertTrue(rawCheck(leaseCmp("leased", Compare.CompareResult.EQUAL, lease)));
        assertFalse(rawCheck(leaseCmp("leased", Compare.CompareResult.EQUAL, 0)));
        assertTrue(rawCheck(leaseCmp("leased", Compare.CompareResult.GREATER, lease - 1)));
        assertFalse(rawCheck(leaseCmp("leased", Compare.CompareResult.GREATER, lease)));
        assertTrue(rawCheck(leaseCmp("leased", Compare.CompareResult.LESS, lease + 1)));
        assertFalse(rawCheck(leaseCmp("leased", Compare.CompareResult.LESS, lease)));
        assertTrue(rawCheck(leaseCmp("leased", Compare.CompareResult.NOT_EQUAL, 0)));
        assertFalse(rawCheck(leaseCmp("leased", Compare.CompareResult.NOT_EQUAL, lease)));
        await(client.getLeaseClient().revoke(lease));
        assertEquals(0, await(kv.get(k("leased"))).getCount(), "revoking the lease deletes its keys");
    }

    @Test
    void compareOverKeyRangeMustHoldForEveryKey() {
        await(kv.put(k("r/a"), bs("1")));
        await(kv.put(k("r/b"), bs("1")));
        await(kv.put(k("r/b"), bs("2")));
        Compare.Builder c = Compare.newBuilder().setKey(raw("r/")).setRangeEnd(raw("r0"))
                .setTarget(Compare.CompareTarget.VERSION);
        assertTrue(rawCheck(c.clone().setResult(Compare.CompareResult.GREATER).setVersion(0).build()));
        assertFalse(rawCheck(c.clone().setResult(Compare.CompareResult.EQUAL).setVersion(1).build()));
        assertTrue(rawCheck(c.clone().setResult(Compare.CompareResult.LESS).setVersion(3).build()));
        // empty range: a VERSION compare has nothing to fail on
        Compare.Builder empty = Compare.newBuilder().setKey(raw("s/")).setRangeEnd(raw("s0"))
                .setTarget(Compare.CompareTarget.VERSION);
        assertTrue(rawCheck(empty.clone().setResult(Compare.CompareResult.EQUAL).setVersion(0).build()));
    }

    @Test
    void allComparesMustHold() {
        await(kv.put(k("a"), bs("x")));
        await(kv.put(k("b"), bs("y")));
        assertTrue(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.value(bs("x"))),
                cmp("b", Cmp.Op.EQUAL, CmpTarget.value(bs("y")))));
        assertFalse(check(cmp("a", Cmp.Op.EQUAL, CmpTarget.value(bs("x"))),
                cmp("b", Cmp.Op.EQUAL, CmpTarget.value(bs("x")))));
        // no compares at all: success branch
        assertTrue(check());
    }

    @Test
    void successAndFailureBranches() {
        long r0 = currentRevision();
        await(kv.put(k("flag"), bs("on")));   // r0+1
        TxnResponse ok = await(kv.txn()
                .If(cmp("flag", Cmp.Op.EQUAL, CmpTarget.value(bs("on"))))
                .Then(put(k("t"), "then"), get(k("flag")))
                .Else(put(k("e"), "else"))
                .commit());
        assertTrue(ok.isSucceeded());
        assertEquals(r0 + 2, ok.getHeader().getRevision());
        assertEquals(1, ok.getPutResponses().size());
        assertEquals(1, ok.getGetResponses().size());
        assertEquals(List.of("on"), values(ok.getGetResponses().get(0)));
        assertEquals(0, await(kv.get(k("e"))).getCount());
        assertEquals("then", str(await(kv.get(k("t"))).getKvs().get(0).getValue()));

        TxnResponse ko = await(kv.txn()
                .If(cmp("flag", Cmp.Op.EQUAL, CmpTarget.value(bs("off"))))
                .Then(put(k("t"), "then2"))
                .Else(put(k("e"), "else"), Op.delete(k("flag"), DeleteOption.builder().withPrevKV(true).build()))
                .commit());
        assertFalse(ko.isSucceeded());
        assertEquals(r0 + 3, ko.getHeader().getRevision());
        assertEquals(1, ko.getDeleteResponses().size());
        assertEquals(1, ko.getDeleteResponses().get(0).getDeleted());
        assertKv(ko.getDeleteResponses().get(0).getPrevKvs().get(0), ns + "flag", "on", r0 + 1, r0 + 1, 1);
        assertEquals("then", str(await(kv.get(k("t"))).getKvs().get(0).getValue()));
        assertKv(await(kv.get(k("e"))).getKvs().get(0), ns + "e", "else", r0 + 3, r0 + 3, 1);
    }

    @Test
    void failedCompareWithNoElseOpsKeepsRevision() {
        long r0 = currentRevision();
        TxnResponse r = await(kv.txn().If(cmp("nope", Cmp.Op.EQUAL, CmpTarget.version(7)))
                .Then(put(k("x"), "1")).commit());
        assertFalse(r.isSucceeded());
        assertEquals(r0, r.getHeader().getRevision());
        assertEquals(r0, currentRevision());
        TxnResponse empty = await(kv.txn().commit());
        assertTrue(empty.isSucceeded());
        assertEquals(r0, empty.getHeader().getRevision());
    }

    @Test
    void severalPutsInOneTxnShareOneRevision() {
        long r0 = currentRevision();
        TxnResponse r = await(kv.txn()
                .Then(put(k("a"), "1"), put(k("b"), "2"), put(k("c"), "3"), Op.delete(k("zzz"), DeleteOption.DEFAULT))
                .commit());
        assertTrue(r.isSucceeded());
        assertEquals(r0 + 1, r.getHeader().getRevision());
        assertEquals(3, r.getPutResponses().size());
        for (var p : r.getPutResponses()) {
            assertEquals(r0 + 1, p.getHeader().getRevision());
        }
        GetResponse g = await(kv.get(k(""), GetOption.builder().isPrefix(true).build()));
        assertEquals(List.of("a", "b", "c"), shortKeys(g));
        for (var x : g.getKvs()) {
            assertEquals(r0 + 1, x.getCreateRevision());
            assertEquals(r0 + 1, x.getModRevision());
            assertEquals(1, x.getVersion());
        }
        assertEquals(r0 + 1, currentRevision());
        // a txn that only deletes a missing key writes nothing
        TxnResponse noop = await(kv.txn().Then(Op.delete(k("zzz"), DeleteOption.DEFAULT)).commit());
        assertEquals(r0 + 1, noop.getHeader().getRevision());
        // a txn that deletes one key and puts another: one revision
        TxnResponse mixed = await(kv.txn().Then(Op.delete(k("a"), DeleteOption.DEFAULT), put(k("d"), "4")).commit());
        assertEquals(r0 + 2, mixed.getHeader().getRevision());
        assertEquals(List.of("b", "c", "d"), shortKeys(await(kv.get(k(""), GetOption.builder().isPrefix(true).build()))));
    }

    @Test
    void getInsideTxnSeesEarlierWritesOfTheSameTxn() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("old")));   // r0+1
        TxnResponse r = await(kv.txn()
                .Then(get(k("a")), put(k("a"), "new"), get(k("a")),
                        Op.get(k(""), GetOption.builder().isPrefix(true).withCountOnly(true).build()))
                .commit());
        assertEquals(r0 + 2, r.getHeader().getRevision());
        List<GetResponse> gets = r.getGetResponses();
        assertEquals(3, gets.size());
        assertKv(gets.get(0).getKvs().get(0), ns + "a", "old", r0 + 1, r0 + 1, 1);
        assertKv(gets.get(1).getKvs().get(0), ns + "a", "new", r0 + 1, r0 + 2, 2);
        assertEquals(1, gets.get(2).getCount());
        // inner range responses carry the txn's revision
        assertEquals(r0 + 2, gets.get(1).getHeader().getRevision());
        // a get at an older revision inside a txn
        TxnResponse hist = await(kv.txn().Then(Op.get(k("a"), GetOption.builder().withRevision(r0 + 1).build())).commit());
        assertEquals("old", str(hist.getGetResponses().get(0).getKvs().get(0).getValue()));
        assertEquals(r0 + 2, hist.getHeader().getRevision());
    }

    @Test
    void putWithPrevKvInsideTxn() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));
        TxnResponse r = await(kv.txn()
                .Then(Op.put(k("a"), bs("2"), PutOption.builder().withPrevKV().build())).commit());
        assertKv(r.getPutResponses().get(0).getPrevKv(), ns + "a", "1", r0 + 1, r0 + 1, 1);
    }

    @Test
    void nestedTxn() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        TxnResponse r = await(kv.txn()
                .Then(put(k("outer"), "1"),
                        Op.txn(new Cmp[] {cmp("a", Cmp.Op.EQUAL, CmpTarget.value(bs("1")))},
                                new Op[] {put(k("inner"), "yes")},
                                new Op[] {put(k("inner"), "no")}))
                .commit());
        assertTrue(r.isSucceeded());
        assertEquals(r0 + 2, r.getHeader().getRevision());
        assertEquals(1, r.getTxnResponses().size());
        assertTrue(r.getTxnResponses().get(0).isSucceeded());
        assertKv(await(kv.get(k("inner"))).getKvs().get(0), ns + "inner", "yes", r0 + 2, r0 + 2, 1);
        assertKv(await(kv.get(k("outer"))).getKvs().get(0), ns + "outer", "1", r0 + 2, r0 + 2, 1);
    }

    @Test
    void sameKeyInThenAndElseIsAllowedAndRepeatedDeletesAreAllowed() {
        long r0 = currentRevision();
        await(kv.put(k("a"), bs("1")));   // r0+1
        TxnResponse r = await(kv.txn().If(cmp("a", Cmp.Op.EQUAL, CmpTarget.version(1)))
                .Then(put(k("a"), "then")).Else(put(k("a"), "else")).commit());
        assertTrue(r.isSucceeded());
        TxnResponse dels = await(kv.txn()
                .Then(Op.delete(k("a"), DeleteOption.DEFAULT), Op.delete(k("a"), DeleteOption.DEFAULT))
                .commit());
        assertEquals(r0 + 3, dels.getHeader().getRevision());
        assertEquals(1, dels.getDeleteResponses().get(0).getDeleted());
        assertEquals(0, dels.getDeleteResponses().get(1).getDeleted());
    }

    @Test
    void rawRangeInsideTxnWithRangeEnd() {
        await(kv.put(k("a"), bs("1")));
        await(kv.put(k("b"), bs("2")));
        io.etcd.jetcd.api.TxnResponse r = rawKv().txn(TxnRequest.newBuilder()
                .addSuccess(RequestOp.newBuilder().setRequestRange(
                        RangeRequest.newBuilder().setKey(raw("a")).setRangeEnd(raw("c")).setLimit(1)))
                .build());
        assertTrue(r.getSucceeded());
        var range = r.getResponses(0).getResponseRange();
        assertEquals(1, range.getKvsCount());
        assertEquals(2, range.getCount());
        assertTrue(range.getMore());
    }
}
