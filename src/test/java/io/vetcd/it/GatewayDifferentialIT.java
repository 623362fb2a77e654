package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The JSON gateway (issue 15), as curl meets it: one scripted session of HTTP requests against a fresh
 * etcd 3.4.23 and a fresh candidate, requiring the same status, content type and body, request by
 * request — the good calls of every service (the watch has tests of its own) and at least ten kinds
 * of bad request (malformed JSON, wrong types, bad base64, unknown enum names, unknown paths and
 * methods, revisions from the future and compacted away, missing leases and members). Both stores see
 * the same writes in the same order, so revisions match; ids, ports and hashes are normalised.
 * Transcripts go to
 * {@code target/it-logs/gateway-differential-*.txt}.
 */
class GatewayDifferentialIT {

    private static MemberProcess etcd;
    private static MemberProcess candidate;
    private static Path etcdTranscript;
    private static Path candidateTranscript;
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void startServers() throws Exception {
        MemberProcess.Kind kind = MemberProcess.candidateKind();
        etcd = MemberProcess.start(MemberProcess.Kind.ETCD, "gateway-reference-etcd");
        candidate = MemberProcess.start(kind, "gateway-candidate-" + kind.name().toLowerCase());
        etcdTranscript = fresh("gateway-differential-reference-etcd.txt");
        candidateTranscript = fresh("gateway-differential-candidate-" + kind.name().toLowerCase() + ".txt");
    }

