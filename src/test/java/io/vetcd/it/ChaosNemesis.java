package io.vetcd.it;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * The faults of a chaos run, one at a time: each is injected, held for a few seconds (longer than
 * the election timeout where that matters), healed, and then the cluster must be healthy again
 * within {@link #RECOVERY_MILLIS} (every member answers /health true: it has a leader and serves a
 * linearizable read) before the next one. What happened when goes to the timeline.
 */
final class ChaosNemesis {

    /** Every fault the nemesis knows, by the name {@code -Dchaos.faults} takes. */
    enum Fault {
        /**
         * kill -9 of a member (the leader half of the time), restarted after 1–4 s; on five members
         * sometimes of two at once.
         */
        KILL,
        /** SIGSTOP of the leader for 1.5–4 s (past the election timeout), then SIGCONT. */
        PAUSE_LEADER,
        /** SIGSTOP of a follower for 1.5–4 s, then SIGCONT. */
        PAUSE_FOLLOWER,
        /** The leader cut off from every peer, both ways. */
        ISOLATE_LEADER,
        /** A minority (any members, maybe the leader) cut off from the majority, both ways. */
        SPLIT,
        /** Three members A–B–C where B sees both and A and C do not see each other. */
        BRIDGE,
        /** The leader hears nobody, its own messages still go out. */
        LEADER_DEAF,
        /** Some links held back (delivered late, in a burst) for a few seconds. */
        DELAY,
        /** A member restarted with a crash failpoint armed: it halts at a sync, or around an apply commit. */
        CRASH_AT,
        /** A member restarted with every log sync slowed by 100–300 ms, for 8 s. */
        SLOW_DISK,
        /** A follower removed, wiped and added back as a new member (etcd's replace-a-member drill). */
        REPLACE;

        static List<Fault> parse(String list) {
            if (list.isBlank() || list.equals("all")) {
                return List.of(values());
            }
            return java.util.Arrays.stream(list.split(","))
                    .map(name -> valueOf(name.trim().toUpperCase().replace('-', '_')))
                    .toList();
        }

        /** Faults that need vetcd's failpoints. */
        boolean vetcdOnly() {
            return this == CRASH_AT || this == SLOW_DISK;
        }
    }

    static final long RECOVERY_MILLIS = 60_000;
    /** How a member that halted at a crash failpoint exits (Failpoints.CRASH_STATUS: 128 + SIGKILL). */
    private static final int CRASH_STATUS = 137;
    private static final List<String> CRASH_POINTS = List.of("append", "after-sync", "before-apply-commit",
            "after-apply-commit", "apply");
    private static final Pattern INITIAL_CLUSTER = Pattern.compile("ETCD_INITIAL_CLUSTER=\"([^\"]+)\"");

    private final ClusterProcess cluster;
    private final PeerRelay relay;
    private final Random random;
    private final List<Fault> faults;
    private final long startNanos = System.nanoTime();
    private final List<String> timeline = Collections.synchronizedList(new ArrayList<>());
    private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
    private final Set<Integer> paused = new HashSet<>();
    /** Members the current fault stopped; any other member found down at the heal exited by itself. */
    private final Set<Integer> downOnPurpose = new HashSet<>();
    private int injected;

    ChaosNemesis(ClusterProcess cluster, PeerRelay relay, long seed, List<Fault> faults) {
        this.cluster = cluster;
        this.relay = relay;
        this.random = new Random(seed ^ 0x6e656d);
        this.faults = faults.stream()
                .filter(f -> cluster.kind() == MemberProcess.Kind.VETCD || !f.vetcdOnly())
                .filter(f -> f != Fault.BRIDGE || cluster.size() >= 3)
                .toList();
    }

    /** The faults this run injects: those asked for that the cluster's kind can have. */
    List<Fault> faults() {
        return faults;
    }

    List<String> timeline() {
        return List.copyOf(timeline);
    }

    /** What went wrong with the cluster itself: it did not recover, or a member exited on its own. */
    List<String> failures() {
        return List.copyOf(failures);
    }

    int injected() {
        return injected;
    }

    /** Injects faults one after another until {@code deadlineNanos}; stops early if the cluster fails to recover. */
    void run(long deadlineNanos) throws Exception {
        while (System.nanoTime() < deadlineNanos && failures.isEmpty()) {
            Fault fault = faults.get(random.nextInt(faults.size()));
            injected++;
            try {
                inject(fault);
            } finally {
                heal();
            }
            if (!awaitRecovered()) {
                return;
            }
            sleep(1_000 + random.nextInt(2_000)); // the cluster works undisturbed for a while
        }
    }

