package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vetcd.it.ClusterProcess.Kv;
import io.vetcd.it.LinearizabilityChecker.Op;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Concurrent clients against a 3-member cluster while the leader is killed with {@code kill -9}
 * and restarted; then the recorded history is checked (issue 3, "Done when"):
 * <ul>
 *   <li>every acknowledged put is in the store exactly once, at the revision it was acknowledged
 *       with, and the store holds no value nobody wrote — found by walking each key's versions back
 *       with {@code get --rev};</li>
 *   <li>each key's history of puts and linearizable gets is linearizable as a register
 *       ({@link LinearizabilityChecker}): in particular no read returns older data than a write
 *       acknowledged before the read started. A put that failed or timed out may or may not have
 *       taken effect, at any time after its invocation.</li>
 * </ul>
 * Each client runs etcdctl put/get on 3 shared keys, one member after the other, so that at any time
 * the clients go through different members; puts write unique values, so a value read names its put.
 *
 * <p>Runs against vetcd by default; validated against real etcd 3.4 with
 * {@code -Dit.cluster.candidate=etcd}.
 */
class LinearizabilityIT {

    private static final int CLIENTS = 4;
    private static final int OPS_PER_CLIENT = 50;
    private static final List<String> KEYS = List.of("lin/a", "lin/b", "lin/c");
    /** The leader is killed once this many ops have completed, and restarted after this many more. */
    private static final int KILL_AFTER_OPS = 50;
    private static final int RESTART_AFTER_MORE_OPS = 50;

    /** One client call as recorded: {@code revision} is a put's new revision or a read's mod_revision (0: absent). */
    record Call(int client, int member, String key, boolean put, String value, long invoke, long response,
            boolean ok, long revision, String error) {
        @Override
        public String toString() {
            return "client " + client + " via infra" + member + ": " + (put ? "put " + key + "=" + value : "get " + key
                    + (ok ? " -> " + value : "")) + (ok ? " @" + revision : " FAILED (" + error + ")")
                    + " [" + invoke + ", " + response + "]";
        }
    }

    private ClusterProcess cluster;
    private ExecutorService clients;

    @AfterEach
    void cleanUp() throws Exception {
        try {
            if (clients != null) {
                clients.shutdownNow();
            }
        } finally {
            if (cluster != null) {
                cluster.close();
            }
        }
    }

    @Test
    void historyWithLeaderKilledAndRestartedIsLinearizable() throws Exception {
        String candidate = ClusterProcess.candidateKind().name().toLowerCase();
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "linearizability-" + candidate);
        clients = Executors.newFixedThreadPool(CLIENTS);
        List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger completed = new AtomicInteger();

