package io.vetcd.it;

import com.google.protobuf.ByteString;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Puts through gRPC for tests that need more of them than etcdctl (a process per put) makes in
 * reasonable time, and that must know exactly which were acknowledged: a member under load that is
 * failed, filled up or powered off. Every put has a unique key ({@code prefix + n}) and a value derived
 * from it, so a read-back can tell a lost write from a changed one.
 */
final class KvLoad implements AutoCloseable {

    /** The puts acknowledged (key → revision the answer carried) and the failures, as they came. */
    record Outcome(Map<String, Long> acknowledged, List<String> failures) {
    }

    private final Vertx vertx = Vertx.vertx();
    private final GrpcClient client = GrpcClient.client(vertx,
            new io.vertx.grpc.client.GrpcClientOptions().setMaxMessageSize(Integer.MAX_VALUE)); // a range of it all
    private final SocketAddress address;
    private final KVGrpcClient kv;

    KvLoad(String endpoint) {
        URI uri = URI.create(endpoint);
        address = SocketAddress.inetSocketAddress(uri.getPort(), uri.getHost());
        kv = KVGrpcClient.create(client, address);
    }

    /** A put whose failure says the gRPC status and message (the generated client's says only the status). */
    private io.vertx.core.Future<io.vetcd.proto.etcdserverpb.PutResponse> put(PutRequest request) {
        return client.request(address, KVGrpcClient.Put).compose(req -> req.end(request)
                .compose(v -> req.response())
                .compose(resp -> resp.last().recover(e -> io.vertx.core.Future.failedFuture(
                        resp.status() == null ? e : new RuntimeException(resp.status() + " " + resp.statusMessage())))));
    }

    /** The value written under {@code key}: the key, padded to {@code size} bytes. */
    static String valueOf(String key, int size) {
        StringBuilder value = new StringBuilder(key).append('=');
        while (value.length() < size) {
            value.append((char) ('a' + value.length() % 26));
        }
        return value.toString();
    }

    /**
     * Puts {@code prefix0, prefix1, ...} with up to {@code window} in flight, until {@code count} were
     * sent, {@code stop} says so, or {@code timeout} passes; returns once every put sent was answered (or
     * the timeout passed). A failed put does not stop the others.
     */
    Outcome put(String prefix, int count, int window, int valueSize, BooleanSupplier stop, Duration timeout)
            throws InterruptedException {
        Map<String, Long> acknowledged = new ConcurrentHashMap<>();
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        Semaphore inFlight = new Semaphore(window);
        long deadline = System.nanoTime() + timeout.toNanos();
        for (int n = 0; n < count && !stop.getAsBoolean() && System.nanoTime() < deadline; n++) {
            if (!inFlight.tryAcquire(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                break;
            }
            String key = prefix + n;
            put(PutRequest.newBuilder()
                            .setKey(ByteString.copyFromUtf8(key))
                            .setValue(ByteString.copyFromUtf8(valueOf(key, valueSize)))
                            .build())
                    .onSuccess(response -> {
                        acknowledged.put(key, response.getHeader().getRevision());
                        inFlight.release();
                    })
                    .onFailure(failure -> {
                        failures.add(key + ": " + failure.getMessage());
                        inFlight.release();
                    });
        }
        inFlight.tryAcquire(window, Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        return new Outcome(Map.copyOf(acknowledged), List.copyOf(failures));
    }

    /** Every key under {@code prefix} with its value and modification revision, linearizably. */
    Map<String, ClusterProcess.Kv> range(String prefix) throws Exception {
        byte[] end = prefix.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        end[end.length - 1]++;
        RangeResponse response = kv.range(RangeRequest.newBuilder()
                        .setKey(ByteString.copyFromUtf8(prefix))
                        .setRangeEnd(ByteString.copyFrom(end))
                        .build())
                .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        Map<String, ClusterProcess.Kv> kvs = new java.util.HashMap<>();
        response.getKvsList().forEach(kv -> kvs.put(kv.getKey().toStringUtf8(), new ClusterProcess.Kv(
                kv.getKey().toStringUtf8(), kv.getValue().toStringUtf8(), kv.getCreateRevision(), kv.getModRevision(),
                kv.getVersion())));
        return kvs;
    }

    /**
     * Checks that every acknowledged put is in {@code stored} with its value and the revision it was
     * acknowledged with; returns a description of each that is not (empty: all there).
     */
    static List<String> missing(Map<String, Long> acknowledged, Map<String, ClusterProcess.Kv> stored, int valueSize) {
        List<String> problems = new ArrayList<>();
        acknowledged.forEach((key, revision) -> {
            ClusterProcess.Kv kv = stored.get(key);
            if (kv == null) {
                problems.add(key + " (acknowledged at revision " + revision + ") is gone");
            } else if (!kv.value().equals(valueOf(key, valueSize)) || kv.modRevision() != revision) {
                problems.add(key + " changed: acknowledged at revision " + revision + ", now " + kv.modRevision()
                        + " with a value of " + kv.value().length() + " bytes");
            }
        });
        return problems;
    }

    @Override
    public void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
}
