package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vetcd.it.ClusterProcess.Kv;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import java.net.URI;
import io.vetcd.it.LinearizabilityChecker.Op;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Issue 22: a linearizable read must never miss an acknowledged put, under asymmetric partitions.
 *
 * <p>Three members, each behind a {@link PeerRelay}; six clients run the real etcdctl, each putting
 * its own fresh keys {@code wC-N} through the three members in turn. In the READS scenarios each
 * client also reads (linearizable gets, etcdctl's default) a key some client put before, and now and
 * then its own next key, which does not exist yet. The nemesis: the leader stops <em>receiving</em>
 * from its peers for 6 s (its own sends still go out), then heals; then each of the two followers in
 * turn, 6 s each. After the last heal and a few seconds of quiet, every acknowledged key is read
 * through every member.
 *
 * <p>Checked: (1) no final get misses an acknowledged put, and none fails: the cluster is healthy
 * and quiet by then, so an error (e.g. etcdctl's "context deadline exceeded", which prints no kvs
 * at all and reads as "count 0" to a script) is a failure too; (2) every key's history of puts and
 * gets (during the faults and the final ones) is linearizable ({@link LinearizabilityChecker}),
 * absent results included: a get that finds nothing must not follow the acknowledgement of the put.
 *
 * <p>Scenarios ({@code -Dit.partition.scenarios}, default {@value #DEFAULT_SCENARIOS}): a relay
 * mode ({@link PeerRelay.Mode}: HOLD delivers held bytes late, as behind an iptables DROP; RESET
 * resets connections; BLACKHOLE loses bytes silently) and PUTS (the report's schedule) or READS;
 * a third part, SHAPES, replaces the nemesis by the other shapes of partition, 6 s each: the leader
 * cannot send (it still hears everyone), the leader alone in a minority, a bridge (the leader and a
 * follower both reach the third member, not each other), then a follower that cannot send.
 * {@code -Dit.partition.client=grpc} has the clients speak gRPC themselves instead of running
 * etcdctl (far more operations per second). Runs against vetcd; validated against etcd 3.4 with
 * {@code -Dit.cluster.candidate=etcd}. Histories go to
 * {@code target/it-logs/asymmetric-<candidate>-<mode>-<puts|reads>-history.txt}.
 */
class AsymmetricPartitionIT {

    private static final int CLIENTS = Integer.getInteger("it.partition.clients", 6);
    /**
     * HOLD/PUTS is the schedule of the report (puts only, then the final gets); READS adds gets during
     * the faults, checked by the linearizability checker. {@code -Dit.partition.scenarios} chooses,
     * e.g. {@code HOLD/PUTS,HOLD/READS,RESET/READS,BLACKHOLE/READS}.
     */
    private static final String DEFAULT_SCENARIOS = "HOLD/PUTS,RESET/READS,HOLD/READS/SHAPES";
    private static final long WARMUP_MS = 3000;
    private static final long PARTITION_MS = 6000;
    private static final long SETTLE_MS = 3000;
    private static final long QUIET_MS = 3000;

    /** One client call: {@code revision} is a put's revision or a get's mod_revision (0: absent or failed). */
    record Call(int client, int member, String key, boolean put, String value, long invoke, long response,
            boolean ok, long revision, String error) {
        @Override
        public String toString() {
            return "client " + client + " via infra" + member + ": "
                    + (put ? "put " + key + "=" + value : "get " + key + (ok ? " -> " + value : ""))
                    + (ok ? " @" + revision : " FAILED (" + error + ")") + " [" + invoke + ", "
                    + (response == LinearizabilityChecker.NEVER ? "inf" : response) + "]";
        }
    }

    /** Clients speak gRPC themselves (much faster than an etcdctl process per call) with -Dit.partition.client=grpc. */
    private static final boolean GRPC = "grpc".equals(System.getProperty("it.partition.client", "etcdctl"));

    private PeerRelay relay;
    private Vertx vertx;
    private GrpcClient grpc;
    private final Map<Integer, KVGrpcClient> kvClients = new java.util.HashMap<>();
    private ClusterProcess cluster;
    private ExecutorService pool;

    @AfterEach
    void cleanUp() throws Exception {
        try {
            if (pool != null) {
                pool.shutdownNow();
            }
            if (vertx != null) {
                vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            }
            if (cluster != null) {
                cluster.close();
            }
        } finally {
            if (relay != null) {
                relay.close();
            }
        }
    }

    /** The scenarios: a relay mode, and whether clients also read while the faults go on. */
    static Stream<Arguments> scenarios() {
        Set<String> chosen = Arrays.stream(System.getProperty("it.partition.scenarios", DEFAULT_SCENARIOS).split(","))
                .map(String::trim).map(s -> s.toUpperCase(Locale.ROOT)).collect(Collectors.toSet());
        return Stream.of(PeerRelay.Mode.values())
                .flatMap(mode -> Stream.of("PUTS", "READS").map(load -> mode + "/" + load))
                .flatMap(scenario -> Stream.of(scenario, scenario + "/SHAPES"))
                .filter(chosen::contains)
                .map(scenario -> Arguments.of(PeerRelay.Mode.valueOf(scenario.split("/")[0]),
                        scenario.contains("/READS"), scenario.endsWith("/SHAPES")));
    }

    @ParameterizedTest(name = "{0}, reads during the faults: {1}, other shapes: {2}")
    @MethodSource("scenarios")
    void noAcknowledgedPutIsMissedByALinearizableRead(PeerRelay.Mode mode, boolean readsDuringRun, boolean shapes)
            throws Exception {
        String candidate = ClusterProcess.candidateKind().name().toLowerCase(Locale.ROOT);
        String name = "asymmetric-" + candidate + "-" + mode.name().toLowerCase(Locale.ROOT)
                + (readsDuringRun ? "-reads" : "-puts") + (shapes ? "-shapes" : "");
        relay = PeerRelay.start(ClusterProcess.SIZE);
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), name, relay);
        pool = Executors.newFixedThreadPool(CLIENTS);
        long t0 = System.nanoTime();
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        List<Call> ackedPuts = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean stop = new AtomicBoolean();

        List<Future<?>> clients = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            int client = c;
            clients.add(pool.submit(() -> {
                Random random = new Random(client);
                for (int n = 0; !stop.get(); n++) {
                    String key = "w" + client + "-" + n;
                    Call put = put(client, 1 + (client + n) % ClusterProcess.SIZE, key, "v" + client + "-" + n);
                    calls.add(put);
                    if (put.ok()) {
                        ackedPuts.add(put);
                    }
                    if (!readsDuringRun) {
                        continue;
                    }
                    int readVia = 1 + (client + n + 1) % ClusterProcess.SIZE;
                    String known;
                    synchronized (ackedPuts) {
                        known = ackedPuts.isEmpty() ? key : ackedPuts.get(random.nextInt(ackedPuts.size())).key();
                    }
                    calls.add(get(client, readVia, known));
                    if (n % 4 == 3) {
                        calls.add(get(client, 1 + (client + n + 2) % ClusterProcess.SIZE, "w" + client + "-" + (n + 1)));
                    }
                }
                return null;
            }));
        }

        // The nemesis.
        Thread.sleep(WARMUP_MS);
        List<Integer> victims = new ArrayList<>();
        if (shapes) {
            otherShapes(mode, victims, events, t0);
        } else {
            receiveCuts(mode, victims, events, t0);
        }
        stop.set(true);
        for (Future<?> client : clients) {
            client.get(60, TimeUnit.SECONDS);
        }
        Thread.sleep(QUIET_MS);
        events.add(at(t0) + " quiet; relay: " + relay.stats());

        // The final reads: every acknowledged key through every member, by one linearizable get of all
        // the clients' keys per member (an etcdctl process per key and member took half the test's time).
        List<Call> acked = List.copyOf(ackedPuts);
        List<Call> finalReads = new ArrayList<>();
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            finalReads.addAll(finalGets(m, acked));
        }
        Map<String, Call> putByKey = new LinkedHashMap<>();
        calls.stream().filter(Call::put).forEach(c -> putByKey.put(c.key(), c));
        List<Call> missing = finalReads.stream()
                .filter(r -> r.ok() && r.value() == null).toList();
        long finalFailed = finalReads.stream().filter(r -> !r.ok()).count();
        List<Call> history = new ArrayList<>(calls);
        history.addAll(finalReads);
        String diagnosis = missing.isEmpty() ? "" : diagnose(missing, putByKey);
        writeHistory(name, events, history, diagnosis);

        long failedPuts = calls.stream().filter(c -> c.put() && !c.ok()).count();
        long reads = calls.stream().filter(c -> !c.put() && c.ok()).count();
        long absentReads = calls.stream().filter(c -> !c.put() && c.ok() && c.value() == null).count();
        System.out.printf(Locale.ROOT, "AsymmetricPartitionIT[%s %s]: %d puts acknowledged, %d failed; %d gets answered "
                        + "during the run (%d absent); final gets: %d, %d failed, %d MISSING (%d distinct keys); "
                        + "victims %s; relay: %s%n",
                candidate, mode, acked.size(), failedPuts, reads, absentReads, finalReads.size(), finalFailed,
                missing.size(), missing.stream().map(Call::key).distinct().count(), victims, relay.stats());
        events.forEach(e -> System.out.println("  " + e));

        assertTrue(acked.size() >= 50, "too few acknowledged puts to check anything: " + acked.size());
        assertEquals(0, relay.unidentified(), "the relay could not tell who dialled some connections");
        assertEquals(0, finalFailed, "final gets failed: " + finalReads.stream().filter(r -> !r.ok()).limit(5).toList());
        assertTrue(missing.isEmpty(), () -> missing.size() + " final linearizable gets missed an acknowledged put:\n"
                + diagnosis);

        // Every key's puts and gets, absent answers included, form a linearizable register history.
        Map<String, List<Op>> byKey = new LinkedHashMap<>();
        for (Call call : history) {
            if (!call.put() && !call.ok()) {
                continue; // a failed read tells nothing
            }
            Op op = !call.put() ? Op.read(call.value(), call.invoke(), call.response())
                    : call.ok() ? Op.write(call.value(), call.invoke(), call.response())
                    : Op.maybeWrite(call.value(), call.invoke());
            byKey.computeIfAbsent(call.key(), k -> new ArrayList<>()).add(op.labelled(
                    "(client " + call.client() + " via infra" + call.member() + (call.ok() ? " @" + call.revision() : "") + ")"));
        }
        LinearizabilityChecker.KeyedResult result = LinearizabilityChecker.checkKeys(byKey);
        assertTrue(result.linearizable(), result::explain);
    }

    /** The report's schedule: the leader stops receiving, then each follower in turn. */
    private void receiveCuts(PeerRelay.Mode mode, List<Integer> victims, List<String> events, long t0) throws Exception {
        int leader = cluster.leaderIndex();
        victims.add(leader);
        partition(leader, "leader", mode, events, t0);
        for (int round = 0; round < 2; round++) {
            int currentLeader = cluster.leaderIndex();
            List<Integer> followers = new ArrayList<>();
            for (int m = 1; m <= ClusterProcess.SIZE; m++) {
                if (m != currentLeader) {
                    followers.add(m);
                }
            }
            // Each follower in turn: one not cut in an earlier follower round, the old leader last.
            followers.sort((a, b) -> Boolean.compare(victims.subList(1, victims.size()).contains(a),
                    victims.subList(1, victims.size()).contains(b)) * 2 + Boolean.compare(a == leader, b == leader));
            int follower = followers.get(0);
            victims.add(follower);
            partition(follower, "follower", mode, events, t0);
        }
    }

    /**
     * The other shapes, each against whoever leads at the time: the leader cannot send; the leader alone
     * in a minority; a bridge whose ends are the leader and a follower; a follower that cannot send.
     */
    private void otherShapes(PeerRelay.Mode mode, List<Integer> victims, List<String> events, long t0) throws Exception {
        int leader = cluster.leaderIndex();
        victims.add(leader);
        fault(events, t0, "infra" + leader + " (leader) cannot send (" + mode + ")", () -> relay.blockSend(leader, mode));
        int leader2 = cluster.leaderIndex();
        victims.add(leader2);
        Set<Integer> others = new HashSet<>();
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            if (m != leader2) {
                others.add(m);
            }
        }
        fault(events, t0, "infra" + leader2 + " (leader) alone in a minority (" + mode + ")",
                () -> relay.split(Set.of(leader2), others, mode));
        int leader3 = cluster.leaderIndex();
        List<Integer> followers = new ArrayList<>();
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            if (m != leader3) {
                followers.add(m);
            }
        }
        victims.add(leader3);
        fault(events, t0, "bridge: infra" + leader3 + " (leader) and infra" + followers.get(0) + " reach only infra"
                + followers.get(1) + " (" + mode + ")", () -> relay.bridge(leader3, followers.get(1), followers.get(0), mode));
        int leader4 = cluster.leaderIndex();
        int follower = leader4 == 1 ? 2 : 1;
        victims.add(follower);
        fault(events, t0, "infra" + follower + " (follower) cannot send (" + mode + ")", () -> relay.blockSend(follower, mode));
    }

    /** Applies a fault for {@link #PARTITION_MS}, then heals and lets things settle. */
    private void fault(List<String> events, long t0, String what, Runnable cut) throws InterruptedException {
        events.add(at(t0) + " " + what);
        cut.run();
        Thread.sleep(PARTITION_MS);
        relay.heal();
        events.add(at(t0) + " healed; relay: " + relay.stats());
        Thread.sleep(SETTLE_MS);
    }

    /** Cuts what {@code victim} receives for {@link #PARTITION_MS}, then heals and lets things settle. */
    private void partition(int victim, String role, PeerRelay.Mode mode, List<String> events, long t0)
            throws InterruptedException {
        fault(events, t0, "infra" + victim + " (" + role + ") stops receiving (" + mode + ")",
                () -> relay.blockReceive(victim, mode));
    }

    private static String at(long t0) {
        return String.format(Locale.ROOT, "t=%6.2fs", (System.nanoTime() - t0) / 1e9);
    }

    private Call put(int client, int member, String key, String value) throws Exception {
        if (GRPC) {
            return grpcPut(client, member, key, value);
        }
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
        if (GRPC) {
            return grpcGet(client, member, key);
        }
        long invoke = System.nanoTime();
        Etcdctl.Result get = Etcdctl.run(cluster.endpoint(member), "get", key, "-w", "json");
        long response = System.nanoTime();
        if (!get.ok()) {
            return new Call(client, member, key, false, null, invoke, response, false, 0, lastLine(get.stderr()));
        }
        List<Kv> kvs = ClusterProcess.kvs(get.stdout());
        return kvs.isEmpty()
                ? new Call(client, member, key, false, null, invoke, response, true, ClusterProcess.headerRevision(get.stdout()), "")
                : new Call(client, member, key, false, kvs.get(0).value(), invoke, response, true,
                        kvs.get(0).modRevision(), "");
    }

    /**
     * One linearizable get of the prefix {@code w} (every client's keys) through {@code member}, read as
     * one get per acknowledged key, all with that call's invocation and response times.
     */
    private List<Call> finalGets(int member, List<Call> acked) throws Exception {
        long invoke = System.nanoTime();
        Map<String, Kv> found = new java.util.HashMap<>();
        String error = "";
        boolean ok;
        long revision = 0;
        if (GRPC) {
            try {
                RangeResponse response = kv(member).range(RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8("w"))
                        .setRangeEnd(ByteString.copyFromUtf8("x")).build())
                        .timeout(30, TimeUnit.SECONDS).toCompletionStage().toCompletableFuture().get();
                response.getKvsList().forEach(kv -> found.put(kv.getKey().toStringUtf8(), new Kv(kv.getKey().toStringUtf8(),
                        kv.getValue().toStringUtf8(), kv.getCreateRevision(), kv.getModRevision(), kv.getVersion())));
                revision = response.getHeader().getRevision();
                ok = true;
            } catch (java.util.concurrent.ExecutionException e) {
                ok = false;
                error = String.valueOf(e.getCause());
            }
        } else {
            Etcdctl.Result get = Etcdctl.run(cluster.endpoint(member), "get", "--prefix", "w", "-w", "json");
            ok = get.ok();
            if (ok) {
                ClusterProcess.kvs(get.stdout()).forEach(kv -> found.put(kv.key(), kv));
                revision = ClusterProcess.headerRevision(get.stdout());
            } else {
                error = lastLine(get.stderr());
            }
        }
        long response = System.nanoTime();
        List<Call> reads = new ArrayList<>();
        for (Call put : acked) {
            Kv kv = found.get(put.key());
            reads.add(!ok ? new Call(-1, member, put.key(), false, null, invoke, response, false, 0, error)
                    : kv == null ? new Call(-1, member, put.key(), false, null, invoke, response, true, revision, "")
                    : new Call(-1, member, put.key(), false, kv.value(), invoke, response, true, kv.modRevision(), ""));
        }
        return reads;
    }

    private KVGrpcClient kv(int member) {
        synchronized (this) {
            if (vertx == null) {
                vertx = Vertx.vertx();
                grpc = GrpcClient.client(vertx);
            }
            return kvClients.computeIfAbsent(member, m -> {
                URI endpoint = URI.create(cluster.endpoint(m));
                return KVGrpcClient.create(grpc, SocketAddress.inetSocketAddress(endpoint.getPort(), endpoint.getHost()));
            });
        }
    }

    private Call grpcPut(int client, int member, String key, String value) throws Exception {
        long invoke = System.nanoTime();
        try {
            PutResponse response = kv(member).put(PutRequest.newBuilder().setKey(ByteString.copyFromUtf8(key))
                    .setValue(ByteString.copyFromUtf8(value)).build())
                    .timeout(5, TimeUnit.SECONDS).toCompletionStage().toCompletableFuture().get();
            return new Call(client, member, key, true, value, invoke, System.nanoTime(), true,
                    response.getHeader().getRevision(), "");
        } catch (java.util.concurrent.ExecutionException e) {
            return new Call(client, member, key, true, value, invoke, LinearizabilityChecker.NEVER, false, 0,
                    String.valueOf(e.getCause()));
        }
    }

    private Call grpcGet(int client, int member, String key) throws Exception {
        long invoke = System.nanoTime();
        try {
            RangeResponse response = kv(member).range(RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8(key)).build())
                    .timeout(5, TimeUnit.SECONDS).toCompletionStage().toCompletableFuture().get();
            long response_ = System.nanoTime();
            return response.getKvsCount() == 0
                    ? new Call(client, member, key, false, null, invoke, response_, true, response.getHeader().getRevision(), "")
                    : new Call(client, member, key, false, response.getKvs(0).getValue().toStringUtf8(), invoke, response_,
                            true, response.getKvs(0).getModRevision(), "");
        } catch (java.util.concurrent.ExecutionException e) {
            return new Call(client, member, key, false, null, invoke, System.nanoTime(), false, 0, String.valueOf(e.getCause()));
        }
    }

    /** For each missed key: its put, and what each member holds at its revision and serializably now. */
    private String diagnose(List<Call> missing, Map<String, Call> putByKey) throws Exception {
        StringBuilder out = new StringBuilder();
        Set<String> seen = new HashSet<>();
        for (Call read : missing) {
            out.append("  MISSED: ").append(read).append(" (header revision ").append(read.revision()).append(")\n");
            if (!seen.add(read.key()) || seen.size() > 10) {
                continue;
            }
            Call put = putByKey.get(read.key());
            out.append("    its put: ").append(put).append('\n');
            for (int m = 1; m <= ClusterProcess.SIZE; m++) {
                Etcdctl.Result atRev = Etcdctl.run(cluster.endpoint(m), "get", read.key(), "--rev=" + put.revision(),
                        "-w", "json");
                Etcdctl.Result serializable = Etcdctl.run(cluster.endpoint(m), "get", read.key(),
                        "--consistency=s", "-w", "json");
                Etcdctl.Result linearizable = Etcdctl.run(cluster.endpoint(m), "get", read.key(), "-w", "json");
                out.append("    infra").append(m).append(": --rev=").append(put.revision()).append(' ')
                        .append(ClusterProcess.kvs(atRev.stdout())).append(", serializable ")
                        .append(ClusterProcess.kvs(serializable.stdout())).append(", linearizable again ")
                        .append(ClusterProcess.kvs(linearizable.stdout())).append('\n');
            }
        }
        return out.toString();
    }

    private static void writeHistory(String name, List<String> events, List<Call> history, String diagnosis)
            throws Exception {
        Path file = MemberProcess.LOG_DIR.resolve(name + "-history.txt");
        StringBuilder text = new StringBuilder();
        events.forEach(e -> text.append(e).append('\n'));
        history.stream().sorted((a, b) -> Long.compare(a.invoke(), b.invoke()))
                .forEach(c -> text.append(c).append('\n'));
        text.append(diagnosis);
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }

    private static String lastLine(String text) {
        List<String> lines = text.strip().lines().toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }
}
