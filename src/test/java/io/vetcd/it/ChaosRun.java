package io.vetcd.it;

import com.google.protobuf.ByteString;
import io.vetcd.it.ChaosClients.Kind;
import io.vetcd.it.ChaosClients.Op;
import io.vetcd.it.ChaosWatchers.Ev;
import io.vetcd.it.LinearizabilityChecker.KeyedResult;
import io.vetcd.proto.etcdserverpb.HashKVRequest;
import io.vetcd.proto.etcdserverpb.HashKVResponse;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.MaintenanceGrpcClient;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * A chaos run (issue 16): a local cluster whose peer traffic goes through {@link PeerRelay}, clients
 * through every member ({@link ChaosClients}), a watcher on every member ({@link ChaosWatchers}), a
 * lease kept alive ({@link ChaosLeases}), and the {@link ChaosNemesis} injecting faults for the
 * run's length. Then everything is healed and every checker gives its verdict ({@link Verdict}):
 * <ul>
 *   <li>recovery: after each fault every member was healthy again within a minute, none exited by
 *       itself;</li>
 *   <li>linearizable: each key's history of puts, gets, deletes and compare-and-sets;</li>
 *   <li>acknowledged writes: each at its revision in the store's history, nothing nobody wrote;</li>
 *   <li>converged: every member has the same history of the keys (a watch from the first revision)
 *       and the same HashKV at the final revision;</li>
 *   <li>watches: each member's watcher kept etcd's watch guarantees;</li>
 *   <li>leases: a key whose lease was kept alive never went early.</li>
 * </ul>
 * The report (and the histories, for post-mortems) go to {@code target/it-logs/chaos-<name>-*}.
 */
final class ChaosRun {

    /** What to run: {@code faults} as {@link ChaosNemesis.Fault#parse} reads them. */
    record Settings(String name, MemberProcess.Kind kind, int members, Duration length, long seed,
            List<ChaosNemesis.Fault> faults, int clients, double opsPerSecondEach) {

        /** From system properties {@code chaos.*}, with the given defaults. */
        static Settings fromProperties(String name, int members, Duration length) {
            return new Settings(
                    System.getProperty("chaos.name", name),
                    ClusterProcess.candidateKind(),
                    members,
                    Duration.ofSeconds(Long.getLong("chaos.seconds", length.toSeconds())),
                    Long.getLong("chaos.seed", System.nanoTime() % 1_000_000),
                    ChaosNemesis.Fault.parse(System.getProperty("chaos.faults", "all")),
                    Integer.getInteger("chaos.clients", 6),
                    Double.parseDouble(System.getProperty("chaos.rate", "20")));
        }
    }

    /** One checker's verdict: its violations (empty: it passed) and what it looked at. */
    record Check(String name, String scope, List<String> violations) {
        boolean passed() {
            return violations.isEmpty();
        }
    }

    /** Every checker's verdict, and the run's report. */
    record Verdict(List<Check> checks, String report) {
        boolean passed() {
            return checks.stream().allMatch(Check::passed);
        }
    }

    private static final long FINAL_WAIT_MILLIS = 60_000;

    private ChaosRun() {
    }

