package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Differential test of the Watch and Lease services as etcdctl sees them: every test starts a fresh
 * real etcd and a fresh candidate, runs one scripted flow against both in lockstep (each step on
 * etcd, then on the candidate) and requires the two normalized transcripts to be identical.
 *
 * <p>Watches and keep-alives are long-running etcdctl processes: a flow starts them, waits (with a
 * deadline, never a fixed sleep) until their output shows what it is waiting for, and then kills
 * them and records what they printed. A wait that runs out is written into the transcript instead
 * of failing the test on the spot, so the final diff shows every difference at once.
 *
 * <p>Normalized: ports, cluster and member ids, lease ids (learnt per server from {@code lease
 * grant} and replaced by {@code <L1>}, {@code <L2>}, ... only where etcdctl prints a lease id),
 * remaining TTLs where they may legitimately be a second apart, the order of a lease's attached
 * keys (a Go map in etcd, so random) and the timestamp and client UUID of etcdctl's retry warnings.
 *
 * <p>{@code -Dit.watch.candidate=etcd} (or the suite-wide {@code -Dit.candidate=etcd}) puts real
 * etcd on both sides, which is how the test itself is validated. Transcripts go to
 * {@code target/it-logs/watch-lease-<test>-{reference,candidate}.txt}.
 */
class EtcdctlWatchLeaseIT {

    /** A wait for etcdctl output; generous because the machine is shared and etcdctl is a Go binary start. */
    private static final Duration WAIT = Duration.ofSeconds(15);
    /** Once a side has missed one wait, later waits on it are short so a broken candidate can't take minutes. */
    private static final Duration WAIT_AFTER_MISS = Duration.ofSeconds(2);
    /** How long one sentinel round waits before writing the next sentinel (see {@link Flow#syncWatches}). */
    private static final Duration SENTINEL_ROUND = Duration.ofSeconds(3);
    private static final int MAX_SENTINEL_ROUNDS = 5;
    /**
     * Sentinel rounds to write even when every watch saw the first: more than 1 exercises the code
     * that cuts the earlier rounds (which otherwise only runs when a watch started late).
     */
    private static final int MIN_SENTINEL_ROUNDS = Integer.getInteger("it.watch.minSentinelRounds", 1);

    private Side reference;
    private Side candidate;
    private String testName;

    static MemberProcess.Kind candidateKind() {
        String value = System.getProperty("it.watch.candidate");
        if (value == null) {
            return MemberProcess.candidateKind();
        }
        return switch (value) {
            case "vetcd" -> MemberProcess.Kind.VETCD;
            case "etcd" -> MemberProcess.Kind.ETCD;
            default -> throw new IllegalArgumentException("it.watch.candidate must be vetcd or etcd, not " + value);
        };
    }

    @BeforeEach
    void startServers(TestInfo info) throws Exception {
        testName = info.getTestMethod().orElseThrow().getName();
        MemberProcess.Kind kind = candidateKind();
        // A fresh pair per test: every flow starts at revision 1, and a difference in one flow
        // cannot shift the revisions of the next.
        reference = new Side("etcd", MemberProcess.start(MemberProcess.Kind.ETCD, "watch-lease-" + testName + "-etcd"));
        candidate = new Side(kind.name().toLowerCase(),
                MemberProcess.start(kind, "watch-lease-" + testName + "-candidate-" + kind.name().toLowerCase()));
    }

