package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.api.PutRequest;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import io.grpc.Status;
import org.junit.jupiter.api.Test;

class ErrorsTest extends EtcdTestBase {

    static final String NO_KEY = "etcdserver: key is not provided";
    static final String TOO_MANY_OPS = "etcdserver: too many operations in txn request";
    static final String DUPLICATE_KEY = "etcdserver: duplicate key given in txn request";
    static final String TOO_LARGE = "etcdserver: request is too large";
    static final String GRPC_TOO_LARGE = "grpc: received message larger than max";
    static final String FUTURE = "etcdserver: mvcc: required revision is a future revision";

    private static Op put(ByteSequence key) {
        return Op.put(key, bs("v"), PutOption.DEFAULT);
    }

    @Test
    void emptyKeyIsRejected() {
        long r0 = currentRevision();
        assertGrpcError(kv.put(ByteSequence.EMPTY, bs("x")), Status.Code.INVALID_ARGUMENT, NO_KEY);
        assertGrpcError(kv.get(ByteSequence.EMPTY), Status.Code.INVALID_ARGUMENT, NO_KEY);
        assertGrpcError(kv.delete(ByteSequence.EMPTY), Status.Code.INVALID_ARGUMENT, NO_KEY);
        assertGrpcError(kv.txn().Then(put(ByteSequence.EMPTY)).commit(), Status.Code.INVALID_ARGUMENT, NO_KEY);
        assertGrpcError(kv.txn().Then(Op.get(ByteSequence.EMPTY, GetOption.DEFAULT)).commit(),
                Status.Code.INVALID_ARGUMENT, NO_KEY);
        // checked even in the branch that would not run
        assertGrpcError(kv.txn().Then(put(k("ok"))).Else(put(ByteSequence.EMPTY)).commit(),
                Status.Code.INVALID_ARGUMENT, NO_KEY);
        assertEquals(r0, currentRevision());
    }

    @Test
    void txnWithMoreThan128OpsIsRejected() {
        long r0 = currentRevision();
        Op[] ops = new Op[129];
        for (int i = 0; i < ops.length; i++) {
            ops[i] = put(k("op" + i));
        }
        assertGrpcError(kv.txn().Then(ops).commit(), Status.Code.INVALID_ARGUMENT, TOO_MANY_OPS);
        assertGrpcError(kv.txn().Else(ops).commit(), Status.Code.INVALID_ARGUMENT, TOO_MANY_OPS);
        Cmp[] cmps = new Cmp[129];
        for (int i = 0; i < cmps.length; i++) {
            cmps[i] = new Cmp(k("c" + i), Cmp.Op.EQUAL, CmpTarget.version(0));
        }
        assertGrpcError(kv.txn().If(cmps).commit(), Status.Code.INVALID_ARGUMENT, TOO_MANY_OPS);
        assertEquals(r0, currentRevision());

        // 128 is the limit, per list: 128 compares + 128 then + 128 else is fine
        Op[] ops128 = java.util.Arrays.copyOf(ops, 128);
        Op[] else128 = new Op[128];
        for (int i = 0; i < else128.length; i++) {
            else128[i] = put(k("else" + i));
        }
        TxnResponse r = await(kv.txn().If(java.util.Arrays.copyOf(cmps, 128)).Then(ops128).Else(else128).commit());
        assertTrue(r.isSucceeded());
        assertEquals(128, r.getPutResponses().size());
        assertEquals(r0 + 1, r.getHeader().getRevision());
        assertEquals(128, await(kv.get(k("op"), GetOption.builder().isPrefix(true).withCountOnly(true).build())).getCount());
    }