    static Verdict run(Settings settings) throws Exception {
        long started = System.nanoTime();
        try (PeerRelay relay = PeerRelay.start(settings.members());
                ClusterProcess cluster = ClusterProcess.start(settings.kind(), "chaos-" + settings.name(),
                        settings.members(), relay, "--snapshot-count", "1000");
                ChaosGrpc grpc = new ChaosGrpc(cluster)) {
            List<Integer> members = IntStream.rangeClosed(1, settings.members()).boxed().toList();
            long firstRevision = revision(grpc, 1) + 1;
            ChaosWatchers watchers = new ChaosWatchers(grpc, members, firstRevision);
            ChaosClients clients = new ChaosClients(cluster, grpc, settings.clients(), settings.opsPerSecondEach(),
                    settings.seed());
            ChaosLeases leases = new ChaosLeases(cluster, grpc, settings.seed());
            ChaosNemesis nemesis = new ChaosNemesis(cluster, relay, settings.seed(), settings.faults());
            watchers.start();
            clients.start();
            leases.start();
            try {
                try {
                    nemesis.run(System.nanoTime() + settings.length().toNanos());
                } finally {
                    nemesis.heal();
                }
                nemesis.awaitRecovered();
            } finally {
                clients.stop();
                leases.stop();
            }

            List<Check> checks = new ArrayList<>();
            checks.add(new Check("recovery", nemesis.injected() + " faults, every member healthy within "
                    + ChaosNemesis.RECOVERY_MILLIS / 1000 + " s of each heal", nemesis.failures()));
            List<Op> history = clients.history();
            checks.add(check("linearizable", () -> linearizability(history)));

            long finalRevision = revision(grpc, 1);
            List<Ev> reference = List.of();
            try {
                Map<Integer, List<Ev>> references = references(grpc, members, firstRevision, finalRevision);
                reference = references.get(1);
                checks.add(check("converged", () -> convergence(grpc, cluster, references, finalRevision)));
                List<Ev> history1 = reference;
                checks.add(new Check("acknowledged writes", AcknowledgedWrites.acknowledged(history)
                        + " acknowledged writes against the history of " + reference.size() + " changes",
                        AcknowledgedWrites.check(history, reference)));
                checks.add(check("watches", () -> watches(watchers, history1, finalRevision)));
            } catch (IllegalStateException noHistory) {
                checks.add(new Check("converged", "no history of the keys to check against",
                        List.of(noHistory.getMessage())));
            } finally {
                watchers.close();
            }
            writeWatches(settings, watchers);
            List<ChaosLeases.Event> leaseEvents = leases.events();
            checks.add(new Check("leases", leaseEvents.stream().filter(e -> e.type() == ChaosLeases.Type.KEPT).count()
                    + " keep-alives, " + leaseEvents.stream().filter(e -> e.type() == ChaosLeases.Type.GONE).count()
                    + " leases found gone", ChaosLeases.check(leaseEvents)));

            String report = report(settings, started, history, nemesis, checks);
            writeFiles(settings, report, history, nemesis, reference);
            return new Verdict(checks, report);
        }
    }

    /** A checker that could not finish (e.g. a history too large to search) fails with the reason. */
    private static Check check(String name, java.util.concurrent.Callable<Check> checker) {
        try {
            return checker.call();
        } catch (Exception e) {
            return new Check(name, "could not finish", List.of("the check failed: " + e));
        }
    }

    private static Check linearizability(List<Op> history) {
        Map<String, List<LinearizabilityChecker.Op>> byKey = new TreeMap<>();
        for (Op op : history) {
            LinearizabilityChecker.Op checked = switch (op.kind()) {
                case GET -> op.ok() ? LinearizabilityChecker.Op.read(op.value(), op.invoke(), op.response()) : null;
                case PUT -> op.ok() ? LinearizabilityChecker.Op.write(op.value(), op.invoke(), op.response())
                        : LinearizabilityChecker.Op.maybeWrite(op.value(), op.invoke());
                case DELETE -> op.ok() ? LinearizabilityChecker.Op.write(null, op.invoke(), op.response())
                        : LinearizabilityChecker.Op.maybeWrite(null, op.invoke());
                case CAS -> op.ok() ? LinearizabilityChecker.Op.cas(op.expected(), op.value(), op.invoke(), op.response())
                        : LinearizabilityChecker.Op.maybeCas(op.expected(), op.value(), op.invoke());
            };
            if (checked != null) {
                byKey.computeIfAbsent(op.key(), k -> new ArrayList<>()).add(checked.labelled("(client " + op.client()
                        + " via infra" + op.member() + (op.ok() ? " @" + op.revision() : "") + ")"));
            }
        }
        KeyedResult result = LinearizabilityChecker.checkKeys(byKey);
        long answered = history.stream().filter(Op::ok).count();
        return new Check("linearizable", history.size() + " operations (" + answered + " answered) on " + byKey.size()
                + " keys", result.linearizable() ? List.of() : List.of(result.explain()));
    }

    /**
     * Every member's history of the chaos keys, from a new watch on each from {@code firstRevision}
     * until a progress notification at {@code finalRevision} or later says it has all of it.
     */
    private static Map<Integer, List<Ev>> references(ChaosGrpc grpc, List<Integer> members, long firstRevision,
            long finalRevision) throws InterruptedException {
        ChaosWatchers reference = new ChaosWatchers(grpc, members, firstRevision);
        reference.start();
        try {
            if (!reference.awaitProgress(finalRevision, FINAL_WAIT_MILLIS)) {
                throw new IllegalStateException("a watch from revision " + firstRevision + " on each member was not "
                        + "notified of progress at the final revision " + finalRevision + " within "
                        + FINAL_WAIT_MILLIS / 1000 + " s: " + reference.watchers().stream()
                        .map(w -> "infra" + w.member + " at " + w.progressRevision()).toList());
            }
            Map<Integer, List<Ev>> events = new LinkedHashMap<>();
            // A write whose client gave up may still be applied after the final revision: not compared.
            reference.watchers().forEach(w -> events.put(w.member, w.events().stream()
                    .filter(e -> e.mod() <= finalRevision).toList()));
            return events;
        } finally {
            reference.close();
        }
    }

