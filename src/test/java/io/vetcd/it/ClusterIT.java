package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vetcd.it.ClusterProcess.Kv;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.PutRequest;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * End-to-end tests of a 3-member cluster of real processes on loopback (issue 3, "Done when"):
 * membership, replication of a put to every member, failover after {@code kill -9} of the leader,
 * catch-up of a restarted member through the log and through a snapshot, and no acknowledged write
 * lost when a majority is down for a while. Each test starts a fresh cluster; every wait has a
 * deadline, no assertion depends on a sleep.
 *
 * <p>They run against vetcd by default and are validated against real etcd 3.4 with
 * {@code -Dit.cluster.candidate=etcd}.
 */
class ClusterIT {

    /** Issue 3: after {@code kill -9} of the leader, a new leader (and a successful write) within 3 s. */
    private static final Duration FAILOVER_LIMIT = Duration.ofSeconds(3);
    /** etcdctl gives up after the 5 s {@code --command-timeout} Etcdctl passes; this allows for its start-up. */
    private static final Duration FAIL_FAST_LIMIT = Duration.ofSeconds(7);
    private static final Duration CATCH_UP_TIMEOUT = Duration.ofSeconds(20);
    /** etcd's errors for a request that cannot be committed (or read) without a quorum. */
    private static final Pattern NO_QUORUM_ERROR = Pattern.compile(
            "etcdserver: request timed out|context deadline exceeded|etcdserver: no leader");

    /** What a member logs when it applies a snapshot sent by the leader (etcd: "applying snapshot at index"). */
    static final Pattern SNAPSHOT_APPLIED = Pattern.compile(
            "(?i)(applying|applied|installing|installed) (a |the )?(received |incoming )?snapshot");

    private ClusterProcess cluster;
    private String testName;

    @AfterEach
    void cleanUp() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    private void startCluster(TestInfo info, String... extraArgs) throws Exception {
        startNamedCluster(info.getTestMethod().orElseThrow().getName(), extraArgs);
    }