    @Test
    void duplicateKeysInTxnAreRejected() {
        long r0 = currentRevision();
        assertGrpcError(kv.txn().Then(put(k("d")), put(k("d"))).commit(), Status.Code.INVALID_ARGUMENT, DUPLICATE_KEY);
        // put and delete of the same key, in either order
        assertGrpcError(kv.txn().Then(put(k("d")), Op.delete(k("d"), DeleteOption.DEFAULT)).commit(),
                Status.Code.INVALID_ARGUMENT, DUPLICATE_KEY);
        assertGrpcError(kv.txn().Then(Op.delete(k("d"), DeleteOption.DEFAULT), put(k("d"))).commit(),
                Status.Code.INVALID_ARGUMENT, DUPLICATE_KEY);
        // a put inside a deleted range
        assertGrpcError(kv.txn().Then(Op.delete(k("a"), DeleteOption.builder().withRange(k("z")).build()), put(k("m")))
                .commit(), Status.Code.INVALID_ARGUMENT, DUPLICATE_KEY);
        // a put in a nested txn that the outer txn also writes
        assertGrpcError(kv.txn().Then(put(k("n")), Op.txn(new Cmp[0], new Op[] {put(k("n"))}, new Op[0])).commit(),
                Status.Code.INVALID_ARGUMENT, DUPLICATE_KEY);
        // in the else branch too
        assertGrpcError(kv.txn().Else(put(k("e")), put(k("e"))).commit(), Status.Code.INVALID_ARGUMENT, DUPLICATE_KEY);
        assertEquals(r0, currentRevision());
        // a put just outside a deleted range is fine
        TxnResponse ok = await(kv.txn()
                .Then(Op.delete(k("a"), DeleteOption.builder().withRange(k("m")).build()), put(k("m"))).commit());
        assertTrue(ok.isSucceeded());
        assertEquals(r0 + 1, ok.getHeader().getRevision());
    }

    @Test
    void valueOverTheRequestLimitIsTooLarge() {
        long r0 = currentRevision();
        // 1.6 MB: accepted by gRPC (limit 2 MiB) but over etcd's 1.5 MiB --max-request-bytes
        assertGrpcError(kv.put(k("big"), bs(new byte[1_600_000])), Status.Code.INVALID_ARGUMENT, TOO_LARGE);
        // exactly 1.5 MiB of value plus the key: still over the limit
        assertGrpcError(kv.put(k("big"), bs(new byte[3 * 512 * 1024])), Status.Code.INVALID_ARGUMENT, TOO_LARGE);
        // in a txn, the whole request counts
        assertGrpcError(kv.txn().Then(Op.put(k("t1"), bs(new byte[800_000]), PutOption.DEFAULT),
                Op.put(k("t2"), bs(new byte[800_000]), PutOption.DEFAULT)).commit(),
                Status.Code.INVALID_ARGUMENT, TOO_LARGE);
        assertEquals(r0, currentRevision());
        assertEquals(0, await(kv.get(k("big"))).getCount());
    }

    @Test
    void messageOverTheGrpcLimitIsResourceExhausted() {
        long r0 = currentRevision();
        // 2 MiB of value: the gRPC server (max receive = 1.5 MiB + 512 KiB = 2 MiB) refuses it before
        // etcd sees it, naming the size of the PutRequest message and the limit
        byte[] value = new byte[2 * 1024 * 1024];
        int size = PutRequest.newBuilder().setKey(ByteString.copyFrom(k("huge").getBytes()))
                .setValue(ByteString.copyFrom(value)).build().getSerializedSize();
        assertGrpcError(kv.put(k("huge"), bs(value)), Status.Code.RESOURCE_EXHAUSTED,
                GRPC_TOO_LARGE + " (" + size + " vs. 2097152)");
        assertEquals(r0, currentRevision());
        // the connection is still usable
        await(kv.put(k("small"), bs("ok")));
        assertEquals(r0 + 1, currentRevision());
    }

    @Test
    void futureRevisionRead() {
        long r0 = currentRevision();
        assertGrpcError(kv.get(k("x"), GetOption.builder().withRevision(r0 + 1).build()), Status.Code.OUT_OF_RANGE, FUTURE);
        assertGrpcError(kv.get(k("x"), GetOption.builder().withRevision(r0 + 1).withSerializable(true).build()),
                Status.Code.OUT_OF_RANGE, FUTURE);
        assertEquals(0, await(kv.get(k("x"), GetOption.builder().withRevision(r0).build())).getCount());
    }
}
