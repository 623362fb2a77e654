package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A member whose log or keyspace fails stops at once (etcd exits on a WAL or backend error): the
 * requests in flight get etcd's "server stopped", /health stops saying true, the process exits with
 * status 1 and says why in plain words, and a restart once the cause is gone serves every write that
 * was acknowledged. Faults come from failpoints ({@code -Dvetcd.failpoints}, tests only): the log's
 * sync, applying a batch, installing a snapshot from the leader. The real full disk is in
 * {@link FullDiskIT}; losing power in {@link PowerLossIT}.
 */
class FailStopIT {

    private static final int VALUE_SIZE = 100;
    private static final Duration EXIT_WITHIN = Duration.ofSeconds(15);

    private MemberProcess member;
    private ClusterProcess cluster;

    @AfterEach
    void cleanUp() throws Exception {
        if (member != null) {
            member.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "append@40, writing the log failed",
        "apply@40, applying committed entries to the keyspace failed",
    })
    void aFailingLogOrKeyspaceStopsTheMemberAndLosesNothingAcknowledged(String failpoint, String cause)
            throws Exception {
        member = MemberProcess.start(MemberProcess.Kind.VETCD, "failstop-" + failpoint.replace('@', '-'),
                MemberProcess.Options.defaults().withJvmArgs("-Dvetcd.failpoints=" + failpoint));
        HealthWatch health = new HealthWatch(member.endpoint());
        KvLoad.Outcome outcome;
        try (KvLoad load = new KvLoad(member.endpoint())) {
            health.start();
            outcome = load.put("k", 100_000, 16, VALUE_SIZE, () -> !member.process().isAlive(), Duration.ofSeconds(60));
        } finally {
            health.stop();
        }
        assertTrue(member.process().waitFor(EXIT_WITHIN.toSeconds(), TimeUnit.SECONDS),
                "the member still runs after its " + failpoint + " failed\n" + member.logTail());
        assertEquals(1, member.process().exitValue(), "exit status\n" + member.logTail());
        assertTrue(member.logContains(cause) && member.logContains("failpoint " + failpoint.split("@")[0]),
                "the log does not say why the member stopped (\"" + cause + "\")\n" + member.logTail());
        assertFalse(outcome.failures().isEmpty(), "no put failed");
        assertTrue(outcome.failures().stream().anyMatch(f -> f.contains("etcdserver: server stopped")),
                "no put in flight was answered with etcd's \"server stopped\": " + outcome.failures().subList(0,
                        Math.min(5, outcome.failures().size())));
        assertEquals(List.of(), health.trueAfter(health.firstFalseOrDown()),
                "/health said true after the member had stopped");
        assertTrue(outcome.acknowledged().size() >= 20, outcome.acknowledged().size() + " puts acknowledged");

        member.restart(member.options().withJvmArgs());
        try (KvLoad load = new KvLoad(member.endpoint())) {
            assertEquals(List.of(), KvLoad.missing(outcome.acknowledged(), load.range("k"), VALUE_SIZE),
                    "acknowledged puts after the restart\n" + member.logTail());
        }
    }

