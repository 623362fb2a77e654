package io.vetcd.it;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.common.ServiceMethod;
import java.net.URI;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Blocking unary gRPC calls to a cluster's members for the chaos run's clients: one Vert.x and one
 * client for everyone, each call bounded by a deadline (sent as grpc-timeout, and enforced here too,
 * since a paused member answers nothing at all). A failure names the gRPC status and message, as a
 * Go client's error would.
 */
final class ChaosGrpc implements AutoCloseable {

    /** A call that did not return an answer: the status and message the member gave, or why not. */
    static final class CallFailed extends Exception {
        CallFailed(String message) {
            super(message, null, false, false);
        }
    }

    private final Vertx vertx = Vertx.vertx();
    private final GrpcClient client = GrpcClient.client(vertx, new GrpcClientOptions().setMaxMessageSize(64 << 20));
    private final ClusterProcess cluster;

    ChaosGrpc(ClusterProcess cluster) {
        this.cluster = cluster;
    }

    Vertx vertx() {
        return vertx;
    }

    GrpcClient client() {
        return client;
    }

    SocketAddress address(int member) {
        URI uri = URI.create(cluster.endpoint(member));
        return SocketAddress.inetSocketAddress(uri.getPort(), uri.getHost());
    }

    /** Calls {@code method} on {@code member}; waits at most {@code timeoutMillis}. */
    <Req, Resp> Resp call(int member, ServiceMethod<Resp, Req> method, Req request, long timeoutMillis)
            throws CallFailed, InterruptedException {
        Future<Resp> answer = client.request(address(member), method).compose(req -> {
            req.timeout(timeoutMillis, TimeUnit.MILLISECONDS);
            return req.end(request)
                    .compose(v -> req.response())
                    .compose(resp -> resp.last().recover(e -> Future.failedFuture(resp.status() == null ? e
                            : new CallFailed(resp.status() + ": " + resp.statusMessage()))));
        });
        try {
            return answer.toCompletionStage().toCompletableFuture().get(timeoutMillis + 500, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof CallFailed failed ? failed : new CallFailed(String.valueOf(cause));
        } catch (TimeoutException e) {
            throw new CallFailed("no answer within " + timeoutMillis + " ms");
        }
    }

    @Override
    public void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
}