        List<Future<?>> workers = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            int client = c;
            workers.add(clients.submit(() -> {
                Random random = new Random(client);
                for (int n = 0; n < OPS_PER_CLIENT; n++) {
                    int member = 1 + (client + n) % ClusterProcess.SIZE;
                    String key = KEYS.get(random.nextInt(KEYS.size()));
                    calls.add(random.nextBoolean()
                            ? put(client, member, key, "c" + client + "-" + n)
                            : get(client, member, key));
                    completed.incrementAndGet();
                }
                return null;
            }));
        }

        // The nemesis: kill -9 the leader in the middle of the run, bring it back a while later.
        awaitOps(completed, KILL_AFTER_OPS, workers);
        int victim = cluster.leaderIndex();
        long killedAt = System.nanoTime();
        cluster.kill9(victim);
        awaitOps(completed, KILL_AFTER_OPS + RESTART_AFTER_MORE_OPS, workers);
        long restartedAt = System.nanoTime();
        cluster.restart(victim);
        long healthyAt = System.nanoTime();
        for (Future<?> worker : workers) {
            worker.get(300, TimeUnit.SECONDS);
        }
        int opsAfterRestart = (int) calls.stream().filter(call -> call.invoke() > healthyAt).count();

        List<Call> history = List.copyOf(calls);
        writeHistory(candidate, history);
        List<Call> ackedPuts = history.stream().filter(call -> call.put() && call.ok()).toList();
        long failedPuts = history.stream().filter(call -> call.put() && !call.ok()).count();
        List<Call> reads = history.stream().filter(call -> !call.put() && call.ok()).toList();
        System.out.printf("LinearizabilityIT[%s]: %d ops: %d puts acknowledged, %d puts failed (maybe), "
                        + "%d gets answered, %d failed; leader infra%d killed at op %d, down %d ms, healthy again "
                        + "after %d ms; %d ops invoked after that%n",
                candidate, history.size(), ackedPuts.size(), failedPuts, reads.size(),
                history.size() - ackedPuts.size() - failedPuts - reads.size(), victim, KILL_AFTER_OPS,
                TimeUnit.NANOSECONDS.toMillis(restartedAt - killedAt),
                TimeUnit.NANOSECONDS.toMillis(healthyAt - restartedAt), opsAfterRestart);
        assertTrue(ackedPuts.size() >= 30 && reads.size() >= 30, "too few successful ops to check anything");
        assertTrue(opsAfterRestart > 0, "no op ran after the restart");

        // 1. Every acknowledged put exactly once, at its revision; nothing else in the store.
        assertEquals(ackedPuts.size(), ackedPuts.stream().map(Call::revision).distinct().count(),
                "two acknowledged puts share a revision");
        Map<String, List<Kv>> versions = new HashMap<>();
        for (String key : KEYS) {
            versions.put(key, versionsOf(key));
        }
        for (Call put : ackedPuts) {
            List<Kv> matching = versions.get(put.key()).stream().filter(kv -> kv.value().equals(put.value())).toList();
            assertEquals(List.of(put.revision()), matching.stream().map(Kv::modRevision).toList(),
                    "the revisions holding the acknowledged " + put + " (history of " + put.key() + ": "
                            + versions.get(put.key()) + ")");
        }
        Map<String, Call> putsByValue = history.stream().filter(Call::put)
                .collect(Collectors.toMap(Call::value, call -> call));
        for (Map.Entry<String, List<Kv>> key : versions.entrySet()) {
            for (Kv kv : key.getValue()) {
                Call put = putsByValue.get(kv.value());
                assertTrue(put != null && put.key().equals(key.getKey()),
                        "the store holds " + kv + ", which no client put");
                long times = key.getValue().stream().filter(other -> other.value().equals(kv.value())).count();
                assertEquals(1, times, "the value of " + put + " is in " + times + " revisions: " + key.getValue());
            }
        }
        // Reads returned what the store held at the revision they name.
        for (Call read : reads) {
            if (read.value() != null) {
                boolean held = versions.get(read.key()).stream()
                        .anyMatch(kv -> kv.modRevision() == read.revision() && kv.value().equals(read.value()));
                assertTrue(held, read + " names a revision that did not hold that value: " + versions.get(read.key()));
            }
        }

        // 2. Per key, puts and linearizable gets form a linearizable register history.
        for (String key : KEYS) {
            List<Op> ops = new ArrayList<>();
            for (Call call : history) {
                if (!call.key().equals(key) || (!call.put() && !call.ok())) {
                    continue; // a failed read tells nothing
                }
                Op op = !call.put() ? Op.read(call.value(), call.invoke(), call.response())
                        : call.ok() ? Op.write(call.value(), call.invoke(), call.response())
                        : Op.maybeWrite(call.value(), call.invoke());
                ops.add(op.labelled("(client " + call.client() + " via infra" + call.member()
                        + (call.ok() ? " @" + call.revision() : "") + ")"));
            }
            long start = System.nanoTime();
            LinearizabilityChecker.Result result = LinearizabilityChecker.check(ops, null);
            System.out.printf("LinearizabilityIT[%s]: %s: %d ops, %d versions, linearizable=%s (checked in %d ms)%n",
                    candidate, key, ops.size(), versions.get(key).size(), result.linearizable(),
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
            assertTrue(result.linearizable(), () -> key + ": " + result.explain());
        }
    }

    private Call put(int client, int member, String key, String value) throws Exception {
        long invoke = System.nanoTime();
        Etcdctl.Result put = Etcdctl.run(cluster.endpoint(member), "put", key, value, "-w", "json");
        long response = System.nanoTime();
        return put.ok()
                ? new Call(client, member, key, true, value, invoke, response, true,
                        ClusterProcess.headerRevision(put.stdout()), "")
                : new Call(client, member, key, true, value, invoke, LinearizabilityChecker.NEVER, false, 0,
                        lastLine(put.stderr()));
    }

    /** A linearizable get (etcdctl's default). */
    private Call get(int client, int member, String key) throws Exception {
        long invoke = System.nanoTime();
        Etcdctl.Result get = Etcdctl.run(cluster.endpoint(member), "get", key, "-w", "json");
        long response = System.nanoTime();
        if (!get.ok()) {
            return new Call(client, member, key, false, null, invoke, response, false, 0, lastLine(get.stderr()));
        }
        List<Kv> kvs = ClusterProcess.kvs(get.stdout());
        return kvs.isEmpty()
                ? new Call(client, member, key, false, null, invoke, response, true, 0, "")
                : new Call(client, member, key, false, kvs.get(0).value(), invoke, response, true,
                        kvs.get(0).modRevision(), "");
    }

    /**
     * Every version the store holds for {@code key}, newest first: the current one, then, from each,
     * the key as it was just before its mod_revision ({@code get --rev}), down to its creation.
     */
    private List<Kv> versionsOf(String key) throws Exception {
        List<Kv> versions = new ArrayList<>();
        Etcdctl.Result current = Etcdctl.run(cluster.endpoints(), "get", key, "-w", "json");
        assertTrue(current.ok(), current::toString);
        List<Kv> kvs = ClusterProcess.kvs(current.stdout());
        while (!kvs.isEmpty()) {
            Kv kv = kvs.get(0);
            versions.add(kv);
            Etcdctl.Result older = Etcdctl.run(cluster.endpoints(), "get", key, "-w", "json",
                    "--rev=" + (kv.modRevision() - 1));
            assertTrue(older.ok(), older::toString);
            kvs = ClusterProcess.kvs(older.stdout());
        }
        if (!versions.isEmpty()) {
            assertEquals(versions.get(0).version(), versions.size(), "versions of " + key + ": " + versions);
        }
        return versions;
    }

    private void awaitOps(AtomicInteger completed, int count, List<Future<?>> workers) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (completed.get() < count) {
            if (workers.stream().allMatch(Future::isDone) || System.nanoTime() > deadline) {
                for (Future<?> worker : workers) {
                    if (worker.isDone()) {
                        worker.get(); // surfaces a client's exception
                    }
                }
                fail("only " + completed.get() + " ops completed, waiting for " + count + "\n" + cluster.logTails());
            }
            Thread.sleep(20);
        }
    }

    /** The whole history, for post-mortems: target/it-logs/linearizability-<candidate>-history.txt. */
    private static void writeHistory(String candidate, List<Call> history) throws Exception {
        Path file = MemberProcess.LOG_DIR.resolve("linearizability-" + candidate + "-history.txt");
        Files.writeString(file, history.stream()
                .sorted((a, b) -> Long.compare(a.invoke(), b.invoke()))
                .map(Call::toString)
                .collect(Collectors.joining("\n", "", "\n")), StandardCharsets.UTF_8);
    }

    private static String lastLine(String text) {
        List<String> lines = text.strip().lines().toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }
}
