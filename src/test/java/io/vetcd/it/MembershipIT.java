package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Membership changes on a running 3-member cluster through the real {@code etcdctl} (issue 14): it grows
 * through a learner (add, start with {@code --initial-cluster-state existing}, catch up, promote) while
 * two clients write, a member is removed and exits, a member is replaced on a fresh data dir, and each
 * refusal answers etcd's words. No acknowledged write is lost.
 *
 * <p>They run against vetcd by default and are validated against real etcd 3.4 with
 * {@code -Dit.cluster.candidate=etcd} (all but the vetcd-only {@code --auto-promote-learners}).
 */
class MembershipIT {

    private static final Duration CHANGE_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration EXIT_TIMEOUT = Duration.ofSeconds(15);
    private static final Pattern ADDED = Pattern.compile(
            "^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)\n\nETCD_NAME=\"infra4\"\nETCD_INITIAL_CLUSTER=\"([^\"]+)\"\n"
                    + "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"([^\"]+)\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n$");
    private static final Pattern MEMBER_JSON = Pattern.compile("\\{\"ID\":(\\d+)(,\"name\":\"([^\"]*)\")?[^{}]*?\\}");
    private static final int VALUE_BYTES = 100;

    private ClusterProcess cluster;
    private final ExecutorService writers = Executors.newFixedThreadPool(2);

    @AfterEach
    void cleanUp() throws Exception {
        writers.shutdownNow();
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void growsThroughALearnerAndShrinksWhileClientsWrite() throws Exception {
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "membership-grow");
        AtomicBoolean stop = new AtomicBoolean();
        try (KvLoad one = new KvLoad(cluster.endpoint(1)); KvLoad two = new KvLoad(cluster.endpoint(2))) {
            Future<KvLoad.Outcome> first = writers.submit(() ->
                    one.put("one/", Integer.MAX_VALUE, 4, VALUE_BYTES, stop::get, Duration.ofMinutes(3)));
            Future<KvLoad.Outcome> second = writers.submit(() ->
                    two.put("two/", Integer.MAX_VALUE, 4, VALUE_BYTES, stop::get, Duration.ofMinutes(3)));

            // etcd refuses a change until every voter has been connected for 5 s ("unhealthy cluster").
            Etcdctl.Result added = retryWhile(1, "etcdserver: unhealthy cluster",
                    "member", "add", "infra4", "--peer-urls=" + cluster.peerUrl(4), "--learner");
            Matcher printed = ADDED.matcher(added.stdout());
            assertTrue(printed.matches(), "etcdctl's member add output: " + added.stdout());
            String learnerId = printed.group(1);
            assertEquals(cluster.peerUrl(4), printed.group(4));
            assertTrue(printed.group(3).contains("infra4=" + cluster.peerUrl(4)), printed.group(3));
            for (int i = 1; i <= ClusterProcess.SIZE; i++) {
                assertTrue(printed.group(3).contains("infra" + i + "=" + cluster.peerUrl(i)), printed.group(3));
            }

            cluster.launchExisting(4, printed.group(3));
            cluster.awaitJoined(4);
            assertEquals(learnerId, cluster.memberIdHex(4));
            assertEquals(Boolean.TRUE, learnerFlags(1).get(learnerId), "member list shows the learner");
            Etcdctl.Result status = Etcdctl.run(cluster.endpoint(4), "endpoint", "status", "-w", "json");
            assertTrue(status.ok() && status.stdout().contains("\"isLearner\":true"), status.toString());

            // A learner serves serializable reads only.
            Etcdctl.Result put = Etcdctl.run(cluster.endpoint(4), "put", "learner-key", "v");
            assertFalse(put.ok(), put.toString());
            assertTrue(put.stderr().contains("etcdserver: rpc not supported for learner"), put.toString());
            assertTrue(Etcdctl.run(cluster.endpoint(1), "put", "seen-by-learner", "yes").ok());
            awaitOutput(4, "yes", "get", "seen-by-learner", "--consistency=s", "--print-value-only");

            Etcdctl.Result promoted = retryWhile(1, "in sync with leader", "member", "promote", learnerId);
            assertEquals(String.format("Member %16s promoted in cluster %16s\n", learnerId, printed.group(2)),
                    promoted.stdout(), "etcdctl prints ids as %16x");
            assertEquals(Boolean.FALSE, learnerFlags(1).get(learnerId), "member list shows the promoted member");

            // Shrink: the third member goes, and exits on its own.
            String third = cluster.memberIdHex(3);
            Etcdctl.Result removed = retryWhile(1, "unhealthy cluster", "member", "remove", third);
            assertEquals(String.format("Member %16s removed from cluster %16s\n", third, printed.group(2)),
                    removed.stdout());
            assertExitsCleanly(3);
            // Started again on its data dir, it stops again: it is no member any more.
            cluster.launchWith(3, List.of());
            assertExitsCleanly(3);
            Map<String, Boolean> members = learnerFlags(1);
            assertEquals(3, members.size(), members.toString());
            assertFalse(members.containsKey(third), members.toString());

            // The writes went on throughout: every acknowledged one is there, on the member that joined.
            cluster.leaderIndex(); // a new one, if the removed member led
            Etcdctl.Result after = Etcdctl.run(cluster.endpoint(4), "put", "after-removal", "ok");
            assertTrue(after.ok(), after.toString());
            stop.set(true);
            KvLoad.Outcome a = first.get(1, TimeUnit.MINUTES);
            KvLoad.Outcome b = second.get(1, TimeUnit.MINUTES);
            assertFalse(a.acknowledged().isEmpty() || b.acknowledged().isEmpty(), "both clients wrote");
            try (KvLoad reader = new KvLoad(cluster.endpoint(4))) {
                List<String> lost = new ArrayList<>(KvLoad.missing(a.acknowledged(), reader.range("one/"), VALUE_BYTES));
                lost.addAll(KvLoad.missing(b.acknowledged(), reader.range("two/"), VALUE_BYTES));
                assertTrue(lost.isEmpty(), lost.size() + " acknowledged writes lost, e.g. " + lost.subList(0, Math.min(5, lost.size())));
            }
        }
    }

    @Test
    void refusesAsEtcdDoes() throws Exception {
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "membership-refusals");
        assertRefused(1, "etcdserver: member not found", "member", "remove", "1234abcd");
        assertRefused(1, "etcdserver: member not found", "member", "promote", "1234abcd");
        assertRefused(1, "etcdserver: can only promote a learner member", "member", "promote", cluster.memberIdHex(2));

        Etcdctl.Result learner = retryWhile(1, "etcdserver: unhealthy cluster",
                "member", "add", "infra4", "--peer-urls=" + cluster.peerUrl(4), "--learner");
        // Every voter has now been connected for etcd's 5 s: what follows is refused for what it asks.
        assertRefused(1, "etcdserver: Peer URLs already exists",
                "member", "add", "again", "--peer-urls=" + cluster.peerUrl(2));
        Matcher printed = ADDED.matcher(learner.stdout());
        assertTrue(printed.matches(), learner.stdout());
        assertRefused(1, "etcdserver: too many learner members in cluster",
                "member", "add", "infra5", "--peer-urls=http://127.0.0.1:1", "--learner");
        assertRefused(2, "etcdserver: can only promote a learner member which is in sync with leader",
                "member", "promote", printed.group(1));
        Etcdctl.Result gone = Etcdctl.run(cluster.endpoint(1), "member", "remove", printed.group(1));
        assertTrue(gone.ok(), gone.toString());
        assertRefused(1, "etcdserver: member not found", "member", "remove", printed.group(1));

        // With a member down, adding a voter or removing a running one could cost the quorum.
        cluster.stop(3);
        cluster.leaderIndex(); // a new one, if it was the leader that stopped
        assertRefused(1, "etcdserver: unhealthy cluster", "member", "add", "infra5", "--peer-urls=http://127.0.0.1:2");
        assertRefused(1, "etcdserver: unhealthy cluster", "member", "add", "infra5", "--peer-urls=http://127.0.0.1:2",
                "--learner");
        assertRefused(1, "etcdserver: unhealthy cluster", "member", "remove", cluster.memberIdHex(2));
        assertEquals(3, learnerFlags(1).size(), "nothing changed");
    }

    @Test
    void replacesAMemberOnAFreshDataDir() throws Exception {
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "membership-replace");
        assertTrue(Etcdctl.run(cluster.endpoint(1), "put", "before", "1").ok());
        String old = cluster.memberIdHex(3);
        retryWhile(1, "unhealthy cluster", "member", "remove", old);
        assertExitsCleanly(3);
        cluster.wipeDataDir(3);
        cluster.leaderIndex(); // a new one, if the removed member led
        Etcdctl.Result added = retryWhile(1, "unhealthy cluster|possibly due to previous leader failure",
                "member", "add", "infra3", "--peer-urls=" + cluster.peerUrl(3));
        Matcher line = Pattern.compile("ETCD_INITIAL_CLUSTER=\"([^\"]+)\"").matcher(added.stdout());
        assertTrue(line.find(), added.toString());
        assertTrue(Etcdctl.run(cluster.endpoint(2), "put", "while-replacing", "2").ok());
        cluster.launchExisting(3, line.group(1));
        cluster.awaitJoined(3);
        assertFalse(old.equals(cluster.memberIdHex(3)), "the replacement has a new id");
        awaitOutput(3, "1", "get", "before", "--consistency=s", "--print-value-only");
        awaitOutput(3, "2", "get", "while-replacing", "--consistency=s", "--print-value-only");
        assertTrue(Etcdctl.run(cluster.endpoint(3), "put", "after", "3").ok(), "the replacement votes and serves");
        Map<String, Boolean> members = learnerFlags(3);
        assertEquals(3, members.size(), members.toString());
        assertFalse(members.containsValue(true), members.toString());
    }