    @AfterAll
    static void stopServers() throws Exception {
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

    /** A request of the session, and whether its body is compared whole or only its status and type. */
    record Call(String method, String path, String body, boolean bodyCompared) {
        @Override
        public String toString() {
            return method + " " + path + (body == null ? "" : " " + body);
        }
    }

    @TestFactory
    Stream<DynamicTest> candidateAnswersWhatEtcdAnswers() {
        return script().stream().map(call -> dynamicTest(call.toString(), () -> {
            String expected = describe(call, send(etcd, call));
            String actual = describe(call, send(candidate, call));
            append(etcdTranscript, call, expected);
            append(candidateTranscript, call, actual);
            assertEquals(expected, actual, () -> "`" + call + "` answered differently from etcd (expected = etcd)\n"
                    + OutputDiff.firstDifference(expected, actual));
        }));
    }

    /** vetcd's own: {@code ?encoding=utf8} on every gateway path reads and writes bytes as plain strings. */
    @Test
    void utf8EncodingTakesAndGivesPlainStrings() throws Exception {
        if (candidate.kind() == MemberProcess.Kind.ETCD) {
            return; // etcd ignores the parameter
        }
        HttpResponse<String> put = send(candidate, new Call("POST", "/v3/kv/put?encoding=utf8",
                "{\"key\":\"utf8/ключ\",\"value\":\"значение\",\"prev_kv\":true}", true));
        assertEquals(200, put.statusCode(), put.body());
        HttpResponse<String> range = send(candidate, new Call("POST", "/v3/kv/range?encoding=utf8",
                "{\"key\":\"utf8/\",\"range_end\":\"utf80\"}", true));
        assertEquals(200, range.statusCode(), range.body());
        assertTrue(range.body().contains("\"key\":\"utf8/ключ\"") && range.body().contains("\"value\":\"значение\""),
                range.body());
        HttpResponse<String> plain = send(candidate, new Call("POST", "/v3/kv/range", "{\"key\":\"" + b64("utf8/ключ") + "\"}", true));
        assertTrue(plain.body().contains("\"value\":\"" + b64("значение") + "\""), plain.body());
    }

    /**
     * On three members, through followers: writes, reads, txns, leases (and their keep-alive stream),
     * the member list and errors all answer as on the leader. Runs against etcd too
     * ({@code -Dit.cluster.candidate=etcd}).
     */
    @Test
    void throughFollowersOfThreeMembers() throws Exception {
        try (ClusterProcess cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "gateway-three")) {
            int leader = cluster.leaderIndex();
            int f1 = leader % ClusterProcess.SIZE + 1;
            int f2 = f1 % ClusterProcess.SIZE + 1;
            HttpResponse<String> put = post(cluster.endpoint(f1), "/v3/kv/put",
                    "{\"key\":\"" + b64("via-follower") + "\",\"value\":\"" + b64("v1") + "\"}");
            assertEquals(200, put.statusCode(), put.body());
            HttpResponse<String> range = post(cluster.endpoint(f2), "/v3/kv/range", "{\"key\":\"" + b64("via-follower") + "\"}");
            assertTrue(range.statusCode() == 200 && range.body().contains("\"value\":\"" + b64("v1") + "\""), range.body());
            HttpResponse<String> txn = post(cluster.endpoint(f2), "/v3/kv/txn", "{\"compare\":[{\"key\":\"" + b64("via-follower")
                    + "\",\"target\":\"VALUE\",\"value\":\"" + b64("v1") + "\"}],\"success\":[{\"request_put\":{\"key\":\""
                    + b64("via-follower") + "\",\"value\":\"" + b64("v2") + "\"}}]}");
            assertTrue(txn.statusCode() == 200 && txn.body().contains("\"succeeded\":true"), txn.body());
            HttpResponse<String> grant = post(cluster.endpoint(f1), "/v3/lease/grant", "{\"TTL\":\"30\",\"ID\":\"4242\"}");
            assertTrue(grant.statusCode() == 200 && grant.body().contains("\"ID\":\"4242\""), grant.body());
            HttpResponse<String> keepAlive = post(cluster.endpoint(f2), "/v3/lease/keepalive", "{\"ID\":\"4242\"}");
            assertTrue(keepAlive.statusCode() == 200 && keepAlive.body().startsWith("{\"result\":{")
                    && keepAlive.body().contains("\"TTL\":\"30\""), keepAlive.body());
            HttpResponse<String> members = post(cluster.endpoint(f1), "/v3/cluster/member/list", "{}");
            assertEquals(3, members.body().split("\"peerURLs\"", -1).length - 1, members.body());
            HttpResponse<String> future = post(cluster.endpoint(f2), "/v3/kv/range", "{\"key\":\"" + b64("x") + "\",\"revision\":\"100000\"}");
            assertEquals(400, future.statusCode());
            assertEquals("{\"error\":\"etcdserver: mvcc: required revision is a future revision\",\"message\":"
                    + "\"etcdserver: mvcc: required revision is a future revision\",\"code\":11}", future.body());
        }
    }

