package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Durability: every put the server acknowledged before a kill -9 must be there, at the revision it
 * was acknowledged with, after a restart on the same data dir.
 */
class CrashRecoveryIT {

    private static final int TOTAL_PUTS = 300;
    private static final int KILL_AFTER_ACKS = 150;
    private static final int CLIENTS = 8;
    private static final Pattern HEADER_REVISION = Pattern.compile("\"header\":\\{[^}]*\"revision\":(\\d+)");
    private static final Pattern MOD_REVISION = Pattern.compile("\"mod_revision\":(\\d+)");
    private static final Pattern VERSION = Pattern.compile("\"version\":(\\d+)");
    private static final Pattern VALUE = Pattern.compile("\"value\":\"([^\"]*)\"");

    private MemberProcess member;
    private ExecutorService clients;

    @AfterEach
    void cleanUp() throws Exception {
        try {
            if (clients != null) {
                clients.shutdownNow();
            }
        } finally {
            if (member != null) {
                member.close();
            }
        }
    }

    @Test
    void acknowledgedPutsSurviveKill9() throws Exception {
        member = MemberProcess.start(MemberProcess.candidateKind(), "crash-recovery-"
                + MemberProcess.candidateKind().name().toLowerCase());
        String endpoint = member.endpoint();
        clients = Executors.newFixedThreadPool(CLIENTS);

        // Concurrent etcdctl processes put k<i>=v<i>; a put counts only once etcdctl exited 0,
        // i.e. the server answered, and we keep the revision that answer carried.
        Map<Integer, Long> acknowledged = new ConcurrentHashMap<>();
        List<String> unexpected = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger nextKey = new AtomicInteger();
        AtomicBoolean killed = new AtomicBoolean();
        CountDownLatch enoughAcks = new CountDownLatch(KILL_AFTER_ACKS);
        List<Future<?>> workers = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            workers.add(clients.submit(() -> {
                int i;
                while (!killed.get() && (i = nextKey.getAndIncrement()) < TOTAL_PUTS) {
                    Etcdctl.Result put = Etcdctl.run(endpoint, "put", "k" + i, "v" + i, "-w", "json");
                    if (put.ok()) {
                        acknowledged.put(i, Long.parseLong(find(HEADER_REVISION, put.stdout(), "put k" + i)));
                        enoughAcks.countDown();
                    } else if (!killed.get()) {
                        unexpected.add("put k" + i + " failed before the kill: " + put);
                    }
                }
                return null;
            }));
        }

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!enoughAcks.await(50, TimeUnit.MILLISECONDS)) {
            // Give up early when every client has stopped (e.g. all puts are being rejected).
            if (workers.stream().allMatch(Future::isDone) || System.nanoTime() > deadline) {
                fail("only " + acknowledged.size() + " puts acknowledged; failures: " + unexpected
                        + "\n" + member.logTail());
            }
        }
        killed.set(true); // first, so failures caused by the kill aren't reported as unexpected
        member.kill9(); // while the other clients still have puts in flight
        for (Future<?> worker : workers) {
            worker.get(120, TimeUnit.SECONDS); // a put stuck on the dead server ends at etcdctl's timeout
        }
        assertEquals(List.of(), unexpected, "puts failed while the server was up");
        assertTrue(acknowledged.size() < TOTAL_PUTS, "all puts finished before the kill; the crash tested nothing");

        System.out.printf("CrashRecoveryIT: %d of %d puts acknowledged before kill -9 (highest revision %d)%n",
                acknowledged.size(), TOTAL_PUTS, Collections.max(acknowledged.values()));
        assertEquals(acknowledged.size(), new HashSet<>(acknowledged.values()).size(),
                "two acknowledged puts share a revision: " + acknowledged);

        member.restart();

        List<Future<String>> checks = new ArrayList<>();
        for (Map.Entry<Integer, Long> ack : acknowledged.entrySet()) {
            checks.add(clients.submit(() -> check(endpoint, ack.getKey(), ack.getValue())));
        }
        List<String> lost = new ArrayList<>();
        for (Future<String> check : checks) {
            String problem = check.get(60, TimeUnit.SECONDS);
            if (problem != null) {
                lost.add(problem);
            }
        }
        assertEquals(List.of(), lost, lost.size() + " of " + acknowledged.size()
                + " acknowledged puts are wrong after restart\n" + member.logTail());

        // The revision counter must carry on from the recovered state, not restart or reuse revisions.
        long highestAcked = Collections.max(acknowledged.values());
        Etcdctl.Result after = Etcdctl.run(endpoint, "put", "after-restart", "x", "-w", "json");
        assertTrue(after.ok(), "put after restart: " + after);
        long afterRevision = Long.parseLong(find(HEADER_REVISION, after.stdout(), "put after-restart"));
        assertTrue(afterRevision > highestAcked,
                "put after restart got revision " + afterRevision + ", not above acknowledged " + highestAcked);
    }

    /** Null when k<i> reads back as acknowledged (value v<i>, mod_revision = acked revision, version 1). */
    private static String check(String endpoint, int i, long ackedRevision) throws Exception {
        Etcdctl.Result get = Etcdctl.run(endpoint, "get", "k" + i, "-w", "json");
        if (!get.ok() || !get.stdout().contains("\"kvs\"")) {
            return "k" + i + " (acked at revision " + ackedRevision + ") missing: " + get;
        }
        String value = new String(Base64.getDecoder().decode(find(VALUE, get.stdout(), "get k" + i)),
                StandardCharsets.UTF_8);
        long modRevision = Long.parseLong(find(MOD_REVISION, get.stdout(), "get k" + i));
        String version = find(VERSION, get.stdout(), "get k" + i);
        if (!value.equals("v" + i) || modRevision != ackedRevision || !version.equals("1")) {
            return "k" + i + " acked at revision " + ackedRevision + " reads back as value=" + value
                    + " mod_revision=" + modRevision + " version=" + version;
        }
        return null;
    }

    private static String find(Pattern pattern, String json, String what) {
        Matcher m = pattern.matcher(json);
        if (!m.find()) {
            fail("no " + pattern + " in output of " + what + ": " + json);
        }
        return m.group(1);
    }
}
