package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * TLS between members (issue 17): a 3-member cluster whose peer URLs are https, with etcd's
 * {@code --peer-cert-file}, {@code --peer-key-file}, {@code --peer-trusted-ca-file} and
 * {@code --peer-client-cert-auth}, forms and replicates — etcd 3.4.23 and vetcd alike, with the same
 * certificates made by openssl at test time. A member added with a certificate from another CA
 * cannot join: the members refuse it, and vetcd's logs say why in plain words.
 */
class PeerTlsIT {

    private static Path dir;
    private final List<Process> processes = new ArrayList<>();

    @BeforeAll
    static void makeCertificates() throws Exception {
        dir = Files.createTempDirectory("vetcd-peer-tls-");
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=vetcd-peer-ca");
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.crt",
                "-days", "2", "-subj", "/CN=another-ca");
        Files.writeString(dir.resolve("peer.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                + "extendedKeyUsage=serverAuth,clientAuth\n");
        signed("peer", "ca");
        signed("peer-rotated", "ca");
        signed("stranger", "other-ca");
        Files.writeString(dir.resolve("peer.ext"), "subjectAltName=DNS:elsewhere.example\n"
                + "extendedKeyUsage=serverAuth,clientAuth\n");
        signed("wrong-host", "ca");
    }

    private static void signed(String name, String ca) throws Exception {
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                "/CN=" + name);
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", "-extfile", "peer.ext");
    }

    private static void openssl(String... args) throws Exception {
        OpenSsl.run(dir, args);
    }

    @AfterEach
    void stopMembers() throws Exception {
        for (Process p : processes) {
            p.destroyForcibly().waitFor();
        }
        processes.clear();
    }

