package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.ByteString;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchGrpcClient;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A watch stream whose client goes away — by cancelling the stream (an HTTP/2 reset, what clients do
 * when they close a watch or shut down) or by closing the connection — must be dropped by the server:
 * a leaked stream keeps its watchers and is woken by every later write. Counted in the server's heap
 * after a full GC (the JDK's jcmd), so this runs against vetcd only.
 */
class WatchStreamCleanupIT {

    private static final int STREAMS_PER_CLIENT = 10;
    private static final Duration CLEANUP_TIMEOUT = Duration.ofSeconds(15);

    private MemberProcess member;
    private Vertx vertx;

    @AfterEach
    void cleanUp() throws Exception {
        MemberProcess.closeAll(vertx, member);
    }

    @Test
    void cancelledAndDisconnectedWatchStreamsAreDropped() throws Exception {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        assumeTrue(MemberProcess.candidateKind() == MemberProcess.Kind.VETCD && Files.isExecutable(jcmd),
                "counts the server's Java objects: vetcd with a JDK only");
        member = MemberProcess.start(MemberProcess.Kind.VETCD, "watch-stream-cleanup");
        vertx = Vertx.vertx();
        URI endpoint = URI.create(member.endpoint());
        SocketAddress address = SocketAddress.inetSocketAddress(endpoint.getPort(), endpoint.getHost());
        GrpcClient cancelling = GrpcClient.client(vertx);
        GrpcClient disconnecting = GrpcClient.client(vertx);
        List<GrpcClientRequest<WatchRequest, WatchResponse>> cancelled = new ArrayList<>();
        for (int i = 0; i < STREAMS_PER_CLIENT; i++) {
            cancelled.add(openWatch(cancelling, address, "a" + i));
            openWatch(disconnecting, address, "b" + i);
        }
        assertEquals(2 * STREAMS_PER_CLIENT, liveWatchStreams(jcmd), "watch streams open on the server");

        // Cancelling: RST_STREAM on a connection that stays open.
        for (GrpcClientRequest<WatchRequest, WatchResponse> request : cancelled) {
            vertx.runOnContext(v -> request.cancel());
        }
        awaitLiveWatchStreams(jcmd, STREAMS_PER_CLIENT, "after cancelling " + STREAMS_PER_CLIENT + " streams");
        // Disconnecting: the client closes its connection with its streams still open.
        disconnecting.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        awaitLiveWatchStreams(jcmd, 0, "after the other client closed its connection");
    }

    /** Opens a watch stream on {@code key} and waits until the server confirms the watcher. */
    private static GrpcClientRequest<WatchRequest, WatchResponse> openWatch(GrpcClient client, SocketAddress address,
            String key) throws Exception {
        CompletableFuture<Void> created = new CompletableFuture<>();
        GrpcClientRequest<WatchRequest, WatchResponse> request = client.request(address, WatchGrpcClient.Watch)
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        request.response().onSuccess(response -> response.handler(r -> {
            if (r.getCreated()) {
                created.complete(null);
            }
        })).onFailure(created::completeExceptionally);
        request.write(WatchRequest.newBuilder()
                .setCreateRequest(WatchCreateRequest.newBuilder().setKey(ByteString.copyFromUtf8(key))).build());
        created.get(10, TimeUnit.SECONDS);
        return request;
    }

    private void awaitLiveWatchStreams(Path jcmd, int expected, String when) throws Exception {
        long deadline = System.nanoTime() + CLEANUP_TIMEOUT.toNanos();
        int live = liveWatchStreams(jcmd);
        while (live != expected && System.nanoTime() < deadline) {
            Thread.sleep(200);
            live = liveWatchStreams(jcmd);
        }
        assertEquals(expected, live, "watch streams still held by the server " + when + " (waited "
                + CLEANUP_TIMEOUT.toSeconds() + " s)\n" + member.logTail());
    }

    /** Instances of the server's WatchStream class alive after a full GC (jcmd GC.class_histogram). */
    private int liveWatchStreams(Path jcmd) throws Exception {
        Process process = new ProcessBuilder(jcmd.toString(), Long.toString(member.process().pid()),
                "GC.class_histogram").redirectErrorStream(true).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        process.waitFor(30, TimeUnit.SECONDS);
        Matcher m = Pattern.compile("^\\s*\\d+:\\s+(\\d+)\\s+\\d+\\s+io\\.vetcd\\.watch\\.WatchStream\\s*$",
                Pattern.MULTILINE).matcher(out);
        return m.find() ? Integer.parseInt(m.group(1)) : 0;
    }
}
