package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Differential test of etcd's WebSocket watch ({@code ws://host:port/v3/watch}, grpc-websocket-proxy
 * over the JSON gateway): the same frames are sent to a fresh real etcd and a fresh candidate, the
 * same writes are made with etcdctl in between, and the text frames that come back must be
 * identical once cluster and member ids are normalized.
 *
 * <p>Each step waits (with a deadline) for the frame it provokes and then records every frame
 * received so far, so a frame the candidate sends and etcd doesn't shows up at the step that
 * provoked it. No two watches see the same event: etcd sends those in map order.
 *
 * <p>{@code -Dit.watch.candidate=etcd} puts real etcd on both sides. Transcripts go to
 * {@code target/it-logs/websocket-watch-{reference,candidate}.txt}.
 */
class WebSocketWatchIT {

    private static final Duration WAIT = Duration.ofSeconds(10);

    private MemberProcess etcd;
    private MemberProcess candidate;

    @BeforeEach
    void startServers() throws Exception {
        MemberProcess.Kind kind = EtcdctlWatchLeaseIT.candidateKind();
        etcd = MemberProcess.start(MemberProcess.Kind.ETCD, "websocket-watch-etcd");
        candidate = MemberProcess.start(kind, "websocket-watch-candidate-" + kind.name().toLowerCase());
    }

    @AfterEach
    void stopServers() throws Exception {
        try {
            if (etcd != null) {
                etcd.close();
            }
        } finally {
            if (candidate != null) {
                candidate.close();
            }
        }
    }

