package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.HashKVRequest;
import io.vetcd.proto.etcdserverpb.HashRequest;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseLeasesRequest;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveRequest;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchGrpcClient;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Hostile and malformed input, for a fixed time per surface (issue 16; {@code -Dfuzz.seconds}, 6 by
 * default, {@code -Dfuzz.seed}): random bytes, messages with random field values (extreme numbers,
 * unknown enum values, empty, NUL and oversized keys, long repeated fields) and such messages mutated
 * (bits flipped, cut short, bytes appended) to every KV, Watch, Lease, Cluster (read) and Maintenance
 * (read) method; random and mistyped JSON to the gateway; junk text and binary frames to the
 * WebSocket; slowloris connections; 10,000 watchers on one stream and 10,000 streams on one member.
 * Each answer must be a clear one (a gRPC status that is not UNKNOWN, an HTTP error with etcd's JSON
 * error body, a WebSocket error frame or close), and after each surface the member is up and healthy,
 * its resident memory bounded, and the keys written before the fuzzing are all there at the revision
 * they were written (the fuzzing may add and delete keys, but cannot change history).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FuzzIT {

    private static final Duration EACH = Duration.ofSeconds(Long.getLong("fuzz.seconds", 6));
    private static final long SEED = Long.getLong("fuzz.seed", 16);
    private static final int KNOWN_KEYS = 200;
    private static final int VALUE_SIZE = 64;
    /**
     * What the member's heap may hold after a full collection once a surface is done: what the fuzzing
     * leaves behind (closed streams, connections, watchers) must be gone. (Its resident size is the
     * JVM's to choose, up to the heap's maximum, and is only reported.)
     */
    private static final long LIVE_HEAP_LIMIT_BYTES = 256L << 20;
    /** The largest message the gRPC fuzzing sends: over the 2 MiB limit, not hundreds of MiB. */
    private static final int MAX_FUZZ_MESSAGE_BYTES = 3 << 20;
    /** A Java exception's words in an answer: an internal failure shown to the client instead of an error. */
    private static final Pattern JAVA_ISMS = Pattern.compile("Exception|java\\.|\\bat io\\.vetcd|NullPointer");

    /** A method the fuzzing may call: none that removes data or members, compacts, or raises alarms. */
    private record Method(String path, Message prototype) {
        boolean streamed() {
            return path.endsWith("/Watch") || path.endsWith("/LeaseKeepAlive");
        }
    }

    private static final List<Method> METHODS = List.of(
            new Method("/etcdserverpb.KV/Range", RangeRequest.getDefaultInstance()),
            new Method("/etcdserverpb.KV/Put", PutRequest.getDefaultInstance()),
            new Method("/etcdserverpb.KV/DeleteRange", DeleteRangeRequest.getDefaultInstance()),
            new Method("/etcdserverpb.KV/Txn", TxnRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Watch/Watch", WatchRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Lease/LeaseGrant", LeaseGrantRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Lease/LeaseRevoke", LeaseRevokeRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Lease/LeaseKeepAlive", LeaseKeepAliveRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Lease/LeaseTimeToLive", LeaseTimeToLiveRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Lease/LeaseLeases", LeaseLeasesRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Cluster/MemberList", MemberListRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Maintenance/Status", StatusRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Maintenance/Hash", HashRequest.getDefaultInstance()),
            new Method("/etcdserverpb.Maintenance/HashKV", HashKVRequest.getDefaultInstance()),
            new Method("/etcdserverpb.KV/NoSuchMethod", RangeRequest.getDefaultInstance()));

    private MemberProcess member;
    private RawGrpc raw;
    private final Vertx vertx = Vertx.vertx();
    private GrpcClient grpc;
    private Map<String, Long> known;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(2)).build();

    @BeforeAll
    void startAndWriteKnownKeys() throws Exception {
        member = MemberProcess.start(MemberProcess.Kind.VETCD, "fuzz");
        raw = new RawGrpc();
        grpc = GrpcClient.client(vertx);
        try (KvLoad load = new KvLoad(member.endpoint())) {
            KvLoad.Outcome outcome = load.put("known/", KNOWN_KEYS, 16, VALUE_SIZE, () -> false, Duration.ofSeconds(60));
            assertEquals(KNOWN_KEYS, outcome.acknowledged().size(), outcome.failures().toString());
            known = outcome.acknowledged();
        }
    }

    @AfterAll
    void stop() throws Exception {
        MemberProcess.closeAll(raw == null ? Vertx.vertx() : raw.vertx(), member);
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    /** After each surface: up, healthy, memory bounded, and the known keys as written, at their revisions. */
    @AfterEach
    void memberIsUnharmed() throws Exception {
        assertTrue(member.process().isAlive(), "the member exited\n" + member.logTail());
        assertTrue(awaitHealthy(), "/health is not true after the fuzzing\n" + member.logTail());
        long live = liveHeapBytes();
        System.out.printf("FuzzIT: after the surface: resident memory %d MiB, live heap %d MiB%n",
                residentBytes(member.process().pid()) >> 20, live >> 20);
        assertTrue(live < LIVE_HEAP_LIMIT_BYTES, "live heap after a full collection: " + (live >> 20) + " MiB");
        long newest = known.values().stream().mapToLong(Long::longValue).max().orElseThrow();
        RangeResponse atWrite = KVGrpcClient.create(grpc, address()).range(RangeRequest.newBuilder()
                        .setKey(ByteString.copyFromUtf8("known/")).setRangeEnd(ByteString.copyFromUtf8("known0"))
                        .setRevision(newest).build())
                .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        Map<String, ClusterProcess.Kv> stored = new TreeMap<>();
        atWrite.getKvsList().forEach(kv -> stored.put(kv.getKey().toStringUtf8(), new ClusterProcess.Kv(
                kv.getKey().toStringUtf8(), kv.getValue().toStringUtf8(), kv.getCreateRevision(), kv.getModRevision(),
                kv.getVersion())));
        assertEquals(List.of(), KvLoad.missing(known, stored, VALUE_SIZE), "the keys written before the fuzzing");
    }

    @Test
    void everyGrpcMethodAnswersMalformedAndHostileMessagesWithAStatus() throws Exception {
        Random random = new Random(SEED);
        Map<String, AtomicInteger> statuses = new TreeMap<>();
        List<String> unclear = new ArrayList<>();
        int calls = 0;
        long deadline = System.nanoTime() + EACH.toNanos();
        while (System.nanoTime() < deadline) {
            Method method = METHODS.get(random.nextInt(METHODS.size()));
            Message generated = randomMessage(method.prototype(), random, 0);
            if (generated.getSerializedSize() > MAX_FUZZ_MESSAGE_BYTES) {
                continue;
            }
            byte[] message = switch (random.nextInt(4)) {
                case 0 -> randomBytes(random, random.nextInt(600));
                case 1 -> generated.toByteArray();
                default -> mutate(generated.toByteArray(), random);
            };
            RawGrpc.Outcome outcome;
            try {
                // Watch and LeaseKeepAlive stay open after the client's half-close, in etcd as in vetcd: the
                // first sign of an answer is taken, and silence (a request that needs none) is fine.
                outcome = method.streamed()
                        ? raw.firstAnswer(member.endpoint(), method.path(), RawGrpc.frame(0, message), 2_000)
                        : raw.call(member.endpoint(), method.path(), null, true, RawGrpc.frame(0, message));
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                unclear.add(method.path() + " " + hex(message) + " -> no status: " + e);
                continue;
            }
            calls++;
            if (outcome == null || outcome.status() == null && method.streamed()) {
                statuses.computeIfAbsent(method.path().substring(method.path().lastIndexOf('/') + 1)
                        + (outcome == null ? " silent" : " answered"), s -> new AtomicInteger()).incrementAndGet();
                continue;
            }
            String status = outcome.status();
            statuses.computeIfAbsent(method.path().substring(method.path().lastIndexOf('/') + 1) + " "
                    + status, s -> new AtomicInteger()).incrementAndGet();
            String words = outcome.message() == null ? "" : outcome.message();
            if (status == null || status.equals("2") || JAVA_ISMS.matcher(words).find()) {
                unclear.add(method.path() + " " + hex(message) + " -> status " + status + " '" + words + "'");
            }
        }
        // Hand-picked: values etcd refuses with its own words (a future revision, no key, too large).
        Map<String, Message> refused = Map.of(
                "/etcdserverpb.KV/Range", RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8("a"))
                        .setRevision(Long.MAX_VALUE).build(),
                "/etcdserverpb.KV/Put", PutRequest.newBuilder().setValue(ByteString.copyFromUtf8("no key")).build(),
                "/etcdserverpb.KV/Txn", TxnRequest.newBuilder().addSuccess(io.vetcd.proto.etcdserverpb.RequestOp
                        .newBuilder().setRequestPut(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("big"))
                                .setValue(ByteString.copyFrom(new byte[2 << 20])))).build(),
                "/etcdserverpb.KV/Compact", CompactionRequest.newBuilder().setRevision(Long.MAX_VALUE).build());
        for (Map.Entry<String, Message> bad : refused.entrySet()) {
            RawGrpc.Outcome outcome = raw.call(member.endpoint(), bad.getKey(), null, true,
                    RawGrpc.frame(0, bad.getValue().toByteArray()));
            calls++;
            if (outcome.status() == null || outcome.status().equals("0") || outcome.status().equals("2")
                    || outcome.message() == null || !outcome.message().startsWith("etcdserver: ")
                    && !outcome.message().startsWith("grpc: ")) {
                unclear.add(bad.getKey() + " " + abbreviate(bad.getValue().toString()) + " -> status "
                        + outcome.status() + " '" + outcome.message() + "'");
            }
        }
        System.out.printf("FuzzIT: %d gRPC calls in %d s; status by method: %s%n", calls, EACH.toSeconds(), statuses);
        assertEquals(List.of(), unclear.stream().limit(20).toList(), unclear.size() + " unclear answers");
    }

    @Test
    void theGatewayAnswersMalformedJsonWithEtcdsErrors() throws Exception {
        Random random = new Random(SEED + 1);
        List<String> paths = List.of("/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn",
                "/v3/lease/grant", "/v3/lease/timetolive", "/v3/lease/leases", "/v3/maintenance/status",
                "/v3/cluster/member/list", "/v3/watch", "/v3/kv/nothing", "/v3beta/kv/range");
        Map<Integer, AtomicInteger> codes = new TreeMap<>();
        List<String> unclear = new ArrayList<>();
        int calls = 0;
        long deadline = System.nanoTime() + EACH.toNanos();
        while (System.nanoTime() < deadline) {
            String path = paths.get(random.nextInt(paths.size()));
            byte[] body = jsonish(random);
            Answer response;
            try {
                response = post(path, body);
            } catch (IOException | java.util.concurrent.TimeoutException e) {
                unclear.add(path + " " + abbreviate(new String(body, StandardCharsets.UTF_8)) + " -> " + e);
                continue;
            }
            calls++;
            codes.computeIfAbsent(response.statusCode(), c -> new AtomicInteger()).incrementAndGet();
            boolean clear = response.statusCode() == 200
                    || response.body().contains("\"error\"") && response.body().contains("\"code\"")
                    || response.statusCode() == 404 && path.equals("/v3/kv/nothing");
            if (!clear || JAVA_ISMS.matcher(response.body()).find()) {
                unclear.add(path + " " + abbreviate(new String(body, StandardCharsets.UTF_8)) + " -> "
                        + response.statusCode() + " " + abbreviate(response.body()));
            }
        }
        System.out.printf("FuzzIT: %d gateway calls in %d s; HTTP statuses: %s%n", calls, EACH.toSeconds(), codes);
        assertEquals(List.of(), unclear.stream().limit(20).toList(), unclear.size() + " unclear answers");
    }

    @Test
    void theWebSocketAnswersJunkFramesWithAnErrorOrAClose() throws Exception {
        Random random = new Random(SEED + 2);
        List<String> unclear = new ArrayList<>();
        int sessions = 0;
        int frames = 0;
        long deadline = System.nanoTime() + EACH.toNanos();
        while (System.nanoTime() < deadline) {
            Session session = new Session();
            WebSocket ws = http.newWebSocketBuilder().buildAsync(URI.create(member.endpoint()
                    .replace("http://", "ws://") + "/v3/watch"), session).get(10, TimeUnit.SECONDS);
            sessions++;
            int n = 1 + random.nextInt(5);
            String sent = "";
            try {
                for (int i = 0; i < n; i++) {
                    frames++;
                    switch (random.nextInt(4)) {
                        case 0 -> ws.sendBinary(ByteBuffer.wrap(randomBytes(random, random.nextInt(300))), true)
                                .get(10, TimeUnit.SECONDS);
                        case 1 -> {
                            sent = new String(jsonish(random), StandardCharsets.UTF_8);
                            ws.sendText(sent, true).get(10, TimeUnit.SECONDS);
                        }
                        case 2 -> {
                            sent = "{\"create_request\":{\"key\":\"" + "A".repeat(random.nextInt(3) == 0 ? 3 << 20 : 8)
                                    + "\",\"start_revision\":" + (random.nextBoolean() ? "-7" : "\"x\"") + "}}";
                            ws.sendText(sent, true).get(10, TimeUnit.SECONDS);
                        }
                        default -> {
                            ws.sendText("{\"create_request\":", false).get(10, TimeUnit.SECONDS);
                            ws.sendText("{\"key\":\"Zm9v\"}", false).get(10, TimeUnit.SECONDS);
                            ws.sendText(random.nextBoolean() ? "}" : "", true).get(10, TimeUnit.SECONDS);
                        }
                    }
                }
                // The socket still serves after the junk (or was closed: also an answer).
                ws.sendText("{\"progress_request\":{}}", true).get(10, TimeUnit.SECONDS);
            } catch (Exception closedByTheServer) {
                // the server may close after a bad frame: that is an answer
            }
            if (!session.answered.await(10, TimeUnit.SECONDS)) {
                unclear.add("no frame and no close after " + n + " frames and a progress request, the last text "
                        + abbreviate(sent));
            } else if (session.firstText != null && JAVA_ISMS.matcher(session.firstText).find()) {
                unclear.add("an answer with Java's words: " + abbreviate(session.firstText));
            }
            ws.abort();
        }
        System.out.printf("FuzzIT: %d WebSocket sessions, %d frames in %d s%n", sessions, frames, EACH.toSeconds());
        assertEquals(List.of(), unclear.stream().limit(20).toList(), unclear.size() + " unclear answers");
    }

    /**
     * A POST to the gateway: the whole answer, or for a watch (a stream that stays open) its first line.
     */
    private Answer post(String path, byte[] body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(member.endpoint() + path))
                .timeout(Duration.ofSeconds(10)).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build();
        if (!path.equals("/v3/watch")) {
            HttpResponse<String> whole = http.send(request, HttpResponse.BodyHandlers.ofString());
            return new Answer(whole.statusCode(), whole.body());
        }
        HttpResponse<java.util.stream.Stream<String>> stream = http.send(request, HttpResponse.BodyHandlers.ofLines());
        try {
            return new Answer(stream.statusCode(), CompletableFuture.supplyAsync(() -> stream.body().findFirst()
                    .orElse("")).get(10, TimeUnit.SECONDS));
        } finally {
            stream.body().close();
        }
    }

    /** An HTTP answer: its status and its body (of a stream: the first line). */
    private record Answer(int statusCode, String body) {
    }

    /** A WebSocket session that notes its first text frame, or its close, as the server's answer. */
    private static final class Session implements WebSocket.Listener {
        final java.util.concurrent.CountDownLatch answered = new java.util.concurrent.CountDownLatch(1);
        volatile String firstText;

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            if (firstText == null) {
                firstText = data.toString();
            }
            answered.countDown();
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            answered.countDown();
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            answered.countDown();
        }
    }

    /**
     * Slowloris: 400 connections that send an HTTP/1.1 request or the HTTP/2 preface a byte at a time
     * and never finish, while a client reads and writes: its requests are all served.
     */
    @Test
    void slowConnectionsDoNotStopService() throws Exception {
        List<Socket> slow = Collections.synchronizedList(new ArrayList<>());
        URI uri = URI.create(member.endpoint());
        // HTTP/1.1: a header line that never ends; HTTP/2: the preface but for its last byte.
        byte[] http1 = "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: ".getBytes(
                StandardCharsets.US_ASCII);
        byte[] http2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r".getBytes(StandardCharsets.US_ASCII);
        try {
            for (int i = 0; i < 400; i++) {
                Socket socket = new Socket();
                socket.connect(new InetSocketAddress(uri.getHost(), uri.getPort()), 2000);
                slow.add(socket);
            }
            long deadline = System.nanoTime() + EACH.toNanos();
            int served = 0;
            int sent = 0;
            try (KvLoad load = new KvLoad(member.endpoint())) {
                while (System.nanoTime() < deadline) {
                    for (int i = 0; i < slow.size(); i++) {
                        byte[] bytes = i % 2 == 0 ? http1 : http2;
                        if (bytes == http2 && sent >= bytes.length) {
                            continue;
                        }
                        try {
                            OutputStream out = slow.get(i).getOutputStream();
                            out.write(sent < bytes.length ? bytes[sent] : 'a');
                            out.flush();
                        } catch (IOException closedByTheServer) {
                            // the server may cut a connection that says nothing useful: fine
                        }
                    }
                    sent++;
                    KvLoad.Outcome outcome = load.put("slowloris/" + sent + "/", 5, 5, 16, () -> false,
                            Duration.ofSeconds(5));
                    assertEquals(5, outcome.acknowledged().size(), "puts while " + slow.size()
                            + " slow connections are open: " + outcome.failures());
                    served += 5;
                    Thread.sleep(200);
                }
            }
            System.out.printf("FuzzIT: %d puts served beside %d slow connections%n", served, slow.size());
        } finally {
            for (Socket socket : slow) {
                socket.close();
            }
        }
    }

    /** 10,000 watchers on one Watch stream, then 10,000 streams with a watcher each; one put reaches all. */
    @Test
    void tenThousandWatchersOnOneStreamAndTenThousandStreams() throws Exception {
        int count = 10_000;
        Set<Long> created = ConcurrentHashMap.newKeySet();
        AtomicInteger events = new AtomicInteger();
        GrpcClientRequest<WatchRequest, WatchResponse> stream = grpc.request(address(), WatchGrpcClient.Watch)
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        stream.response().onSuccess(response -> response.handler(r -> {
            if (r.getCreated()) {
                created.add(r.getWatchId());
            }
            events.addAndGet(r.getEventsCount());
        }));
        for (int i = 0; i < count; i++) {
            stream.write(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                    .setKey(ByteString.copyFromUtf8("many/" + (i % 100)))).build());
        }
        awaitCount(() -> created.size(), count, "watchers created on one stream");
        AtomicInteger streamEvents = new AtomicInteger();
        AtomicInteger streamsCreated = new AtomicInteger();
        List<GrpcClientRequest<WatchRequest, WatchResponse>> streams = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            GrpcClientRequest<WatchRequest, WatchResponse> s = grpc.request(address(), WatchGrpcClient.Watch)
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            s.response().onSuccess(response -> response.handler(r -> {
                if (r.getCreated()) {
                    streamsCreated.incrementAndGet();
                }
                streamEvents.addAndGet(r.getEventsCount());
            }));
            s.write(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                    .setKey(ByteString.copyFromUtf8("many/0"))).build());
            streams.add(s);
        }
        awaitCount(streamsCreated::get, count, "streams created");
        KVGrpcClient kv = KVGrpcClient.create(grpc, address());
        for (int k = 0; k < 100; k++) {
            kv.put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("many/" + k))
                    .setValue(ByteString.copyFromUtf8("v")).build())
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
        // Keys many/0 .. many/99: each watched by 100 of the one stream's watchers; many/0 by every stream.
        awaitCount(events::get, count, "events on the stream of 10,000 watchers");
        awaitCount(streamEvents::get, count, "events on the 10,000 streams");
        System.out.printf("FuzzIT: 10,000 watchers on one stream and 10,000 streams served; resident memory %d MiB%n",
                residentBytes(member.process().pid()) >> 20);
        streams.forEach(GrpcClientRequest::cancel);
        stream.cancel();
    }

    private void awaitCount(java.util.function.IntSupplier value, int expected, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (value.getAsInt() < expected) {
            assertTrue(System.nanoTime() < deadline, what + ": " + value.getAsInt() + " of " + expected
                    + " within 60 s\n" + member.logTail());
            assertTrue(member.process().isAlive(), "the member exited\n" + member.logTail());
            Thread.sleep(50);
        }
        assertEquals(expected, value.getAsInt(), what);
    }

    private SocketAddress address() {
        URI uri = URI.create(member.endpoint());
        return SocketAddress.inetSocketAddress(uri.getPort(), uri.getHost());
    }

    private boolean awaitHealthy() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(member.endpoint() + "/health"))
                        .timeout(Duration.ofSeconds(3)).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200 && r.body().contains("true")) {
                    return true;
                }
            } catch (IOException e) {
                // not answering yet
            }
            Thread.sleep(200);
        }
        return false;
    }

    /** The member's heap in use right after a full collection (jcmd GC.run, then its /metrics). */
    private long liveHeapBytes() throws Exception {
        Process gc = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                Long.toString(member.process().pid()), "GC.run").redirectErrorStream(true).start();
        gc.getInputStream().readAllBytes();
        assertTrue(gc.waitFor(60, TimeUnit.SECONDS) && gc.exitValue() == 0, "jcmd GC.run failed");
        String metrics = http.send(HttpRequest.newBuilder(URI.create(member.endpoint() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        return (long) PrometheusText.parse(metrics).get("jvm_memory_used_bytes").samples().stream()
                .filter(s -> "heap".equals(s.labels().get("area"))).mapToDouble(PrometheusText.Sample::value).sum();
    }

    private static long residentBytes(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IOException("no VmRSS for " + pid);
    }

    // --- generators -------------------------------------------------------------------------------

    private static byte[] randomBytes(Random random, int length) {
        byte[] bytes = new byte[length];
        random.nextBytes(bytes);
        return bytes;
    }

    /** A message of the prototype's type with random values in about two thirds of its fields. */
    static Message randomMessage(Message prototype, Random random, int depth) {
        Message.Builder builder = prototype.newBuilderForType();
        for (FieldDescriptor field : builder.getDescriptorForType().getFields()) {
            if (random.nextInt(3) == 0) {
                continue;
            }
            int n = !field.isRepeated() ? 1 : switch (random.nextInt(6)) {
                case 0 -> 0;
                case 1 -> 200; // past etcd's 128 operations per txn
                default -> 1 + random.nextInt(4);
            };
            for (int i = 0; i < n; i++) {
                Object value = randomValue(builder, field, random, depth);
                if (value == null) {
                    break;
                }
                if (field.isRepeated()) {
                    builder.addRepeatedField(field, value);
                } else {
                    builder.setField(field, value);
                }
            }
        }
        return builder.build();
    }

    private static Object randomValue(Message.Builder builder, FieldDescriptor field, Random random, int depth) {
        return switch (field.getJavaType()) {
            case INT -> new int[] {0, 1, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, random.nextInt()}[random.nextInt(6)];
            case LONG -> new long[] {0, 1, -1, 2, 100, Long.MAX_VALUE, Long.MIN_VALUE, random.nextLong()}[random.nextInt(8)];
            case BOOLEAN -> random.nextBoolean();
            case FLOAT -> random.nextFloat();
            case DOUBLE -> random.nextDouble();
            case STRING -> new String(randomBytes(random, random.nextInt(20)), StandardCharsets.ISO_8859_1);
            case BYTE_STRING -> switch (random.nextInt(8)) {
                case 0 -> ByteString.EMPTY;
                case 1 -> ByteString.copyFrom(new byte[] {0});
                case 2 -> ByteString.copyFromUtf8("known/");
                case 3 -> ByteString.copyFrom(randomBytes(random, random.nextInt(8) == 0 ? 2 << 20 : 20_000));
                default -> ByteString.copyFromUtf8("fuzz/" + Integer.toHexString(random.nextInt(64)));
            };
            case ENUM -> field.getEnumType().findValueByNumberCreatingIfUnknown(
                    random.nextInt(4) == 0 ? 1000 + random.nextInt(10) : random.nextInt(field.getEnumType().getValues()
                            .size()));
            case MESSAGE -> depth >= 3 ? null
                    : randomMessage(builder.newBuilderForField(field).getDefaultInstanceForType(), random, depth + 1);
        };
    }

    /** The bytes with a few of them flipped, cut short, or with random bytes appended or inserted. */
    private static byte[] mutate(byte[] message, Random random) {
        byte[] out = message.clone();
        switch (random.nextInt(4)) {
            case 0 -> {
                for (int i = 0; i < 1 + random.nextInt(4) && out.length > 0; i++) {
                    out[random.nextInt(out.length)] ^= (byte) (1 << random.nextInt(8));
                }
            }
            case 1 -> out = java.util.Arrays.copyOf(out, out.length == 0 ? 0 : random.nextInt(out.length));
            case 2 -> {
                byte[] tail = randomBytes(random, 1 + random.nextInt(16));
                byte[] longer = java.util.Arrays.copyOf(out, out.length + tail.length);
                System.arraycopy(tail, 0, longer, out.length, tail.length);
                out = longer;
            }
            default -> {
                int at = out.length == 0 ? 0 : random.nextInt(out.length);
                byte[] longer = new byte[out.length + 3];
                System.arraycopy(out, 0, longer, 0, at);
                longer[at] = (byte) 0xff;
                longer[at + 1] = (byte) 0xff;
                longer[at + 2] = (byte) 0x0f;
                System.arraycopy(out, at, longer, at + 3, out.length - at);
                out = longer;
            }
        }
        return out;
    }

    /** JSON as a careless or hostile client writes it: mistyped, unknown fields, cut short, nested deep, or junk. */
    private static byte[] jsonish(Random random) {
        String[] values = {"\"Zm9v\"", "\"not base64!\"", "1", "-1", "1e400", "\"9223372036854775808\"", "true", "null",
            "[]", "{}", "\"\"", "\"AA==\"", "{\"a\":1}", "\"SORT_NONE\"", "\"BOGUS\"", "12345678901234567890"};
        String[] fields = {"key", "range_end", "value", "limit", "revision", "sort_order", "lease", "ID", "TTL",
            "create_request", "compare", "success", "keys_only", "prev_kv", "physical", "keyy"};
        StringBuilder json = new StringBuilder();
        switch (random.nextInt(6)) {
            case 0 -> {
                return randomBytes(random, random.nextInt(200));
            }
            case 1 -> {
                int depth = 1 + random.nextInt(3000);
                json.append("{\"key\":".repeat(depth)).append("1").append("}".repeat(depth));
            }
            case 2 -> json.append("[".repeat(1 + random.nextInt(5000)));
            default -> {
                json.append('{');
                int n = random.nextInt(5);
                for (int i = 0; i < n; i++) {
                    json.append(i == 0 ? "" : ",").append('"').append(fields[random.nextInt(fields.length)])
                            .append("\":").append(values[random.nextInt(values.length)]);
                }
                json.append('}');
                if (random.nextInt(4) == 0) {
                    json.setLength(random.nextInt(json.length()));
                }
            }
        }
        return json.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static String hex(byte[] bytes) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < Math.min(bytes.length, 48); i++) {
            text.append(String.format("%02x", bytes[i]));
        }
        return text + (bytes.length > 48 ? "... (" + bytes.length + " bytes)" : "");
    }

    private static String abbreviate(String text) {
        return text.length() <= 200 ? text : text.substring(0, 200) + "... (" + text.length() + " chars)";
    }
}