    private void inject(Fault fault) throws Exception {
        int leader = leader();
        int follower = anyOtherThan(leader);
        switch (fault) {
            case KILL -> {
                int victim = random.nextBoolean() ? leader : follower;
                note("kill -9 infra" + victim + (victim == leader ? " (the leader)" : ""));
                downOnPurpose.add(victim);
                cluster.kill9(victim);
                if (cluster.size() >= 5 && random.nextBoolean()) {
                    int second = anyOtherThan(victim);
                    note("kill -9 infra" + second + (second == leader ? " (the leader)" : ""));
                    downOnPurpose.add(second);
                    cluster.kill9(second);
                }
                sleep(1_000 + random.nextInt(3_000));
            }
            case PAUSE_LEADER, PAUSE_FOLLOWER -> {
                int victim = fault == Fault.PAUSE_LEADER ? leader : follower;
                note("SIGSTOP infra" + victim + (victim == leader ? " (the leader)" : ""));
                paused.add(victim); // first: heal() must continue it whatever happens next
                signal(victim, "STOP");
                sleep(1_500 + random.nextInt(2_500));
            }
            case ISOLATE_LEADER -> {
                PeerRelay.Mode mode = mode();
                note("isolate the leader infra" + leader + " (" + mode + ")");
                relay.split(Set.of(leader), others(Set.of(leader)), mode);
                sleep(2_000 + random.nextInt(4_000));
            }
            case SPLIT -> {
                List<Integer> members = new ArrayList<>(IntStream.rangeClosed(1, cluster.size()).boxed().toList());
                Collections.shuffle(members, random);
                Set<Integer> minority = new HashSet<>(members.subList(0, 1 + random.nextInt((cluster.size() - 1) / 2)));
                PeerRelay.Mode mode = mode();
                note("split " + minority + " | " + others(minority) + " (" + mode + ")");
                relay.split(minority, others(minority), mode);
                sleep(2_000 + random.nextInt(4_000));
            }
            case BRIDGE -> {
                List<Integer> members = new ArrayList<>(IntStream.rangeClosed(1, cluster.size()).boxed().toList());
                Collections.shuffle(members, random);
                PeerRelay.Mode mode = mode();
                note("bridge infra" + members.get(0) + " - infra" + members.get(1) + " - infra" + members.get(2)
                        + " (" + mode + ")");
                relay.bridge(members.get(0), members.get(1), members.get(2), mode);
                sleep(2_000 + random.nextInt(4_000));
            }
            case LEADER_DEAF -> {
                PeerRelay.Mode mode = mode();
                note("the leader infra" + leader + " hears nobody (" + mode + ")");
                relay.blockReceive(leader, mode);
                sleep(2_000 + random.nextInt(3_000));
            }
            case DELAY -> {
                int from = 1 + random.nextInt(cluster.size());
                int to = 1 + (from + random.nextInt(cluster.size() - 1)) % cluster.size();
                note("hold back infra" + from + " <-> infra" + to);
                relay.cut(from, to, PeerRelay.Mode.HOLD);
                relay.cut(to, from, PeerRelay.Mode.HOLD);
                sleep(500 + random.nextInt(2_500));
            }
            case CRASH_AT -> {
                int victim = random.nextBoolean() ? leader : follower;
                String point = CRASH_POINTS.get(random.nextInt(CRASH_POINTS.size())) + "=crash@"
                        + (1 + random.nextInt(150));
                note("restart infra" + victim + " with the failpoint " + point);
                downOnPurpose.add(victim);
                cluster.kill9(victim);
                Process process = cluster.launchWith(victim, List.of("-Dvetcd.failpoints=" + point));
                if (process.waitFor(4_000 + random.nextInt(4_000), TimeUnit.MILLISECONDS)) {
                    note("infra" + victim + " crashed at " + point + " (exit status " + process.exitValue() + ")");
                    if (process.exitValue() != CRASH_STATUS) {
                        failures.add("infra" + victim + " restarted with " + point + " exited with status "
                                + process.exitValue() + ", not at the failpoint " + elapsed());
                    }
                } else {
                    note("infra" + victim + " did not reach " + point + "; kill -9");
                    cluster.kill9(victim);
                }
            }
            case SLOW_DISK -> {
                int victim = random.nextBoolean() ? leader : follower;
                String point = "append=sleep(" + (100 + random.nextInt(200)) + ")";
                note("restart infra" + victim + " on a slow disk: " + point);
                downOnPurpose.add(victim);
                cluster.stop(victim);
                cluster.launchWith(victim, List.of("-Dvetcd.failpoints=" + point));
                sleep(8_000);
                cluster.stop(victim);
            }
            case REPLACE -> replace(follower);
            default -> throw new IllegalStateException(fault.toString());
        }
    }

    /** etcd's drill: remove the member, wipe its data dir, add it back under a new id, start it. */
    private void replace(int victim) throws Exception {
        int via = anyOtherThan(victim);
        note("replace infra" + victim + " (remove, wipe, add, start with --initial-cluster-state existing)");
        String removedId = cluster.memberIdHex(victim);
        Etcdctl.Result removed = retry(via, "member", "remove", removedId);
        if (!removed.ok()) {
            failures.add("member remove of infra" + victim + " refused for a minute: " + removed);
            return;
        }
        downOnPurpose.add(victim); // a removed member exits by itself
        if (!cluster.process(victim).waitFor(15, TimeUnit.SECONDS)) {
            note("infra" + victim + " did not exit after its removal within 15 s; kill -9");
        }
        if (cluster.isRunning(victim)) {
            cluster.kill9(victim);
        }
        cluster.wipeDataDir(victim);
        Etcdctl.Result added = retry(via, "member", "add", cluster.name(victim), "--peer-urls=" + cluster.peerUrl(victim));
        Matcher line = INITIAL_CLUSTER.matcher(added.stdout());
        if (!added.ok() || !line.find()) {
            failures.add("member add of infra" + victim + " refused for a minute: " + added);
            return;
        }
        cluster.launchExisting(victim, line.group(1));
        cluster.awaitJoined(victim);
        note("infra" + victim + " rejoined as " + cluster.memberIdHex(victim));
    }