    @Test
    void framesMatchEtcd() throws Exception {
        String expected = session(etcd);
        String actual = session(candidate);
        Path dir = MemberProcess.LOG_DIR;
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("websocket-watch-reference.txt"), expected, StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("websocket-watch-candidate.txt"), actual, StandardCharsets.UTF_8);
        assertEquals(expected, actual, () -> "WebSocket frames differ from etcd's (full transcripts in "
                + dir.toAbsolutePath() + "/websocket-watch-*.txt)\n" + OutputDiff.firstDifference(expected, actual));
    }

    /** The scripted session against one server (fresh store, revision 1); returns its transcript. */
    private String session(MemberProcess member) throws Exception {
        Session s = new Session(member);
        try {
            s.send("{\"create_request\":{\"key\":\"Zm9v\"}}", has("\"created\":true"));                // watch 0
            s.put("foo", "bar", has(b64("bar")));                                                        // rev 2
            s.send("{\"progress_request\":{}}", has("\"watch_id\":\"-1\""));
            s.put("foo", "baz", has(b64("baz")));                                                        // rev 3
            s.send("{\"cancel_request\":{\"watch_id\":\"0\"}}", has("\"canceled\":true"));
            s.put("foo", "qux", null);                                                                   // rev 4, nobody watches
            // History replay in one frame, prev_kv on all but the first event.
            s.send("{\"create_request\":{\"key\":\"Zm9v\",\"start_revision\":\"2\",\"prev_kv\":true}}", has(b64("qux")));
            s.send("{\"cancel_request\":{\"watch_id\":1}}", has("\"canceled\":true"));                  // numeric id
            s.send("{\"cancel_request\":{\"watch_id\":\"7\"}}", null);                                  // unknown: no frame
            s.send("{\"create_request\":{\"key\":\"Zm9v\",\"watch_id\":\"5\"}}", has("\"created\":true"));
            s.send("{\"create_request\":{\"key\":\"Zm9v\",\"watch_id\":\"5\"}}", has("cancel_reason"));  // duplicate id
            s.send("{\"cancel_request\":{\"watch_id\":\"5\"}}", has("\"canceled\":true"));
            // A range with a filter: only the delete reaches it.
            s.send("{\"create_request\":{\"key\":\"Zm9v\",\"range_end\":\"Zm9vOQ==\",\"filters\":[\"NOPUT\"]}}",
                    has("\"created\":true"));
            s.put("foo1", "x", null);                                                                    // rev 5, filtered
            s.del("foo", has("DELETE"));                                                                 // rev 6
            s.send("{\"progress_request\":{}}", has("\"watch_id\":\"-1\""));
            // Future start revision: created now, events when the store gets there.
            s.send("{\"create_request\":{\"key\":\"YmFy\",\"start_revision\":\"8\"}}", has("\"created\":true"));
            s.put("bar", "b7", null);                                                                    // rev 7, before the start
            s.put("bar", "b8", has(b64("b8")));                                                          // rev 8
            // Compacted start revision: canceled with the compaction revision.
            s.etcdctl("compaction", "4");
            s.send("{\"create_request\":{\"key\":\"Zm9v\",\"start_revision\":\"2\"}}", has("compact_revision"));
        } finally {
            s.close();
        }
        // Garbage on a connection without watches: etcd answers with an error frame. What follows
        // is timing in etcd (it drops the TCP connection sooner or later, without a close frame;
        // with watches open it may not even send the error frame), so the session stops here. The
        // message is Go's JSON decoder's words, vetcd's too.
        Session fresh = new Session(member, s.transcript);
        try {
            fresh.transcript.append("--- new connection\n");
            fresh.textFramesOnly = true;
            fresh.send("not json", has("error"));
        } finally {
            fresh.close();
        }
        return s.transcript.toString();
    }

    /**
     * Where vetcd does better than etcd, on purpose (README): a frame that is not a watch request is
     * answered with an error frame in etcd's words — also an empty object, which etcd ignores silently —
     * and the connection and its watchers go on, where etcd's gateway drops the connection.
     */
    @Test
    void badFramesAreAnsweredAndTheWatchersGoOn() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(candidate.kind() == MemberProcess.Kind.VETCD,
                "vetcd's own behaviour");
        Session s = new Session(candidate);
        try {
            // Each step must get its answer on the same connection: a timeout or a failed send fails.
            s.expect("{\"create_request\":{\"key\":\"Zm9v\"}}", has("\"created\":true"));
            // etcd's words for what it cannot decode (Go's), code 2 as etcd's.
            s.expect("not json", has("{\"error\":\"invalid character 'o' in literal null (expecting 'u')\","));
            s.expect("{}", has("a watch request needs create_request, cancel_request or progress_request"));
            s.expect("{\"create_request\":{\"key\":7}}",
                    has("json: cannot unmarshal number into Go value of type []uint8\",\"code\":2}"));
            // Over the gRPC limit (2 MiB): etcd's ResourceExhausted, word for word.
            s.expect("{\"create_request\":{\"key\":\"" + "A".repeat(3 << 20) + "\"}}",
                    has("{\"error\":{\"grpc_code\":8,\"http_code\":429,\"message\":\"grpc: received message larger "
                            + "than max (2359306 vs. 2097152)\",\"http_status\":\"Too Many Requests\"}}"));
            s.put("foo", "bar", has(b64("bar")));
            assertTrue(s.lastAwaitSeen, () -> "the watcher created first got no event for the put after the bad "
                    + "frames:\n" + s.transcript);
        } finally {
            s.close();
        }
    }

    private static Predicate<String> has(String needle) {
        return frame -> frame.contains(needle);
    }

    private static String b64(String s) {
        return java.util.Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    /** One WebSocket connection and its transcript. */
    private static final class Session implements WebSocket.Listener {
        final MemberProcess member;
        final StringBuilder transcript;
        private final List<String> frames = new ArrayList<>();
        private final StringBuilder partial = new StringBuilder();
        private int recorded;
        /** Whether the last wait saw the frame it waited for. */
        boolean lastAwaitSeen;
        /** Leave close and error notifications out of the transcript. */
        boolean textFramesOnly;
        private final WebSocket ws;

        Session(MemberProcess member) throws Exception {
            this(member, new StringBuilder());
        }

        Session(MemberProcess member, StringBuilder transcript) throws Exception {
            this.member = member;
            this.transcript = transcript;
            String uri = member.endpoint().replaceFirst("^http", "ws") + "/v3/watch";
            ws = HttpClient.newHttpClient().newWebSocketBuilder()
                    .connectTimeout(Duration.ofSeconds(5))
                    .buildAsync(URI.create(uri), this)
                    .get(10, TimeUnit.SECONDS);
        }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            synchronized (frames) {
                partial.append(data);
                if (last) {
                    frames.add("text: " + partial);
                    partial.setLength(0);
                }
            }
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            synchronized (frames) {
                frames.add("close: " + statusCode + " " + reason);
            }
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            synchronized (frames) {
                frames.add("error: " + error);
            }
        }

        void send(String text, Predicate<String> awaited) throws Exception {
            transcript.append(">>> ").append(text).append('\n');
            if (sendText(text)) {
                awaitAndRecord(awaited, WAIT);
            }
        }

        /** Sends, and fails the test unless the send went through and the awaited frame came. */
        void expect(String text, Predicate<String> awaited) throws Exception {
            transcript.append(">>> ").append(text).append('\n');
            assertTrue(sendText(text), () -> "the send of " + text + " failed:\n" + transcript);
            awaitAndRecord(awaited, WAIT);
            assertTrue(lastAwaitSeen, () -> "no answer to " + text + " within " + WAIT + ":\n" + transcript);
        }

        /** A send that fails (the server closed the connection) is part of the transcript, not an error. */
        private boolean sendText(String text) throws InterruptedException {
            try {
                ws.sendText(text, true).get(5, TimeUnit.SECONDS);
                return true;
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                awaitAndRecord(null, WAIT);
                transcript.append("[send failed: ").append(e.getCause() == null ? e : e.getCause()).append("]\n");
                return false;
            }
        }

        void put(String key, String value, Predicate<String> awaited) throws Exception {
            etcdctl("put", key, value);
            awaitAndRecord(awaited, WAIT);
        }

        void del(String key, Predicate<String> awaited) throws Exception {
            etcdctl("del", key);
            awaitAndRecord(awaited, WAIT);
        }

        void etcdctl(String... args) throws Exception {
            Etcdctl.Result r = Etcdctl.run(member.endpoint(), args);
            transcript.append("$ etcdctl ").append(String.join(" ", args)).append(" -> exit ").append(r.exitCode())
                    .append(' ').append(r.stdout().strip()).append('\n');
        }

        /** Waits for a new frame matching {@code awaited} (none: just records), then records all new frames. */
        private void awaitAndRecord(Predicate<String> awaited, Duration budget) throws InterruptedException {
            long deadline = System.nanoTime() + budget.toNanos();
            boolean seen = awaited == null;
            while (!seen && System.nanoTime() < deadline) {
                synchronized (frames) {
                    seen = frames.subList(recorded, frames.size()).stream().anyMatch(awaited);
                }
                if (!seen) {
                    Thread.sleep(20);
                }
            }
            synchronized (frames) {
                for (; recorded < frames.size(); recorded++) {
                    if (!textFramesOnly || frames.get(recorded).startsWith("text: ")) {
                        transcript.append("<<< ").append(normalize(frames.get(recorded))).append('\n');
                    }
                }
            }
            if (!seen) {
                transcript.append("[timed out waiting for the frame this step provokes]\n");
            }
            lastAwaitSeen = seen;
        }

        void close() {
            ws.abort();
        }

        private static String normalize(String frame) {
            return frame.replaceAll("\"cluster_id\":\"\\d+\"", "\"cluster_id\":\"<CLUSTER_ID>\"")
                    .replaceAll("\"member_id\":\"\\d+\"", "\"member_id\":\"<MEMBER_ID>\"");
        }
    }
}
