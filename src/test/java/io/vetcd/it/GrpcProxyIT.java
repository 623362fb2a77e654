package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * {@code vetcd grpc-proxy start} (issue 19) in front of a 3-member cluster, driven by the real etcdctl
 * as a client of the proxy: put, get, txn, a watch, leases, the member list; then the member the proxy
 * uses is killed and the proxy's clients go on, the running watch included.
 */
class GrpcProxyIT {

    @Test
    void etcdctlThroughTheProxyOutlivesTheMemberItUses() throws Exception {
        Path logs = Files.createDirectories(MemberProcess.LOG_DIR);
        Path proxyLog = logs.resolve("grpc-proxy.log");
        Path watchOut = logs.resolve("grpc-proxy-watch.out");
        Files.deleteIfExists(proxyLog);
        Process proxy = null;
        Process watch = null;
        try (ClusterProcess cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "grpc-proxy")) {
            int port = MemberProcess.freePorts(1)[0];
            String via = "127.0.0.1:" + port;
            // A follower first: the proxy uses it, and it is the one killed below (killing the leader would
            // add an election's "no leader" answers to what this test looks at).
            int leader = cluster.leaderIndex();
            int used = leader == 1 ? 2 : 1;
            int other = 6 - leader - used;
            List<String> command = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
            command.addAll(List.of("grpc-proxy", "start", "--endpoints=" + hostPort(cluster.endpoint(used)) + ","
                    + hostPort(cluster.endpoint(leader)) + "," + hostPort(cluster.endpoint(other)),
                    "--listen-addr=" + via, "--advertise-client-url=" + via, "--enable-pprof"));
            proxy = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(proxyLog.toFile())).start();
            Process p = proxy;
            awaitTrue("the proxy serves", () -> {
                if (!p.isAlive()) {
                    throw new AssertionError("the proxy exited: " + read(proxyLog));
                }
                return etcdctl(via, "endpoint", "health").ok();
            });

            // What a client of a member can do, through the proxy.
            assertEquals("OK\n", etcdctl(via, "put", "k", "v1").stdout());
            assertEquals("k\nv1\n", etcdctl(via, "get", "k").stdout());
            Etcdctl.Result txn = Etcdctl.runWithStdin(via, "value(\"k\") = \"v1\"\n\nput k v2\n\nput k other\n\n", "txn");
            assertEquals("SUCCESS\n\nOK\n", txn.stdout(), txn.toString());
            Etcdctl.Result grant = etcdctl(via, "lease", "grant", "60");
            assertTrue(grant.ok() && grant.stdout().startsWith("lease "), grant.toString());
            String lease = grant.stdout().split(" ")[1];
            assertTrue(etcdctl(via, "put", "leased", "x", "--lease=" + lease).ok());
            Etcdctl.Result keepAlive = etcdctl(via, "lease", "keep-alive", "--once", lease);
            assertTrue(keepAlive.stdout().contains("keepalived with TTL(60)"), keepAlive.toString());
            Etcdctl.Result ttl = etcdctl(via, "lease", "timetolive", lease, "--keys");
            assertTrue(ttl.stdout().contains("attached keys([leased])"), ttl.toString());
            // A refusal comes back in the member's words (clients match errors by their text).
            Etcdctl.Result future = etcdctl(via, "get", "k", "--rev=100000");
            assertEquals(error(etcdctl(hostPort(cluster.endpoint(used)), "get", "k", "--rev=100000")), error(future));
            assertEquals("Error: etcdserver: mvcc: required revision is a future revision", error(future));
            Etcdctl.Result members = etcdctl(via, "member", "list");
            assertEquals(3, members.stdout().lines().count(), members.toString());

            ProcessBuilder watcher = new ProcessBuilder("etcdctl", "--endpoints=" + via, "watch", "w")
                    .redirectErrorStream(true).redirectOutput(watchOut.toFile());
            watcher.environment().put("ETCDCTL_API", "3");
            watch = watcher.start();
            awaitTrue("the watch gets the first put", () -> {
                etcdctl(via, "put", "w", "before");
                return read(watchOut).contains("before");
            });

            // The proxy uses the first endpoint while it answers: kill that member.
            cluster.kill9(used);
            long[] failures = {0};
            awaitTrue("a put through the proxy after the kill", () -> {
                boolean ok = etcdctl(via, "put", "w", "after").ok();
                failures[0] += ok ? 0 : 1;
                return ok;
            });
            assertTrue(failures[0] <= 1, failures[0] + " puts failed after the kill");
            assertEquals("after\n", etcdctl(via, "get", "w", "--print-value-only").stdout());
            assertEquals("v2\n", etcdctl(via, "get", "k", "--print-value-only").stdout());
            Process w = watch;
            awaitTrue("the watch goes on through the proxy", () -> {
                if (!w.isAlive()) {
                    throw new AssertionError("etcdctl watch exited: " + read(watchOut));
                }
                return read(watchOut).contains("after");
            });
            assertTrue(read(proxyLog).contains("cannot be reached"), read(proxyLog));
        } finally {
            for (Process p : new Process[] {watch, proxy}) {
                if (p != null) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            }
        }
    }

    @Test
    void badFlagsAreRefusedAsEtcdRefusesThem() throws Exception {
        List<String> command = new ArrayList<>(MemberProcess.serverCommand(MemberProcess.Kind.VETCD));
        command.addAll(List.of("grpc-proxy", "start", "--no-such-flag"));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue(), out);
        assertTrue(out.contains("Error: unknown flag: --no-such-flag"), out);
    }

    /** etcdctl's last word on a refusal (its log lines before it carry times and client ids). */
    private static String error(Etcdctl.Result result) {
        List<String> lines = result.stderr().lines().filter(l -> l.startsWith("Error:")).toList();
        return lines.isEmpty() ? result.toString() : lines.get(lines.size() - 1);
    }

    private static String hostPort(String url) {
        return url.substring(url.indexOf("://") + 3);
    }

    private static Etcdctl.Result etcdctl(String via, String... args) {
        try {
            return Etcdctl.run(via, args);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static String read(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail(what + ": not within 30 s");
            }
            Thread.sleep(200);
        }
    }
}
