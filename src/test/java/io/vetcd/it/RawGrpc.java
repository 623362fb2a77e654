package io.vetcd.it;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.util.concurrent.TimeUnit;

/**
 * gRPC calls as raw HTTP/2 requests (prior knowledge, cleartext), for the framing tests: the bytes of
 * a call are exactly the test's, split into DATA frames where it says, whatever a gRPC client would do.
 */
final class RawGrpc {

    /** What a call ended with: grpc-status and grpc-message (from trailers, or a trailers-only answer). */
    record Outcome(String status, String message, Buffer body) {}

    private final Vertx vertx = Vertx.vertx();
    private final HttpClient client = vertx.createHttpClient(new HttpClientOptions()
            .setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));

    /** A message as gRPC frames it: a compressed flag, a 4-byte length, the bytes. */
    static Buffer frame(int flag, byte[] message) {
        return Buffer.buffer().appendByte((byte) flag).appendInt(message.length).appendBytes(message);
    }

    /**
     * One call to {@code path} on {@code member}: each write a DATA frame; the request is ended after
     * them if {@code end} (a unary call), left open otherwise (a stream the server ends).
     */
    Outcome call(MemberProcess member, String path, String encoding, boolean end, Buffer... writes)
            throws Exception {
        return call(member.endpoint(), path, encoding, end, writes);
    }

    /** As above, to the client URL {@code endpoint}. */
    Outcome call(String endpoint, String path, String encoding, boolean end, Buffer... writes) throws Exception {
        URI uri = URI.create(endpoint);
        RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST)
                .setHost(uri.getHost()).setPort(uri.getPort()).setURI(path)
                .putHeader("content-type", "application/grpc").putHeader("te", "trailers");
        if (encoding != null) {
            options.putHeader("grpc-encoding", encoding);
        }
        return client.request(options).compose(request -> {
            request.setChunked(true); // a stream of writes; HTTP/2 frames them as DATA
            for (Buffer b : writes) {
                request.write(b);
            }
            if (end) {
                request.end();
            }
            return request.response().compose(response -> response.body().map(body -> outcome(response, body)));
        }).toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }

    /**
     * For a stream that the server need not end (Watch, LeaseKeepAlive: etcd keeps them open after the
     * client's half-close): sends {@code message} without ending the request and waits up to
     * {@code timeoutMillis} for the first sign of an answer. The outcome is the status if the call
     * ended, status null with the bytes so far if response data came, or null if nothing came; the
     * stream is then reset. A reset from the server fails the future.
     */
    Outcome firstAnswer(String endpoint, String path, Buffer message, long timeoutMillis) throws Exception {
        URI uri = URI.create(endpoint);
        RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST)
                .setHost(uri.getHost()).setPort(uri.getPort()).setURI(path)
                .putHeader("content-type", "application/grpc").putHeader("te", "trailers");
        java.util.concurrent.CompletableFuture<Outcome> answer = new java.util.concurrent.CompletableFuture<>();
        io.vertx.core.http.HttpClientRequest request = client.request(options)
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        request.setChunked(true);
        request.response().onSuccess(response -> {
            Buffer received = Buffer.buffer();
            response.handler(chunk -> {
                received.appendBuffer(chunk);
                answer.complete(new Outcome(null, null, received));
            });
            response.endHandler(v -> answer.complete(outcome(response, received)));
            response.exceptionHandler(answer::completeExceptionally);
        }).onFailure(answer::completeExceptionally);
        request.exceptionHandler(answer::completeExceptionally);
        request.write(message);
        try {
            return answer.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException silent) {
            return null;
        } finally {
            request.reset();
        }
    }

    private static Outcome outcome(HttpClientResponse response, Buffer body) {
        String status = response.trailers().get("grpc-status");
        String message = response.trailers().get("grpc-message");
        if (status == null) {
            status = response.headers().get("grpc-status");
            message = response.headers().get("grpc-message");
        }
        return new Outcome(status, message == null ? null : percentDecoded(message), body);
    }

    /**
     * grpc-message as a client reads it: percent-encoded bytes decoded (grpc-go encodes only what is
     * not printable ASCII, Vert.x's server also spaces and colons; both mean the same words).
     */
    static String percentDecoded(String message) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            if (c == '%' && i + 2 < message.length()) {
                bytes.write(Integer.parseInt(message.substring(i + 1, i + 3), 16));
                i += 2;
            } else {
                bytes.write((byte) c);
            }
        }
        return bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** The client's Vert.x, for {@link MemberProcess#closeAll}. */
    Vertx vertx() {
        return vertx;
    }
}