    /** Runs etcdctl until it succeeds or refuses for another reason than a cluster still settling; a minute at most. */
    private Etcdctl.Result retry(int via, String... args) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            Etcdctl.Result result = Etcdctl.run(cluster.endpoint(via), args);
            if (result.ok() || System.nanoTime() > deadline) {
                return result;
            }
            sleep(500);
        }
    }

    /** Undoes whatever is in place: links healed, paused members continued, stopped members started. */
    void heal() throws Exception {
        relay.heal();
        for (int member : paused) {
            signal(member, "CONT");
        }
        if (!paused.isEmpty()) {
            note("SIGCONT " + paused.stream().map(m -> "infra" + m).collect(Collectors.joining(", ")));
        }
        paused.clear();
        List<Integer> down = IntStream.rangeClosed(1, cluster.size()).filter(m -> !cluster.isRunning(m)).boxed()
                .toList();
        for (int member : down) {
            Process process = cluster.process(member);
            note("restart infra" + member + (process != null ? " (exit status " + process.exitValue() + ")" : ""));
            if (!downOnPurpose.contains(member)) {
                failures.add("infra" + member + " exited by itself (status " + (process != null ? process.exitValue()
                        : "?") + ") " + elapsed());
            }
        }
        downOnPurpose.clear();
        if (!down.isEmpty()) {
            cluster.restart(down.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /** Waits until every member is healthy; records a failure if not within {@link #RECOVERY_MILLIS}. */
    boolean awaitRecovered() throws Exception {
        String failure = awaitRecovered(new Members() {
            @Override
            public int size() {
                return cluster.size();
            }

            @Override
            public String exitStatus(int member) {
                if (cluster.isRunning(member)) {
                    return null;
                }
                Process process = cluster.process(member);
                return process != null ? Integer.toString(process.exitValue()) : "?";
            }

            @Override
            public boolean healthy(int member) throws Exception {
                return cluster.healthy(member);
            }
        }, RECOVERY_MILLIS, 200);
        if (failure != null) {
            failures.add(failure + " " + elapsed());
            return false;
        }
        note("healthy");
        return true;
    }

    /** What the recovery check reads of the cluster: a seam for its self-test in {@code ChaosCheckersTest}. */
    interface Members {
        int size();

        /** The member's exit status if it has exited ("?" if unknown), null while it runs. */
        String exitStatus(int member);

        boolean healthy(int member) throws Exception;
    }

    /**
     * The recovery checker: polls every member until all are healthy, and returns null then. Otherwise it
     * returns what went wrong: a member that exited (the fault was healed, so nothing stopped it on purpose),
     * or the members still unhealthy when {@code timeoutMillis} ran out.
     */
    static String awaitRecovered(Members members, long timeoutMillis, long pollMillis) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            List<Integer> unhealthy = new ArrayList<>();
            for (int member = 1; member <= members.size(); member++) {
                String exitStatus = members.exitStatus(member);
                if (exitStatus != null) {
                    return "infra" + member + " exited by itself (status " + exitStatus + ")";
                }
                if (!members.healthy(member)) {
                    unhealthy.add(member);
                }
            }
            if (unhealthy.isEmpty()) {
                return null;
            }
            if (System.nanoTime() > deadline) {
                return "members " + unhealthy + " not healthy "
                        + (timeoutMillis % 1000 == 0 ? timeoutMillis / 1000 + " s" : timeoutMillis + " ms")
                        + " after the heal";
            }
            sleep(pollMillis);
        }
    }

    private PeerRelay.Mode mode() {
        PeerRelay.Mode[] modes = PeerRelay.Mode.values();
        return modes[random.nextInt(modes.length)];
    }

    private Set<Integer> others(Set<Integer> group) {
        return IntStream.rangeClosed(1, cluster.size()).filter(m -> !group.contains(m)).boxed()
                .collect(Collectors.toSet());
    }

    private int leader() throws Exception {
        return cluster.leaderIndex();
    }

    private int anyOtherThan(int member) {
        int other = 1 + random.nextInt(cluster.size() - 1);
        return other >= member ? other + 1 : other;
    }

    private void signal(int member, String signal) throws IOException, InterruptedException {
        long pid = cluster.pid(member);
        if (pid != 0) {
            new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start().waitFor();
        }
    }

    private void note(String what) {
        timeline.add(elapsed() + " " + what);
    }

    private String elapsed() {
        return String.format("[%7.1f s]", (System.nanoTime() - startNanos) / 1e9);
    }

    private static void sleep(long millis) throws InterruptedException {
        Thread.sleep(millis);
    }
}
