package io.vetcd.it;

import static io.vetcd.it.RawGrpc.frame;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.buffer.Buffer;
import io.vetcd.it.RawGrpc.Outcome;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Watch call's gRPC framing, which vetcd serves on the HTTP/2 stream itself (api.WatchHttp2):
 * messages split across writes, and the calls that must end with an error — a message above the size
 * limit, a compressed message, a message cut short — answered with etcd's gRPC status
 * and words. Sent as raw HTTP/2 requests, the same bytes to etcd and to the candidate.
 */
class WatchGrpcFramingIT {

    private static final String PATH = "/etcdserverpb.Watch/Watch";

    private static MemberProcess etcd;
    private static MemberProcess candidate;
    private static RawGrpc grpc;

    @BeforeAll
    static void start() throws Exception {
        etcd = MemberProcess.start(MemberProcess.Kind.ETCD, "framing-reference-etcd");
        MemberProcess.Kind kind = MemberProcess.candidateKind();
        candidate = MemberProcess.start(kind, "framing-candidate-" + kind.name().toLowerCase());
        grpc = new RawGrpc();
    }

    @AfterAll
    static void stop() throws Exception {
        MemberProcess.closeAll(grpc == null ? null : grpc.vertx(), candidate, etcd);
    }

    /** A Watch call: the writes, the request left open (the server ends the call). */
    private static Outcome call(MemberProcess member, String encoding, Buffer... writes) throws Exception {
        return grpc.call(member, PATH, encoding, false, writes);
    }

    @Test
    void aMessageAboveTheLimitIsResourceExhaustedWithGrpcGosWords() throws Exception {
        // Only the 5-byte prefix: both servers refuse on the announced length.
        Buffer prefix = Buffer.buffer().appendByte((byte) 0).appendInt(3 * 1024 * 1024);
        Outcome expected = call(etcd, null, prefix);
        Outcome actual = call(candidate, null, prefix);
        assertEquals("8", expected.status(), "etcd: " + expected);
        assertEquals(expected.status(), actual.status());
        assertEquals(expected.message(), actual.message());
    }

    @ParameterizedTest(name = "grpc-encoding {0}")
    @ValueSource(strings = {"gzip", ""})
    void aCompressedMessageIsRefusedAsEtcdRefusesIt(String encoding) throws Exception {
        // "": no grpc-encoding header at all, a compressed flag anyway (grpc-go has words of its own).
        String header = encoding.isEmpty() ? null : encoding;
        byte[] create = WatchRequest.newBuilder().setCreateRequest(
                WatchCreateRequest.newBuilder().setKey(com.google.protobuf.ByteString.copyFromUtf8("k"))).build().toByteArray();
        Outcome expected = call(etcd, header, frame(1, create));
        Outcome actual = call(candidate, header, frame(1, create));
        assertEquals(expected.status(), actual.status(), "etcd: " + expected + ", candidate: " + actual);
        assertEquals(expected.message(), actual.message());
    }

    @Test
    void aMessageCutShortIsInternalWithGrpcGosWords() throws Exception {
        byte[] truncated = {0x0a, 0x05, 'k'}; // field 1 announces 5 bytes, 1 follows
        Outcome expected = call(etcd, null, frame(0, truncated));
        Outcome actual = call(candidate, null, frame(0, truncated));
        assertEquals("13", expected.status(), "etcd: " + expected);
        assertEquals(expected.status(), actual.status());
        assertEquals(expected.message(), actual.message());
    }

    @Test
    void aRequestSplitAcrossWritesIsReassembled() throws Exception {
        byte[] create = WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                .setKey(com.google.protobuf.ByteString.copyFromUtf8("split-key"))).build().toByteArray();
        Buffer whole = frame(0, create);
        // Two messages, cut in three writes at awkward places (inside the prefix, inside the body); then
        // a third message that is not a WatchRequest ends the call, so that the answer can be read whole.
        Buffer both = Buffer.buffer().appendBuffer(whole).appendBuffer(whole);
        Buffer end = frame(0, new byte[] {0x0a, 0x05, 'k'});
        Outcome actual = call(candidate, null, both.getBuffer(0, 3), both.getBuffer(3, whole.length() + 7),
                both.getBuffer(whole.length() + 7, both.length()), end);
        assertEquals("13", actual.status());
        Buffer body = actual.body();
        int at = 0;
        int created = 0;
        while (at < body.length()) {
            int length = body.getInt(at + 1);
            WatchResponse response = WatchResponse.parseFrom(body.getBytes(at + 5, at + 5 + length));
            assertTrue(response.getCreated(), response.toString());
            assertEquals(created, response.getWatchId());
            created++;
            at += 5 + length;
        }
        assertEquals(2, created, "both watches created");
    }
}
