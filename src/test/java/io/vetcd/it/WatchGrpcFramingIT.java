package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import java.net.URI;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

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
    private static Vertx vertx;
    private static HttpClient client;

    @BeforeAll
    static void start() throws Exception {
        etcd = MemberProcess.start(MemberProcess.Kind.ETCD, "framing-reference-etcd");
        MemberProcess.Kind kind = MemberProcess.candidateKind();
        candidate = MemberProcess.start(kind, "framing-candidate-" + kind.name().toLowerCase());
        vertx = Vertx.vertx();
        client = vertx.createHttpClient(new HttpClientOptions()
                .setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
    }

    @AfterAll
    static void stop() throws Exception {
        MemberProcess.closeAll(vertx, candidate, etcd);
    }

    /** What a call ended with: grpc-status and grpc-message (from trailers, or a trailers-only answer). */
    record Outcome(String status, String message, Buffer body) {}

    private static Outcome call(MemberProcess member, String encoding, Buffer... writes) throws Exception {
        URI uri = URI.create(member.endpoint());
        RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST)
                .setHost(uri.getHost()).setPort(uri.getPort()).setURI(PATH)
                .putHeader("content-type", "application/grpc").putHeader("te", "trailers");
        if (encoding != null) {
            options.putHeader("grpc-encoding", encoding);
        }
        return client.request(options).compose(request -> {
            request.setChunked(true); // a stream of writes; HTTP/2 frames them as DATA
            for (Buffer b : writes) {
                request.write(b);
            }
            return request.response().compose(response -> response.body().map(body -> outcome(response, body)));
        }).toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }

    private static Outcome outcome(HttpClientResponse response, Buffer body) {
        String status = response.trailers().get("grpc-status");
        String message = response.trailers().get("grpc-message");
        if (status == null) {
            status = response.headers().get("grpc-status");
            message = response.headers().get("grpc-message");
        }
        return new Outcome(status, message, body);
    }

    private static Buffer frame(int flag, byte[] message) {
        return Buffer.buffer().appendByte((byte) flag).appendInt(message.length).appendBytes(message);
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

    @Test
    void aCompressedMessageIsRefusedAsEtcdRefusesIt() throws Exception {
        byte[] create = WatchRequest.newBuilder().setCreateRequest(
                WatchCreateRequest.newBuilder().setKey(com.google.protobuf.ByteString.copyFromUtf8("k"))).build().toByteArray();
        Outcome expected = call(etcd, "gzip", frame(1, create));
        Outcome actual = call(candidate, "gzip", frame(1, create));
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