    /** The same history on every member, and the same HashKV at the final revision. */
    private static Check convergence(ChaosGrpc grpc, ClusterProcess cluster, Map<Integer, List<Ev>> references,
            long finalRevision) throws Exception {
        List<Ev> first = references.get(1);
        List<String> violations = new ArrayList<>(historiesDiffer(references));
        Map<Integer, String> hashes = new TreeMap<>();
        for (int member = 1; member <= cluster.size(); member++) {
            awaitApplied(grpc, member, finalRevision);
            try {
                HashKVResponse hash = grpc.call(member, MaintenanceGrpcClient.HashKV,
                        HashKVRequest.newBuilder().setRevision(finalRevision).build(), 30_000);
                hashes.put(member, Integer.toUnsignedString(hash.getHash()) + " (compact revision "
                        + hash.getCompactRevision() + ")");
            } catch (ChaosGrpc.CallFailed e) {
                violations.add("HashKV of infra" + member + " failed: " + e.getMessage());
            }
        }
        if (hashes.values().stream().distinct().count() > 1) {
            violations.add("HashKV at revision " + finalRevision + " differs: " + hashes);
        }
        return new Check("converged", references.size() + " members: history of " + first.size()
                + " changes, HashKV at revision " + finalRevision + " " + hashes.values().stream().distinct()
                .collect(Collectors.joining(", ")), violations);
    }

    /** Where each member's history of the keys differs from the first member's; empty: they are the same. */
    static List<String> historiesDiffer(Map<Integer, List<Ev>> references) {
        List<String> violations = new ArrayList<>();
        Map.Entry<Integer, List<Ev>> firstEntry = references.entrySet().iterator().next();
        List<Ev> first = firstEntry.getValue();
        references.forEach((member, events) -> {
            if (!events.equals(first)) {
                int at = IntStream.range(0, Math.min(events.size(), first.size()))
                        .filter(i -> !events.get(i).equals(first.get(i))).findFirst()
                        .orElse(Math.min(events.size(), first.size()));
                violations.add("infra" + member + "'s history of the keys (" + events.size()
                        + " changes) differs from infra" + firstEntry.getKey() + "'s (" + first.size() + ") at change "
                        + at + ": " + (at < events.size() ? events.get(at) : "none") + " vs "
                        + (at < first.size() ? first.get(at) : "none"));
            }
        });
        return violations;
    }

    private static Check watches(ChaosWatchers watchers, List<Ev> reference, long finalRevision)
            throws InterruptedException {
        long lastChange = reference.isEmpty() ? 0 : reference.get(reference.size() - 1).mod();
        boolean caughtUp = watchers.awaitRevision(lastChange, FINAL_WAIT_MILLIS);
        watchers.close();  // what they received so far is what is judged
        WatchValidator validator = new WatchValidator(reference, caughtUp ? finalRevision : 0);
        List<String> violations = new ArrayList<>();
        int segments = 0;
        for (ChaosWatchers.Watcher watcher : watchers.watchers()) {
            List<ChaosWatchers.Segment> streams = watcher.segments();
            segments += streams.size();
            if (!caughtUp && watcher.lastEventRevision() < lastChange) {
                violations.add("RELIABLE: the watcher on infra" + watcher.member + " got only to revision "
                        + watcher.lastEventRevision() + " of " + lastChange + " within " + FINAL_WAIT_MILLIS / 1000
                        + " s of the end");
            }
            violations.addAll(validator.check("the watcher on infra" + watcher.member, streams));
        }
        return new Check("watches", watchers.watchers().size() + " watchers, " + segments + " streams (resumed after "
                + "each break), " + reference.size() + " changes each", violations);
    }