    @AfterEach
    void stopServers() throws Exception {
        for (Side side : new Side[] {reference, candidate}) {
            if (side != null) {
                side.close();
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Watch flows
    // ------------------------------------------------------------------------------------------

    /**
     * Plain watches started before the writes: single key, range, prefix, prev-kv, in the three
     * output formats; the writes include a txn that writes two watched keys in one revision and a
     * prefix delete that removes three keys in one revision.
     */
    @Test
    void liveWatches() throws Exception {
        Flow f = new Flow();
        List<String> handles = new ArrayList<>();
        for (String format : List.of("simple", "json", "fields")) {
            handles.add(f.start("foo-" + format, "watch", "foo", "-w", format));
            handles.add(f.start("range-" + format, "watch", "foo", "foo9", "-w", format));
            handles.add(f.start("prefix-" + format, "watch", "--prefix", "foo", "-w", format));
            handles.add(f.start("prevkv-" + format, "watch", "--prev-kv", "foo", "-w", format));
        }
        f.syncWatches("foo", handles);
        f.run("put", "foo", "bar");
        f.run("put", "foo1", "x");
        f.run("put", "foo5", "y");
        f.txn("\nput foo t1\nput foo2 t2\n\n\n");      // two events, one revision
        f.run("del", "foo");
        f.run("put", "bar", "b");                       // outside every watched range
        f.run("del", "foo", "--prefix");                // foo1 foo2 foo5 in one revision
        f.run("put", "foo9", "z");                      // only the prefix watch sees it
        f.run("put", "foo", "end");                     // every watch sees it: the "done" marker
        for (String h : handles) {
            f.awaitValue(h, "end");
        }
        for (String h : handles) {
            f.kill(h);
        }
        f.compare();
    }

    /**
     * Watches from a past revision, started after the writes: etcd replays the history in one
     * batched response whose header carries the current revision, then goes on live.
     */
    @Test
    void historyWatches() throws Exception {
        Flow f = new Flow();
        f.run("put", "foo", "bar");                     // rev 2
        f.run("put", "foo1", "x");                      // rev 3
        f.txn("\nput foo t1\nput foo2 t2\n\n\n");      // rev 4
        f.run("del", "foo");                            // rev 5
        f.run("put", "foo", "v6");                      // rev 6
        List<String> handles = new ArrayList<>();
        for (String format : List.of("simple", "json", "fields")) {
            handles.add(f.start("rev2-" + format, "watch", "--rev=2", "foo", "-w", format));
        }
        handles.add(f.start("rev2-prevkv", "watch", "--rev=2", "--prev-kv", "foo"));
        handles.add(f.start("rev2-prevkv-json", "watch", "--rev=2", "--prev-kv", "foo", "-w", "json"));
        handles.add(f.start("rev3-prefix-json", "watch", "--rev=3", "--prefix", "foo", "-w", "json"));
        handles.add(f.start("rev1-range-fields", "watch", "--rev=1", "foo", "foo9", "-w", "fields"));
        for (String h : handles) {
            f.awaitValue(h, "v6");
        }
        // Once the replay is through, the same watches go on with live events.
        f.run("put", "foo", "live");                    // rev 7
        for (String h : handles) {
            f.awaitValue(h, "live");
        }
        for (String h : handles) {
            f.kill(h);
        }
        // A future start revision: nothing until the store gets there.
        String future = f.start("rev9-json", "watch", "--rev=9", "foo", "-w", "json");
        f.run("put", "foo", "r8");                      // rev 8, before the watch's start
        f.run("put", "foo", "r9");                      // rev 9
        f.awaitValue(future, "r9");
        f.kill(future);
        f.compare();
    }

    /** A watch from a compacted revision is canceled by the server and etcdctl exits on its own. */
    @Test
    void watchFromCompactedRevision() throws Exception {
        Flow f = new Flow();
        for (int i = 1; i <= 5; i++) {
            f.run("put", "foo", "v" + i);               // revs 2..6
        }
        f.run("compaction", "4");
        for (String format : List.of("simple", "json", "fields")) {
            f.awaitExit(f.start("compacted-" + format, "watch", "--rev=2", "foo", "-w", format));
        }
        f.awaitExit(f.start("compacted-prefix", "watch", "--rev=3", "--prefix", "f"));
        // The compaction revision itself is still watchable.
        String atCompact = f.start("at-compact-json", "watch", "--rev=4", "foo", "-w", "json");
        f.awaitValue(atCompact, "v5");
        f.kill(atCompact);
        f.compare();
    }

    /**
     * {@code watch -i}: watches added from stdin share one stream, {@code progress} prints one
     * notification per open watch, bad lines go to stderr, EOF ends the session (exit 3). The first
     * {@code progress} also tells that the first watch is in place: on one stream the server
     * answers the create before the progress request.
     */
    @Test
    void interactiveWatch() throws Exception {
        Flow f = new Flow();
        List<String> handles = List.of(
                f.startInteractive("interactive-simple", "watch", "-i"),
                f.startInteractive("interactive-json", "watch", "-i", "-w", "json"));
        for (String h : handles) {
            f.send(h, "watch foo");
            f.send(h, "progress");
        }
        for (String h : handles) {
            f.awaitStdout(h, "progress notify: 1", out -> count(out, "progress notify: 1") >= 1);
        }
        f.run("put", "foo", "v1");                      // rev 2
        for (String h : handles) {
            f.awaitValue(h, "v1");
            f.send(h, "progress");
        }
        for (String h : handles) {
            f.awaitStdout(h, "progress notify: 2", out -> count(out, "progress notify: 2") >= 1);
            f.send(h, "watch --prefix bar");
            f.send(h, "progress");
        }
        for (String h : handles) {
            // One notification per open watch: the foo watch and the new bar watch.
            f.awaitStdout(h, "3 x progress notify: 2", out -> count(out, "progress notify: 2") >= 3);
        }
        // Each watch prints from its own goroutine: one write at a time keeps the order fixed.
        f.run("put", "bar1", "b1");                     // rev 3
        for (String h : handles) {
            f.awaitValue(h, "b1");
        }
        f.run("put", "foo", "v2");                      // rev 4
        for (String h : handles) {
            f.awaitValue(h, "v2");
            f.send(h, "progress");
        }
        for (String h : handles) {
            f.awaitStdout(h, "2 x progress notify: 4", out -> count(out, "progress notify: 4") >= 2);
            f.send(h, "bogus");
            f.send(h, "watch");
            f.send(h, "watch --rev=2 foo");             // history replay inside the session
        }
        for (String h : handles) {
            f.awaitStderr(h, "two invalid-command lines", err -> count(err, "Invalid command") >= 2);
            // v1 is at rev 2: a second copy of it comes from the --rev=2 watch
            f.awaitStdout(h, "replayed v1 and v2", out -> count(out, "v1") + count(out, "djE=") >= 2
                    && count(out, "v2") + count(out, "djI=") >= 2);
            f.closeStdin(h);
        }
        for (String h : handles) {
            f.awaitExit(h);
        }
        f.compare();
    }

    // ------------------------------------------------------------------------------------------
    // Lease flows
    // ------------------------------------------------------------------------------------------

    /** grant, attach keys, timetolive (all formats), list, keep-alive --once, revoke, and the error cases. */
    @Test
    void leaseLifecycle() throws Exception {
        Flow f = new Flow();
        f.run("lease", "list");
        f.run("lease", "list", "-w", "json");
        f.grant("L1", "lease", "grant", "60");
        f.grant("L2", "lease", "grant", "60", "-w", "json");
        f.grant("L3", "lease", "grant", "60", "-w", "fields");
        f.run("put", "--lease={L1}", "k1", "v1");       // rev 2
        f.run("put", "--lease={L1}", "k2", "v2", "-w", "json"); // rev 3
        f.run("put", "--lease={L2}", "k3", "v3");       // rev 4
        f.run("get", "k1", "-w", "json");
        f.run("get", "k1", "-w", "fields");
        f.run("get", "k", "--prefix");
        f.ttl(60, "lease", "timetolive", "{L1}");
        f.ttl(60, "lease", "timetolive", "{L1}", "--keys");
        f.ttl(60, "lease", "timetolive", "{L1}", "-w", "json");
        f.ttl(60, "lease", "timetolive", "{L1}", "--keys", "-w", "json");
        f.ttl(60, "lease", "timetolive", "{L1}", "-w", "fields");
        f.ttl(60, "lease", "timetolive", "{L1}", "--keys", "-w", "fields");
        f.ttl(60, "lease", "timetolive", "{L3}", "--keys");                 // no keys attached
        f.ttl(60, "lease", "timetolive", "{L3}", "--keys", "-w", "json");
        f.run("lease", "timetolive", "1234");                                // unknown id
        f.run("lease", "timetolive", "1234", "--keys", "-w", "json");
        f.run("lease", "timetolive", "1234", "-w", "fields");
        f.run("lease", "list");
        f.run("lease", "list", "-w", "json");
        f.run("lease", "list", "-w", "fields");
        f.run("lease", "keep-alive", "--once", "{L1}");
        f.run("lease", "keep-alive", "--once", "{L1}", "-w", "json");
        f.run("lease", "keep-alive", "--once", "{L1}", "-w", "fields");
        f.run("lease", "keep-alive", "--once", "1234");
        f.run("lease", "keep-alive", "1234");           // streaming: ends by itself, "expired or revoked."
        f.run("put", "--lease=1234", "kx", "v");        // requested lease not found
        f.run("lease", "revoke", "1234");
        // A watch replaying the puts, then seeing the revoke delete both keys of L1 in one revision.
        String watch = f.start("k-prefix-json", "watch", "--prefix", "k", "--rev=2", "-w", "json");
        f.awaitValue(watch, "v3");
        f.run("lease", "revoke", "{L1}", "-w", "json"); // rev 5: k1 and k2
        f.awaitStdout(watch, "delete of k2", out -> out.contains("\"type\":1,\"kv\":{\"key\":\"" + b64("k2") + "\""));
        f.kill(watch);
        f.run("get", "k", "--prefix", "-w", "json");
        f.run("lease", "revoke", "{L1}");               // already revoked
        f.run("lease", "timetolive", "{L1}");
        f.run("lease", "timetolive", "{L1}", "--keys", "-w", "json");
        f.run("put", "--lease={L1}", "k9", "v");
        f.run("lease", "revoke", "{L2}");               // rev 6: k3
        f.run("lease", "revoke", "{L3}", "-w", "fields"); // no keys: no new revision
        f.run("lease", "list");
        f.run("get", "", "--from-key", "-w", "json");
        // Client-side argument errors, for completeness (no server round trip, but same binary).
        f.run("lease", "grant");
        f.run("lease", "grant", "abc");
        f.run("lease", "revoke", "zz");
        f.compare();
    }

    /**
     * Leases that run out: the minimum TTL (grant 1 gives 2 on a single default-configured member),
     * the leased keys deleted in one revision when the lease expires, as a watch sees it, and
     * everything about the lease afterwards.
     */
    @Test
    void leaseExpiry() throws Exception {
        Flow f = new Flow();
        f.grant("SHORT", "lease", "grant", "1", "-w", "json");   // TTL raised to the minimum
        f.grant("ZERO", "lease", "grant", "0", "-w", "json");
        f.grant("L", "lease", "grant", "3");
        // --rev=2 on a fresh store: the watch sees every write whenever it gets established; each
        // write waits for its event so the live responses aren't batched differently.
        String watch = f.start("exp-json", "watch", "--prefix", "exp", "--rev=2", "-w", "json");
        f.run("put", "--lease={L}", "exp1", "v1");       // rev 2
        f.awaitValue(watch, "v1");
        f.run("put", "--lease={L}", "exp2", "v2");       // rev 3
        f.awaitValue(watch, "v2");
        f.run("put", "exp3", "plain");                  // rev 4
        f.awaitValue(watch, "plain");
        f.awaitCommand("exp1 deleted by the lease's expiry", r -> r.ok() && r.stdout().isEmpty(),
                "get", "exp1");
        f.awaitStdout(watch, "delete of exp2", out -> out.contains("\"type\":1,\"kv\":{\"key\":\"" + b64("exp2") + "\""));
        f.kill(watch);
        // A lower bound only (expiry can be late on a busy machine, never early): measured per side
        // from its own grant to the poll that first saw the key gone.
        f.noteElapsed("L", "expiry took at least 2.5 s", Duration.ofMillis(2500));
        f.run("get", "exp", "--prefix", "-w", "json");   // exp3 only, at rev 5
        f.awaitCommand("the short leases gone from lease list", r -> r.ok() && r.stdout().equals("found 0 leases\n"),
                "lease", "list");
        f.run("lease", "list", "-w", "json");
        f.run("lease", "timetolive", "{L}");
        f.run("lease", "timetolive", "{L}", "--keys", "-w", "json");
        f.run("lease", "timetolive", "{SHORT}", "-w", "fields");
        f.run("lease", "keep-alive", "--once", "{L}");
        f.run("lease", "revoke", "{L}");
        f.run("put", "--lease={L}", "exp4", "v");
        f.compare();
    }

    /**
     * keep-alive keeps a key past its original TTL; once the keep-alive stops the key expires; a
     * revoke ends a running keep-alive, which then exits by itself.
     */
    @Test
    void leaseKeepAlive() throws Exception {
        Flow f = new Flow();
        f.grant("L1", "lease", "grant", "3");
        long grantedAt = System.nanoTime();
        f.run("put", "--lease={L1}", "ka", "v");        // rev 2
        String simple = f.start("keep-alive-simple", "lease", "keep-alive", "{L1}");
        String json = f.start("keep-alive-json", "lease", "keep-alive", "{L1}", "-w", "json");
        String fields = f.start("keep-alive-fields", "lease", "keep-alive", "{L1}", "-w", "fields");
        // Waiting for a state, not asserting a duration: the original TTL must be well over before
        // the key is looked at, and every keep-alive must have had more than one response by then.
        f.awaitStdout(simple, "2 keep-alive responses", out -> count(out, "keepalived with TTL(3)") >= 2);
        f.awaitStdout(json, "2 keep-alive responses", out -> count(out, "\"TTL\":3") >= 2);
        f.awaitStdout(fields, "2 keep-alive responses", out -> count(out, "\"TTL\" : 3") >= 2);
        f.awaitTime(grantedAt, Duration.ofMillis(4500));
        f.run("get", "ka", "-w", "json");               // still there, nothing rewrote it
        f.ttl(3, "lease", "timetolive", "{L1}", "--keys");
        f.killCollapsed(simple, 1);
        f.killCollapsed(json, 1);
        f.killCollapsed(fields, 6);
        f.awaitCommand("ka deleted once nobody keeps the lease alive", r -> r.ok() && r.stdout().isEmpty(),
                "get", "ka");
        f.run("get", "ka", "-w", "json");               // deleted at rev 3
        f.run("lease", "timetolive", "{L1}");

        // TTL 6: etcdctl sends a keep-alive every TTL/3 s and only learns of the revoke from the next one.
        f.grant("L2", "lease", "grant", "6");
        f.run("put", "--lease={L2}", "kb", "v");        // rev 4
        String revoked = f.start("keep-alive-revoked", "lease", "keep-alive", "{L2}");
        String revokedJson = f.start("keep-alive-revoked-json", "lease", "keep-alive", "{L2}", "-w", "json");
        f.awaitStdout(revoked, "a keep-alive response", out -> out.contains("keepalived with TTL(6)"));
        f.awaitStdout(revokedJson, "a keep-alive response", out -> out.contains("\"TTL\":6"));
        f.run("lease", "revoke", "{L2}");               // rev 5
        f.awaitExitCollapsed(revoked, 1);
        f.awaitExitCollapsed(revokedJson, 1);
        f.run("get", "kb");
        f.compare();
    }

    // ------------------------------------------------------------------------------------------
    // Harness
    // ------------------------------------------------------------------------------------------

    /** One server under test, its transcript, its background etcdctl processes and what it taught the normalizer. */
    private static final class Side implements AutoCloseable {
        final String label;
        final MemberProcess member;
        final StringBuilder transcript = new StringBuilder();
        final Normalizer normalizer = new Normalizer();
        final Map<String, Background> background = new HashMap<>();
        boolean missedAWait;
        /** System.nanoTime() of each grant (by placeholder) and of the last successful awaitCommand. */
        final Map<String, Long> grantedAt = new HashMap<>();
        long lastAwaitDone;

        Side(String label, MemberProcess member) {
            this.label = label;
            this.member = member;
        }

        Duration waitBudget() {
            return missedAWait ? WAIT_AFTER_MISS : WAIT;
        }

        void record(String text) {
            transcript.append(text);
            if (!text.endsWith("\n")) {
                transcript.append('\n');
            }
        }

        /** {L1} etc. in arguments become this server's real lease id (hex, as etcdctl takes it). */
        String[] substitute(String... args) {
            return Arrays.stream(args).map(normalizer::substituteLeases).toArray(String[]::new);
        }

        @Override
        public void close() throws Exception {
            for (Background b : background.values()) {
                b.destroy();
            }
            member.close();
        }
    }

    /** A long-running etcdctl (watch, keep-alive) writing to files that can be read while it runs. */
    private static final class Background {
        final String description;
        final Process process;
        final Path out;
        final Path err;
        final OutputStream stdin;
        /** Output already accounted for (e.g. sentinel events), cut from the front when recording. */
        int droppedPrefixLength;

        Background(String endpoint, boolean interactive, String description, String... args) throws IOException {
            this.description = description;
            List<String> command = new ArrayList<>(List.of(
                    System.getProperty("etcdctl.bin", "etcdctl"), "--endpoints=" + endpoint, "--command-timeout=5s"));
            command.addAll(Arrays.asList(args));
            ProcessBuilder builder = new ProcessBuilder(command);
            builder.environment().keySet().removeIf(k -> k.startsWith("ETCDCTL_"));
            builder.environment().put("ETCDCTL_API", "3");
            out = Files.createTempFile("etcdctl-bg-", ".out");
            err = Files.createTempFile("etcdctl-bg-", ".err");
            process = builder.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (interactive) {
                stdin = process.getOutputStream();
            } else {
                process.getOutputStream().close();
                stdin = null;
            }
        }

        String stdout() {
            return read(out);
        }

        String stderr() {
            return read(err);
        }

        private static String read(Path file) {
            try {
                return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "(unreadable: " + e + ")";
            }
        }

        void send(String line) throws IOException {
            stdin.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            stdin.flush();
        }

        void destroy() throws Exception {
            if (process.isAlive()) {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor();
                }
            }
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** The steps of one flow, each applied to the reference and then to the candidate. */
    private final class Flow {
        private final List<Side> sides = List.of(reference, candidate);

        /** Runs a one-shot etcdctl on both sides and records exit code, stdout and stderr. */
        void run(String... args) throws Exception {
            for (Side side : sides) {
                side.record("$ " + show(args) + "\n" + side.normalizer.normalize(runOn(side, null, args).toString()));
            }
        }

        void txn(String stdin) throws Exception {
            for (Side side : sides) {
                side.record("$ etcdctl txn <<< " + stdin.replace("\n", "\\n") + "\n"
                        + side.normalizer.normalize(runOn(side, stdin, "txn").toString()));
            }
        }

        /** As {@link #run} for a {@code lease grant}, learning the granted id as {@code placeholder}. */
        void grant(String placeholder, String... args) throws Exception {
            for (Side side : sides) {
                side.grantedAt.put(placeholder, System.nanoTime());
                Etcdctl.Result r = runOn(side, null, args);
                side.normalizer.learnLease(placeholder, r.stdout());
                side.record("$ " + show(args) + "\n" + side.normalizer.normalize(r.toString()));
            }
        }

        /** As {@link #run} for {@code lease timetolive} of a live lease granted {@code grantedTtl} seconds. */
        void ttl(int grantedTtl, String... args) throws Exception {
            for (Side side : sides) {
                String text = side.normalizer.normalize(runOn(side, null, args).toString());
                side.record("$ " + show(args) + "\n" + Normalizer.remainingTtl(text, grantedTtl));
            }
        }

        /** Repeats a command until its result satisfies {@code done}; records only a miss. */
        void awaitCommand(String what, Predicate<Etcdctl.Result> done, String... args) throws Exception {
            for (Side side : sides) {
                long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
                Etcdctl.Result last = null;
                while (System.nanoTime() < deadline) {
                    last = runOn(side, null, args);
                    if (done.test(last)) {
                        side.lastAwaitDone = System.nanoTime();
                        break;
                    }
                    last = null;
                    Thread.sleep(100);
                }
                if (last == null) {
                    side.missedAWait = true;
                    side.record("[timed out waiting for: " + what + "]");
                }
            }
        }

        /** Waits until {@code duration} has passed since {@code since} (System.nanoTime()). */
        void awaitTime(long since, Duration duration) throws InterruptedException {
            long until = since + duration.toNanos();
            while (System.nanoTime() < until) {
                Thread.sleep(50);
            }
        }

        /** Records whether at least {@code minimum} passed between granting {@code lease} and the last awaitCommand's success. */
        void noteElapsed(String lease, String what, Duration minimum) {
            for (Side side : sides) {
                Long granted = side.grantedAt.get(lease);
                boolean ok = granted != null && side.lastAwaitDone - granted >= minimum.toNanos();
                side.record("# " + what + ": " + ok);
            }
        }

        String start(String handle, String... args) throws Exception {
            return startProcess(handle, false, args);
        }

        String startInteractive(String handle, String... args) throws Exception {
            return startProcess(handle, true, args);
        }

        private String startProcess(String handle, boolean interactive, String... args) throws Exception {
            for (Side side : sides) {
                String[] real = side.substitute(args);
                side.background.put(handle, new Background(side.member.endpoint(), interactive, show(args), real));
                side.record("$ " + show(args) + " &   [" + handle + "]");
            }
            return handle;
        }

        void send(String handle, String line) throws Exception {
            for (Side side : sides) {
                side.record("[" + handle + " stdin] " + line);
                Background b = side.background.get(handle);
                if (b.process.isAlive()) {
                    b.send(line);
                }
            }
        }

        void closeStdin(String handle) throws Exception {
            for (Side side : sides) {
                side.record("[" + handle + " stdin closed]");
                side.background.get(handle).stdin.close();
            }
        }

        /** Waits until the process printed an event (or prev kv) with this value, in its output format. */
        void awaitValue(String handle, String value) throws Exception {
            awaitStdout(handle, "value " + value, out -> showsValue(out, value));
        }

        void awaitStdout(String handle, String what, Predicate<String> condition) throws Exception {
            for (Side side : sides) {
                Background b = side.background.get(handle);
                awaitOn(side, b, handle, what, () -> condition.test(b.stdout()));
            }
        }

        void awaitStderr(String handle, String what, Predicate<String> condition) throws Exception {
            for (Side side : sides) {
                Background b = side.background.get(handle);
                awaitOn(side, b, handle, what, () -> condition.test(b.stderr()));
            }
        }

        private interface Check {
            boolean ok() throws Exception;
        }

        private boolean awaitOn(Side side, Background b, String handle, String what, Check check) throws Exception {
            long deadline = System.nanoTime() + side.waitBudget().toNanos();
            while (true) {
                if (check.ok()) {
                    return true;
                }
                if (!b.process.isAlive()) {
                    // Whatever it printed last is on disk now; one more look before giving up.
                    if (check.ok()) {
                        return true;
                    }
                    side.missedAWait = true;
                    side.record("[" + handle + " exited (code " + b.process.exitValue() + ") before showing: " + what + "]");
                    return false;
                }
                if (System.nanoTime() > deadline) {
                    side.missedAWait = true;
                    side.record("[" + handle + " timed out waiting for: " + what + "]");
                    return false;
                }
                Thread.sleep(25);
            }
        }

        /**
         * etcd prints nothing when a watch is established, so a watch started just before a write
         * may or may not see it. This writes {@code key = sentinel-<n>} on both sides until every
         * watch on both sides has shown a sentinel. Both sides always write the same number of
         * sentinels, so revisions stay equal; a watch that saw an earlier round as well gets those
         * extra rounds cut from its output, so each transcript keeps exactly the last sentinel event.
         */
        void syncWatches(String key, List<String> handles) throws Exception {
            int rounds = 0;
            boolean allSeen = false;
            while ((!allSeen || rounds < MIN_SENTINEL_ROUNDS) && rounds < MAX_SENTINEL_ROUNDS) {
                rounds++;
                String value = "sentinel-" + rounds;
                run("put", key, value);
                allSeen = true;
                long deadline = System.nanoTime() + SENTINEL_ROUND.toNanos();
                for (Side side : sides) {
                    for (String h : handles) {
                        Background b = side.background.get(h);
                        while (!showsValue(b.stdout(), value) && System.nanoTime() < deadline && b.process.isAlive()) {
                            Thread.sleep(25);
                        }
                        allSeen &= showsValue(b.stdout(), value);
                    }
                }
            }
            for (Side side : sides) {
                for (String h : handles) {
                    Background b = side.background.get(h);
                    String out = b.stdout();
                    int first = 0;
                    for (int r = 1; r <= rounds; r++) {
                        if (showsValue(out, "sentinel-" + r)) {
                            first = r;
                            break;
                        }
                    }
                    if (first == 0) {
                        side.record("[" + h + " never showed a sentinel in " + rounds + " rounds]");
                        side.missedAWait = true;
                    } else if (first < rounds) {
                        b.droppedPrefixLength = lengthOfRounds(out, formatOf(b.description),
                                b.description.contains("--prev-kv"), first, rounds - first);
                    }
                }
            }
        }

        /** Kills a running process and records what it printed. */
        void kill(String handle) throws Exception {
            for (Side side : sides) {
                Background b = side.background.get(handle);
                boolean wasAlive = b.process.isAlive();
                b.process.destroy();
                b.process.waitFor(5, TimeUnit.SECONDS);
                side.record(recordOf(side, handle, b, wasAlive ? "killed" : "had exited with code " + b.process.exitValue(), 0));
            }
        }

        /** As {@link #kill}, collapsing runs of identical responses of {@code linesPerResponse} lines (keep-alive ticks). */
        void killCollapsed(String handle, int linesPerResponse) throws Exception {
            for (Side side : sides) {
                Background b = side.background.get(handle);
                boolean wasAlive = b.process.isAlive();
                b.process.destroy();
                b.process.waitFor(5, TimeUnit.SECONDS);
                side.record(recordOf(side, handle, b, wasAlive ? "killed" : "had exited with code " + b.process.exitValue(),
                        linesPerResponse));
            }
        }

        /** Waits for a process that should end by itself, and records exit code and output. */
        void awaitExit(String handle) throws Exception {
            awaitExitCollapsed(handle, 0);
        }

        void awaitExitCollapsed(String handle, int linesPerResponse) throws Exception {
            for (Side side : sides) {
                Background b = side.background.get(handle);
                boolean exited = b.process.waitFor(side.waitBudget().toMillis(), TimeUnit.MILLISECONDS);
                String how;
                if (exited) {
                    how = "exited with code " + b.process.exitValue();
                } else {
                    side.missedAWait = true;
                    b.process.destroy();
                    b.process.waitFor(5, TimeUnit.SECONDS);
                    how = "still running after " + side.waitBudget().toSeconds() + " s, killed";
                }
                side.record(recordOf(side, handle, b, how, linesPerResponse));
            }
        }

        private String recordOf(Side side, String handle, Background b, String how, int collapse) {
            String out = b.stdout();
            out = out.substring(Math.min(b.droppedPrefixLength, out.length()));
            if (collapse > 0) {
                out = collapseRepeats(out, collapse);
            }
            out = sortProgressBlocks(out);
            // (Whether rounds were cut is not recorded: it may legitimately differ between the sides.)
            return "[" + handle + " " + how + "]\n--- stdout ---\n" + side.normalizer.normalize(out)
                    + "--- stderr ---\n" + side.normalizer.normalize(b.stderr());
        }

        void compare() throws IOException {
            Path expectedFile = writeTranscript("reference", reference);
            Path actualFile = writeTranscript("candidate", candidate);
            String expected = reference.transcript.toString();
            String actual = candidate.transcript.toString();
            assertEquals(expected, actual, () -> candidate.label + " printed something different from etcd in "
                    + testName + " (full transcripts: " + expectedFile.toAbsolutePath() + " and "
                    + actualFile.toAbsolutePath() + ")\n" + OutputDiff.firstDifference(expected, actual));
        }

        private Path writeTranscript(String role, Side side) throws IOException {
            Path file = MemberProcess.LOG_DIR.resolve("watch-lease-" + testName + "-" + role + ".txt");
            Files.createDirectories(file.getParent());
            Files.writeString(file, side.transcript.toString(), StandardCharsets.UTF_8);
            return file;
        }

        private Etcdctl.Result runOn(Side side, String stdin, String... args) throws Exception {
            return Etcdctl.runWithStdin(side.member.endpoint(), stdin, side.substitute(args));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Output helpers
    // ------------------------------------------------------------------------------------------

    private static String show(String... args) {
        return "etcdctl " + Stream.of(args).map(a -> a.isEmpty() ? "''" : a).collect(Collectors.joining(" "));
    }

    private static String formatOf(String commandLine) {
        if (commandLine.contains("-w json")) {
            return "json";
        }
        if (commandLine.contains("-w fields")) {
            return "fields";
        }
        return "simple";
    }

    /** Whether a watch's output, in whatever format, shows {@code value} as a value (new or prev). */
    static boolean showsValue(String out, String value) {
        return out.lines().anyMatch(value::equals)
                || out.contains("\"value\":\"" + b64(value) + "\"")
                || out.contains("\"Value\" : \"" + value + "\"");
    }

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    static int count(String text, String needle) {
        int n = 0;
        for (int i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length())) {
            n++;
        }
        return n;
    }

    /**
     * Length of the leading output made by {@code rounds} sentinel events, starting at round
     * {@code firstRound}; each sentinel write is its own revision and its own watch response.
     */
    static int lengthOfRounds(String out, String format, boolean prevKv, int firstRound, int rounds) {
        List<String> lines = out.lines().toList();
        int lineCount;
        switch (format) {
            case "json" -> lineCount = rounds;
            case "fields" -> {
                // a response starts with its header; cut before the (rounds+1)-th header
                int headers = 0;
                lineCount = lines.size();
                for (int i = 0; i < lines.size(); i++) {
                    if (lines.get(i).startsWith("\"ClusterID\"") && ++headers == rounds + 1) {
                        lineCount = i;
                        break;
                    }
                }
            }
            default -> {
                // PUT / key / value, plus prev key / prev value when there was a previous sentinel
                lineCount = 0;
                for (int r = firstRound; r < firstRound + rounds; r++) {
                    lineCount += (prevKv && r > 1) ? 5 : 3;
                }
            }
        }
        int length = 0;
        for (int i = 0; i < Math.min(lineCount, lines.size()); i++) {
            length += lines.get(i).length() + 1;
        }
        return length;
    }

    /**
     * etcdctl prints each watch's responses from that watch's own goroutine, and a progress
     * response reaches every watch of the stream at once; in {@code -w json} each prints
     * "progress notify: N" and then the empty response, so with two watches the four lines
     * interleave at random (etcd against etcd differs). Each run of such lines is sorted.
     */
    static String sortProgressBlocks(String out) {
        return sortRuns(out, l -> l.startsWith("progress notify: ")
                || (l.startsWith("{\"Header\"") && l.contains("\"Events\":[]")));
    }

    /** Sorts each run of consecutive lines that {@code member} accepts; other lines stay in place. */
    static String sortRuns(String out, Predicate<String> member) {
        List<String> lines = new ArrayList<>(out.lines().toList());
        int i = 0;
        while (i < lines.size()) {
            int j = i;
            while (j < lines.size() && member.test(lines.get(j))) {
                j++;
            }
            if (j - i > 1) {
                List<String> run = new ArrayList<>(lines.subList(i, j));
                run.sort(null);
                for (int k = i; k < j; k++) {
                    lines.set(k, run.get(k - i));
                }
            }
            i = Math.max(j, i + 1);
        }
        return lines.isEmpty() ? out : String.join("\n", lines) + (out.endsWith("\n") ? "\n" : "");
    }

    /**
     * Replaces each run of identical consecutive {@code k}-line blocks by one block. How many
     * keep-alive ticks fit into a wait is timing, so the count (and whether there was a repeat at
     * all) is left out; the waits themselves require the repeats that matter.
     */
    static String collapseRepeats(String out, int k) {
        List<String> lines = out.lines().toList();
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (i < lines.size()) {
            if (i + k <= lines.size()) {
                List<String> block = lines.subList(i, i + k);
                int j = i + k;
                while (j + k <= lines.size() && lines.subList(j, j + k).equals(block)) {
                    j += k;
                }
                for (String l : block) {
                    sb.append(l).append('\n');
                }
                i = j;
            } else {
                sb.append(lines.get(i)).append('\n');
                i++;
            }
        }
        return sb.toString();
    }

    /**
     * Replaces what legitimately differs between two servers. IDs are learnt from the first output
     * that carries them, then replaced everywhere, so a server reporting inconsistent or zero ids
     * still shows up as a difference.
     */
    private static final class Normalizer {
        private static final Pattern CLUSTER_ID = Pattern.compile("(?:\"cluster_id\":|\"ClusterID\" : )([1-9]\\d*)");
        private static final Pattern MEMBER_ID = Pattern.compile("(?:\"member_id\":|\"MemberID\" : )([1-9]\\d*)");
        private static final Pattern GRANT_SIMPLE = Pattern.compile("lease ([0-9a-f]+) granted");
        private static final Pattern GRANT_NUMERIC = Pattern.compile("\"ID\"\\s?:\\s?(\\d+)");
        /** Where etcdctl prints a lease id in decimal. */
        private static final Pattern LEASE_DECIMAL = Pattern.compile(
                "(\"(?:ID|id|lease)\":|\"(?:ID|Lease|PrevLease)\" : )(\\d+)");
        /** Where etcdctl prints a lease id in hex: simple-format messages and lease list lines. */
        private static final Pattern LEASE_HEX = Pattern.compile("(?m)(lease |^)([0-9a-f]{16})\\b");
        private static final Pattern PLACEHOLDER = Pattern.compile("\\{([A-Z0-9]+)}");

        private String clusterId;
        private String memberId;
        /** lease id → placeholder name, in grant order. */
        private final Map<Long, String> leases = new LinkedHashMap<>();

        void learnLease(String placeholder, String grantOutput) {
            Matcher m = GRANT_SIMPLE.matcher(grantOutput);
            Long id = null;
            if (m.find()) {
                id = Long.parseUnsignedLong(m.group(1), 16);
            } else {
                m = GRANT_NUMERIC.matcher(grantOutput);
                if (m.find()) {
                    id = Long.parseUnsignedLong(m.group(1));
                }
            }
            if (id != null) {
                leases.put(id, placeholder);
            }
        }

        String substituteLeases(String arg) {
            Matcher m = PLACEHOLDER.matcher(arg);
            StringBuilder sb = new StringBuilder();
            while (m.find()) {
                String name = m.group(1);
                String hex = leases.entrySet().stream()
                        .filter(e -> e.getValue().equals(name))
                        .map(e -> Long.toHexString(e.getKey()))
                        .findFirst()
                        // a grant that failed leaves nothing to substitute; an id no server grants keeps the flow going
                        .orElse("7fffffffffff0bad");
                m.appendReplacement(sb, hex);
            }
            m.appendTail(sb);
            return sb.toString();
        }

        String normalize(String text) {
            clusterId = OutputDiff.learn(CLUSTER_ID, text, clusterId);
            memberId = OutputDiff.learn(MEMBER_ID, text, memberId);
            text = OutputDiff.replaceId(text, clusterId, "<CLUSTER_ID>");
            text = OutputDiff.replaceId(text, memberId, "<MEMBER_ID>");
            text = replaceLeases(text);
            text = sortLeaseKeys(text);
            return text
                    .replaceAll("127\\.0\\.0\\.1:\\d+", "127.0.0.1:<PORT>")
                    .replaceAll("\"ts\":\"[^\"]*\"", "\"ts\":\"<TS>\"")
                    .replaceAll("client-[0-9a-f-]{36}", "client-<UUID>");
        }

        private String replaceLeases(String text) {
            text = replaceMatches(text, LEASE_DECIMAL, m -> {
                String name = leases.get(Long.parseUnsignedLong(m.group(2)));
                return m.group(1) + (name == null ? m.group(2) : "<" + name + ">");
            });
            return replaceMatches(text, LEASE_HEX, m -> {
                String name = leases.get(Long.parseUnsignedLong(m.group(2), 16));
                return m.group(1) + (name == null ? m.group(2) : "<" + name + ">");
            });
        }

        /** etcd keeps a lease's keys in a Go map: their order in timetolive --keys is random. */
        private static String sortLeaseKeys(String text) {
            text = replaceMatches(text, Pattern.compile("attached keys\\(\\[([^\\]]*)]\\)"), m ->
                    "attached keys([" + Arrays.stream(m.group(1).split(" ")).sorted().collect(Collectors.joining(" ")) + "])");
            text = replaceMatches(text, Pattern.compile("\"keys\":\\[([^\\]]*)]"), m ->
                    "\"keys\":[" + Arrays.stream(m.group(1).split(",")).sorted().collect(Collectors.joining(",")) + "]");
            // fields: a run of consecutive "Key" lines (only timetolive prints more than one in a row)
            return sortRuns(text, l -> l.startsWith("\"Key\" : "));
        }

        /** A remaining TTL within (0, granted] reads the same on both sides; anything else stays visible. */
        static String remainingTtl(String text, int granted) {
            Pattern p = Pattern.compile("(remaining\\(|\"ttl\":|\"TTL\" : )(-?\\d+)");
            return replaceMatches(text, p, m -> {
                long v = Long.parseLong(m.group(2));
                return m.group(1) + (v > 0 && v <= granted ? "<REMAINING>" : m.group(2));
            });
        }

        private static String replaceMatches(String text, Pattern p, java.util.function.Function<Matcher, String> f) {
            Matcher m = p.matcher(text);
            StringBuilder sb = new StringBuilder();
            while (m.find()) {
                m.appendReplacement(sb, Matcher.quoteReplacement(f.apply(m)));
            }
            m.appendTail(sb);
            return sb.toString();
        }
    }
}
