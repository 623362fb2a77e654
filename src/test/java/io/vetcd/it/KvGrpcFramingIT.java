package io.vetcd.it;

import static io.vetcd.it.RawGrpc.frame;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import io.vertx.core.buffer.Buffer;
import io.vetcd.it.RawGrpc.Outcome;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The unary KV calls' gRPC framing, which vetcd serves on HTTP/2 frames itself (api.KvHttp2): a request
 * split across writes or followed by a second message (ignored, as by etcd), and the calls that must end
 * with an error — a message above the size limit, a compressed message, a message cut short, a request
 * ending inside its message or before it, a request etcd refuses — answered with etcd's gRPC status and
 * words. Sent as raw HTTP/2 requests, the same bytes to etcd and to the candidate.
 */
class KvGrpcFramingIT {

    private static final String PUT = "/etcdserverpb.KV/Put";
    private static final String RANGE = "/etcdserverpb.KV/Range";

    private static MemberProcess etcd;
    private static MemberProcess candidate;
    private static RawGrpc grpc;

    @BeforeAll
    static void start() throws Exception {
        etcd = MemberProcess.start(MemberProcess.Kind.ETCD, "kv-framing-reference-etcd");
        MemberProcess.Kind kind = MemberProcess.candidateKind();
        candidate = MemberProcess.start(kind, "kv-framing-candidate-" + kind.name().toLowerCase());
        grpc = new RawGrpc();
    }

    @AfterAll
    static void stop() throws Exception {
        MemberProcess.closeAll(grpc == null ? null : grpc.vertx(), candidate, etcd);
    }

    /** A unary call: the writes, then the end of the request. */
    private static Outcome call(MemberProcess member, String path, String encoding, Buffer... writes)
            throws Exception {
        return grpc.call(member, path, encoding, true, writes);
    }

    private static byte[] put(String key, String value) {
        return PutRequest.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8(value))
                .build().toByteArray();
    }

    /** The same call to both servers: the same status and the same words. */
    private static Outcome sameAsEtcd(String path, String encoding, Buffer... writes) throws Exception {
        Outcome expected = call(etcd, path, encoding, writes);
        Outcome actual = call(candidate, path, encoding, writes);
        assertEquals(expected.status(), actual.status(), "etcd: " + expected + ", candidate: " + actual);
        assertEquals(expected.message(), actual.message(), "etcd: " + expected + ", candidate: " + actual);
        return actual;
    }

    private static byte[] onlyMessage(Buffer body) {
        assertEquals(body.length(), 5 + body.getInt(1), "one message in " + body.length() + " bytes");
        return body.getBytes(5, body.length());
    }

    @Test
    void aPutSplitAcrossWritesIsReassembledAndAnswered() throws Exception {
        Buffer whole = frame(0, put("split-key", "split-value"));
        // Cut inside the prefix and inside the body.
        Outcome put = sameAsEtcd(PUT, null, whole.getBuffer(0, 3), whole.getBuffer(3, 12),
                whole.getBuffer(12, whole.length()));
        assertEquals("0", put.status());
        PutResponse response = PutResponse.parseFrom(onlyMessage(put.body()));
        Outcome range = call(candidate, RANGE, null, frame(0, RangeRequest.newBuilder()
                .setKey(ByteString.copyFromUtf8("split-key")).build().toByteArray()));
        assertEquals("0", range.status(), range.toString());
        RangeResponse kvs = RangeResponse.parseFrom(onlyMessage(range.body()));
        assertEquals(1, kvs.getKvsCount());
        assertEquals("split-value", kvs.getKvs(0).getValue().toStringUtf8());
        assertEquals(response.getHeader().getRevision(), kvs.getKvs(0).getModRevision());
    }

    @Test
    void aMessageAboveTheLimitIsResourceExhaustedWithGrpcGosWords() throws Exception {
        // Only the 5-byte prefix: both servers refuse on the announced length.
        Outcome outcome = sameAsEtcd(PUT, null, Buffer.buffer().appendByte((byte) 0).appendInt(3 * 1024 * 1024));
        assertEquals("8", outcome.status());
    }

    @Test
    void aCompressedMessageIsRefusedAsEtcdRefusesIt() throws Exception {
        sameAsEtcd(PUT, "gzip", frame(1, put("k", "v")));
        sameAsEtcd(PUT, null, frame(1, put("k", "v")));
    }

    @Test
    void aMessageCutShortIsInternalWithGrpcGosWords() throws Exception {
        Outcome outcome = sameAsEtcd(PUT, null, frame(0, new byte[] {0x0a, 0x05, 'k'}));
        assertEquals("13", outcome.status());
    }

    @Test
    void aRequestEtcdRefusesIsRefusedWithItsWords() throws Exception {
        Outcome outcome = sameAsEtcd(PUT, null, frame(0, put("", "v")));
        assertEquals("3", outcome.status()); // etcdserver: key is not provided
    }

    @Test
    void aSecondMessageIsIgnoredAsEtcdIgnoresIt() throws Exception {
        Buffer one = frame(0, put("twice", "v"));
        assertEquals("0", sameAsEtcd(PUT, null, Buffer.buffer().appendBuffer(one).appendBuffer(one)).status());
    }

    @Test
    void aRequestEndingInsideItsMessageIsRefusedAsEtcdRefusesIt() throws Exception {
        byte[] message = put("cut", "value");
        sameAsEtcd(PUT, null, frame(0, message).getBuffer(0, 5 + message.length - 3));
        sameAsEtcd(PUT, null, Buffer.buffer().appendByte((byte) 0).appendShort((short) 0));
    }

    @Test
    void aRequestWithoutAMessageIsRefused() throws Exception {
        // etcd 3.4's grpc-go never answers this one (the call hangs until the client gives up); vetcd
        // answers as for a message cut short, with Go's io.EOF.
        Outcome outcome = call(candidate, PUT, null);
        assertEquals("2", outcome.status(), outcome.toString());
        assertEquals("EOF", outcome.message());
    }

    /**
     * The other services, served through Vert.x's gRPC server (api.UnparsableRequests): a message that
     * does not parse is answered INTERNAL with grpc-go's prefix, as by etcd, not with a reset stream.
     * (The words after the prefix are each parser's own.)
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"/etcdserverpb.Lease/LeaseRevoke",
        "/etcdserverpb.Lease/LeaseGrant", "/etcdserverpb.Maintenance/Status", "/etcdserverpb.Maintenance/HashKV",
        "/etcdserverpb.Cluster/MemberList", "/etcdserverpb.KV/Range"})
    void aMessageThatDoesNotParseIsInternalAsInEtcd(String path) throws Exception {
        Buffer bad = RawGrpc.frame(0, new byte[] {(byte) 0xff, (byte) 0xff, 0x0f});
        for (MemberProcess member : new MemberProcess[] {etcd, candidate}) {
            Outcome outcome = call(member, path, null, bad);
            assertEquals("13", outcome.status(), member.kind() + ": " + outcome);
            org.junit.jupiter.api.Assertions.assertTrue(outcome.message() != null
                    && outcome.message().startsWith("grpc: error unmarshalling request: "), member.kind() + ": " + outcome);
        }
    }
}