    private static long revision(ChaosGrpc grpc, int member) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(FINAL_WAIT_MILLIS);
        while (true) {
            try {
                return grpc.call(member, KVGrpcClient.Range, RangeRequest.newBuilder()
                        .setKey(ByteString.copyFromUtf8("chaos")).build(), 5_000).getHeader().getRevision();
            } catch (ChaosGrpc.CallFailed e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("infra" + member + " serves no read: " + e.getMessage());
                }
                Thread.sleep(200);
            }
        }
    }

    /** Waits until the member's keyspace reached {@code revision} (Status answers the member's own). */
    private static void awaitApplied(ChaosGrpc grpc, int member, long revision) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(FINAL_WAIT_MILLIS);
        while (System.nanoTime() < deadline) {
            try {
                if (grpc.call(member, MaintenanceGrpcClient.Status, StatusRequest.getDefaultInstance(), 5_000)
                        .getHeader().getRevision() >= revision) {
                    return;
                }
            } catch (ChaosGrpc.CallFailed e) {
                // not yet
            }
            Thread.sleep(100);
        }
    }

    private static String report(Settings settings, long started, List<Op> history, ChaosNemesis nemesis,
            List<Check> checks) {
        StringBuilder text = new StringBuilder();
        text.append(String.format("chaos run %s: %s, %d members, %d s of faults (%s), seed %d, %d clients at %.0f ops/s "
                        + "each; took %d s%n", settings.name(), settings.kind().name().toLowerCase(), settings.members(),
                settings.length().toSeconds(), nemesis.faults().stream().map(f -> f.name().toLowerCase())
                        .collect(Collectors.joining(",")), settings.seed(), settings.clients(),
                settings.opsPerSecondEach(), TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started)));
        Map<Kind, long[]> counts = new TreeMap<>();
        history.forEach(op -> counts.computeIfAbsent(op.kind(), k -> new long[2])[op.ok() ? 0 : 1]++);
        text.append("operations: ").append(counts.entrySet().stream()
                .map(e -> e.getKey().name().toLowerCase() + " " + e.getValue()[0] + " ok / " + e.getValue()[1] + " failed")
                .collect(Collectors.joining(", "))).append('\n');
        text.append("faults: ").append(nemesis.timeline().stream().filter(line -> !line.endsWith(" healthy")).count())
                .append(" events (timeline in the report file)\n");
        for (Check check : checks) {
            text.append(String.format("  %-20s %s  %s%n", check.name(), check.passed() ? "PASS" : "FAIL", check.scope()));
            check.violations().stream().limit(20).forEach(v -> text.append("      ").append(v).append('\n'));
        }
        long anomalies = checks.stream().mapToLong(c -> c.violations().size()).sum();
        text.append("verdict: ").append(anomalies == 0 ? "PASS, 0 anomalies" : "FAIL, " + anomalies + " anomalies")
                .append('\n');
        return text.toString();
    }

    /** What each watcher received, response by response: target/it-logs/chaos-<name>-watch-infraN.txt. */
    private static void writeWatches(Settings settings, ChaosWatchers watchers) throws Exception {
        Files.createDirectories(MemberProcess.LOG_DIR);
        for (ChaosWatchers.Watcher watcher : watchers.watchers()) {
            StringBuilder text = new StringBuilder();
            for (ChaosWatchers.Segment segment : watcher.segments()) {
                text.append("stream from revision ").append(segment.start()).append('\n');
                segment.responses().forEach(r -> text.append(r.progress() ? "  progress " + r.headerRevision()
                        : "  " + r.events()).append('\n'));
                segment.errors().forEach(e -> text.append("  error ").append(e).append('\n'));
            }
            Files.writeString(MemberProcess.LOG_DIR.resolve("chaos-" + settings.name() + "-watch-infra"
                    + watcher.member + ".txt"), text, StandardCharsets.UTF_8);
        }
    }

    private static void writeFiles(Settings settings, String report, List<Op> history, ChaosNemesis nemesis,
            List<Ev> reference) throws Exception {
        Path dir = MemberProcess.LOG_DIR;
        Files.createDirectories(dir);
        String base = "chaos-" + settings.name() + "-";
        Files.writeString(dir.resolve(base + "report.txt"), report + "\ntimeline:\n"
                + String.join("\n", nemesis.timeline()) + "\n", StandardCharsets.UTF_8);
        Files.writeString(dir.resolve(base + "history.txt"), history.stream()
                .sorted((a, b) -> Long.compare(a.invoke(), b.invoke())).map(Op::toString)
                .collect(Collectors.joining("\n", "", "\n")), StandardCharsets.UTF_8);
        Files.writeString(dir.resolve(base + "changes.txt"), reference.stream().map(Ev::toString)
                .collect(Collectors.joining("\n", "", "\n")), StandardCharsets.UTF_8);
    }
}