    private static HttpResponse<String> post(String endpoint, String path, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(endpoint + path)).timeout(Duration.ofSeconds(20))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static List<Call> script() {
        List<Call> s = new ArrayList<>();
        // KV, the good calls (revision after each write in comments; a fresh store starts at 1)
        s.add(post("/v3/kv/put", "{\"key\":\"" + b64("foo") + "\",\"value\":\"" + b64("bar") + "\"}"));   // 2
        s.add(post("/v3/kv/put", "{\"key\":\"" + b64("foo") + "\",\"value\":\"" + b64("baz") + "\",\"prev_kv\":true}")); // 3
        s.add(post("/v3/kv/put", "{\"key\":\"" + b64("foo1") + "\",\"value\":\"" + b64("v1") + "\"}"));  // 4
        s.add(post("/v3/kv/put", "{\"key\":\"" + b64("zoo") + "\",\"value\":\"\"}"));                   // 5
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\"}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("missing") + "\"}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"range_end\":\"" + b64("fop") + "\"}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"rangeEnd\":\"" + b64("fop") + "\",\"limit\":1}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"range_end\":\"" + b64("fop") + "\",\"count_only\":true}"));
        s.add(post("/v3/kv/range", "{\"key\":\"AA==\",\"range_end\":\"AA==\",\"keys_only\":true}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"revision\":\"2\"}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("zoo") + "\"}"));
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"range_end\":\"" + b64("fop")
                + "\",\"sort_order\":\"DESCEND\",\"sort_target\":\"MOD\"}"));
        s.add(post("/v3beta/kv/range", "{\"key\":\"" + b64("foo1") + "\"}"));
        s.add(post("/v3/kv/txn", "{\"compare\":[{\"key\":\"" + b64("foo") + "\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\""
                + b64("baz") + "\"}],\"success\":[{\"request_put\":{\"key\":\"" + b64("foo") + "\",\"value\":\"" + b64("qux")
                + "\"}},{\"request_range\":{\"key\":\"" + b64("foo1") + "\"}}],\"failure\":[]}"));                    // 6
        s.add(post("/v3/kv/txn", "{\"compare\":[{\"key\":\"" + b64("foo") + "\",\"target\":\"VERSION\",\"version\":\"1\"}],"
                + "\"failure\":[{\"request_delete_range\":{\"key\":\"" + b64("zoo") + "\",\"prev_kv\":true}}]}"));         // 7
        s.add(post("/v3/kv/deleterange", "{\"key\":\"" + b64("foo1") + "\",\"prev_kv\":true}"));                     // 8
        s.add(post("/v3/kv/deleterange", "{\"key\":\"" + b64("nothing") + "\"}"));
        s.add(post("/v3/kv/compaction", "{\"revision\":\"3\"}"));
        // Lease
        s.add(post("/v3/lease/grant", "{\"TTL\":\"60\",\"ID\":\"7587\"}"));
        s.add(post("/v3/lease/grant", "{\"TTL\":60,\"ID\":7587}"));
        s.add(post("/v3/kv/put", "{\"key\":\"" + b64("leased") + "\",\"value\":\"" + b64("x") + "\",\"lease\":\"7587\"}")); // 9
        s.add(post("/v3/lease/timetolive", "{\"ID\":\"7587\",\"keys\":true}", false));
        s.add(post("/v3/kv/lease/timetolive", "{\"ID\":\"1\"}"));
        s.add(post("/v3/lease/leases", "{}"));
        s.add(post("/v3/lease/revoke", "{\"ID\":\"7587\"}"));                                                        // 10
        s.add(post("/v3/kv/lease/revoke", "{\"ID\":\"7587\"}"));
        s.add(post("/v3/lease/keepalive", "{\"ID\":\"7587\"}"));
        // Cluster and Maintenance
        s.add(post("/v3/cluster/member/list", "{}", false));
        s.add(post("/v3/cluster/member/remove", "{\"ID\":\"12345\"}"));
        s.add(post("/v3/cluster/member/promote", "{\"ID\":\"12345\"}"));
        s.add(post("/v3/maintenance/status", "{}", false));
        s.add(post("/v3/maintenance/alarm", "{\"action\":\"GET\"}"));
        s.add(post("/v3/maintenance/defragment", "{}"));
        s.add(post("/v3/maintenance/hash", "{}", false));
        s.add(post("/v3/maintenance/snapshot", "{}", false));                            // a stream of blobs
        s.add(post("/v3/cluster/member/update", "{\"ID\":\"12345\",\"peerURLs\":[\"http://127.0.0.1:1\"]}"));
        s.add(post("/v3/cluster/member/add", "{\"peerURLs\":[\"not a url\"]}"));
        s.add(post("/v3/maintenance/transfer-leadership", "{\"targetID\":\"12345\"}"));
        // Bad requests
        s.add(post("/v3/kv/range", "{\"key\":"));                                        // cut short
        s.add(post("/v3/kv/range", "{\"key\":1}"));                                      // a number for bytes
        s.add(post("/v3/kv/range", "{\"key\":\"eg==\",\"revision\":\"abc\"}"));          // not a number
        s.add(post("/v3/kv/range", "{\"key\":\"eg==\",\"revision\":1.5}"));              // not an integer
        s.add(post("/v3/kv/range", "{\"key\":\"eg==\",\"revision\":9223372036854775808}")); // too large
        s.add(post("/v3/kv/range", "{\"key\":\"eg\"}"));                                 // bad base64
        s.add(post("/v3/kv/range", "{\"key\":\"!!!!\"}"));                               // bad base64
        s.add(post("/v3/kv/range", "[]"));                                               // not an object
        s.add(post("/v3/kv/range", "\"abc\""));
        s.add(post("/v3/kv/range", "nul"));                                              // a broken literal
        s.add(post("/v3/kv/range", "null"));                                             // empty: no key
        s.add(post("/v3/kv/put", ""));                                                   // empty: no key
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"count_only\":\"yes\"}")); // a string for a bool
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"sort_order\":\"SIDEWAYS\"}")); // unknown enum
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"nonsense\":1}"));  // unknown fields are ignored
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\"} trailing"));        // what follows is ignored
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"revision\":\"1000\"}")); // the future
        s.add(post("/v3/kv/range", "{\"key\":\"" + b64("foo") + "\",\"revision\":\"2\"}"));    // compacted
        s.add(post("/v3/kv/put", "{\"key\":\"" + b64("k") + "\",\"value\":\"" + b64("v") + "\",\"lease\":\"99\"}")); // no lease
        s.add(post("/v3/lease/revoke", "{\"ID\":\"99\"}"));                              // no lease
        s.add(post("/v3/lease/keepalive", "{\"ID\":"));                                  // a stream cut short
        s.add(new Call("GET", "/v3/kv/range", null, true));                              // wrong method
        s.add(new Call("PUT", "/v3/kv/put", "{}", true));
        s.add(new Call("DELETE", "/v3/maintenance/status", null, true));
        s.add(post("/v3/kv/bogus", "{}"));                                               // unknown paths
        s.add(post("/v3/kv/lease/keepalive", "{}"));
        s.add(post("/bogus", "{}"));
        s.add(post("/v3alpha/kv/range", "{}"));
        // Health and version
        s.add(new Call("GET", "/health", null, true));
        s.add(new Call("POST", "/health", null, true));
        s.add(new Call("GET", "/version", null, true));
        return s;
    }

    private static Call post(String path, String body) {
        return new Call("POST", path, body, true);
    }

    private static Call post(String path, String body, boolean bodyCompared) {
        return new Call("POST", path, body, bodyCompared);
    }

    private static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    private static HttpResponse<String> send(MemberProcess member, Call call) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(member.endpoint() + call.path()))
                .timeout(Duration.ofSeconds(20))
                .method(call.method(), call.body() == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(call.body()));
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static final Pattern IDS = Pattern.compile(
            "\"(cluster_id|member_id|ID|memberID|leader|hash|raft_term|header)\":(\"\\d+\"|\\d+)");

    /** Status, content type and (for most calls) the body, with what legitimately differs replaced. */
    private static String describe(Call call, HttpResponse<String> r) {
        String type = r.headers().firstValue("content-type").orElse("").replace(" ", "").toLowerCase();
        String body = r.body();
        if (!call.bodyCompared()) {
            body = "<body not compared>";
        } else {
            body = IDS.matcher(body).replaceAll(m -> "\"" + m.group(1) + "\":<N>")
                    .replaceAll("127\\.0\\.0\\.1:\\d+", "127.0.0.1:<PORT>");
        }
        return r.statusCode() + " " + type + "\n" + body;
    }

    private static Path fresh(String name) throws Exception {
        Path file = MemberProcess.LOG_DIR.resolve(name);
        Files.createDirectories(file.getParent());
        Files.writeString(file, "", StandardCharsets.UTF_8);
        return file;
    }

    private static void append(Path transcript, Call call, String output) throws Exception {
        Files.writeString(transcript, "=== " + call + "\n" + output + "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }
}