    @AfterAll
    static void cleanUp() throws Exception {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Members 1..n on free ports: plain (or https) client URLs, https peer URLs. */
    private static final class Ports {
        final int[] client;
        final int[] peer;
        final String clientScheme;

        Ports(int n) throws Exception {
            this(n, "http");
        }

        Ports(int n, String clientScheme) throws Exception {
            this.clientScheme = clientScheme;
            int[] all = MemberProcess.freePorts(2 * n);
            client = new int[n + 1];
            peer = new int[n + 1];
            for (int m = 1; m <= n; m++) {
                client[m] = all[2 * (m - 1)];
                peer[m] = all[2 * (m - 1) + 1];
            }
        }

        String clientUrl(int m) {
            return clientScheme + "://127.0.0.1:" + client[m];
        }

        String peerUrl(int m) {
            return "https://127.0.0.1:" + peer[m];
        }

        /** --initial-cluster for members 1..n. */
        String initialCluster(int n) {
            return IntStream.rangeClosed(1, n).mapToObj(m -> "infra" + m + "=" + peerUrl(m))
                    .collect(Collectors.joining(","));
        }
    }

    private Path launch(MemberProcess.Kind kind, String tag, Ports ports, int m, String initialCluster, String state,
            String cert) throws Exception {
        return launch(kind, tag, ports, m, initialCluster, state, List.of(
                "--peer-cert-file", dir.resolve(cert + ".crt").toString(),
                "--peer-key-file", dir.resolve(cert + ".key").toString(),
                "--peer-trusted-ca-file", dir.resolve("ca.crt").toString(), "--peer-client-cert-auth"));
    }

    private Path launch(MemberProcess.Kind kind, String tag, Ports ports, int m, String initialCluster, String state,
            List<String> tlsFlags) throws Exception {
        List<String> command = MemberProcess.serverCommand(kind);
        command.addAll(List.of("--name", "infra" + m, "--data-dir", dir.resolve(tag + "-infra" + m).toString(),
                "--listen-client-urls", ports.clientUrl(m), "--advertise-client-urls", ports.clientUrl(m),
                "--listen-peer-urls", ports.peerUrl(m), "--initial-advertise-peer-urls", ports.peerUrl(m),
                "--initial-cluster", initialCluster, "--initial-cluster-state", state,
                "--initial-cluster-token", tag));
        command.addAll(tlsFlags);
        Files.createDirectories(MemberProcess.LOG_DIR);
        Path log = MemberProcess.LOG_DIR.resolve("peer-tls-" + tag + "-infra" + m + ".log");
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCD_"));
        processes.add(builder.start());
        return log;
    }

    private static boolean healthy(Ports ports, int m) throws Exception {
        Etcdctl.Result health = ports.clientScheme.equals("https")
                ? Etcdctl.run(ports.clientUrl(m), "--insecure-transport=false", "--insecure-skip-tls-verify", "endpoint",
                        "health", "--command-timeout=2s")
                : Etcdctl.run(ports.clientUrl(m), "endpoint", "health", "--command-timeout=2s");
        return health.ok();
    }

    /**
     * --auto-tls and --peer-auto-tls: each member makes its own certificates in its data dir, peers
     * encrypt without checking each other's (etcd's trade), and a client trusts a member's certificate
     * by its file; a member added later joins over the same. etcd 3.4.23 and vetcd alike.
     */
    @Test
    void aClusterFormsOverAutoTlsOnBothPorts() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            String tag = kind.name().toLowerCase() + "-auto";
            Ports ports = new Ports(4, "https");
            String initial = ports.initialCluster(3);
            List<String> auto = List.of("--auto-tls", "--peer-auto-tls");
            List<Path> logs = new ArrayList<>();
            for (int m = 1; m <= 3; m++) {
                logs.add(launch(kind, tag, ports, m, initial, "new", auto));
            }
            for (int m = 1; m <= 3; m++) {
                awaitHealthy(ports, m, logs);
            }
            for (int m = 1; m <= 3; m++) {
                for (String side : List.of("client", "peer")) {
                    assertTrue(Files.exists(dir.resolve(tag + "-infra" + m).resolve("fixtures/" + side + "/cert.pem")),
                            kind + " infra" + m + " made no " + side + " certificate");
                }
            }
            String cacert = "--cacert=" + dir.resolve(tag + "-infra3/fixtures/client/cert.pem");
            assertTrue(Etcdctl.run(ports.clientUrl(1), "--insecure-transport=false", "--insecure-skip-tls-verify",
                    "put", "over-auto-tls", "yes").ok(), kind + " put");
            Etcdctl.Result read = Etcdctl.run(ports.clientUrl(3), cacert, "get", "over-auto-tls", "--print-value-only");
            assertEquals("yes\n", read.stdout(), kind + ": " + read);
            Etcdctl.Result unverified = Etcdctl.run(ports.clientUrl(3), "get", "over-auto-tls", "--dial-timeout=2s",
                    "--command-timeout=3s");
            assertFalse(unverified.ok(), kind + ": a client that trusts nothing got an answer: " + unverified);
            if (kind == MemberProcess.Kind.VETCD) {
                // Joining: the member list is fetched over the self-signed peer TLS too.
                long addDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                Etcdctl.Result added;
                while (!(added = Etcdctl.run(ports.clientUrl(1), "--insecure-transport=false",
                        "--insecure-skip-tls-verify", "member", "add", "infra4", "--peer-urls=" + ports.peerUrl(4)))
                        .ok() && added.stderr().contains("unhealthy cluster") && System.nanoTime() < addDeadline) {
                    Thread.sleep(500);
                }
                Matcher line = Pattern.compile("ETCD_INITIAL_CLUSTER=\"([^\"]+)\"").matcher(added.stdout());
                assertTrue(added.ok() && line.find(), added.toString());
                logs.add(launch(kind, tag, ports, 4, line.group(1), "existing", auto));
                awaitHealthy(ports, 4, logs);
                Etcdctl.Result joined = Etcdctl.run(ports.clientUrl(4),
                        "--cacert=" + dir.resolve(tag + "-infra4/fixtures/client/cert.pem"), "get", "over-auto-tls",
                        "--print-value-only");
                assertEquals("yes\n", joined.stdout(), joined.toString());
            }
            stopMembers();
        }
    }

    @Test
    void aClusterFormsAndReplicatesOverPeerTls() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            String tag = kind.name().toLowerCase() + "-form";
            Ports ports = new Ports(3);
            String initial = ports.initialCluster(3);
            List<Path> logs = new ArrayList<>();
            // vetcd's members use a copy of the certificate, replaced below while they run.
            String cert = kind == MemberProcess.Kind.VETCD ? "rotating" : "peer";
            for (String ext : List.of(".crt", ".key")) {
                Files.copy(dir.resolve("peer" + ext), dir.resolve("rotating" + ext), StandardCopyOption.REPLACE_EXISTING);
            }
            for (int m = 1; m <= 3; m++) {
                logs.add(launch(kind, tag, ports, m, initial, "new", cert));
            }
            for (int m = 1; m <= 3; m++) {
                awaitHealthy(ports, m, logs);
            }
            assertTrue(Etcdctl.run(ports.clientUrl(1), "put", "over-tls", "yes").ok(), kind + " put");
            Etcdctl.Result read = Etcdctl.run(ports.clientUrl(3), "get", "over-tls", "--print-value-only");
            assertEquals("yes\n", read.stdout(), kind + ": " + read);
            if (kind == MemberProcess.Kind.VETCD) {
                rotate(ports, logs);
            }
            stopMembers();
        }
    }

    /**
     * The peer certificate replaced on disk while the members run: each reloads it (etcd reads it per
     * handshake), new handshakes show it, and the cluster goes on replicating.
     */
    private void rotate(Ports ports, List<Path> logs) throws Exception {
        Files.copy(dir.resolve("peer-rotated.key"), dir.resolve("rotating.key"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(dir.resolve("peer-rotated.crt"), dir.resolve("rotating.crt"), StandardCopyOption.REPLACE_EXISTING);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        for (int m = 1; m <= 3; m++) {
            String words = "reloaded the TLS certificates of " + ports.peerUrl(m);
            while (!read(logs.get(m - 1)).contains(words)) {
                assertTrue(System.nanoTime() < deadline, "infra" + m + " did not log \"" + words + "\"");
                Thread.sleep(200);
            }
        }
        String expected = shell("openssl x509 -noout -serial -in rotating.crt");
        String served = shell("openssl s_client -connect 127.0.0.1:" + ports.peer[2] + " -cert peer.crt -key peer.key"
                + " -CAfile ca.crt </dev/null 2>/dev/null | openssl x509 -noout -serial");
        assertEquals(expected, served, "the certificate infra2 shows after the rotation");
        assertTrue(Etcdctl.run(ports.clientUrl(2), "put", "after-rotation", "yes").ok(), "put after the rotation");
        Etcdctl.Result read = Etcdctl.run(ports.clientUrl(3), "get", "after-rotation", "--print-value-only");
        assertEquals("yes\n", read.stdout(), read.toString());
    }

    private static String shell(String command) throws Exception {
        Process p = new ProcessBuilder("bash", "-c", command).directory(dir.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && !out.isEmpty(), command + ": no output");
        return out;
    }

    /** vetcd: a member whose peer certificate comes from another CA is refused, with the reason logged. */
    @Test
    void aMemberWithACertificateFromAnotherAuthorityCannotJoin() throws Exception {
        String tag = "vetcd-stranger";
        Ports ports = new Ports(4);
        String initial = ports.initialCluster(3);
        List<Path> logs = new ArrayList<>();
        for (int m = 1; m <= 3; m++) {
            logs.add(launch(MemberProcess.Kind.VETCD, tag, ports, m, initial, "new", "peer"));
        }
        for (int m = 1; m <= 3; m++) {
            awaitHealthy(ports, m, logs);
        }
        // etcd's rule, vetcd's too: members must have been connected for 5 s before one is added.
        long addDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Etcdctl.Result added;
        while (!(added = Etcdctl.run(ports.clientUrl(1), "member", "add", "infra4", "--peer-urls=" + ports.peerUrl(4)))
                .ok() && added.stderr().contains("unhealthy cluster") && System.nanoTime() < addDeadline) {
            Thread.sleep(500);
        }
        Matcher line = Pattern.compile("ETCD_INITIAL_CLUSTER=\"([^\"]+)\"").matcher(added.stdout());
        assertTrue(added.ok() && line.find(), added.toString());
        Path strangerLog = launch(MemberProcess.Kind.VETCD, tag, ports, 4, line.group(1), "existing", "stranger");
        // The members refuse its handshakes and say why; it never serves.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        // (The stranger, a Java client, offers no certificate the members' CA did not sign.)
        String words = "sent no certificate signed by an authority in --peer-trusted-ca-file";
        while (logs.stream().noneMatch(log -> read(log).contains(words))) {
            assertTrue(System.nanoTime() < deadline, "no member logged \"" + words + "\"\n" + read(strangerLog));
            Thread.sleep(200);
        }
        assertFalse(healthy(ports, 4), "the stranger serves");
        for (int m = 1; m <= 3; m++) {
            assertTrue(healthy(ports, m), "infra" + m + " after the stranger's attempts");
        }

        // The same member started with a certificate of the cluster's CA joins (the member list is fetched
        // over TLS too) and serves what was written before.
        Process stranger = processes.get(3);
        stranger.destroyForcibly().waitFor();
        try (Stream<Path> paths = Files.exists(dir.resolve(tag + "-infra4")) ? Files.walk(dir.resolve(tag + "-infra4"))
                : Stream.empty()) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
        assertTrue(Etcdctl.run(ports.clientUrl(1), "put", "before-join", "1").ok());
        logs.add(launch(MemberProcess.Kind.VETCD, tag, ports, 4, line.group(1), "existing", "peer"));
        processes.remove(stranger);
        awaitHealthy(ports, 4, logs);
        Etcdctl.Result read = Etcdctl.run(ports.clientUrl(4), "get", "before-join", "--print-value-only");
        assertEquals("1\n", read.stdout(), read.toString());
    }

    /**
     * vetcd: a member whose certificate (of the right CA) does not name the address it is dialled at
     * cannot be reached, and the members dialling it say so in plain words (etcd logs Go's "x509:
     * certificate is valid for elsewhere.example, not 127.0.0.1" on the dialling side too).
     */
    @Test
    void aPeerCertificateForAnotherHostIsRefusedByTheMembersDiallingIt() throws Exception {
        String tag = "vetcd-wrong-host";
        Ports ports = new Ports(3);
        String initial = ports.initialCluster(3);
        List<Path> logs = new ArrayList<>();
        for (int m = 1; m <= 3; m++) {
            logs.add(launch(MemberProcess.Kind.VETCD, tag, ports, m, initial, "new", m == 3 ? "wrong-host" : "peer"));
        }
        String words = "over TLS: the other side's certificate does not name the host or address dialled";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!(read(logs.get(0)).contains(words) && read(logs.get(1)).contains(words))) {
            assertTrue(System.nanoTime() < deadline, "infra1 and infra2 did not both log \"" + words + "\"\n"
                    + read(logs.get(0)) + "\n----\n" + read(logs.get(1)));
            Thread.sleep(200);
        }
        awaitHealthy(ports, 1, logs); // the two others still make a quorum
    }

    private void awaitHealthy(Ports ports, int m, List<Path> logs) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(40);
        while (!healthy(ports, m)) {
            if (System.nanoTime() > deadline || !processes.get(m - 1).isAlive()) {
                fail("infra" + m + " not healthy\n" + logs.stream().map(PeerTlsIT::read).collect(Collectors.joining(
                        "\n----\n")));
            }
            Thread.sleep(200);
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (java.io.IOException e) {
            return "(no log: " + e + ")";
        }
    }
}
