package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * k8s/statefulset.yaml run as Kubernetes would run it, without Kubernetes (issue 19): each pod's
 * container is rendered from the manifest as the kubelet does (the downward API's name, namespace and
 * pod IP; {@code $(VAR)} expanded in env values and args; the volume claim template's volume mounted
 * at its mountPath) and started as a process. Pods get addresses of their own in 127.0.0.0/8 (a pod's
 * wildcard listen address becomes its own, as its network namespace would make it), the
 * headless Service's DNS names map to them through a hosts file (the JVM resolves through it), and a
 * stand-in API server answers the StatefulSet's replica count. Then: the cluster forms; scales to 4
 * (a learner, promoted) and back to 3 (the pod leaves the member list); a pod restarts with its volume
 * (same identity) and without (a replacement); a scaled-away ordinal comes back on its old volume. And
 * with k8s/tls's patch applied and a Secret made by openssl: forms, scales to 4 and back over TLS.
 */
class StatefulSetIT {

    private static final Path MANIFEST = Path.of("k8s/statefulset.yaml");
    private static final String NAMESPACE = "default";
    private static final Duration WAIT = Duration.ofSeconds(90);

    /** One pod's container as the kubelet would start it. */
    record Container(List<String> args, Map<String, String> env) {}

    private final Path root = Path.of(System.getProperty("it.logs.dir", "target/it-logs"), "statefulset");
    private final Map<Integer, Process> pods = new LinkedHashMap<>();
    private final AtomicInteger replicas = new AtomicInteger(3);
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(2)).build();
    private String subnet;
    private HttpServer api;
    private Path hosts;
    /** The Secret vetcd-tls of k8s/tls, as mounted: ca.crt, tls.crt, tls.key. */
    private final Path tlsDir = root.resolve("secret-vetcd-tls");
    private boolean tls;

    @AfterEach
    void stop() throws Exception {
        for (Process p : pods.values()) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        if (api != null) {
            api.stop(0);
        }
    }

    @Test
    void formsScalesAndHealsAsAStatefulSet() throws Exception {
        Map<String, Object> statefulSet = statefulSet();
        setUp();

        // Form: three pods at once (podManagementPolicy: Parallel).
        assertEquals("Parallel", ((Map<?, ?>) statefulSet.get("spec")).get("podManagementPolicy"));
        for (int n = 0; n < 3; n++) {
            start(statefulSet, n);
        }
        for (int n = 0; n < 3; n++) {
            awaitReady(n);
        }
        Map<String, String[]> members = awaitMembers(3, 0);
        assertEquals(List.of("vetcd-0", "vetcd-1", "vetcd-2"), members.keySet().stream().sorted().toList());
        put(0, "formed", "1");

        // Scale to 4: the new ordinal joins as a learner and the leader promotes it.
        replicas.set(4);
        start(statefulSet, 3);
        awaitReady(3);
        members = awaitMembers(4, 0);
        assertEquals("false", members.get("vetcd-3")[5], "vetcd-3 not promoted: " + members.get("vetcd-3")[5]);
        assertEquals("1", get(3, "formed"));
        put(3, "scaled-up", "1");

        // Scale back to 3: Kubernetes lowers spec.replicas, then stops the highest ordinal.
        replicas.set(3);
        String scaledAway = members.get("vetcd-3")[0];
        stopPod(3);
        members = awaitMembers(3, 0);
        assertTrue(!members.containsKey("vetcd-3"), "vetcd-3 still listed: " + members.keySet());
        assertTrue(log(3).contains("a scale-down; member " + scaledAway + " leaves the cluster"), log(3));

        // A pod restarted with its volume comes back as the same member.
        String before = members.get("vetcd-1")[0];
        stopPod(1);
        assertTrue(log(1).contains("keeps its place in the cluster"), log(1));
        start(statefulSet, 1);
        awaitReady(1);
        members = awaitMembers(3, 0);
        assertEquals(before, members.get("vetcd-1")[0], "vetcd-1 came back as another member");
        assertEquals("1", get(1, "scaled-up"));

        // A pod whose volume was lost replaces its member: a new id, the same name and peer URL.
        pods.remove(1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        delete(volume(1));
        start(statefulSet, 1);
        awaitReady(1);
        members = awaitMembers(3, 0);
        assertNotEquals(before, members.get("vetcd-1")[0], "vetcd-1 kept its old id without its data");
        assertEquals("1", get(1, "scaled-up"));
        assertTrue(log(1).contains("its volume was lost"), log(1));

        // Scaled up again, ordinal 3 finds its old volume from before the scale-down: it joins anew.
        replicas.set(4);
        start(statefulSet, 3);
        awaitReady(3);
        members = awaitMembers(4, 0);
        assertNotEquals(scaledAway, members.get("vetcd-3")[0]);
        assertTrue(log(3).contains("its old data is moved to"), log(3));
        assertEquals("1", get(3, "scaled-up"));
        for (int n = 0; n < 4; n++) {
            assertEquals("1", get(n, "formed"), "via vetcd-" + n);
        }
    }

    @Test
    void formsAndScalesWithTlsOnBothPorts() throws Exception {
        Map<String, Object> statefulSet = statefulSet();
        patch(statefulSet, new Yaml().load(Files.readString(Path.of("k8s/tls/statefulset-tls.yaml"))));
        setUp();
        tls = true;
        // The Secret: a CA, and one certificate for every pod's names and addresses, server and client.
        Files.createDirectories(tlsDir);
        OpenSsl.run(tlsDir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                "-days", "2", "-subj", "/CN=vetcd-ca");
        StringBuilder names = new StringBuilder("subjectAltName=DNS:*.vetcd." + NAMESPACE + ".svc.cluster.local");
        for (int n = 0; n < 5; n++) {
            names.append(",IP:").append(ip(n));
        }
        Files.writeString(tlsDir.resolve("tls.ext"), names + "\nextendedKeyUsage=serverAuth,clientAuth\n");
        OpenSsl.run(tlsDir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj",
                "/CN=vetcd");
        OpenSsl.run(tlsDir, "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "tls.crt", "-days", "2", "-extfile", "tls.ext");

        for (int n = 0; n < 3; n++) {
            start(statefulSet, n);
        }
        for (int n = 0; n < 3; n++) {
            awaitReady(n);
        }
        Map<String, String[]> members = awaitMembers(3, 0);
        assertTrue(members.get("vetcd-0")[3].startsWith("https://vetcd-0.vetcd."), members.get("vetcd-0")[3]);
        put(0, "formed", "tls");
        // Without a client certificate the cluster refuses (--client-cert-auth): the pods' own calls below
        // go through only because they present theirs.
        assertTrue(!Etcdctl.run("https://" + ip(0) + ":2379", "--cacert=" + tlsDir.resolve("ca.crt"), "get", "formed")
                .ok());

        replicas.set(4);
        start(statefulSet, 3);
        awaitReady(3);
        members = awaitMembers(4, 0);
        assertEquals("tls", get(3, "formed"));
        replicas.set(3);
        stopPod(3);
        members = awaitMembers(3, 0);
        assertTrue(!members.containsKey("vetcd-3"), "vetcd-3 still listed: " + members.keySet());
        assertTrue(log(3).contains("leaves the cluster") && log(3).contains("removed from the cluster"), log(3));
    }

    /** The StatefulSet object of k8s/statefulset.yaml (its only document). */
    @SuppressWarnings("unchecked")
    static Map<String, Object> statefulSet() throws IOException {
        Map<String, Object> object = new Yaml().load(Files.readString(MANIFEST));
        assertEquals("StatefulSet", object.get("kind"));
        return object;
    }

    /**
     * Ordinal {@code n}'s container, as the kubelet makes it: env in order, each value's {@code $(VAR)}
     * expanded with the variables before it; the downward API's fields; args expanded with all of them;
     * each volume mounted at its mountPath ({@code volumes}: the directory standing for each volume, by
     * name: the claim template's, a Secret's).
     */
    @SuppressWarnings("unchecked")
    static Container render(Map<String, Object> statefulSet, int n, String podIp, Map<String, Path> volumes) {
        Map<String, Object> spec = (Map<String, Object>) statefulSet.get("spec");
        String podName = ((Map<String, Object>) statefulSet.get("metadata")).get("name") + "-" + n;
        Map<String, Object> podSpec = (Map<String, Object>) ((Map<String, Object>) spec.get("template")).get("spec");
        List<Map<String, Object>> containers = (List<Map<String, Object>>) podSpec.get("containers");
        assertEquals(1, containers.size());
        Map<String, Object> container = containers.get(0);
        assertEquals(null, container.get("command"), "the image's entrypoint (vetcd) runs the args");
        Map<String, String> env = new LinkedHashMap<>();
        for (Map<String, Object> var : (List<Map<String, Object>>) container.get("env")) {
            String name = (String) var.get("name");
            if (var.containsKey("value")) {
                env.put(name, expand(String.valueOf(var.get("value")), env));
                continue;
            }
            Map<String, Object> fieldRef = (Map<String, Object>) ((Map<String, Object>) var.get("valueFrom")).get("fieldRef");
            String field = (String) fieldRef.get("fieldPath");
            env.put(name, switch (field) {
                case "metadata.name" -> podName;
                case "metadata.namespace" -> NAMESPACE;
                case "status.podIP" -> podIp;
                default -> throw new AssertionError("the simulation has no value for fieldPath " + field);
            });
        }
        // Where each mount's volume is: the claim templates' and the pod's own volumes, by name.
        List<String> declared = new ArrayList<>();
        ((List<Map<String, Object>>) spec.get("volumeClaimTemplates"))
                .forEach(c -> declared.add((String) ((Map<String, Object>) c.get("metadata")).get("name")));
        ((List<Map<String, Object>>) podSpec.getOrDefault("volumes", List.of())).forEach(v -> declared.add((String) v.get("name")));
        Map<String, Path> mounts = new LinkedHashMap<>();
        for (Map<String, Object> mount : (List<Map<String, Object>>) container.get("volumeMounts")) {
            String volume = (String) mount.get("name");
            assertTrue(declared.contains(volume) && volumes.containsKey(volume), "a mount of volume " + volume);
            mounts.put((String) mount.get("mountPath"), volumes.get(volume));
        }
        List<String> args = new ArrayList<>();
        for (Object arg : (List<Object>) container.get("args")) {
            // A pod has a network namespace of its own, where the wildcard address means its pod IP (and
            // its own localhost); the processes here share one, so the pod's IP stands for it.
            args.add(mounted(expand(String.valueOf(arg), env), mounts).replace("://0.0.0.0:", "://" + podIp + ":"));
        }
        env.replaceAll((k, v) -> mounted(v, mounts));
        return new Container(args, env);
    }

    /** Kubernetes' $(VAR) expansion: defined variables replaced, others left as written, $$ an escaped $. */
    static String expand(String text, Map<String, String> vars) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < text.length()) {
            if (text.startsWith("$$", i)) {
                out.append('$');
                i += 2;
            } else if (text.startsWith("$(", i) && text.indexOf(')', i) > 0) {
                int end = text.indexOf(')', i);
                String name = text.substring(i + 2, end);
                out.append(vars.containsKey(name) ? vars.get(name) : text.substring(i, end + 1));
                i = end + 1;
            } else {
                out.append(text.charAt(i++));
            }
        }
        return out.toString();
    }

    /** A path under a mount, as a whole value or a flag's ("--data-dir=/var/lib/vetcd/data"), into its volume. */
    private static String mounted(String value, Map<String, Path> mounts) {
        for (Map.Entry<String, Path> mount : mounts.entrySet()) {
            if (value.startsWith(mount.getKey() + "/") || value.equals(mount.getKey())) {
                return mount.getValue() + value.substring(mount.getKey().length());
            }
            value = value.replace("=" + mount.getKey() + "/", "=" + mount.getValue() + "/");
        }
        return value;
    }

    /** An RFC 6902 patch's add and replace operations (what k8s/tls's patch uses), applied in place. */
    @SuppressWarnings("unchecked")
    static void patch(Map<String, Object> object, List<Map<String, Object>> operations) {
        for (Map<String, Object> op : operations) {
            String[] path = ((String) op.get("path")).substring(1).split("/");
            Object parent = object;
            for (int i = 0; i < path.length - 1; i++) {
                parent = parent instanceof List<?> list ? list.get(Integer.parseInt(path[i]))
                        : ((Map<String, Object>) parent).get(path[i]);
            }
            String last = path[path.length - 1];
            Object value = op.get("value");
            switch ((String) op.get("op")) {
                case "add" -> {
                    if (parent instanceof List<?> list) {
                        ((List<Object>) list).add(last.equals("-") ? list.size() : Integer.parseInt(last), value);
                    } else {
                        ((Map<String, Object>) parent).put(last, value);
                    }
                }
                case "replace" -> {
                    if (parent instanceof List<?> list) {
                        ((List<Object>) list).set(Integer.parseInt(last), value);
                    } else {
                        assertTrue(((Map<String, Object>) parent).containsKey(last), "replace of a missing " + op.get("path"));
                        ((Map<String, Object>) parent).put(last, value);
                    }
                }
                default -> throw new AssertionError("the simulation does not apply op " + op.get("op"));
            }
        }
    }

    /** Pod addresses, the hosts file that names them, the stand-in API server. */
    private void setUp() throws IOException {
        delete(root);
        Files.createDirectories(root);
        for (int attempt = 0; ; attempt++) {
            subnet = "127." + ThreadLocalRandom.current().nextInt(16, 250) + "." + ThreadLocalRandom.current().nextInt(1, 250);
            if (portsFree()) {
                break;
            }
            if (attempt == 20) {
                fail("no subnet of 127.0.0.0/8 with ports 2379-2381 free on 5 addresses (something listens on "
                        + "0.0.0.0:2379?)");
            }
        }
        StringBuilder names = new StringBuilder("127.0.0.1 localhost\n");
        for (int n = 0; n < 5; n++) {
            names.append(ip(n)).append(' ').append("vetcd-").append(n).append(".vetcd.").append(NAMESPACE)
                    .append(".svc.cluster.local\n");
        }
        hosts = root.resolve("hosts");
        Files.writeString(hosts, names.toString());
        api = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        api.createContext("/apis/apps/v1/namespaces/" + NAMESPACE + "/statefulsets/vetcd", exchange -> {
            byte[] body = ("{\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"vetcd\"},\"spec\":{\"replicas\":"
                    + replicas.get() + "}}").getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        api.start();
    }

    private boolean portsFree() {
        for (int n = 0; n < 5; n++) {
            for (int port : new int[] {2379, 2380, 2381}) {
                try (ServerSocket s = new ServerSocket(port, 1, java.net.InetAddress.getByName(ip(n)))) {
                    s.setReuseAddress(true);
                } catch (IOException e) {
                    return false;
                }
            }
        }
        return true;
    }

    private String ip(int n) {
        return subnet + "." + (10 + n);
    }

    private Path volume(int n) {
        return root.resolve("data-vetcd-" + n); // a PersistentVolumeClaim: <template>-<pod>
    }

    private Path logFile(int n) {
        return root.resolve("vetcd-" + n + ".log");
    }

    private String log(int n) throws IOException {
        return Files.readString(logFile(n));
    }

    private void start(Map<String, Object> statefulSet, int n) throws IOException {
        Files.createDirectories(volume(n));
        Container container = render(statefulSet, n, ip(n), Map.of("data", volume(n), "tls", tlsDir));
        List<String> command = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
        // The cluster's DNS: the headless Service's names, through the JVM's resolver.
        command.addAll(command.indexOf("-jar"), List.of("-Dvertx.disableDnsResolver=true",
                "-Djdk.net.hosts.file=" + hosts));
        command.addAll(container.args());
        Files.writeString(logFile(n), "=== starting: " + String.join(" ", command) + "\n", StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile(n).toFile()));
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCD_") || k.startsWith("KUBERNETES_"));
        builder.environment().putAll(container.env());
        // What Kubernetes gives a pod besides its spec: the API server (here, the stand-in).
        builder.environment().put("VETCD_KUBERNETES_API", "http://127.0.0.1:" + api.getAddress().getPort());
        Process process = builder.start();
        process.getOutputStream().close();
        pods.put(n, process);
    }

    /** SIGTERM, as the kubelet stops a container; the member must exit 0 within the grace period. */
    private void stopPod(int n) throws Exception {
        Process process = pods.remove(n);
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail("vetcd-" + n + " did not stop within the 30 s grace period\n" + log(n));
        }
        assertEquals(0, process.exitValue(), log(n));
    }

    /** The readiness probe of the manifest: GET /readyz on the metrics port answers 200. */
    private void awaitReady(int n) throws Exception {
        awaitTrue("vetcd-" + n + " ready", () -> {
            Process p = pods.get(n);
            if (!p.isAlive()) {
                throw new AssertionError("vetcd-" + n + " exited with " + p.exitValue() + "\n" + logTail(n));
            }
            try {
                return http.send(HttpRequest.newBuilder(URI.create("http://" + ip(n) + ":2381/readyz"))
                        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).statusCode() == 200;
            } catch (IOException e) {
                return false;
            } catch (InterruptedException e) {
                throw new RuntimeException(e);
            }
        }, n);
    }

    /**
     * Waits until the member list through pod {@code via} has {@code count} started voters; returns
     * them by name (etcdctl's columns: id, status, name, peer URLs, client URLs, is learner).
     */
    private Map<String, String[]> awaitMembers(int count, int via) throws Exception {
        Map<String, String[]>[] last = new Map[1];
        awaitTrue(count + " started voting members", () -> {
            try {
                Etcdctl.Result result = etcdctl(via, "member", "list");
                if (!result.ok()) {
                    return false;
                }
                Map<String, String[]> members = new LinkedHashMap<>();
                for (String line : result.stdout().split("\n")) {
                    String[] columns = line.split(", ");
                    if (columns.length == 6) {
                        members.put(columns[2], columns);
                    }
                }
                last[0] = members;
                return members.size() == count && members.values().stream()
                        .allMatch(m -> m[1].equals("started") && m[5].equals("false") && !m[2].isEmpty());
            } catch (IOException | InterruptedException e) {
                return false;
            }
        }, via);
        return last[0];
    }

    /** etcdctl through pod {@code via}'s client port, with the Secret's certificate when TLS is on. */
    private Etcdctl.Result etcdctl(int via, String... args) throws IOException, InterruptedException {
        if (!tls) {
            return Etcdctl.run(ip(via) + ":2379", args);
        }
        List<String> all = new ArrayList<>(List.of("--cacert=" + tlsDir.resolve("ca.crt"),
                "--cert=" + tlsDir.resolve("tls.crt"), "--key=" + tlsDir.resolve("tls.key")));
        all.addAll(List.of(args));
        return Etcdctl.run("https://" + ip(via) + ":2379", all.toArray(String[]::new));
    }

    private void put(int via, String key, String value) throws Exception {
        Etcdctl.Result result = etcdctl(via, "put", key, value);
        assertTrue(result.ok(), result.toString());
    }

    private String get(int via, String key) throws Exception {
        Etcdctl.Result result = etcdctl(via, "get", key, "--print-value-only");
        assertTrue(result.ok(), result.toString());
        return result.stdout().trim();
    }

    private void awaitTrue(String what, BooleanSupplier condition, int pod) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail(what + ": not within " + WAIT.toSeconds() + " s\n" + logTail(pod));
            }
            Thread.sleep(200);
        }
    }

    private String logTail(int n) {
        try {
            List<String> lines = Files.readAllLines(logFile(n));
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private static void delete(Path dir) throws IOException {
        if (Files.exists(dir)) {
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
