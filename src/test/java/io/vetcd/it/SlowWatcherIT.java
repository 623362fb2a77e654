package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchGrpcClient;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A watcher that stops reading must cost the server neither its other watchers nor its writes, nor
 * lose it any event: one member, two watches on the same prefix over two connections, one of them
 * paused (its gRPC response stream is not read, so HTTP/2 flow control stops the server's sends to it
 * after a few KiB) while 100,000 keys are written under the prefix by a third connection.
 *
 * <ul>
 *   <li>no head-of-line blocking: the writes complete and the reading watcher keeps up, seeing the last
 *       write soon after it was acknowledged;
 *   <li>once resumed, the paused watcher receives every event exactly once, in revision order, with all
 *       events of one revision in one response (etcd moves such a watcher to its "victims" and later
 *       catches it up from the store, in batches cut at revision boundaries);
 *   <li>the server's resident memory (and for vetcd, a JVM, the heap retained after a full GC) is
 *       printed before the writes, after them and after the catch-up; only the retained heap has a
 *       (generous) bound, RSS none.
 * </ul>
 *
 * <p>Of the 100,000 keys, 10,000 are written ten to a txn, so that there are revisions with several
 * events to keep together. Runs against vetcd by default, against real etcd with
 * {@code -Dit.candidate=etcd} (how the test is validated).
 */
class SlowWatcherIT {

    private static final String PREFIX = "slow/";
    private static final int KEYS = 100_000;
    /** Keys are written in blocks: the first TXN_OPS keys of each block in one txn, the rest one put each. */
    private static final int BLOCK = 100;
    private static final int TXN_OPS = 10;
    /** Unary writes in flight at once: enough for the server to batch its commits, as many clients would. */
    private static final int IN_FLIGHT = 256;
    private static final ByteString VALUE = ByteString.copyFromUtf8("v".repeat(100));
    /**
     * How long the writer waits for any one write to be acknowledged before calling the writes stalled.
     * All 100,000 take 20-40 s on 2 cores, against etcd 3.4 as against vetcd; no overall deadline, so a
     * slow machine does not fail the test, a server that stops acknowledging does.
     */
    private static final Duration STALL_TIMEOUT = Duration.ofSeconds(20);
    /**
     * How long after the last write was acknowledged the reading watcher may see it. Against etcd it is
     * a few ms (it does lag up to ~1 s behind during the writes on a loaded machine, a synced watcher
     * whose channel fills being moved to the victims and caught up every 100 ms). A server that made the
     * reading watcher wait for the paused one would miss this by far: the paused one is never read
     * before this is checked.
     */
    private static final Duration LIVE_LAG_LIMIT = Duration.ofSeconds(5);
    /** For the resumed watcher to receive all 100,000 events: etcd takes ~30 s (its catch-up runs every 100 ms). */
    private static final Duration CATCH_UP_TIMEOUT = Duration.ofSeconds(90);

    /** See the end of the test: 100,000 keys of ~120 bytes are ~12 MiB of data. */
    private static final long RETAINED_HEAP_GROWTH_LIMIT_KIB = 200 * 1024;

    private static final Pattern KEY = Pattern.compile(Pattern.quote(PREFIX) + "k(\\d{6})");