    /**
     * A slow disk (every log sync 200 ms longer, the {@code append=sleep(200)} failpoint) on one of three
     * members: writes go on (a quorum of two is fast), the slow member keeps up in the end, and its
     * etcd_disk_wal_fsync_duration_seconds shows the syncs at 0.2 s or more, as an operator would see it.
     */
    @Test
    void aSlowDiskShowsInTheFsyncHistogramAndTheClusterStaysConsistent() throws Exception {
        cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "failstop-slow-disk");
        int slow = cluster.leaderIndex() == 3 ? 2 : 3; // a follower: the leader's slow syncs slow every write
        cluster.stop(slow);
        cluster.restartWith(slow, List.of("-Dvetcd.failpoints=append=sleep(200)"));
        int writer = cluster.anyRunningExcept(slow);
        KvLoad.Outcome outcome;
        try (KvLoad load = new KvLoad(cluster.endpoint(writer))) {
            outcome = load.put("slow", 500, 8, VALUE_SIZE, () -> false, Duration.ofSeconds(60));
        }
        assertEquals(500, outcome.acknowledged().size(), "puts acknowledged; failures: "
                + outcome.failures().stream().limit(3).toList());
        // HTTP/1.1: Java's client first tries an h2c upgrade, which sometimes never got its answer (see README).
        Map<String, PrometheusText.Family> metrics = PrometheusText.parse(HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1).build()
                .send(HttpRequest.newBuilder(URI.create(cluster.endpoint(slow) + "/metrics"))
                        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body());
        PrometheusText.Family fsync = metrics.get("etcd_disk_wal_fsync_duration_seconds");
        double count = fsync.samples().stream().filter(x -> x.name().endsWith("_count")).mapToDouble(
                PrometheusText.Sample::value).sum();
        double faster = fsync.samples().stream()
                .filter(x -> x.name().endsWith("_bucket") && "0.128".equals(x.labels().get("le")))
                .mapToDouble(PrometheusText.Sample::value).sum();
        double sum = fsync.samples().stream().filter(x -> x.name().endsWith("_sum")).mapToDouble(
                PrometheusText.Sample::value).sum();
        assertTrue(count >= 5 && faster == 0 && sum >= 0.2 * count, "the slow member's fsync histogram: " + count
                + " syncs, " + faster + " under 0.128 s, " + sum + " s in all");
        // The slow member has every acknowledged put (a linearizable read through it waits until it applied them).
        try (KvLoad load = new KvLoad(cluster.endpoint(slow))) {
            assertEquals(List.of(), KvLoad.missing(outcome.acknowledged(), load.range("slow"), VALUE_SIZE),
                    "acknowledged puts read through the slow member");
        }
    }

    @Test
    void aFailingSnapshotInstallStopsTheMemberAndARestartCatchesUp() throws Exception {
        cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "failstop-snapshot-install", "--snapshot-count", "100");
        cluster.stop(3);
        int writer = cluster.anyRunningExcept(3);
        KvLoad.Outcome outcome;
        try (KvLoad load = new KvLoad(cluster.endpoint(writer))) {
            // Member 3 may have led: the first puts may find no leader until the others elect one. The leader
            // cuts its log 5000 entries before each snapshot point (etcd's SnapshotCatchUpEntries): member 3
            // needs a snapshot once more than 5100 entries were written without it.
            outcome = load.put("s", 5600, 16, VALUE_SIZE, () -> false, Duration.ofSeconds(90));
        }
        assertTrue(outcome.acknowledged().size() >= 5300, outcome.acknowledged().size() + " puts acknowledged, "
                + outcome.failures().size() + " failed: " + outcome.failures().stream().limit(3).toList());

        Process failing = cluster.launchWith(3, List.of("-Dvetcd.failpoints=snapshot-install"));
        assertTrue(failing.waitFor(60, TimeUnit.SECONDS), "member 3 still runs though its snapshot install "
                + "failed\n" + cluster.logTail(3));
        assertEquals(1, failing.exitValue(), "exit status\n" + cluster.logTail(3));
        String log = java.nio.file.Files.readString(cluster.logFile(3));
        assertTrue(log.contains("installing a snapshot from the leader failed"),
                "member 3's log does not say why it stopped\n" + cluster.logTail(3));

        cluster.restart(3);
        try (KvLoad load = new KvLoad(cluster.endpoint(3))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            List<String> missing;
            do {
                missing = KvLoad.missing(outcome.acknowledged(), load.range("s"), VALUE_SIZE);
            } while (!missing.isEmpty() && System.nanoTime() < deadline);
            assertEquals(List.of(), missing, "member 3 after its restart\n" + cluster.logTail(3));
        }
    }

    /**
     * The leader crashes (the {@code snapshot-send=crash} failpoint: a halt, as kill -9 there) with the
     * copy of its keyspace made for a member that needs it: the other member leads and sends its own,
     * the lagging member catches up, and nothing acknowledged is lost on any of the three.
     */
    @Test
    void aLeaderThatCrashesSendingASnapshotLosesNothing() throws Exception {
        cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "failstop-snapshot-send", "--snapshot-count", "100");
        int crashing = 1;
        cluster.stop(crashing);
        cluster.restartWith(crashing, List.of("-Dvetcd.failpoints=snapshot-send=crash"));
        if (cluster.leaderIndex() != crashing) {
            Etcdctl.Result moved = Etcdctl.run(cluster.endpoints(), "move-leader", cluster.memberIdHex(crashing));
            assertTrue(moved.ok(), "move-leader: " + moved);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (cluster.leaderIndex() != crashing && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertEquals(crashing, cluster.leaderIndex());
        cluster.stop(3);
        KvLoad.Outcome outcome;
        try (KvLoad load = new KvLoad(cluster.endpoint(crashing))) {
            // As above: more than 5100 entries without member 3, which then needs a snapshot.
            outcome = load.put("c", 5600, 16, VALUE_SIZE, () -> false, Duration.ofSeconds(90));
        }
        assertTrue(outcome.acknowledged().size() >= 5300, outcome.acknowledged().size() + " puts acknowledged");

        cluster.restartUntilLed(3);
        Process leader = cluster.process(crashing);
        assertTrue(leader.waitFor(60, TimeUnit.SECONDS), "the leader did not reach its snapshot-send failpoint\n"
                + cluster.logTail(crashing));
        assertEquals(137, leader.exitValue(), "exit status\n" + cluster.logTail(crashing));
        assertTrue(java.nio.file.Files.readString(cluster.logFile(crashing)).contains(
                "failpoint snapshot-send: crashing on purpose"), cluster.logTail(crashing));

        cluster.restart(crashing);
        for (int member = 1; member <= 3; member++) {
            try (KvLoad load = new KvLoad(cluster.endpoint(member))) {
                assertEquals(List.of(), KvLoad.missing(outcome.acknowledged(), load.range("c"), VALUE_SIZE),
                        "acknowledged puts read through infra" + member + "\n" + cluster.logTail(member));
            }
        }
    }

    /** Polls /health every few milliseconds and keeps what each poll, by the time it was sent, said. */
    static final class HealthWatch {
        private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofMillis(500)).build();
        private final URI uri;
        private final List<long[]> polls = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        private final AtomicBoolean running = new AtomicBoolean();
        private final AtomicReference<Thread> thread = new AtomicReference<>();
        private final AtomicLong firstNotTrue = new AtomicLong(Long.MAX_VALUE);

        HealthWatch(String endpoint) {
            this.uri = URI.create(endpoint + "/health");
        }

        void start() {
            running.set(true);
            Thread t = new Thread(() -> {
                while (running.get()) {
                    long sent = System.nanoTime();
                    boolean healthy;
                    try {
                        HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(1)).build(),
                                HttpResponse.BodyHandlers.ofString());
                        healthy = r.statusCode() == 200 && r.body().contains("true");
                    } catch (Exception down) {
                        healthy = false;
                    } 
                    if (!healthy) {
                        firstNotTrue.accumulateAndGet(sent, Math::min);
                    }
                    polls.add(new long[] {sent, healthy ? 1 : 0});
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "health-watch");
            thread.set(t);
            t.start();
        }

        void stop() throws InterruptedException {
            running.set(false);
            Thread t = thread.get();
            if (t != null) {
                t.join(5000);
            }
        }

        long firstFalseOrDown() {
            return firstNotTrue.get();
        }

        /** The send times of polls sent after {@code since} that said healthy. */
        List<Long> trueAfter(long since) {
            synchronized (polls) {
                return polls.stream().filter(p -> p[0] > since && p[1] == 1).map(p -> p[0]).toList();
            }
        }
    }
}