    @Test
    void aLearnerJoinsFromASnapshotAndMembersRestartWithTheMembershipTheyApplied() throws Exception {
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "membership-snapshot", "--snapshot-count", "50");
        KvLoad.Outcome before;
        try (KvLoad load = new KvLoad(cluster.endpoint(1))) {
            // More than the 5,000 entries a leader keeps below its snapshot point: the learner needs a snapshot.
            before = load.put("before/", 5_500, 64, VALUE_BYTES, () -> false, Duration.ofMinutes(2));
        }
        assertTrue(before.failures().isEmpty(), before.failures().toString());
        Matcher printed = addAndStartLearner();
        awaitOutput(4, KvLoad.valueOf("before/5499", VALUE_BYTES), "get", "before/5499", "--consistency=s",
                "--print-value-only");
        String log = java.nio.file.Files.readString(cluster.logFile(4));
        assertTrue(ClusterIT.SNAPSHOT_APPLIED.matcher(log).find(), "the learner caught up from a snapshot\n" + cluster.logTail(4));
        retryWhile(1, "in sync with leader", "member", "promote", printed.group(1));

        // Every member restarts from its data dir with the membership it applied, the joined one included.
        cluster.stop(4);
        cluster.stop(2);
        cluster.restart(2);
        cluster.launchExisting(4, printed.group(3));
        cluster.awaitJoined(4);
        Map<String, Boolean> members = learnerFlags(2);
        assertEquals(4, members.size(), members.toString());
        assertFalse(members.containsValue(true), members.toString());
        // Four voters: three make a quorum, so with one more down the cluster still writes.
        cluster.stop(1);
        cluster.leaderIndex();
        Etcdctl.Result put = Etcdctl.run(cluster.endpoint(4), "put", "three-of-four", "yes");
        assertTrue(put.ok(), put.toString());
        try (KvLoad reader = new KvLoad(cluster.endpoint(4))) {
            List<String> lost = KvLoad.missing(before.acknowledged(), reader.range("before/"), VALUE_BYTES);
            assertTrue(lost.isEmpty(), lost.size() + " acknowledged writes lost");
        }
    }

    @Test
    void theLeaderRemovesItselfAndTheOthersGoOnAtOnce() throws Exception {
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "membership-leader");
        int leader = cluster.leaderIndex();
        int other = cluster.anyRunningExcept(leader);
        String leaderId = cluster.memberIdHex(leader);
        retryWhile(other, "etcdserver: unhealthy cluster", "member", "remove", leaderId);
        assertExitsCleanly(leader);
        int next = cluster.leaderIndex();
        assertFalse(next == leader);
        Etcdctl.Result put = Etcdctl.run(cluster.endpoint(other), "put", "after-the-leader-left", "yes");
        assertTrue(put.ok(), put.toString());
        Map<String, Boolean> members = learnerFlags(other);
        assertEquals(2, members.size(), members.toString());
        assertFalse(members.containsKey(leaderId), members.toString());
    }

    @Test
    void autoPromotesALearnerInSync() throws Exception {
        Assumptions.assumeTrue(ClusterProcess.candidateKind() == MemberProcess.Kind.VETCD,
                "--auto-promote-learners is vetcd's own");
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "membership-auto", "--auto-promote-learners");
        Matcher printed = addAndStartLearner();
        long deadline = System.nanoTime() + CHANGE_TIMEOUT.toNanos();
        while (!Boolean.FALSE.equals(learnerFlags(1).get(printed.group(1)))) {
            if (System.nanoTime() > deadline) {
                fail("the learner was not promoted within " + CHANGE_TIMEOUT + "\n" + cluster.logTails());
            }
            Thread.sleep(100);
        }
        assertTrue(Etcdctl.run(cluster.endpoint(4), "put", "voter-now", "yes").ok());
    }

    /**
     * {@code member add infra4 --learner} (again while the cluster is not yet "healthy" for etcd), then
     * infra4 started with what it printed; returns etcdctl's output, matched (group 1: the id, 3: the
     * initial cluster).
     */
    private Matcher addAndStartLearner() throws Exception {
        Etcdctl.Result added = retryWhile(1, "etcdserver: unhealthy cluster",
                "member", "add", "infra4", "--peer-urls=" + cluster.peerUrl(4), "--learner");
        Matcher printed = ADDED.matcher(added.stdout());
        assertTrue(printed.matches(), added.toString());
        cluster.launchExisting(4, printed.group(3));
        cluster.awaitJoined(4);
        return printed;
    }

    /** A removed member stops on its own, with status 0 (etcd's: it is not a crash to restart from). */
    private void assertExitsCleanly(int member) throws InterruptedException {
        Process process = cluster.process(member);
        assertTrue(process.waitFor(EXIT_TIMEOUT.toSeconds(), TimeUnit.SECONDS),
                "the removed member exits\n" + cluster.logTail(member));
        assertEquals(0, process.exitValue(), "exit status of the removed member\n" + cluster.logTail(member));
    }

    /** Each member's id (hex) → whether it is a learner, from {@code member list -w json} on {@code member}. */
    private Map<String, Boolean> learnerFlags(int member) throws Exception {
        Etcdctl.Result list = Etcdctl.run(cluster.endpoint(member), "member", "list", "-w", "json");
        assertTrue(list.ok(), list.toString());
        Map<String, Boolean> flags = new java.util.TreeMap<>();
        Matcher m = MEMBER_JSON.matcher(list.stdout());
        while (m.find()) {
            flags.put(Long.toHexString(Long.parseUnsignedLong(m.group(1))), m.group().contains("\"isLearner\":true"));
        }
        return flags;
    }

    private void assertRefused(int member, String error, String... args) throws Exception {
        Etcdctl.Result result = Etcdctl.run(cluster.endpoint(member), args);
        assertFalse(result.ok(), String.join(" ", args) + " must be refused: " + result);
        assertTrue(result.stderr().contains("Error: " + error + "\n"),
                String.join(" ", args) + " must be refused with \"" + error + "\": " + result);
    }

    /**
     * Runs etcdctl until it does not fail with one of {@code transientErrors} ("|"-separated: a learner
     * still catching up, a peer connected less than etcd's 5 s health interval ago), up to
     * {@link #CHANGE_TIMEOUT}; it must then succeed.
     */
    private Etcdctl.Result retryWhile(int member, String transientErrors, String... args) throws Exception {
        long deadline = System.nanoTime() + CHANGE_TIMEOUT.toNanos();
        while (true) {
            Etcdctl.Result result = Etcdctl.run(cluster.endpoint(member), args);
            if (result.ok()) {
                return result;
            }
            boolean isTransient = java.util.Arrays.stream(transientErrors.split("\\|")).anyMatch(result.stderr()::contains);
            if (!isTransient || System.nanoTime() > deadline) {
                fail(String.join(" ", args) + " failed: " + result + "\n" + cluster.logTails());
            }
            Thread.sleep(200);
        }
    }

    private void awaitOutput(int member, String expected, String... args) throws Exception {
        long deadline = System.nanoTime() + CHANGE_TIMEOUT.toNanos();
        Etcdctl.Result result;
        do {
            result = Etcdctl.run(cluster.endpoint(member), args);
            if (result.ok() && result.stdout().trim().equals(expected)) {
                return;
            }
            Thread.sleep(100);
        } while (System.nanoTime() < deadline);
        fail(String.join(" ", args) + " on member " + member + " never printed " + expected + ": " + result);
    }
}
