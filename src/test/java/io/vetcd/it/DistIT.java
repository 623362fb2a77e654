package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The self-contained distribution {@code mvn package} makes (bin/build-dist), as a user meets it:
 * unpacked into an empty directory and started from there with no java on the PATH, a member runs on
 * the distribution's own runtime with its start archive mapped ({@code -Xshare:on}: the JVM refuses
 * to start otherwise) and serves etcdctl over auto TLS, with auth, and /metrics; it is started as the
 * container image runs it in k8s/ ({@code vetcd statefulset}).
 */
class DistIT {

    @Test
    void theUnpackedDistributionRunsWithoutAJdk() throws Exception {
        Assumptions.assumeFalse(Boolean.getBoolean("vetcd.skipDist"), "built with -DskipDist");
        Path target = Path.of(System.getProperty("vetcd.target", "target"));
        Path archive;
        try (Stream<Path> files = Files.list(target)) {
            archive = files.filter(f -> f.getFileName().toString().matches("vetcd-.*-linux-.*\\.tar\\.gz"))
                    .findFirst().orElseThrow(() -> new AssertionError("mvn package made no distribution in " + target));
        }
        Path dir = Files.createTempDirectory("vetcd-dist-");
        Process member = null;
        try {
            run(dir, "tar", "-xzf", archive.toAbsolutePath().toString());
            Path home;
            try (Stream<Path> unpacked = Files.list(dir)) {
                home = unpacked.findFirst().orElseThrow();
            }
            assertTrue(Files.isExecutable(home.resolve("runtime/bin/java")), "no runtime in " + home);
            assertFalse(Files.exists(home.resolve("runtime/bin/javac")), "a JDK, not a runtime");
            assertTrue(Files.isRegularFile(home.resolve("lib/vetcd.jsa")), "no start archive");

            // A PATH with what bin/vetcd runs, and no java.
            Path tools = Files.createDirectories(dir.resolve("tools"));
            for (String tool : List.of("bash", "dirname", "env", "nproc", "cat")) {
                Files.createSymbolicLink(tools.resolve(tool), Path.of(which(tool)));
            }
            int[] ports = MemberProcess.freePorts(2);
            String client = "https://127.0.0.1:" + ports[0];
            String peer = "http://127.0.0.1:" + ports[1];
            // As the container image runs it in k8s/: `statefulset` first asks the others (with the JDK's
            // HTTP client, which the trimmed runtime must hold), then founds a cluster of one.
            ProcessBuilder start = new ProcessBuilder(home.resolve("bin/vetcd").toString(), "statefulset",
                    "--name", "vetcd-0", "--data-dir", dir.resolve("data").toString(), "--auto-tls",
                    "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer, "--initial-cluster", "vetcd-0=" + peer)
                    .redirectErrorStream(true).redirectOutput(dir.resolve("member.log").toFile());
            start.environment().keySet().removeIf(k -> k.startsWith("ETCD_") || k.equals("JAVA_HOME"));
            start.environment().put("PATH", tools.toString());
            start.environment().put("VETCD_JAVA_OPTS", "-Xshare:on");
            member = start.start();

            String[] tls = {"--insecure-transport=false", "--insecure-skip-tls-verify"};
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!etcdctl(client, tls, "endpoint", "health").ok()) {
                if (!member.isAlive() || System.nanoTime() > deadline) {
                    fail("the distribution's member did not serve\n" + Files.readString(dir.resolve("member.log")));
                }
                Thread.sleep(200);
            }
            String log = Files.readString(dir.resolve("member.log"));
            assertFalse(log.contains("WARNING: "), "the JVM warned at start (bin/vetcd's flags for JDK 25):\n" + log);
            assertTrue(log.contains("StatefulSet pod 0: a founding member"), log);
            Path exe = Path.of("/proc/" + member.pid() + "/exe").toRealPath();
            assertEquals(home.resolve("runtime/bin/java").toRealPath(), exe, "the member runs another java");

            assertTrue(etcdctl(client, tls, "put", "k", "v").ok());
            assertTrue(etcdctl(client, tls, "user", "add", "root", "--new-user-password=rootpw").ok());
            assertTrue(etcdctl(client, tls, "auth", "enable").ok());
            Etcdctl.Result read = etcdctl(client, tls, "--user=root:rootpw", "get", "k", "--print-value-only");
            assertEquals("v\n", read.stdout(), read.toString());
            String metrics = run(dir, "curl", "-sk", client + "/metrics");
            // The JVM's and the process's own series need java.management and jdk.management in the runtime.
            for (String series : List.of("etcd_server_has_leader 1", "jvm_memory_used_bytes", "process_files_open_files",
                    "process_cpu_usage")) {
                assertTrue(metrics.contains(series), series + " missing from /metrics of the distribution");
            }
        } finally {
            if (member != null) {
                member.destroy();
                if (!member.waitFor(20, TimeUnit.SECONDS)) {
                    member.destroyForcibly().waitFor();
                }
            }
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private static Etcdctl.Result etcdctl(String endpoint, String[] tls, String... args) throws Exception {
        String[] all = new String[tls.length + args.length];
        System.arraycopy(tls, 0, all, 0, tls.length);
        System.arraycopy(args, 0, all, tls.length, args.length);
        return Etcdctl.run(endpoint, all);
    }

    private static String which(String tool) throws Exception {
        for (String d : System.getenv("PATH").split(":")) {
            Path p = Path.of(d, tool);
            if (Files.isExecutable(p)) {
                return p.toRealPath().toString();
            }
        }
        throw new AssertionError(tool + " not on the PATH");
    }

    private static String run(Path dir, String... command) throws Exception {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, List.of(command) + ": " + out);
        return out;
    }
}