    /** Logs go to target/it-logs/cluster-{@code name}-{candidate}-infraN.log. */
    private void startNamedCluster(String name, String... extraArgs) throws Exception {
        testName = name + "-" + ClusterProcess.candidateKind().name().toLowerCase();
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), testName, extraArgs);
    }

    @Test
    void memberListShowsThreeStartedMembers(TestInfo info) throws Exception {
        startCluster(info);
        Etcdctl.Result list = Etcdctl.run(cluster.endpoints(), "member", "list", "-w", "table");
        assertTrue(list.ok(), list::toString);

        // | ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER |, one row per member after the header.
        List<List<String>> rows = list.stdout().lines()
                .filter(line -> line.startsWith("|") && !line.contains("STATUS"))
                .map(line -> Arrays.stream(line.substring(1, line.length() - 1).split("\\|"))
                        .map(String::trim).toList())
                .toList();
        assertEquals(ClusterProcess.SIZE, rows.size(), list::toString);
        for (int member = 1; member <= ClusterProcess.SIZE; member++) {
            String name = cluster.name(member);
            List<String> row = rows.stream().filter(cells -> cells.get(2).equals(name)).findFirst()
                    .orElseThrow(() -> new AssertionError("no row for " + name + " in\n" + list.stdout()));
            assertEquals(List.of(cluster.memberIdHex(member), "started", name, cluster.peerUrl(member),
                    cluster.endpoint(member), "false"), row, list::toString);
        }
    }

    @Test
    void putThroughOneMemberIsReadableThroughTheOthers(TestInfo info) throws Exception {
        startCluster(info);
        long revision = put(1, "greeting", "hello");

        // Serializable reads are local: each member answers once it has applied the entry.
        for (int member : List.of(2, 3)) {
            awaitKv(member, "greeting", "hello", revision, true, Duration.ofSeconds(5));
        }

        // A linearizable read must see an acknowledged put at once, through any member.
        long second = put(1, "greeting", "hello again");
        for (int member : List.of(2, 3)) {
            Kv kv = getOne(member, "greeting", false);
            assertEquals(new Kv("greeting", "hello again", revision, second, 2), kv, "linearizable get through "
                    + cluster.name(member));
        }
    }

    @Test
    void moveLeaderHandsLeadershipToTheTarget(TestInfo info) throws Exception {
        startCluster(info);
        int leader = cluster.leaderIndex();
        int target = leader % ClusterProcess.SIZE + 1;
        Etcdctl.Result moved = Etcdctl.run(cluster.endpoints(), "move-leader", cluster.memberIdHex(target));
        assertEquals(0, moved.exitCode(), "move-leader failed: " + moved);
        assertTrue(moved.stdout().contains("Leadership transferred"), "move-leader printed: " + moved);
        awaitCondition(() -> cluster.leaderIndex() == target, Duration.ofSeconds(5),
                () -> cluster.name(target) + " did not become the leader");
        long revision = put(leader, "after-move", "ok"); // the old leader forwards to the new one
        awaitKv(target, "after-move", "ok", revision, false, Duration.ofSeconds(5));
    }

    @Test
    void killingTheLeaderElectsANewOneWithinThreeSeconds(TestInfo info) throws Exception {
        startCluster(info);
        put(1, "before", "1");
        int leader = cluster.leaderIndex();
        List<Integer> survivors = survivorsOf(leader);

        long killedAt = System.nanoTime();
        cluster.kill9(leader);
        // Short request timeouts, so that an attempt stuck on the dead leader doesn't hide the new one.
        int attempts = 0;
        List<String> failures = new ArrayList<>();
        while (true) {
            int via = survivors.get(attempts++ % survivors.size());
            Etcdctl.Result put = Etcdctl.run(cluster.endpoint(via), "put", "after", "1", "--command-timeout=500ms");
            if (put.ok()) {
                break;
            }
            failures.add(cluster.name(via) + ": " + lastLine(put.stderr()));
            if (System.nanoTime() - killedAt > TimeUnit.SECONDS.toNanos(30)) {
                fail("no put succeeded within 30 s of killing leader " + cluster.name(leader) + ": " + failures
                        + "\n" + cluster.logTails());
            }
        }
        Duration failover = Duration.ofNanos(System.nanoTime() - killedAt);
        System.out.printf("ClusterIT[%s]: kill -9 of leader %s -> first successful put after %d ms (%d attempts; "
                + "failures: %s)%n", testName, cluster.name(leader), failover.toMillis(), attempts, failures);
        assertTrue(failover.compareTo(FAILOVER_LIMIT) <= 0, "first put succeeded " + failover.toMillis()
                + " ms after kill -9 of the leader, more than " + FAILOVER_LIMIT.toMillis() + " ms; failures: "
                + failures);

        int newLeader = cluster.leaderIndex();
        assertNotEquals(leader, newLeader, "the killed member is still named leader");
        // Writes succeed again through either survivor, and each is visible through the other.
        for (int via : survivors) {
            for (int i = 0; i < 5; i++) {
                long revision = put(via, "after/" + via + "/" + i, "v" + i);
                int other = survivors.get(0) == via ? survivors.get(1) : survivors.get(0);
                assertEquals(revision, getOne(other, "after/" + via + "/" + i, false).modRevision());
            }
        }
    }

    @Test
    void killedLeaderRestartsAndCatchesUpThroughTheLog(TestInfo info) throws Exception {
        startCluster(info);
        Map<String, Long> acknowledged = new LinkedHashMap<>();
        for (int i = 0; i < 10; i++) {
            acknowledged.put("k/before" + i, put(1 + i % 3, "k/before" + i, "before" + i));
        }
        int leader = cluster.leaderIndex();
        List<Integer> survivors = survivorsOf(leader);
        cluster.kill9(leader);

        awaitWritable(survivors.get(0), Duration.ofSeconds(15));
        for (int i = 0; i < 60; i++) {
            int via = survivors.get(i % 2);
            acknowledged.put("k/down" + i, put(via, "k/down" + i, "down" + i));
        }
        // Overwrite a key from before too, so the restarted member must replace what it had.
        acknowledged.put("k/before0", put(survivors.get(1), "k/before0", "overwritten"));

        cluster.restart(leader);
        List<Kv> expected = awaitSameData(leader, survivors.get(0), "k/");
        for (Map.Entry<String, Long> ack : acknowledged.entrySet()) {
            Kv kv = expected.stream().filter(e -> e.key().equals(ack.getKey())).findFirst()
                    .orElseThrow(() -> new AssertionError("acknowledged " + ack + " missing"));
            assertEquals(ack.getValue(), kv.modRevision(), "mod_revision of " + ack.getKey());
        }
    }

    /**
     * A member's client port listens from its start, as etcd's does, and answers once the member is
     * published: a client that comes earlier (here to the only member up, which has no quorum) is held,
     * not refused (etcdctl would retry a refused connection for its whole command timeout), and gets
     * its answer once the others are back.
     */
    @Test
    void aRequestToAMemberNotYetPublishedIsHeldAndAnsweredOnceItIs(TestInfo info) throws Exception {
        startCluster(info);
        memberOneListeningWithoutAQuorum();
        ExecutorService client = Executors.newSingleThreadExecutor();
        try {
            Future<Etcdctl.Result> held = client.submit(() -> Etcdctl.run(cluster.endpoint(1),
                    "put", "held", "answered", "--command-timeout=60s"));
            cluster.restart(2, 3);
            Etcdctl.Result put = held.get(60, TimeUnit.SECONDS);
            assertTrue(put.ok(), put::toString);
            assertEquals("answered", getOne(1, "held", false).value());
        } finally {
            client.shutdownNow();
        }
    }

    /**
     * A held put whose client gave up before the member was published (its command timeout ran out:
     * etcdctl reset the stream and closed the connection) is not applied once the member serves: its
     * client was told it failed. etcd, which serves its listener only once published, does the same
     * (this passes against it).
     */
    @Test
    void aHeldRequestWhoseClientGaveUpIsNotRunLate(TestInfo info) throws Exception {
        startCluster(info);
        memberOneListeningWithoutAQuorum();
        Etcdctl.Result abandoned = Etcdctl.run(cluster.endpoint(1), "put", "abandoned", "late", "--command-timeout=2s");
        assertFalse(abandoned.ok(), abandoned::toString);
        assertTrue(abandoned.stderr().contains("context deadline exceeded"), abandoned::toString);
        cluster.restart(2, 3);
        // Served now (this put waits for that), and a linearizable read sees everything applied before it.
        Etcdctl.Result served = Etcdctl.run(cluster.endpoint(1), "put", "served", "yes", "--command-timeout=30s");
        assertTrue(served.ok(), served::toString);
        assertEquals(List.of(), get(1, "abandoned", false));
        assertEquals("yes", getOne(1, "served", false).value());
    }

    /**
     * With the leader surviving, it must notice it lost its quorum (etcd: CheckQuorum, after an
     * election timeout) and step down; with a follower surviving, it must stop waiting for the dead
     * leader. Either way writes fail with an etcd error within the client's timeout.
     */
    @ParameterizedTest(name = "leader survives: {0}")
    @ValueSource(booleans = {true, false})
    void withTwoOfThreeDownWritesFailFastAndNothingAcknowledgedIsLost(boolean leaderSurvives) throws Exception {
        startNamedCluster("twoOfThreeDown-" + (leaderSurvives ? "leader" : "follower") + "-survives");
        int leader = cluster.leaderIndex();
        int follower = cluster.anyRunningExcept(leader);
        int otherFollower = cluster.anyRunningExcept(leader, follower);
        int survivor = leaderSurvives ? leader : otherFollower;
        int[] killed = leaderSurvives ? new int[] {follower, otherFollower} : new int[] {leader, follower};
        Map<String, Long> acknowledged = new ConcurrentHashMap<>();
        for (int i = 0; i < 10; i++) {
            acknowledged.put("q/before" + i, put(1 + i % 3, "q/before" + i, "before" + i));
        }

        // A client keeps writing through the survivor while the majority goes away, so some puts are
        // in flight at the kill; only the acknowledged ones must survive.
        AtomicBoolean stopWriter = new AtomicBoolean();
        List<String> writerFailures = Collections.synchronizedList(new ArrayList<>());
        ExecutorService writer = Executors.newSingleThreadExecutor();
        Future<?> writing = writer.submit(() -> {
            for (int i = 0; !stopWriter.get(); i++) {
                String key = "q/during" + i;
                Etcdctl.Result put = Etcdctl.run(cluster.endpoint(survivor), "put", key, "during" + i, "-w", "json");
                if (put.ok()) {
                    acknowledged.put(key, ClusterProcess.headerRevision(put.stdout()));
                } else {
                    writerFailures.add(lastLine(put.stderr()));
                }
            }
            return null;
        });
        try {
            awaitCondition(() -> acknowledged.size() >= 20, Duration.ofSeconds(15), "background writes");
            cluster.kill9(killed[0]);
            cluster.kill9(killed[1]);

            // Right after the kill the survivor may still believe in the old leader...
            String first = assertPutFailsFast(survivor, "q/probe1");
            // ... and once it knows there is none (/health says so), writes still fail rather than hang.
            awaitCondition(() -> !cluster.healthy(survivor), Duration.ofSeconds(10), "survivor /health false");
            String second = assertPutFailsFast(survivor, "q/probe2");
            Etcdctl.Result linearizableGet = timed(() -> Etcdctl.run(cluster.endpoint(survivor), "get", "q/before0"));
            assertFalse(linearizableGet.ok(), "a linearizable get succeeded without quorum: " + linearizableGet);
            // A serializable get is local and still answers.
            assertEquals("before0", getOne(survivor, "q/before0", true).value());
            System.out.printf("ClusterIT[%s]: with %s and %s down, put through %s (%s): first \"%s\", "
                    + "later \"%s\"; linearizable get: \"%s\"%n", testName, cluster.name(killed[0]),
                    cluster.name(killed[1]), cluster.name(survivor), leaderSurvives ? "the leader" : "a follower",
                    first, second, lastLine(linearizableGet.stderr()));
        } finally {
            stopWriter.set(true);
            writer.shutdown();
        }
        writing.get(60, TimeUnit.SECONDS);
        System.out.printf("ClusterIT[%s]: %d writes acknowledged; background write failures: %s%n",
                testName, acknowledged.size(), writerFailures);

        cluster.restart(killed);
        for (Map.Entry<String, Long> ack : acknowledged.entrySet()) {
            for (int member = 1; member <= ClusterProcess.SIZE; member++) {
                Kv kv = getOne(member, ack.getKey(), false);
                assertEquals(ack.getValue(), kv.modRevision(), "acknowledged " + ack + " read through "
                        + cluster.name(member) + ": " + kv);
            }
        }
        assertEquals(acknowledged.size(), new HashSet<>(acknowledged.values()).size(),
                "two acknowledged puts share a revision: " + acknowledged);
    }

    @Test
    void memberBehindTheCompactedLogCatchesUpThroughASnapshot(TestInfo info) throws Exception {
        startCluster(info, "--snapshot-count", "50");
        // etcd snapshots every 50 applied entries but keeps the last 5000 (SnapshotCatchUpEntries) in its
        // raft log for slow followers, so member 3 is behind the leader's log only after more than 5050
        // entries — fewer would be caught up through the log.
        String afterRestart = member3AwayFor(300, 20);
        // Proof that the test exercised snapshot install rather than log catch-up: etcd 3.4 logs
        // "etcdserver: applying snapshot at index ..." when it applies a snapshot received from the leader;
        // vetcd is expected to log a line matching SNAPSHOT_APPLIED likewise.
        assertTrue(SNAPSHOT_APPLIED.matcher(afterRestart).find(), "infra3 logged no snapshot install (pattern "
                + SNAPSHOT_APPLIED + ") after its restart: it caught up through the log\n" + cluster.logTail(3));
    }

    @Test
    void followerFiftyThousandEntriesBehindCatchesUpFromTheLogFilesNotASnapshot(TestInfo info) throws Exception {
        // Members keep only the last 2000 applied entries in memory (SnapshotPolicy.trimMemory), whoever is
        // behind; older ones are read back from the log files. 50,000 entries are far more than that and fewer
        // than --snapshot-count (100000, the default): member 3 must catch up through the log, read back from
        // the leader's files, and without a snapshot (as from etcd, which keeps its log since the last
        // snapshot on disk).
        startCluster(info);
        String afterRestart = member3AwayFor(500, 100);
        assertFalse(SNAPSHOT_APPLIED.matcher(afterRestart).find(), "infra3 needed a snapshot: the leader did not "
                + "serve it from its log\n" + cluster.logTail(3));
        String readBack = "entries back from the log files for a follower behind";
        assertTrue(Files.readString(cluster.logFile(1), StandardCharsets.UTF_8).contains(readBack)
                || Files.readString(cluster.logFile(2), StandardCharsets.UTF_8).contains(readBack),
                "neither infra1 nor infra2 said it read entries back from its log files (\"" + readBack + "\")\n"
                + cluster.logTails());
    }

    @Test
    void afterTheOthersRestartAFollowerBehindTheirLastSnapshotPointStillCatchesUpFromTheirLogFiles(TestInfo info)
            throws Exception {
        // Snapshot points every 500 entries; the log is cut 5,000 entries before a point, so after 3,000
        // entries nothing was cut yet. The others restart from their last point (about 3,000) but their files
        // still hold everything: member 3, stopped near the start, must catch up from those, not through a
        // snapshot (before, a restart forgot the entries before its point).
        startCluster(info, "--snapshot-count", "500");
        cluster.stop(3);
        int writer = cluster.anyRunningExcept(3);
        awaitWritable(writer, Duration.ofSeconds(15));
        grpcPuts(writer, 300, 10);
        cluster.stop(1);
        cluster.stop(2);
        cluster.restart(1, 2);
        awaitWritable(1, Duration.ofSeconds(15));
        cluster.restart(3);
        List<Kv> kvs = awaitSameData(3, 1, "snap/");
        assertEquals(300, kvs.size());
        String log = Files.readString(cluster.logFile(3), StandardCharsets.UTF_8);
        assertFalse(SNAPSHOT_APPLIED.matcher(log).find(), "infra3 needed a snapshot\n" + cluster.logTails());
    }

    @Test
    void aLeaderThatCannotCommitRefusesProposalsBeyondItsBoundWithTooManyRequests(TestInfo info) throws Exception {
        // Beyond etcd 3.4 (which has no such bound and grows its heap): a leader whose followers are gone
        // keeps leading for an election timeout (CheckQuorum), and every proposal meanwhile stays
        // uncommitted in its memory. Past 64 MiB of them it answers "etcdserver: too many requests"
        // (ResourceExhausted), as etcd answers a member whose apply falls behind.
        org.junit.jupiter.api.Assumptions.assumeTrue(ClusterProcess.candidateKind() == MemberProcess.Kind.VETCD,
                "a vetcd bound");
        startCluster(info, "--election-timeout", "5000");
        int leader = cluster.leaderIndex();
        for (int m = 1; m <= 3; m++) {
            if (m != leader) {
                cluster.stop(m);
            }
        }
        URI endpoint = URI.create(cluster.endpoint(leader));
        Vertx vertx = Vertx.vertx();
        try {
            KVGrpcClient kv = KVGrpcClient.create(GrpcClient.client(vertx),
                    SocketAddress.inetSocketAddress(endpoint.getPort(), endpoint.getHost()));
            List<io.vertx.core.Future<?>> puts = new ArrayList<>();
            for (int i = 0; i < 80; i++) { // 80 MiB, none of which can commit
                puts.add(kv.put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("big/" + i))
                        .setValue(value(i, 1 << 20)).build()));
            }
            java.util.concurrent.CompletableFuture<String> firstRefusal = new java.util.concurrent.CompletableFuture<>();
            puts.forEach(f -> f.onFailure(e -> firstRefusal.complete(String.valueOf(e))));
            String refusal = firstRefusal.get(15, TimeUnit.SECONDS);
            assertTrue(refusal.contains("RESOURCE_EXHAUSTED"), "the refusal: " + refusal);
            // etcd's words, as Go clients match them: one more (1.4 MB, past any room left), read raw.
            RawGrpc raw = new RawGrpc();
            try {
                RawGrpc.Outcome more = raw.call(cluster.endpoint(leader), "/etcdserverpb.KV/Put", null, true,
                        RawGrpc.frame(0, PutRequest.newBuilder().setKey(ByteString.copyFromUtf8("one-more"))
                                .setValue(value(0, 1_400_000)).build().toByteArray()));
                assertEquals("8", more.status(), "RESOURCE_EXHAUSTED: " + more);
                assertEquals("etcdserver: too many requests", more.message());
            } finally {
                raw.vertx().close();
            }
            awaitCondition(() -> puts.stream().filter(f -> f.failed()
                    && String.valueOf(f.cause()).contains("RESOURCE_EXHAUSTED")).count() >= 80 - 64,
                    Duration.ofSeconds(15), "at least 16 of 80 one-MiB puts refused past 64 MiB");
            assertTrue(puts.stream().noneMatch(io.vertx.core.Future::succeeded), "nothing can commit");
            assertTrue(cluster.isRunning(leader));
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void memberWithA64MiBHeapInstallsA300MBSnapshotStreamedFromTheLeader(TestInfo info) throws Exception {
        // A keyspace far larger than the member's heap: the copy must travel and land in bounded pieces
        // (before, both sides held it whole in one array: the member ran out of memory). 300 values of 1 MiB,
        // then 5,100 small puts so that, with --snapshot-count 50, the leader's log is cut past where
        // member 3 stopped (etcd keeps 5000 entries below a snapshot point).
        startCluster(info, "--snapshot-count", "50");
        cluster.stop(3);
        int writer = cluster.anyRunningExcept(3);
        awaitWritable(writer, Duration.ofSeconds(15));
        grpcPuts(writer, "big/", 300, 1, 1 << 20, 4);
        grpcPuts(writer, 300, 17);
        cluster.restartWith(3, List.of("-Xmx64m"));
        awaitCondition(() -> {
            String log = Files.readString(cluster.logFile(3), StandardCharsets.UTF_8);
            return SNAPSHOT_APPLIED.matcher(log.substring(log.lastIndexOf("=== starting:"))).find();
        }, Duration.ofSeconds(120), "infra3 applying a snapshot");
        // The same keyspace (HashKV at one revision) on member 3 as on the writer, and member 3 still up.
        long revision = ClusterProcess.headerRevision(Etcdctl.run(cluster.endpoint(writer), "put", "probe", "end",
                "-w", "json").stdout());
        AtomicReference<String> hashes = new AtomicReference<>();
        awaitCondition(() -> {
            String expected = hashAt(writer, revision);
            String actual = hashAt(3, revision);
            hashes.set(cluster.name(writer) + " " + expected + ", infra3 " + actual);
            return expected != null && expected.equals(actual);
        }, CATCH_UP_TIMEOUT, () -> "the same HashKV at revision " + revision + " (" + hashes.get() + ")");
        assertTrue(cluster.isRunning(3), "infra3 stopped\n" + cluster.logTail(3));
        String log = Files.readString(cluster.logFile(3), StandardCharsets.UTF_8);
        assertFalse(log.contains("dropped a snapshot"), "the copy arrived whole the first time: "
                + log.lines().filter(l -> l.contains("dropped a snapshot")).toList());
        List<Kv> big = get(3, "big/299", true);
        assertEquals(1, big.size(), "big/299 through infra3: " + big);
    }

    /** HashKV of {@code member} at {@code revision} (etcdctl endpoint hashkv), or null if it fails. */
    private String hashAt(int member, long revision) throws Exception {
        Etcdctl.Result r = Etcdctl.run(cluster.endpoint(member), "endpoint", "hashkv", "--rev=" + revision, "-w", "json");
        java.util.regex.Matcher m = Pattern.compile("\"hash\":(\\d+)").matcher(r.stdout());
        return r.ok() && m.find() ? m.group(1) : null;
    }

    /** The value of round {@code round}: {@code rR}, padded to {@code bytes} if more. */
    private static ByteString value(int round, int bytes) {
        byte[] marker = ("r" + round).getBytes(StandardCharsets.UTF_8);
        if (bytes <= marker.length) {
            return ByteString.copyFrom(marker);
        }
        byte[] v = new byte[bytes];
        Arrays.fill(v, (byte) 'x');
        System.arraycopy(marker, 0, v, 0, marker.length);
        return ByteString.copyFrom(v);
    }

    // ---- helpers ----

    /**
     * Stops member 3, writes {@code keys} keys {@code rounds} times each through another member, restarts
     * member 3 and waits until it serves the same data; returns member 3's log since its restart. etcdctl
     * (one process per put) would take minutes for that, hence a gRPC client.
     */
    private String member3AwayFor(int keys, int rounds) throws Exception {
        cluster.stop(3);
        int writer = cluster.anyRunningExcept(3);
        awaitWritable(writer, Duration.ofSeconds(15)); // member 3 may have been the leader
        grpcPuts(writer, keys, rounds);
        cluster.restart(3);

        List<Kv> kvs = awaitSameData(3, writer, "snap/");
        assertEquals(keys, kvs.size());
        assertTrue(kvs.stream().allMatch(kv -> kv.version() == rounds), "every key written " + rounds + " times");
        String log = Files.readString(cluster.logFile(3), StandardCharsets.UTF_8);
        return log.substring(log.lastIndexOf("=== starting:"));
    }

    /** A put through {@code member} that must succeed; returns the revision it created. */
    private long put(int member, String key, String value) throws Exception {
        Etcdctl.Result put = Etcdctl.run(cluster.endpoint(member), "put", key, value, "-w", "json");
        assertTrue(put.ok(), () -> "put " + key + " through " + cluster.name(member) + ": " + put);
        return ClusterProcess.headerRevision(put.stdout());
    }

    /** Stops every member, then starts member 1 alone (it cannot be published) and waits for its client port. */
    private void memberOneListeningWithoutAQuorum() throws Exception {
        for (int member = 1; member <= ClusterProcess.SIZE; member++) {
            cluster.stop(member);
        }
        cluster.launchWith(1, List.of());
        URI endpoint = URI.create(cluster.endpoint(1));
        awaitCondition(() -> {
            try (java.net.Socket socket = new java.net.Socket()) {
                socket.connect(new java.net.InetSocketAddress(endpoint.getHost(), endpoint.getPort()), 1000);
                return true;
            } catch (java.io.IOException refused) {
                return false;
            }
        }, Duration.ofSeconds(30), "listening client port on " + cluster.name(1) + " without a quorum");
    }

    /** The one kv at {@code key} through {@code member}, failing if absent. */
    private Kv getOne(int member, String key, boolean serializable) throws Exception {
        List<Kv> kvs = get(member, key, serializable);
        assertEquals(1, kvs.size(), () -> "get " + key + " through " + cluster.name(member) + ": " + kvs);
        return kvs.get(0);
    }

    private List<Kv> get(int member, String keyOrPrefix, boolean serializable, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("get", keyOrPrefix, "-w", "json",
                "--consistency=" + (serializable ? "s" : "l")));
        args.addAll(List.of(more));
        Etcdctl.Result get = Etcdctl.run(cluster.endpoint(member), args.toArray(String[]::new));
        assertTrue(get.ok(), () -> "get " + keyOrPrefix + " through " + cluster.name(member) + ": " + get);
        return ClusterProcess.kvs(get.stdout());
    }

    /** Waits until a serializable (or linearizable) get through {@code member} shows the kv. */
    private void awaitKv(int member, String key, String value, long modRevision, boolean serializable,
            Duration timeout) throws Exception {
        AtomicReference<List<Kv>> last = new AtomicReference<>();
        awaitCondition(() -> {
            last.set(get(member, key, serializable));
            return last.get().size() == 1 && last.get().get(0).value().equals(value)
                    && last.get().get(0).modRevision() == modRevision;
        }, timeout, () -> key + "=" + value + "@" + modRevision + " through " + cluster.name(member) + " (last: "
                + last.get() + ")");
    }

    /**
     * Waits until a serializable range over {@code prefix} through {@code lagging} returns exactly what a
     * linearizable one through {@code reference} does (values, revisions, versions); returns that data.
     */
    private List<Kv> awaitSameData(int lagging, int reference, String prefix) throws Exception {
        List<Kv> expected = get(reference, prefix, false, "--prefix");
        AtomicReference<List<Kv>> actual = new AtomicReference<>();
        long started = System.nanoTime();
        awaitCondition(() -> {
            actual.set(get(lagging, prefix, true, "--prefix"));
            return actual.get().equals(expected);
        }, CATCH_UP_TIMEOUT, () -> cluster.name(lagging) + " having the " + expected.size() + " keys under " + prefix
                + " (it has " + actual.get().size() + "; first difference: " + firstDifference(expected, actual.get())
                + ")");
        System.out.printf("ClusterIT[%s]: %s served all %d keys under %s %d ms after its restart was healthy%n",
                testName, cluster.name(lagging), expected.size(), prefix,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
        return expected;
    }

    /** Retries a put through {@code member} until one succeeds (e.g. while a new leader is elected). */
    private void awaitWritable(int member, Duration timeout) throws Exception {
        awaitCondition(() -> Etcdctl.run(cluster.endpoint(member), "put", "probe", "x", "--command-timeout=1s").ok(),
                timeout, "a successful put through " + cluster.name(member));
    }

    /** A put that must fail with one of etcd's errors, and within {@link #FAIL_FAST_LIMIT}; returns the error. */
    private String assertPutFailsFast(int member, String key) throws Exception {
        Etcdctl.Result put = timed(() -> Etcdctl.run(cluster.endpoint(member), "put", key, "x"));
        assertFalse(put.ok(), () -> "a put succeeded without quorum: " + put);
        String error = lastLine(put.stderr());
        assertTrue(NO_QUORUM_ERROR.matcher(error).find(), () -> "not one of etcd's no-quorum errors: " + put);
        return error;
    }

    private interface Call<T> {
        T call() throws Exception;
    }

    /** Runs an etcdctl command that must return within {@link #FAIL_FAST_LIMIT}, whatever it answers. */
    private static <T> T timed(Call<T> call) throws Exception {
        long start = System.nanoTime();
        T result = call.call();
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(took.compareTo(FAIL_FAST_LIMIT) <= 0, "took " + took.toMillis() + " ms: " + result);
        return result;
    }

    private void awaitCondition(Call<Boolean> condition, Duration timeout, String what) throws Exception {
        awaitCondition(condition, timeout, () -> what);
    }

    /** Polls {@code condition} every 50 ms until it holds; fails after {@code timeout} saying what was awaited. */
    private void awaitCondition(Call<Boolean> condition, Duration timeout, Supplier<String> what) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.call()) {
            if (System.nanoTime() > deadline) {
                fail("no " + what.get() + " within " + timeout + "\n" + cluster.logTails());
            }
            Thread.sleep(50);
        }
    }

    private static String firstDifference(List<Kv> expected, List<Kv> actual) {
        for (int i = 0; i < Math.max(expected.size(), actual.size()); i++) {
            Kv want = i < expected.size() ? expected.get(i) : null;
            Kv got = i < actual.size() ? actual.get(i) : null;
            if (want == null || !want.equals(got)) {
                return "expected " + want + ", got " + got;
            }
        }
        return "none";
    }

    private List<Integer> survivorsOf(int killed) {
        List<Integer> survivors = new ArrayList<>();
        for (int member = 1; member <= ClusterProcess.SIZE; member++) {
            if (member != killed) {
                survivors.add(member);
            }
        }
        return survivors;
    }

    /** etcdctl's last stderr line: {@code Error: <what the server or client said>}. */
    private static String lastLine(String text) {
        List<String> lines = text.strip().lines().toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }

    /**
     * {@code rounds} puts to each of {@code keys} keys {@code snap/kNNN} (value {@code rR}) through
     * {@code member}, 64 in flight at a time over one gRPC connection; every put must succeed.
     */
    private void grpcPuts(int member, int keys, int rounds) throws Exception {
        grpcPuts(member, "snap/k", keys, rounds, 0, 64);
    }

    /**
     * As above, to keys {@code prefix}NNN, with values of {@code valueBytes} (0: just {@code rR}) and
     * {@code window} puts in flight.
     */
    private void grpcPuts(int member, String prefix, int keys, int rounds, int valueBytes, int window)
            throws Exception {
        URI endpoint = URI.create(cluster.endpoint(member));
        Vertx vertx = Vertx.vertx();
        try {
            KVGrpcClient kv = KVGrpcClient.create(GrpcClient.client(vertx),
                    SocketAddress.inetSocketAddress(endpoint.getPort(), endpoint.getHost()));
            Semaphore inFlight = new Semaphore(window);
            List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
            long start = System.nanoTime();
            for (int round = 1; round <= rounds && failures.isEmpty(); round++) {
                for (int k = 0; k < keys; k++) {
                    if (!inFlight.tryAcquire(30, TimeUnit.SECONDS)) {
                        fail("gRPC puts stalled through " + cluster.name(member) + "\n" + cluster.logTails());
                    }
                    PutRequest request = PutRequest.newBuilder()
                            .setKey(ByteString.copyFromUtf8(String.format("%s%03d", prefix, k)))
                            .setValue(value(round, valueBytes))
                            .build();
                    kv.put(request).onSuccess(response -> inFlight.release()).onFailure(failure -> {
                        failures.add(failure);
                        inFlight.release();
                    });
                }
            }
            if (!inFlight.tryAcquire(window, 30, TimeUnit.SECONDS)) {
                fail("gRPC puts did not finish through " + cluster.name(member));
            }
            assertEquals(List.of(), failures.stream().map(String::valueOf).distinct().toList(),
                    failures.size() + " gRPC puts failed through " + cluster.name(member));
            System.out.printf("ClusterIT[%s]: %d gRPC puts through %s in %d ms%n", testName, keys * rounds,
                    cluster.name(member), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }
}
