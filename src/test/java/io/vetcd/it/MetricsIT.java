package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code /metrics} (issue 15) on a 3-member cluster, scraped and parsed as Prometheus would: every
 * metric the issue names is there with etcd 3.4's type, labels and buckets, and the values move as
 * they should — a put raises etcd_mvcc_put_total, a leader's death raises
 * etcd_server_leader_changes_seen_total on the survivors and etcd_network_peer_sent_failures_total on
 * whoever still sends to it, a member cut off from the others reports etcd_server_has_leader 0 — and
 * the series the etcd mixin's alerts use exist. Also the health endpoints as probes see them.
 */
class MetricsIT {

    // HTTP/1.1, as Prometheus scrapes (and no h2c upgrade, on which the JDK client once hung past its timeout).
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    /** etcd's WAL and backend buckets: ExponentialBuckets(0.001, 2, 14). */
    private static final List<String> DISK_BUCKETS = List.of("0.001", "0.002", "0.004", "0.008", "0.016", "0.032",
            "0.064", "0.128", "0.256", "0.512", "1.024", "2.048", "4.096", "8.192", "+Inf");

    private ClusterProcess cluster;
    private PeerRelay relay;

    @AfterEach
    void cleanUp() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
        if (relay != null) {
            relay.close();
        }
    }

    @Test
    void metricsHaveEtcdsNamesTypesAndLabelsAndMoveAsTheyShould() throws Exception {
        // No relay between the members: a dead member's port must refuse the leader's dials.
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "metrics");
        int leader = cluster.leaderIndex();
        assertTrue(Etcdctl.run(cluster.endpoint(leader), "put", "k", "v").ok());
        Map<String, PrometheusText.Family> m = scrape(leader);

        expect(m, "etcd_server_has_leader", "gauge");
        expect(m, "etcd_server_is_leader", "gauge");
        expect(m, "etcd_server_leader_changes_seen_total", "counter");
        expect(m, "etcd_server_proposals_committed_total", "gauge");
        expect(m, "etcd_server_proposals_applied_total", "gauge");
        expect(m, "etcd_server_proposals_pending", "gauge");
        expect(m, "etcd_server_proposals_failed_total", "counter");
        expect(m, "etcd_server_id", "gauge", "server_id");
        expect(m, "etcd_disk_wal_fsync_duration_seconds", "histogram");
        expect(m, "etcd_disk_backend_commit_duration_seconds", "histogram");
        expect(m, "etcd_mvcc_db_total_size_in_bytes", "gauge");
        expect(m, "etcd_mvcc_db_total_size_in_use_in_bytes", "gauge");
        expect(m, "etcd_server_quota_backend_bytes", "gauge");
        expect(m, "etcd_mvcc_put_total", "counter");
        expect(m, "etcd_mvcc_delete_total", "counter");
        expect(m, "etcd_debugging_mvcc_keys_total", "gauge");
        expect(m, "etcd_network_peer_sent_bytes_total", "counter", "To");
        expect(m, "etcd_network_client_grpc_received_bytes_total", "counter");
        expect(m, "etcd_network_client_grpc_sent_bytes_total", "counter");
        expect(m, "grpc_server_started_total", "counter", "grpc_method", "grpc_service", "grpc_type");
        expect(m, "grpc_server_handled_total", "counter", "grpc_code", "grpc_method", "grpc_service", "grpc_type");
        expect(m, "etcd_server_health_success", "counter");
        expect(m, "etcd_server_health_failures", "counter");
        assertTrue(m.keySet().stream().anyMatch(n -> n.startsWith("process_")), "process metrics");
        if (cluster.kind() != MemberProcess.Kind.ETCD) {
            assertTrue(m.keySet().stream().anyMatch(n -> n.startsWith("jvm_memory")), "JVM metrics"); // etcd's: go_*
        }
        for (String histogram : List.of("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds")) {
            List<String> le = m.get(histogram).samples().stream().filter(s -> s.name().endsWith("_bucket"))
                    .map(s -> s.labels().get("le")).map(MetricsIT::trimZeros).toList();
            assertEquals(DISK_BUCKETS, le, histogram + " buckets");
        }
        assertEquals(1.0, PrometheusText.total(m, "etcd_server_is_leader"), "scraped the leader");
        // Round trips are measured as the peers talk (etcd's prober, vetcd's heartbeats): wait for one.
        long rttDeadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!scrape(leader).containsKey("etcd_network_peer_round_trip_time_seconds")) {
            if (System.nanoTime() > rttDeadline) {
                fail("no etcd_network_peer_round_trip_time_seconds on the leader");
            }
            Thread.sleep(500);
        }
        expect(scrape(leader), "etcd_network_peer_round_trip_time_seconds", "histogram", "To");
        assertTrue(m.get("grpc_server_handled_total").samples().stream().anyMatch(s ->
                "Put".equals(s.labels().get("grpc_method")) && "OK".equals(s.labels().get("grpc_code"))
                && "etcdserverpb.KV".equals(s.labels().get("grpc_service")) && "unary".equals(s.labels().get("grpc_type"))),
                "etcdctl's put counted as grpc_server_handled_total{grpc_method=Put,grpc_code=OK}");

        // A put raises etcd_mvcc_put_total on every member (each applies it).
        int follower = leader % ClusterProcess.SIZE + 1;
        double puts = PrometheusText.total(scrape(follower), "etcd_mvcc_put_total");
        assertTrue(Etcdctl.run(cluster.endpoint(leader), "put", "k2", "v").ok());
        awaitMetric(follower, "etcd_mvcc_put_total", v -> v >= puts + 1, "a put raises etcd_mvcc_put_total");


        // The leader dies: the survivors see a leader change, and the new leader fails to send to it.
        leader = cluster.leaderIndex();
        int survivor = leader % ClusterProcess.SIZE + 1;
        int otherSurvivor = survivor % ClusterProcess.SIZE + 1;
        double changes = PrometheusText.total(scrape(survivor), "etcd_server_leader_changes_seen_total");
        cluster.kill9(leader);
        awaitMetric(survivor, "etcd_server_leader_changes_seen_total", v -> v >= changes + 1,
                "a leader's death raises etcd_server_leader_changes_seen_total");
        int dead = leader;
        int newLeader = cluster.leaderIndex();
        assertTrue(newLeader == survivor || newLeader == otherSurvivor, "new leader " + newLeader);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            Map<String, PrometheusText.Family> now = scrape(newLeader);
            PrometheusText.Family failures = now.get("etcd_network_peer_sent_failures_total");
            if (failures != null && failures.samples().stream().anyMatch(s -> s.value() > 0
                    && s.labels().get("To") != null)) {
                expect(now, "etcd_network_peer_sent_failures_total", "counter", "To");
                break;
            }
            if (System.nanoTime() > deadline) {
                fail("no etcd_network_peer_sent_failures_total after member " + dead + " died");
            }
            assertTrue(Etcdctl.run(cluster.endpoint(newLeader), "put", "after", "v").ok()); // traffic to fail
            Thread.sleep(200);
        }

        // Every series the etcd mixin's alerts use (etcdMembersDown, etcdNoLeader,
        // etcdHighNumberOfLeaderChanges, etcdHighFsyncDurations, etcdHighCommitDurations,
        // etcdDatabaseQuotaLowSpace, etcdHighNumberOfFailedGRPCRequests), besides Prometheus' own `up`.
        Map<String, PrometheusText.Family> now = scrape(newLeader);
        for (String series : List.of("etcd_network_peer_sent_failures_total", "etcd_server_has_leader",
                "etcd_server_leader_changes_seen_total", "etcd_disk_wal_fsync_duration_seconds",
                "etcd_disk_backend_commit_duration_seconds", "etcd_mvcc_db_total_size_in_bytes",
                "etcd_server_quota_backend_bytes", "grpc_server_handled_total")) {
            assertTrue(now.containsKey(series) && !now.get(series).samples().isEmpty(), "the mixin's " + series);
        }
    }

    /**
     * A member cut off from the others reports etcd_server_has_leader 0, and the probes say so:
     * /health, /livez, /readyz (plain and verbose), on a healthy member and on the one cut off.
     */
    @Test
    void aMemberCutOffHasNoLeaderAndItsProbesSaySo() throws Exception {
        relay = PeerRelay.start(ClusterProcess.SIZE);
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "health", relay);
        int isolated = cluster.leaderIndex() % ClusterProcess.SIZE + 1;
        awaitMetric(isolated, "etcd_server_has_leader", v -> v == 1, "a follower has a leader");
        relay.blockReceive(isolated, PeerRelay.Mode.RESET);
        relay.blockSend(isolated, PeerRelay.Mode.RESET);
        awaitMetric(isolated, "etcd_server_has_leader", v -> v == 0, "a member cut off reports no leader");
        relay.heal();
        awaitMetric(isolated, "etcd_server_has_leader", v -> v == 1, "healed, it has a leader again");
        if (cluster.kind() == MemberProcess.Kind.ETCD) {
            return; // etcd 3.4 has no /livez or /readyz
        }
        assertEquals("200 {\"health\":\"true\"}", get(1, "/health"));
        assertEquals("SERVING", grpcHealth(1, ""), "grpc.health.v1.Health/Check of the server");
        assertEquals("SERVING", grpcHealth(1, "etcdserverpb.KV"));
        assertEquals("5 unknown service", grpcHealth(1, "no.such.Service"));
        assertEquals("SERVING", firstWatchedHealth(1), "grpc.health.v1.Health/Watch's first answer");
        assertEquals("200 ok", get(1, "/livez"));
        assertEquals("200 ok", get(1, "/readyz"));
        assertEquals("200 [+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nreadyz check passed\n",
                get(1, "/readyz?verbose"));
        isolated = cluster.leaderIndex() % ClusterProcess.SIZE + 1;
        relay.blockReceive(isolated, PeerRelay.Mode.RESET);
        relay.blockSend(isolated, PeerRelay.Mode.RESET);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!get(isolated, "/health").equals("503 {\"health\":\"false\"}")) {
            if (System.nanoTime() > deadline) {
                fail("a member cut off stays healthy: " + get(isolated, "/health"));
            }
            Thread.sleep(200);
        }
        String readyz = get(isolated, "/readyz");
        assertTrue(readyz.startsWith("503 ") && readyz.contains("[-]linearizable_read failed")
                && readyz.endsWith("readyz check failed\n"), readyz);
        assertEquals("200 ok", get(isolated, "/livez"), "alive: it serves its own keyspace");
        assertEquals("NOT_SERVING", grpcHealth(isolated, ""), "gRPC health of the member cut off");
        relay.heal();
    }

    private static String trimZeros(String le) {
        return le.contains(".") && !le.contains("E") ? le.replaceAll("0+$", "").replaceAll("\\.$", ".0") : le;
    }

    private void expect(Map<String, PrometheusText.Family> families, String name, String type, String... labels) {
        PrometheusText.Family f = families.get(name);
        assertTrue(f != null, name + " is missing from /metrics");
        assertEquals(type, f.type(), name + "'s type");
        assertTrue(!f.help().isBlank(), name + " has a HELP text");
        Set<String> expected = Set.of(labels);
        for (PrometheusText.Sample s : f.samples()) {
            Set<String> got = new java.util.HashSet<>(s.labels().keySet());
            got.remove("le");
            assertEquals(expected, got, name + "'s labels in " + s);
        }
    }

    private void awaitMetric(int member, String name, Predicate<Double> ok, String what) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        double value = Double.NaN;
        while (System.nanoTime() < deadline) {
            value = PrometheusText.total(scrape(member), name);
            if (ok.test(value)) {
                return;
            }
            Thread.sleep(200);
        }
        fail(what + ": " + name + " on member " + member + " is " + value);
    }

    private Map<String, PrometheusText.Family> scrape(int member) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(cluster.endpoint(member) + "/metrics"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/plain"), r.headers().toString());
        return PrometheusText.parse(r.body());
    }

    /** grpc.health.v1.Health/Check: the status's name, or the gRPC error's code and message. */
    private String grpcHealth(int member, String service) throws Exception {
        RawGrpc grpc = new RawGrpc();
        try {
            byte[] request = io.vetcd.proto.health.HealthCheckRequest.newBuilder().setService(service).build().toByteArray();
            RawGrpc.Outcome out = grpc.call(cluster.endpoint(member), "/grpc.health.v1.Health/Check", null, true,
                    RawGrpc.frame(0, request));
            if (!"0".equals(out.status())) {
                return out.status() + " " + java.net.URLDecoder.decode(out.message(), java.nio.charset.StandardCharsets.UTF_8);
            }
            byte[] body = out.body().getBytes();
            return io.vetcd.proto.health.HealthCheckResponse.parseFrom(java.util.Arrays.copyOfRange(body, 5, body.length))
                    .getStatus().name();
        } finally {
            grpc.vertx().close();
        }
    }

    /**
     * grpc.health.v1.Health/Watch: the status of the stream's first message (the server keeps the
     * stream open; the call is reset once it is read).
     */
    private String firstWatchedHealth(int member) throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            io.vertx.core.http.HttpClient client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                    .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
            URI uri = URI.create(cluster.endpoint(member));
            byte[] request = io.vetcd.proto.health.HealthCheckRequest.getDefaultInstance().toByteArray();
            java.util.concurrent.CompletableFuture<String> first = new java.util.concurrent.CompletableFuture<>();
            client.request(new io.vertx.core.http.RequestOptions().setMethod(io.vertx.core.http.HttpMethod.POST)
                    .setHost(uri.getHost()).setPort(uri.getPort()).setURI("/grpc.health.v1.Health/Watch")
                    .putHeader("content-type", "application/grpc").putHeader("te", "trailers"))
                .onSuccess(req -> {
                    req.response().onSuccess(resp -> {
                        io.vertx.core.buffer.Buffer got = io.vertx.core.buffer.Buffer.buffer();
                        resp.handler(chunk -> {
                            got.appendBuffer(chunk);
                            if (got.length() >= 5 && got.length() >= 5 + got.getInt(1)) {
                                try {
                                    first.complete(io.vetcd.proto.health.HealthCheckResponse.parseFrom(
                                            got.getBytes(5, 5 + got.getInt(1))).getStatus().name());
                                } catch (Exception e) {
                                    first.completeExceptionally(e);
                                }
                                req.reset();
                            }
                        });
                    }).onFailure(first::completeExceptionally);
                    req.end(RawGrpc.frame(0, request));
                })
                .onFailure(first::completeExceptionally);
            return first.get(20, java.util.concurrent.TimeUnit.SECONDS);
        } finally {
            vertx.close();
        }
    }

    private String get(int member, String path) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(cluster.endpoint(member) + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        return r.statusCode() + " " + r.body();
    }
}