    private MemberProcess member;
    private Vertx vertx;
    /**
     * Every client made, kept reachable: Vert.x closes an HTTP client (GOAWAY, failing its streams) once
     * the garbage collector finds it unreferenced, which a watcher's stream alone does not prevent.
     */
    private final List<GrpcClient> clients = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        MemberProcess.closeAll(vertx, member);
    }

    @Test
    void pausedWatcherBlocksNoOneAndGetsEveryEventOnceResumed() throws Exception {
        MemberProcess.Kind kind = MemberProcess.candidateKind();
        String name = "slow-watcher-" + kind.name().toLowerCase();
        member = MemberProcess.start(kind, name);
        vertx = Vertx.vertx();
        URI endpoint = URI.create(member.endpoint());
        SocketAddress address = SocketAddress.inetSocketAddress(endpoint.getPort(), endpoint.getHost());

        // One GrpcClient each, so three HTTP/2 connections: the paused stream's flow-control window
        // (and the connection's) then only stops what goes to the slow watcher.
        Watcher slow = Watcher.open(newClient(), address, true);
        Watcher live = Watcher.open(newClient(), address, false);
        long rssBefore = rssKib();
        long heapBefore = retainedHeapKib();

        Writes writes = write(KVGrpcClient.create(newClient(), address));
        long rssAfterWrites = rssKib();
        long heapAfterWrites = retainedHeapKib();
        System.out.printf("SlowWatcherIT[%s]: %d keys in %d writes, revisions %d..%d, in %d ms%n", name, KEYS,
                writes.operations, writes.firstRevision(), writes.lastRevision(),
                TimeUnit.NANOSECONDS.toMillis(writes.finishedNanos - writes.startedNanos));

        // The reading watcher: the last write soon after its acknowledgement, the paused one not read at all.
        long lastRevision = writes.lastRevision();
        long liveDeadline = writes.lastAckNanos() + LIVE_LAG_LIMIT.toNanos();
        while (live.lastRevision() < lastRevision) {
            if (System.nanoTime() > liveDeadline) {
                fail("the reading watcher had seen up to revision " + live.lastRevision() + " (" + live.events()
                        + " events) " + LIVE_LAG_LIMIT.toMillis() + " ms after the last write (revision "
                        + lastRevision + ") was acknowledged: head-of-line blocking behind the paused watcher?\n"
                        + live.problems() + "\n" + member.logTail());
            }
            Thread.sleep(5);
        }
        long liveLagOfLast = live.arrivalNanos(lastRevision) - writes.lastAckNanos();
        long[] lags = live.lagsMillis(writes);
        System.out.printf("SlowWatcherIT[%s]: reading watcher saw the last write %d ms after its ack; lag behind "
                + "acks during the writes: median %d ms, p99 %d ms, max %d ms; the paused watcher had been "
                + "handed %d events%n", name, TimeUnit.NANOSECONDS.toMillis(liveLagOfLast),
                lags[lags.length / 2], lags[lags.length * 99 / 100], lags[lags.length - 1], slow.events());
        assertEquals(0, slow.events(), "events handed to the paused watcher: the pause did not hold");

        long resumedAt = System.nanoTime();
        slow.resume();
        // A sentinel write after everything: once a watcher has it, it has had every event before it (they
        // come in revision order), so counting then also catches duplicates sent late.
        long sentinelRevision = KVGrpcClient.create(newClient(), address)
                .put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8(PREFIX + "sentinel")).setValue(VALUE)
                        .build())
                .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS).getHeader().getRevision();
        for (Watcher watcher : List.of(slow, live)) {
            long deadline = System.nanoTime() + CATCH_UP_TIMEOUT.toNanos();
            while (watcher.lastRevision() < sentinelRevision) {
                if (System.nanoTime() > deadline) {
                    fail(watcher.name + " watcher had seen up to revision " + watcher.lastRevision() + " ("
                            + watcher.events() + " events) " + CATCH_UP_TIMEOUT.toSeconds() + " s after the "
                            + "slow watcher was resumed; the sentinel is at " + sentinelRevision + "\n"
                            + watcher.problems() + "\n" + member.logTail());
                }
                Thread.sleep(10);
            }
        }
        long rssAfterCatchUp = rssKib();
        long heapAfterCatchUp = retainedHeapKib();
        System.out.printf("SlowWatcherIT[%s]: resumed watcher caught up in %d ms (%d responses, at most %d events "
                + "and %d bytes in one)%n", name, TimeUnit.NANOSECONDS.toMillis(slow.arrivalNanos(lastRevision) - resumedAt),
                slow.responses(), slow.maxEventsPerResponse(), slow.maxResponseBytes());
        System.out.printf("SlowWatcherIT[%s]: server VmRSS %d MiB before the writes, %d MiB after them (slow "
                + "watcher paused), %d MiB after it caught up%n", name, rssBefore / 1024, rssAfterWrites / 1024,
                rssAfterCatchUp / 1024);
        if (heapBefore >= 0) {
            System.out.printf("SlowWatcherIT[%s]: server heap in use after a full GC %d MiB before the writes, %d MiB "
                    + "after them (slow watcher paused), %d MiB after it caught up%n", name, heapBefore / 1024,
                    heapAfterWrites / 1024, heapAfterCatchUp / 1024);
        }

        for (Watcher watcher : List.of(live, slow)) {
            watcher.assertExactlyTheWrites(writes, sentinelRevision);
        }
        // No bound on RSS: for vetcd it mostly measures how far the JVM chose to grow its heap (no -Xmx;
        // a quarter of this 24 GiB machine): 150 -> 430-500 MiB with the paused watcher, 150 -> 880 MiB in
        // a trial run without one. The heap retained after a full GC is what tells whether the paused
        // watcher's events are held in memory, and that is stable: 12 -> 41 MiB, the same after the
        // catch-up. The bound is generous; what it rules out is a copy of the history per watcher.
        if (heapBefore >= 0) {
            assertTrue(heapAfterWrites - heapBefore < RETAINED_HEAP_GROWTH_LIMIT_KIB, "server heap retained "
                    + "after a full GC grew by " + (heapAfterWrites - heapBefore) / 1024 + " MiB over the writes "
                    + "with a paused watcher");
        }
    }

    private GrpcClient newClient() {
        // etcd's clients accept responses of any size (clientv3: math.MaxInt32); the default 256 KiB here
        // would fail a large catch-up response that is perfectly valid.
        GrpcClient client = GrpcClient.client(vertx, new GrpcClientOptions().setMaxMessageSize(Integer.MAX_VALUE));
        clients.add(client);
        return client;
    }

    /** VmRSS of the server process, in KiB (the JVM itself for vetcd: MemberProcess runs java directly). */
    private long rssKib() throws Exception {
        Path status = Path.of("/proc", Long.toString(member.process().pid()), "status");
        for (String line : Files.readAllLines(status, StandardCharsets.UTF_8)) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        throw new AssertionError("no VmRSS in " + status);
    }

    /**
     * For a JVM server (vetcd): the heap in use right after a full GC, in KiB, via the JDK's jcmd
     * ({@code GC.run}, then {@code GC.heap_info}); -1 for etcd or when jcmd cannot tell.
     */
    private long retainedHeapKib() throws Exception {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        if (member.kind() != MemberProcess.Kind.VETCD || !Files.isExecutable(jcmd)) {
            return -1;
        }
        String pid = Long.toString(member.process().pid());
        jcmd(jcmd, pid, "GC.run");
        Matcher used = Pattern.compile("total \\d+K, used (\\d+)K").matcher(jcmd(jcmd, pid, "GC.heap_info"));
        return used.find() ? Long.parseLong(used.group(1)) : -1;
    }

    private static String jcmd(Path jcmd, String pid, String command) throws Exception {
        Process process = new ProcessBuilder(jcmd.toString(), pid, command).redirectErrorStream(true).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
        return out;
    }

    /** What the writer had acknowledged: per key, the revision of its write and when it was acknowledged. */
    private record Writes(long[] revisionOfKey, long[] ackNanosOfKey, int operations, long startedNanos,
            long finishedNanos) {
        long firstRevision() {
            return Arrays.stream(revisionOfKey).min().orElseThrow();
        }

        long lastRevision() {
            return Arrays.stream(revisionOfKey).max().orElseThrow();
        }

        long lastAckNanos() {
            return Arrays.stream(ackNanosOfKey).max().orElseThrow();
        }
    }

    /**
     * Writes the KEYS keys {@code slow/kNNNNNN}, IN_FLIGHT requests at a time over one connection: per
     * block of BLOCK keys one txn putting the first TXN_OPS keys, then one put for each other key.
     */
    private Writes write(KVGrpcClient kv) throws Exception {
        long[] revisionOfKey = new long[KEYS];
        long[] ackNanosOfKey = new long[KEYS];
        Semaphore inFlight = new Semaphore(IN_FLIGHT);
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        long started = System.nanoTime();
        int operations = 0;
        for (int block = 0; block < KEYS / BLOCK && failures.isEmpty(); block++) {
            int first = block * BLOCK;
            TxnRequest.Builder txn = TxnRequest.newBuilder();
            for (int k = first; k < first + TXN_OPS; k++) {
                txn.addSuccess(RequestOp.newBuilder().setRequestPut(put(k)));
            }
            acquire(inFlight, failures);
            operations++;
            settle(kv.txn(txn.build()).map(r -> r.getHeader().getRevision()), first, first + TXN_OPS,
                    revisionOfKey, ackNanosOfKey, inFlight, failures);
            for (int k = first + TXN_OPS; k < first + BLOCK; k++) {
                acquire(inFlight, failures);
                operations++;
                settle(kv.put(put(k).build()).map(r -> r.getHeader().getRevision()), k, k + 1,
                        revisionOfKey, ackNanosOfKey, inFlight, failures);
            }
        }
        acquireAll(inFlight, failures);
        assertEquals(List.of(), failures.stream().map(String::valueOf).distinct().limit(5).toList(),
                failures.size() + " writes failed");
        return new Writes(revisionOfKey, ackNanosOfKey, operations, started, System.nanoTime());
    }

    private static PutRequest.Builder put(int key) {
        return PutRequest.newBuilder().setKey(ByteString.copyFromUtf8(key(key))).setValue(VALUE);
    }

    private static String key(int key) {
        return String.format("%sk%06d", PREFIX, key);
    }

    private static void settle(Future<Long> write, int fromKey, int toKey, long[] revisionOfKey,
            long[] ackNanosOfKey, Semaphore inFlight, List<Throwable> failures) {
        write.onComplete(result -> {
            long now = System.nanoTime();
            if (result.succeeded()) {
                for (int k = fromKey; k < toKey; k++) {
                    revisionOfKey[k] = result.result();
                    ackNanosOfKey[k] = now;
                }
            } else {
                failures.add(result.cause());
            }
            inFlight.release(); // after the array writes: the semaphore publishes them to the test thread
        });
    }

    private void acquire(Semaphore inFlight, List<Throwable> failures) throws Exception {
        if (!inFlight.tryAcquire(STALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            fail("writes stalled: none of the " + IN_FLIGHT + " in flight acknowledged within " + STALL_TIMEOUT
                    + "; failures " + failures.size() + "\n" + member.logTail());
        }
    }

    private void acquireAll(Semaphore inFlight, List<Throwable> failures) throws Exception {
        if (!inFlight.tryAcquire(IN_FLIGHT, STALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            fail("writes stalled: " + (IN_FLIGHT - inFlight.availablePermits()) + " still unacknowledged "
                    + STALL_TIMEOUT + " after the last was sent; failures " + failures.size() + "\n"
                    + member.logTail());
        }
    }

    /**
     * One Watch stream on PREFIX, created before the writes (so it starts at the next revision), recording
     * for each event its revision, key and arrival, and checking each response as it arrives: no
     * response may repeat or go back to a revision an earlier one had (which also means a revision's
     * events are never split across responses), and revisions within one are in order.
     * Handlers run on the connection's event loop only; the test thread reads the volatile counters.
     */
    private static final class Watcher {
        final String name;
        private final boolean pauseAfterCreate;
        private final CompletableFuture<Void> created = new CompletableFuture<>();
        private final List<String> problems = Collections.synchronizedList(new ArrayList<>());
        private final long[] revisions = new long[KEYS + 16];
        private final int[] keys = new int[KEYS + 16];
        private final long[] arrivals = new long[KEYS + 16];
        private volatile int events;
        private volatile int responses;
        private volatile long lastRevision;
        private volatile int maxEventsPerResponse;
        private volatile int maxResponseBytes;
        private volatile GrpcClientResponse<WatchRequest, WatchResponse> stream;
        private volatile Context context;

        private Watcher(boolean pauseAfterCreate) {
            this.name = pauseAfterCreate ? "the paused" : "the reading";
            this.pauseAfterCreate = pauseAfterCreate;
        }

        static Watcher open(GrpcClient client, SocketAddress address, boolean pauseAfterCreate) throws Exception {
            Watcher watcher = new Watcher(pauseAfterCreate);
            GrpcClientRequest<WatchRequest, WatchResponse> request = client.request(address, WatchGrpcClient.Watch)
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            request.response().onSuccess(response -> {
                // Set on the event loop as the headers arrive, before any message is delivered.
                watcher.context = Vertx.currentContext();
                watcher.stream = response;
                response.handler(watcher::onResponse);
                response.exceptionHandler(e -> watcher.problem("stream failed: " + e));
                response.endHandler(v -> watcher.problem("stream ended: " + response.status() + " "
                        + response.statusMessage()));
            }).onFailure(e -> watcher.created.completeExceptionally(e));
            // The request stream stays open: half-closing it is not what etcd's clients do.
            request.write(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                    .setKey(ByteString.copyFromUtf8(PREFIX))
                    .setRangeEnd(ByteString.copyFromUtf8(PREFIX.substring(0, PREFIX.length() - 1)
                            + (char) (PREFIX.charAt(PREFIX.length() - 1) + 1))))
                    .build());
            watcher.created.get(10, TimeUnit.SECONDS);
            return watcher;
        }

        private void onResponse(WatchResponse response) {
            long now = System.nanoTime();
            if (response.getCreated()) {
                if (pauseAfterCreate) {
                    stream.pause(); // from here on, nothing is read off this stream until resume()
                }
                created.complete(null);
            }
            if (response.getCanceled() || response.getCompactRevision() != 0) {
                problem("watch canceled (compact revision " + response.getCompactRevision() + "): "
                        + response.getCancelReason());
            }
            if (response.getEventsCount() == 0) {
                return;
            }
            int n = events;
            long previous = lastRevision;
            responses++;
            maxEventsPerResponse = Math.max(maxEventsPerResponse, response.getEventsCount());
            maxResponseBytes = Math.max(maxResponseBytes, response.getSerializedSize());
            long first = response.getEvents(0).getKv().getModRevision();
            if (first <= previous) {
                problem("response " + responses + " starts at revision " + first + " but an earlier response "
                        + "already had revision " + previous);
            }
            for (Event event : response.getEventsList()) {
                long revision = event.getKv().getModRevision();
                String key = event.getKv().getKey().toStringUtf8();
                if (revision < previous) {
                    problem("revision " + revision + " (" + key + ") after revision " + previous);
                }
                previous = Math.max(previous, revision);
                if (event.getType() != Event.EventType.PUT) {
                    problem("a " + event.getType() + " event for " + key);
                }
                if (n >= revisions.length) {
                    problem("more events than written, e.g. revision " + revision + " " + key);
                    continue;
                }
                Matcher k = KEY.matcher(key);
                revisions[n] = revision;
                keys[n] = k.matches() ? Integer.parseInt(k.group(1)) : -1;
                arrivals[n] = now;
                n++;
            }
            events = n;
            lastRevision = previous;
        }

        private void problem(String what) {
            if (problems.size() < 20) {
                problems.add(java.time.LocalTime.now() + " " + what);
            }
        }

        void resume() {
            context.runOnContext(v -> stream.resume());
        }

        int events() {
            return events;
        }

        int responses() {
            return responses;
        }

        long lastRevision() {
            return lastRevision;
        }

        int maxEventsPerResponse() {
            return maxEventsPerResponse;
        }

        int maxResponseBytes() {
            return maxResponseBytes;
        }

        String problems() {
            return name + " watcher's problems: " + problems;
        }

        /** When the first event of {@code revision} arrived, or 0. */
        long arrivalNanos(long revision) {
            int n = events;
            for (int i = n - 1; i >= 0; i--) {
                if (revisions[i] == revision) {
                    return arrivals[i];
                }
            }
            return 0;
        }

        /** Per written key, arrival here minus its write's acknowledgement, in ms (negative: before the ack), sorted. */
        long[] lagsMillis(Writes writes) {
            int n = events;
            long[] lags = new long[n];
            for (int i = 0; i < n; i++) {
                int key = keys[i];
                lags[i] = key < 0 ? 0 : TimeUnit.NANOSECONDS.toMillis(arrivals[i] - writes.ackNanosOfKey()[key]);
            }
            Arrays.sort(lags);
            return lags;
        }

        /** Every written key exactly once, at the revision its write was acknowledged with, then the sentinel. */
        void assertExactlyTheWrites(Writes writes, long sentinelRevision) {
            assertEquals(List.of(), problems, name + " watcher");
            int n = events;
            assertEquals(KEYS + 1, n, name + " watcher: events received (all keys and the sentinel)");
            int[] seen = new int[KEYS];
            List<String> wrong = new ArrayList<>();
            for (int i = 0; i < n - 1; i++) {
                int key = keys[i];
                if (key < 0) {
                    wrong.add("an event #" + i + " at revision " + revisions[i] + " not for a written key");
                } else if (seen[key]++ > 0) {
                    wrong.add("a second event for " + key(key) + " at revision " + revisions[i]);
                } else if (revisions[i] != writes.revisionOfKey()[key]) {
                    wrong.add(key(key) + " at revision " + revisions[i] + ", written at "
                            + writes.revisionOfKey()[key]);
                }
                if (wrong.size() >= 10) {
                    break;
                }
            }
            assertEquals(List.of(), wrong, name + " watcher");
            assertEquals(sentinelRevision, revisions[n - 1], name + " watcher: the last event is the sentinel");
        }
    }
}
