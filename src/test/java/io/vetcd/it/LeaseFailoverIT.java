package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Leases across leader failover on a 3-member cluster of real processes (the flags of
 * {@link ClusterProcess}: heartbeat 100 ms, election timeout 1 s), driven by the real etcdctl:
 *
 * <ul>
 *   <li>a lease kept alive by {@code etcdctl lease keep-alive} over all three endpoints outlives a
 *       {@code kill -9} of the leader: a new leader must not expire it (etcd extends every lease by an
 *       election timeout when it becomes leader, and etcdctl's renewals reach it again), and it expires
 *       once the keep-alive stops, neither before its TTL counted from the last keep-alive response nor
 *       much after;
 *   <li>a keep-alive sent to a follower only is forwarded to the leader, which is the one that renews
 *       the lease — also across a kill of that leader;
 *   <li>the killed member, restarted, has the same view of the leased key as the others, present or
 *       absent.
 * </ul>
 *
 * <p>Every wait has a deadline; a "hold" polls for a fixed time, asserting on every round, and a fixed
 * sleep is never the assertion itself. They run against vetcd by default and are validated against
 * real etcd 3.4 with {@code -Dit.cluster.candidate=etcd}, as {@link ClusterIT} is.
 */
class LeaseFailoverIT {

    /**
     * The lease TTL, seconds: well above the minimum both servers raise shorter TTLs to (1.5 election
     * timeouts, rounded up: 2 s), short enough that "outlives its TTL twice over" stays quick.
     */
    private static final long TTL_SECONDS = 5;
    private static final Duration ELECTION_TIMEOUT = Duration.ofMillis(ClusterProcess.ELECTION_TIMEOUT_MS);
    /**
     * How much after "last keep-alive response + TTL + election timeout" the key may still be seen.
     * etcd's leader scans for expired leases every 500 ms and then commits a LeaseRevoke through raft,
     * each survivor applies it, and this test notices by polling with one etcdctl process per read
     * (tens of ms each, hundreds when the 2-core CI machine is loaded by the other members and helpers).
     * Observed against etcd 3.4.23 (and vetcd alike): 0-0.45 s after the TTL. 5 s is meant never to flake, and still
     * catches a lease that is not expired at all or only on some members.
     */
    private static final Duration EXPIRY_SLACK = Duration.ofSeconds(5);
    /**
     * How much earlier than "last keep-alive response + TTL" the key may already be gone: the leader
     * renewed the lease a little before etcdctl printed the response and this JVM read that line (a few
     * ms; more when the machine is loaded). A lease counted from its grant, or from an older renewal,
     * would be gone seconds early.
     */
    private static final Duration EARLY_TOLERANCE = Duration.ofMillis(500);
    /** How long a member gets to show the others' data after it is restarted (as ClusterIT's catch-up). */
    private static final Duration CATCH_UP_TIMEOUT = Duration.ofSeconds(20);
    /** etcdctl's first keep-alive response; generous because etcdctl is a Go binary start on a loaded machine. */
    private static final Duration FIRST_RESPONSE_TIMEOUT = Duration.ofSeconds(15);
    private static final long POLL_MS = 100;

    private static final Pattern GRANTED = Pattern.compile("lease ([0-9a-f]+) granted with TTL\\((\\d+)s\\)");
    private static final Pattern REMAINING_TTL = Pattern.compile("\"ttl\":(-?\\d+)");

    private ClusterProcess cluster;
    private String testName;
    private final List<KeepAlive> keepAlives = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        for (KeepAlive keepAlive : keepAlives) {
            keepAlive.stop();
            keepAlive.deleteFiles();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    /**
     * Kill -9 of the leader while etcdctl keeps a lease alive over all three endpoints. To make sure
     * etcdctl itself must fail over (its keep-alive stream runs over one of its three connections,
     * picked by etcdctl's balancer, not by this test), the member carrying the stream is made leader first with move-leader, so the
     * kill takes out both the leader and the keep-alive stream.
     */
    @Test
    void keptAliveLeaseSurvivesLeaderKillAndExpiresOnceKeepAliveStops(TestInfo info) throws Exception {
        startCluster(info);
        put(1, "plain", "stays");
        Lease lease = grant(1);
        put(1, "leased", "v", "--lease=" + lease.hex());

        KeepAlive keepAlive = startKeepAlive(cluster.endpoints(), lease);
        keepAlive.awaitResponses(1, FIRST_RESPONSE_TIMEOUT);
        Optional<Integer> streamMember = streamMember(keepAlive);
        int leader = cluster.leaderIndex();
        if (streamMember.isPresent() && streamMember.get() != leader) {
            moveLeader(streamMember.get());
            leader = streamMember.get();
        }
        System.out.printf("LeaseFailoverIT[%s]: keep-alive stream on %s, leader %s%n", testName,
                streamMember.map(cluster::name).orElse("(unknown: no unique busy connection in ss)"),
                cluster.name(leader));
        List<Integer> survivors = others(leader);

        long killedAt = System.nanoTime();
        cluster.kill9(leader);
        int newLeader = cluster.leaderIndex();
        System.out.printf("LeaseFailoverIT[%s]: killed leader %s; %s leads after %d ms%n", testName,
                cluster.name(leader), cluster.name(newLeader), millisSince(killedAt));
        put(newLeader, "after-kill", "v"); // something the killed member must catch up on

        // Twice the TTL after the new leader is known, i.e. well past the expiry an unrenewed lease
        // would have (new leader's promotion + election timeout + TTL).
        holdLease(lease, "leased", survivors, survivors, keepAlive, Duration.ofSeconds(2 * TTL_SECONDS));
        int responsesAfterKill = keepAlive.responsesAfter(killedAt);
        assertTrue(responsesAfterKill >= 2, "etcdctl printed " + responsesAfterKill + " keep-alive responses "
                + "after the leader's kill: it did not fail over\n" + keepAlive.describe());

        Duration expiry = stopAndAwaitExpiry(keepAlive, lease, "leased", survivors);
        System.out.printf("LeaseFailoverIT[%s]: after keep-alive stop, key gone on all survivors %d ms after "
                + "the last keep-alive response (TTL %d s)%n", testName, expiry.toMillis(), lease.ttlSeconds());

        cluster.restart(leader);
        awaitSameView(leader, survivors, List.of("plain", "after-kill", "leased"));
        assertEquals(List.of(), get(leader, "leased"), "the restarted member still has the expired lease's key");
        assertTrue(remainingTtl(leader, lease) < 0, "lease timetolive through the restarted member");
    }

    /**
     * etcdctl talks to one follower only; the follower cannot renew a lease itself (only the leader's
     * lessor is primary) and must forward each renewal to whichever member leads, including a new leader
     * after the old one is killed. The killed member is restarted while the lease is still alive, so it
     * must show the key, and loses it with the others once the keep-alive stops.
     */
    @Test
    void keepAliveThroughAFollowerIsRenewedByTheLeader(TestInfo info) throws Exception {
        startCluster(info);
        int leader = cluster.leaderIndex();
        int follower = cluster.anyRunningExcept(leader);
        Lease lease = grant(follower);
        put(follower, "leased", "v", "--lease=" + lease.hex());

        KeepAlive keepAlive = startKeepAlive(cluster.endpoint(follower), lease);
        keepAlive.awaitResponses(1, FIRST_RESPONSE_TIMEOUT);
        List<Integer> all = List.of(1, 2, 3);
        // timetolive through the leader: it is the leader's lessor that must have been renewed. The lease is
        // older than its TTL by the end of the hold.
        holdLease(lease, "leased", all, List.of(leader), keepAlive, Duration.ofSeconds(TTL_SECONDS + 2));

        long killedAt = System.nanoTime();
        cluster.kill9(leader);
        List<Integer> survivors = others(leader);
        int newLeader = cluster.leaderIndex();
        System.out.printf("LeaseFailoverIT[%s]: keep-alive through follower %s; killed leader %s; %s leads "
                + "after %d ms%n", testName, cluster.name(follower), cluster.name(leader), cluster.name(newLeader),
                millisSince(killedAt));
        holdLease(lease, "leased", survivors, List.of(newLeader), keepAlive, Duration.ofSeconds(2 * TTL_SECONDS));

        cluster.restart(leader);
        awaitSameView(leader, survivors, List.of("leased"));
        assertEquals(1, get(leader, "leased").size(), "the restarted member lacks the live lease's key");

        Duration expiry = stopAndAwaitExpiry(keepAlive, lease, "leased", all);
        System.out.printf("LeaseFailoverIT[%s]: after keep-alive stop, key gone on all members %d ms after the "
                + "last keep-alive response (TTL %d s)%n", testName, expiry.toMillis(), lease.ttlSeconds());
    }

    // ---- lease steps ----

    record Lease(String hex, long ttlSeconds) {
    }

    private Lease grant(int member) throws Exception {
        Etcdctl.Result grant = Etcdctl.run(cluster.endpoint(member), "lease", "grant", Long.toString(TTL_SECONDS));
        Matcher granted = GRANTED.matcher(grant.stdout());
        assertTrue(grant.ok() && granted.find(), () -> "lease grant through " + cluster.name(member) + ": " + grant);
        Lease lease = new Lease(granted.group(1), Long.parseLong(granted.group(2)));
        assertEquals(TTL_SECONDS, lease.ttlSeconds(), "granted TTL (above the minimum, so not to be raised)");
        return lease;
    }

    private KeepAlive startKeepAlive(String endpoints, Lease lease) throws IOException {
        KeepAlive keepAlive = new KeepAlive(endpoints, lease.hex());
        keepAlives.add(keepAlive);
        return keepAlive;
    }

    /**
     * For {@code hold}, every round: the key is there in a serializable (local) read through each of
     * {@code keyMembers}, {@code lease timetolive} through one of {@code ttlMembers} (in turn) shows a
     * positive remaining TTL, and etcdctl's keep-alive is still running.
     */
    private void holdLease(Lease lease, String key, List<Integer> keyMembers, List<Integer> ttlMembers,
            KeepAlive keepAlive, Duration hold) throws Exception {
        long start = System.nanoTime();
        long end = start + hold.toNanos();
        int rounds = 0;
        long minTtl = Long.MAX_VALUE;
        while (System.nanoTime() < end) {
            for (int member : keyMembers) {
                List<ClusterProcess.Kv> kvs = get(member, key);
                if (kvs.size() != 1) {
                    fail(key + " gone from " + cluster.name(member) + " " + millisSince(start) + " ms into a "
                            + hold.toMillis() + " ms hold while the lease was kept alive\n" + keepAlive.describe()
                            + "\n" + cluster.logTails());
                }
            }
            int ttlMember = ttlMembers.get(rounds % ttlMembers.size());
            long ttl = remainingTtl(ttlMember, lease);
            if (ttl <= 0) {
                fail("lease timetolive through " + cluster.name(ttlMember) + " says TTL " + ttl + " "
                        + millisSince(start) + " ms into the hold\n" + keepAlive.describe() + "\n" + cluster.logTails());
            }
            minTtl = Math.min(minTtl, ttl);
            if (!keepAlive.isAlive()) {
                fail("etcdctl lease keep-alive exited during the hold\n" + keepAlive.describe());
            }
            rounds++;
            Thread.sleep(POLL_MS);
        }
        System.out.printf("LeaseFailoverIT[%s]: lease held for %d ms (%d rounds, lowest remaining TTL %d s, "
                + "%d keep-alive responses so far)%n", testName, hold.toMillis(), rounds, minTtl,
                keepAlive.responses());
    }

    /**
     * Stops etcdctl's keep-alive and waits until a serializable read through every one of {@code members}
     * finds the key gone; returns how long after the last keep-alive response that was seen. Fails if it
     * takes longer than TTL + election timeout + {@link #EXPIRY_SLACK}, or if any read had already found
     * it gone before TTL - {@link #EARLY_TOLERANCE}.
     */
    private Duration stopAndAwaitExpiry(KeepAlive keepAlive, Lease lease, String key, List<Integer> members)
            throws Exception {
        keepAlive.stop();
        long lastResponse = keepAlive.lastResponseNanos();
        long ttlNanos = TimeUnit.SECONDS.toNanos(lease.ttlSeconds());
        long deadline = lastResponse + ttlNanos + ELECTION_TIMEOUT.toNanos() + EXPIRY_SLACK.toNanos();
        Map<Integer, Long> goneSeenAt = new LinkedHashMap<>();
        while (goneSeenAt.size() < members.size()) {
            for (int member : members) {
                if (!goneSeenAt.containsKey(member) && get(member, key).isEmpty()) {
                    // The end of the read that saw it gone: the key was surely gone by then.
                    goneSeenAt.put(member, System.nanoTime());
                }
            }
            if (goneSeenAt.size() < members.size() && System.nanoTime() > deadline) {
                fail(key + " still present on " + members.stream().filter(m -> !goneSeenAt.containsKey(m))
                        .map(cluster::name).toList() + " " + millisSince(lastResponse) + " ms after the last "
                        + "keep-alive response (TTL " + lease.ttlSeconds() + " s, limit TTL + election timeout + "
                        + EXPIRY_SLACK.toMillis() + " ms slack); gone on " + goneSeenAt.keySet() + "\n"
                        + cluster.logTails());
            }
            Thread.sleep(20);
        }
        long firstGone = goneSeenAt.values().stream().mapToLong(Long::longValue).min().orElseThrow();
        long lastGone = goneSeenAt.values().stream().mapToLong(Long::longValue).max().orElseThrow();
        Map<String, Long> perMember = new LinkedHashMap<>();
        goneSeenAt.forEach((member, at) -> perMember.put(cluster.name(member), (at - lastResponse) / 1_000_000));
        System.out.printf("LeaseFailoverIT[%s]: key seen gone (ms after last keep-alive response): %s%n", testName,
                perMember);
        assertTrue(firstGone - lastResponse >= ttlNanos - EARLY_TOLERANCE.toNanos(), "the lease expired early: "
                + key + " was gone " + (firstGone - lastResponse) / 1_000_000 + " ms after the last keep-alive "
                + "response, TTL " + lease.ttlSeconds() + " s; per member " + perMember);
        for (int member : members) {
            long ttl = remainingTtl(member, lease);
            assertTrue(ttl < 0, "lease timetolive through " + cluster.name(member) + " after expiry: " + ttl);
        }
        return Duration.ofNanos(lastGone - lastResponse);
    }

    /** Waits until serializable reads of {@code keys} through {@code restarted} match linearizable ones through a survivor. */
    private void awaitSameView(int restarted, List<Integer> survivors, List<String> keys) throws Exception {
        Map<String, List<ClusterProcess.Kv>> expected = new LinkedHashMap<>();
        for (String key : keys) {
            List<ClusterProcess.Kv> reference = get(survivors.get(0), key, "--consistency=l");
            for (int other : survivors.subList(1, survivors.size())) {
                assertEquals(reference, get(other, key), key + " through " + cluster.name(other) + " vs "
                        + cluster.name(survivors.get(0)));
            }
            expected.put(key, reference);
        }
        long deadline = System.nanoTime() + CATCH_UP_TIMEOUT.toNanos();
        Map<String, List<ClusterProcess.Kv>> actual = new HashMap<>();
        while (true) {
            for (String key : keys) {
                actual.put(key, get(restarted, key));
            }
            if (actual.equals(expected)) {
                System.out.printf("LeaseFailoverIT[%s]: restarted %s has the survivors' view: %s%n", testName,
                        cluster.name(restarted), expected.entrySet().stream()
                                .map(e -> e.getKey() + (e.getValue().isEmpty() ? " absent" : " present"))
                                .collect(Collectors.joining(", ")));
                return;
            }
            if (System.nanoTime() > deadline) {
                fail("restarted " + cluster.name(restarted) + " does not show what the others do within "
                        + CATCH_UP_TIMEOUT + ": expected " + expected + ", it has " + actual + "\n"
                        + cluster.logTails());
            }
            Thread.sleep(POLL_MS);
        }
    }

    // ---- etcdctl helpers ----

    private void startCluster(TestInfo info) throws Exception {
        testName = info.getTestMethod().orElseThrow().getName() + "-"
                + ClusterProcess.candidateKind().name().toLowerCase();
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), testName);
    }

    private void put(int member, String key, String value, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("put", key, value));
        args.addAll(List.of(more));
        Etcdctl.Result put = Etcdctl.run(cluster.endpoint(member), args.toArray(String[]::new));
        assertTrue(put.ok(), () -> "put " + key + " through " + cluster.name(member) + ": " + put);
    }

    /** A read through {@code member}, serializable (answered from its own state) unless {@code more} says otherwise. */
    private List<ClusterProcess.Kv> get(int member, String key, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("get", key, "-w", "json"));
        args.addAll(more.length == 0 ? List.of("--consistency=s") : List.of(more));
        Etcdctl.Result get = Etcdctl.run(cluster.endpoint(member), args.toArray(String[]::new));
        assertTrue(get.ok(), () -> "get " + key + " through " + cluster.name(member) + ": " + get);
        return ClusterProcess.kvs(get.stdout());
    }

    /** {@code lease timetolive} through {@code member}: the remaining TTL in seconds, -1 once expired. */
    private long remainingTtl(int member, Lease lease) throws Exception {
        Etcdctl.Result ttl = Etcdctl.run(cluster.endpoint(member), "lease", "timetolive", lease.hex(), "-w", "json");
        Matcher remaining = REMAINING_TTL.matcher(ttl.stdout());
        assertTrue(ttl.ok() && remaining.find(), () -> "lease timetolive through " + cluster.name(member) + ": "
                + ttl);
        return Long.parseLong(remaining.group(1));
    }

    private void moveLeader(int target) throws Exception {
        Etcdctl.Result moved = Etcdctl.run(cluster.endpoints(), "move-leader", cluster.memberIdHex(target));
        assertTrue(moved.ok(), () -> "move-leader to " + cluster.name(target) + ": " + moved);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (cluster.leaderIndex() != target) {
            if (System.nanoTime() > deadline) {
                fail(cluster.name(target) + " not leader after move-leader: " + moved);
            }
            Thread.sleep(POLL_MS);
        }
    }

    /**
     * Which member the keep-alive stream runs to: etcdctl holds a connection to every endpoint, but
     * (gRPC keepalive pings being sent only on connections with streams) only the stream's connection
     * carries traffic. Reads {@code ss -tnpi} twice, a keep-alive interval apart, and picks the one
     * connection whose bytes_sent grew; empty if that is not exactly one (or ss is missing).
     */
    private Optional<Integer> streamMember(KeepAlive keepAlive) throws Exception {
        Map<Integer, Long> before = bytesSentByPeerPort(keepAlive.pid());
        keepAlive.awaitResponses(keepAlive.responses() + 2, Duration.ofSeconds(2 * TTL_SECONDS));
        Map<Integer, Long> after = bytesSentByPeerPort(keepAlive.pid());
        List<Integer> busy = after.keySet().stream()
                .filter(port -> before.containsKey(port) && after.get(port) > before.get(port)).toList();
        System.out.printf("LeaseFailoverIT[%s]: etcdctl's connections (peer port=bytes sent) before %s, after %s%n",
                testName, before, after);
        if (busy.size() != 1) {
            return Optional.empty();
        }
        for (int member = 1; member <= ClusterProcess.SIZE; member++) {
            if (URI.create(cluster.endpoint(member)).getPort() == busy.get(0)) {
                return Optional.of(member);
            }
        }
        return Optional.empty();
    }

    private static final Pattern SS_SOCKET = Pattern.compile("\\S+:(\\d+)\\s+users:\\(\\(\"etcdctl\",pid=(\\d+),");
    private static final Pattern SS_BYTES_SENT = Pattern.compile("bytes_sent:(\\d+)");

    /** etcdctl's established TCP connections (peer port -> bytes sent so far), from {@code ss -Htnpi}. */
    private static Map<Integer, Long> bytesSentByPeerPort(long pid) throws Exception {
        Map<Integer, Long> sent = new HashMap<>();
        Process ss;
        try {
            ss = new ProcessBuilder("ss", "-Htnpi", "state", "established").redirectErrorStream(true).start();
        } catch (IOException noSs) {
            return sent;
        }
        String out = new String(ss.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        ss.waitFor(10, TimeUnit.SECONDS);
        // One line per socket, its -i details on the next line.
        List<String> lines = out.lines().toList();
        for (int i = 0; i + 1 < lines.size(); i++) {
            Matcher socket = SS_SOCKET.matcher(lines.get(i));
            if (socket.find() && Long.parseLong(socket.group(2)) == pid) {
                Matcher bytes = SS_BYTES_SENT.matcher(lines.get(i + 1));
                sent.put(Integer.parseInt(socket.group(1)), bytes.find() ? Long.parseLong(bytes.group(1)) : 0L);
            }
        }
        return sent;
    }

    private List<Integer> others(int member) {
        List<Integer> others = new ArrayList<>();
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            if (m != member) {
                others.add(m);
            }
        }
        return others;
    }

    private static long millisSince(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - nanos);
    }

    /**
     * {@code etcdctl lease keep-alive ID} in the background. Its stdout is read line by line as it comes
     * (etcdctl writes each response unbuffered), so each "keepalived with TTL" line gets the time it
     * arrived: the expiry is measured from the last one.
     */
    private static final class KeepAlive {
        private final Process process;
        private final Path err;
        private final Thread reader;
        private final StringBuffer stdout = new StringBuffer();
        private final List<Long> responseNanos = new ArrayList<>();

        KeepAlive(String endpoints, String leaseHex) throws IOException {
            List<String> command = List.of(System.getProperty("etcdctl.bin", "etcdctl"), "--endpoints=" + endpoints,
                    "lease", "keep-alive", leaseHex);
            ProcessBuilder builder = new ProcessBuilder(command);
            builder.environment().keySet().removeIf(k -> k.startsWith("ETCDCTL_"));
            builder.environment().put("ETCDCTL_API", "3");
            err = Files.createTempFile("etcdctl-keepalive-", ".err");
            process = builder.redirectError(err.toFile()).start();
            process.getOutputStream().close();
            reader = new Thread(this::readStdout, "keep-alive-stdout-" + leaseHex);
            reader.setDaemon(true);
            reader.start();
        }

        private void readStdout() {
            try (BufferedReader lines = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    long now = System.nanoTime();
                    stdout.append(line).append('\n');
                    if (line.contains("keepalived with TTL")) {
                        synchronized (responseNanos) {
                            responseNanos.add(now);
                        }
                    }
                }
            } catch (IOException closed) {
                // the process is gone
            }
        }

        long pid() {
            return process.pid();
        }

        boolean isAlive() {
            return process.isAlive();
        }

        int responses() {
            synchronized (responseNanos) {
                return responseNanos.size();
            }
        }

        int responsesAfter(long nanos) {
            synchronized (responseNanos) {
                return (int) responseNanos.stream().filter(t -> t - nanos > 0).count();
            }
        }

        long lastResponseNanos() {
            synchronized (responseNanos) {
                if (responseNanos.isEmpty()) {
                    throw new AssertionError("no keep-alive response at all\n" + describe());
                }
                return responseNanos.get(responseNanos.size() - 1);
            }
        }

        void awaitResponses(int count, Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (responses() < count) {
                if (System.nanoTime() > deadline || !process.isAlive()) {
                    fail("etcdctl lease keep-alive: fewer than " + count + " responses within " + timeout + "\n"
                            + describe());
                }
                Thread.sleep(20);
            }
        }

        /** SIGTERM (etcdctl just exits: the lease is neither revoked nor renewed any more); waits for the output. */
        void stop() throws Exception {
            if (process.isAlive()) {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor();
                }
            }
            reader.join(5000);
        }

        void deleteFiles() throws IOException {
            Files.deleteIfExists(err);
        }

        String describe() {
            String stderr;
            try {
                stderr = Files.readString(err, StandardCharsets.UTF_8);
            } catch (IOException e) {
                stderr = "(unreadable: " + e + ")";
            }
            List<String> out = stdout.toString().lines().toList();
            return "--- etcdctl lease keep-alive (" + (process.isAlive() ? "running" : "exit " + process.exitValue())
                    + "), last stdout lines ---\n" + String.join("\n", out.subList(Math.max(0, out.size() - 10),
                    out.size())) + "\n--- stderr ---\n" + stderr;
        }
    }
}
