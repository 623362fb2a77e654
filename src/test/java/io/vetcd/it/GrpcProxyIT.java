package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
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
            proxy = startProxy(proxyLog, via, hostPort(cluster.endpoint(used)) + "," + hostPort(cluster.endpoint(leader))
                    + "," + hostPort(cluster.endpoint(other)), "--enable-pprof");

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

            assertEquals("{\"health\":\"true\"}", get("http://" + via + "/health"));

            // Serializable reads: the second is the proxy's cached answer; a put through it clears it.
            assertEquals("v2\n", etcdctl(via, "get", "k", "--print-value-only", "--consistency=s").stdout());
            assertEquals("v2\n", etcdctl(via, "get", "k", "--print-value-only", "--consistency=s").stdout());
            assertEquals(1, metric(scrape("http://" + via), "etcd_grpc_proxy_cache_hits_total"));
            assertTrue(etcdctl(via, "put", "k", "v3").ok());
            assertEquals("v3\n", etcdctl(via, "get", "k", "--print-value-only", "--consistency=s").stdout());
            assertEquals(1, metric(scrape("http://" + via), "etcd_grpc_proxy_cache_hits_total"));
            // A transaction that reads k and then writes it leaves no stale read of k in the cache.
            Etcdctl.Result readThenWrite = Etcdctl.runWithStdin(via, "\nget k\nput k v4\n\n\n", "txn");
            assertTrue(readThenWrite.ok() && readThenWrite.stdout().startsWith("SUCCESS"), readThenWrite.toString());
            assertEquals("v4\n", etcdctl(via, "get", "k", "--print-value-only", "--consistency=s").stdout());

            watch = startWatch(via, "w", watchOut);

            // The proxy uses the first endpoint while it answers: kill that member.
            cluster.kill9(used);
            String acknowledged = putsGoOn(via, "w", watch, watchOut, 1);
            assertEquals(acknowledged + "\n", etcdctl(via, "get", "w", "--print-value-only").stdout());
            assertEquals("v4\n", etcdctl(via, "get", "k", "--print-value-only").stdout());
            assertTrue(read(proxyLog).contains("cannot be reached"), read(proxyLog));
        } finally {
            for (Process p : new Process[] {watch, proxy}) {
                if (p != null) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            }
        }
    }

    /**
     * 1,000 watchers of one key on the proxy (10 streams of 100) are one watch on the cluster: the
     * members count one watcher between them; a put reaches all 1,000; each gets the value it asked
     * for (previous values for some, none for others); cancelled, the cluster's watch goes too.
     */
    @Test
    void aThousandIdenticalWatchersCostTheClusterOneWatch() throws Exception {
        Path logs = Files.createDirectories(MemberProcess.LOG_DIR);
        Path proxyLog = logs.resolve("grpc-proxy-coalescing.log");
        Files.deleteIfExists(proxyLog);
        Process proxy = null;
        Vertx vertx = Vertx.vertx();
        try (ClusterProcess cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "grpc-proxy-coalescing")) {
            int port = MemberProcess.freePorts(1)[0];
            String via = "127.0.0.1:" + port;
            String metricsAddr = "127.0.0.1:" + MemberProcess.freePorts(1)[0];
            proxy = startProxy(proxyLog, via, hostPort(cluster.endpoint(1)) + "," + hostPort(cluster.endpoint(2)) + ","
                    + hostPort(cluster.endpoint(3)), "--metrics-addr=http://" + metricsAddr);
            assertTrue(etcdctl(via, "put", "shared", "v1").ok());
            assertEquals(0, clusterWatchers(cluster));

            GrpcClient grpc = GrpcClient.client(vertx, new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                    .setHttp2ClearTextUpgrade(false));
            int streams = 10;
            int perStream = 100;
            Map<Long, WatchResponse> created = new ConcurrentHashMap<>();
            Map<String, List<String>> seen = new ConcurrentHashMap<>();
            List<GrpcClientRequest<Buffer, Buffer>> calls = new ArrayList<>();
            for (int s = 0; s < streams; s++) {
                int stream = s;
                GrpcClientRequest<Buffer, Buffer> call = grpc.request(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                        .fullMethodName("etcdserverpb.Watch/Watch");
                call.response().onSuccess(response -> response.handler(message -> {
                    WatchResponse r = parse(message);
                    if (r.getCreated()) {
                        created.put(stream * 1_000_000L + r.getWatchId(), r);
                    }
                    for (var event : r.getEventsList()) {
                        seen.computeIfAbsent(stream + "/" + r.getWatchId(), k -> new java.util.concurrent.CopyOnWriteArrayList<>())
                                .add(event.getKv().getValue().toStringUtf8() + " prev="
                                        + event.getPrevKv().getValue().toStringUtf8());
                    }
                }));
                for (int w = 0; w < perStream; w++) {
                    call.write(Buffer.buffer(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                            .setKey(ByteString.copyFromUtf8("shared")).setPrevKv(w % 2 == 0)).build().toByteArray()));
                }
                calls.add(call);
            }
            awaitTrue("1,000 watchers created", () -> created.size() == streams * perStream);
            assertTrue(created.values().stream().noneMatch(WatchResponse::getCanceled), created.values().toString());
            assertEquals(1, clusterWatchers(cluster), "watchers on the members for 1,000 on the proxy");
            assertEquals(streams * perStream - 1, metric(scrape("http://" + via), "etcd_grpc_proxy_watchers_coalescing_total"));
            assertEquals(streams * perStream - 1, metric(scrape("http://" + metricsAddr),
                    "etcd_grpc_proxy_watchers_coalescing_total"), "the same on --metrics-addr");

            assertTrue(etcdctl(via, "put", "shared", "v2").ok());
            awaitTrue("the put reaches all 1,000", () -> seen.size() == streams * perStream);
            for (var entry : seen.entrySet()) {
                long id = Long.parseLong(entry.getKey().split("/")[1]);
                assertEquals(List.of(id % 2 == 0 ? "v2 prev=v1" : "v2 prev="), entry.getValue(), entry.getKey());
            }
            // A watch of the same key from an earlier revision cannot share the running one: it gets its own,
            // and the history from there; caught up, it joins the running one.
            calls.get(0).write(Buffer.buffer(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                    .setKey(ByteString.copyFromUtf8("shared")).setStartRevision(1)).build().toByteArray()));
            awaitTrue("the history watch's events", () -> seen.containsKey("0/" + perStream)
                    && seen.get("0/" + perStream).size() == 2);
            assertEquals(List.of("v1 prev=", "v2 prev="), seen.get("0/" + perStream));
            awaitTrue("the history watch, caught up, shares the running one", () -> clusterWatchers(cluster) == 1);
            assertTrue(etcdctl(via, "put", "shared", "v3").ok());
            awaitTrue("the next put reaches all 1,001", () -> seen.values().stream()
                    .filter(events -> events.get(events.size() - 1).startsWith("v3 ")).count() == streams * perStream + 1);
            assertEquals(List.of("v1 prev=", "v2 prev=", "v3 prev="), seen.get("0/" + perStream));

            calls.forEach(GrpcClientRequest::cancel);
            awaitTrue("the cluster's watch goes with the last watcher", () -> clusterWatchers(cluster) == 0);
            assertEquals(0, metric(scrape("http://" + via), "etcd_grpc_proxy_watchers_coalescing_total"));
        } finally {
            vertx.close();
            if (proxy != null) {
                proxy.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * A member that stops answering (SIGSTOP: its kernel still takes connections) is left within seconds:
     * the puts through the proxy go on, and so does a watch through it.
     */
    @Test
    void aMemberThatStopsAnsweringIsLeft() throws Exception {
        Path logs = Files.createDirectories(MemberProcess.LOG_DIR);
        Path proxyLog = logs.resolve("grpc-proxy-stopped.log");
        Path watchOut = logs.resolve("grpc-proxy-stopped-watch.out");
        Files.deleteIfExists(proxyLog);
        Process proxy = null;
        Process watch = null;
        long stopped = 0;
        try (ClusterProcess cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "grpc-proxy-stopped")) {
            int port = MemberProcess.freePorts(1)[0];
            String via = "127.0.0.1:" + port;
            int leader = cluster.leaderIndex();
            int used = leader == 1 ? 2 : 1;
            int other = 6 - leader - used;
            proxy = startProxy(proxyLog, via, hostPort(cluster.endpoint(used)) + "," + hostPort(cluster.endpoint(other))
                    + "," + hostPort(cluster.endpoint(leader)));
            watch = startWatch(via, "s", watchOut);

            stopped = cluster.pid(used);
            signal("STOP", stopped);
            putsGoOn(via, "s", watch, watchOut, 2);
            assertTrue(read(proxyLog).contains("does not answer"), read(proxyLog));
            signal("CONT", stopped);
            stopped = 0;
        } finally {
            if (stopped != 0) {
                signal("CONT", stopped); // after a failure (the cluster's close has killed it, stopped or not)
            }
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

    /** Starts {@code vetcd grpc-proxy start} on {@code via} in front of {@code endpoints}; returns once it serves. */
    static Process startProxy(Path log, String via, String endpoints, String... more) throws Exception {
        List<String> command = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
        command.addAll(List.of("grpc-proxy", "start", "--endpoints=" + endpoints, "--listen-addr=" + via,
                "--advertise-client-url=" + via));
        command.addAll(List.of(more));
        Process proxy = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        try {
            awaitTrue("the proxy serves", () -> {
                if (!proxy.isAlive()) {
                    throw new AssertionError("the proxy exited: " + read(log));
                }
                return etcdctl(via, "endpoint", "health").ok();
            });
        } catch (AssertionError | InterruptedException e) {
            proxy.destroyForcibly();
            throw e;
        }
        return proxy;
    }

    /** {@code etcdctl watch key} through the proxy, once it has seen a put ("before"). */
    private static Process startWatch(String via, String key, Path out) throws Exception {
        ProcessBuilder watcher = new ProcessBuilder("etcdctl", "--endpoints=" + via, "watch", key)
                .redirectErrorStream(true).redirectOutput(out.toFile());
        watcher.environment().put("ETCDCTL_API", "3");
        Process watch = watcher.start();
        try {
            awaitTrue("the watch gets the first put", () -> {
                etcdctl(via, "put", key, "before");
                return read(out).contains("before");
            });
        } catch (AssertionError | InterruptedException e) {
            watch.destroyForcibly();
            throw e;
        }
        return watch;
    }

    /**
     * After the member the proxy used is lost: puts of {@code key} through the proxy, each of its own
     * value, until one is acknowledged (at most {@code maxFailures} fail first), then three more. The
     * running watch prints each acknowledged value once, and no value twice: its shared watch, opened
     * again on another member, lost and repeated nothing. Returns the last value put.
     */
    private static String putsGoOn(String via, String key, Process watch, Path out, int maxFailures) throws Exception {
        List<String> tried = new ArrayList<>();
        List<String> acknowledged = new ArrayList<>();
        awaitTrue("a put through the proxy after the loss", () -> {
            String value = "after-" + tried.size();
            tried.add(value);
            if (etcdctl(via, "put", key, value, "--command-timeout=3s").ok()) {
                acknowledged.add(value);
            }
            return !acknowledged.isEmpty();
        });
        assertTrue(tried.size() - 1 <= maxFailures, (tried.size() - 1) + " puts failed after the loss");
        for (int i = 1; i <= 3; i++) {
            assertTrue(etcdctl(via, "put", key, "next-" + i).ok());
            acknowledged.add("next-" + i);
            tried.add("next-" + i);
        }
        awaitTrue("the watch goes on through the proxy", () -> {
            if (!watch.isAlive()) {
                throw new AssertionError("etcdctl watch exited: " + read(out));
            }
            return read(out).lines().anyMatch("next-3"::equals);
        });
        List<String> printed = read(out).lines().toList();
        for (String value : tried) {
            long times = printed.stream().filter(value::equals).count();
            assertTrue(times <= 1, value + " printed " + times + " times by the watch:\n" + read(out));
            if (acknowledged.contains(value)) {
                assertEquals(1, times, value + " acknowledged, never printed by the watch:\n" + read(out));
            }
        }
        return "next-3";
    }

    private static void signal(String signal, long pid) throws Exception {
        new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(10, TimeUnit.SECONDS);
    }

    private static WatchResponse parse(Buffer message) {
        try {
            return WatchResponse.parseFrom(message.getBytes());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** The watchers all members count (etcd_debugging_mvcc_watcher_total). */
    private static long clusterWatchers(ClusterProcess cluster) {
        long total = 0;
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            total += metric(scrape(cluster.endpoint(m)), "etcd_debugging_mvcc_watcher_total");
        }
        return total;
    }

    private static String scrape(String base) {
        return get(base + "/metrics");
    }

    private static String get(String url) {
        try {
            // HTTP/1.1: the JDK's client would ask a plain-text server to upgrade to HTTP/2 first.
            return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()
                    .send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                            HttpResponse.BodyHandlers.ofString()).body();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static long metric(String scrape, String name) {
        return scrape.lines().filter(l -> l.startsWith(name + " ")).findFirst()
                .map(l -> (long) Double.parseDouble(l.substring(name.length() + 1).trim()))
                .orElseThrow(() -> new AssertionError(name + " not in:\n" + scrape));
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
