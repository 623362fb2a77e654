package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * TLS on the client port (issue 17, first step), etcd 3.4.23 and vetcd side by side with the same
 * flags and certificates, made at test time with openssl (a CA, a server certificate for 127.0.0.1, a
 * client certificate, and a second CA with its own client certificate): the real etcdctl with
 * {@code --cacert --cert --key} puts and gets; with {@code --client-cert-auth} a client without a
 * certificate, or with one from another CA, is refused, and so is plain HTTP; the gateway and /health
 * answer over HTTPS; an https URL without {@code --cert-file}/{@code --key-file} is refused at start in
 * etcd's words. vetcd only: every refused handshake is logged in plain words, and a server
 * certificate replaced on disk is used for new connections without a restart.
 */
class ClientTlsIT {

    private static Path dir;
    private static final List<Process> processes = new ArrayList<>();

    @BeforeAll
    static void makeCertificates() throws Exception {
        dir = Files.createTempDirectory("vetcd-tls-");
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=vetcd-test-ca");
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.crt",
                "-days", "2", "-subj", "/CN=another-ca");
        Files.writeString(dir.resolve("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                + "extendedKeyUsage=serverAuth,clientAuth\n");
        Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
        signed("server", "ca", "server.ext", "/CN=vetcd-server");
        signed("client", "ca", "client.ext", "/CN=root");
        signed("alice", "ca", "client.ext", "/CN=alice");
        signed("stranger", "other-ca", "client.ext", "/CN=stranger");
        signed("other-server", "other-ca", "server.ext", "/CN=vetcd-server");
        // A client certificate of the right CA that expired in 2020 (openssl ca sets the dates).
        Files.writeString(dir.resolve("ca.cnf"), "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
                + "new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n");
        Files.writeString(dir.resolve("index.txt"), "");
        Files.writeString(dir.resolve("serial"), "1000\n");
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "expired.key", "-out", "expired.csr", "-subj",
                "/CN=expired");
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "expired.csr",
                "-out", "expired.crt", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile",
                "client.ext");
        // And one whose life begins in 2099.
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "future.key", "-out", "future.csr", "-subj",
                "/CN=future");
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "future.csr",
                "-out", "future.crt", "-startdate", "20990101000000Z", "-enddate", "20990102000000Z", "-extfile",
                "client.ext");
    }

    private static void signed(String name, String ca, String ext, String subject) throws Exception {
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject);
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", "-extfile", ext);
    }

    private static void openssl(String... args) throws Exception {
        OpenSsl.run(dir, args);
    }

    @AfterAll
    static void cleanUp() throws Exception {
        for (Process p : processes) {
            p.destroyForcibly().waitFor();
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** A member serving its client port over TLS; its log in target/it-logs/client-tls-<kind>.log. */
    private record Member(MemberProcess.Kind kind, String endpoint, Path log, Process process) {
    }

    private static Member start(MemberProcess.Kind kind, String tag, String... tlsFlags) throws Exception {
        int[] ports = MemberProcess.freePorts(2);
        String client = "https://127.0.0.1:" + ports[0];
        String peer = "http://127.0.0.1:" + ports[1];
        List<String> command = MemberProcess.serverCommand(kind);
        command.addAll(List.of("--name", "default", "--data-dir", dir.resolve(tag + "-data").toString(),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "default=" + peer));
        command.addAll(List.of(tlsFlags));
        Files.createDirectories(MemberProcess.LOG_DIR);
        Path log = MemberProcess.LOG_DIR.resolve("client-tls-" + tag + ".log");
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCD_"));
        Process process = builder.start();
        processes.add(process);
        return new Member(kind, client, log, process);
    }

    private static Member startServing(MemberProcess.Kind kind, String tag, String... tlsFlags) throws Exception {
        Member m = start(kind, tag, tlsFlags);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!etcdctl(m, true, "endpoint", "health").ok()) {
            if (!m.process().isAlive() || System.nanoTime() > deadline) {
                fail(kind + " did not serve over TLS\n" + Files.readString(m.log()));
            }
            Thread.sleep(200);
        }
        return m;
    }

    private static String[] cert(String name) {
        return new String[] {"--cacert", dir.resolve("ca.crt").toString(), "--cert", dir.resolve(name + ".crt").toString(),
            "--key", dir.resolve(name + ".key").toString()};
    }

    private static Etcdctl.Result etcdctl(Member m, boolean withClientCert, String... args) throws Exception {
        List<String> all = new ArrayList<>();
        if (withClientCert) {
            all.addAll(List.of(cert("client")));
        } else {
            all.addAll(List.of("--cacert", dir.resolve("ca.crt").toString()));
        }
        all.add("--command-timeout=3s");
        all.addAll(List.of(args));
        return Etcdctl.run(m.endpoint(), all.toArray(String[]::new));
    }

    private static String curl(String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of("curl", "-s", "-m", "5"));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(10, TimeUnit.SECONDS);
        return p.exitValue() == 0 ? out : "curl exit " + p.exitValue();
    }

    private static String[] serverTls() {
        return new String[] {"--cert-file", dir.resolve("server.crt").toString(), "--key-file",
            dir.resolve("server.key").toString(), "--trusted-ca-file", dir.resolve("ca.crt").toString(),
            "--client-cert-auth"};
    }

    @Test
    void clientCertificateAuthAsEtcd() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            Member m = startServing(kind, kind.name().toLowerCase() + "-auth", serverTls());
            Etcdctl.Result put = etcdctl(m, true, "put", "tls-key", "tls-value");
            assertEquals("OK\n", put.stdout(), kind + ": " + put);
            Etcdctl.Result get = etcdctl(m, true, "get", "tls-key", "--print-value-only");
            assertEquals("tls-value\n", get.stdout(), kind + ": " + get);

            // Without a client certificate, or with one from another authority: refused.
            Etcdctl.Result anonymous = etcdctl(m, false, "get", "tls-key");
            assertNotEquals(0, anonymous.exitCode(), kind + ": " + anonymous);
            Etcdctl.Result stranger = Etcdctl.run(m.endpoint(), "--cacert", dir.resolve("ca.crt").toString(),
                    "--cert", dir.resolve("stranger.crt").toString(), "--key", dir.resolve("stranger.key").toString(),
                    "--command-timeout=3s", "get", "tls-key");
            assertNotEquals(0, stranger.exitCode(), kind + ": " + stranger);

            // HTTP endpoints behind the same TLS: health and the gateway with a certificate, nothing without.
            String ca = dir.resolve("ca.crt").toString();
            assertEquals("{\"health\":\"true\"}", curl("--cacert", ca, "--cert", dir.resolve("client.crt").toString(),
                    "--key", dir.resolve("client.key").toString(), m.endpoint() + "/health").strip(), kind.toString());
            String range = curl("--cacert", ca, "--cert", dir.resolve("client.crt").toString(), "--key",
                    dir.resolve("client.key").toString(), "-X", "POST", "-d", "{\"key\":\"dGxzLWtleQ==\"}",
                    m.endpoint() + "/v3/kv/range");
            assertTrue(range.contains("\"value\":\"dGxzLXZhbHVl\""), kind + ": " + range);
            assertTrue(curl("--cacert", ca, m.endpoint() + "/health").startsWith("curl exit"), kind + " without a cert");
            assertTrue(curl(m.endpoint().replace("https://", "http://") + "/health").startsWith("curl exit"),
                    kind + " over plain HTTP");
        }
    }

    /**
     * vetcd's gRPC proxy in front of a member that asks for client certificates: with --cacert, --cert
     * and --key it dials the member over TLS with its certificate, and serves etcdctl (in the clear);
     * without a certificate its calls are refused by the member, and the proxy says Unavailable. With
     * --cert-file, --key-file and --trusted-ca-file it serves its own clients over TLS, each with a
     * certificate of the CA (gRPC and /health); with --auto-tls, with a certificate of its own.
     */
    @Test
    void theGrpcProxySpeaksTlsToMembersAndToItsClients() throws Exception {
        Member m = startServing(MemberProcess.Kind.VETCD, "vetcd-proxied", serverTls());
        String via = "127.0.0.1:" + MemberProcess.freePorts(1)[0];
        Process proxy = GrpcProxyIT.startProxy(MemberProcess.LOG_DIR.resolve("client-tls-grpc-proxy.log"), via,
                m.endpoint(), cert("client"));
        processes.add(proxy);
        assertEquals("OK\n", Etcdctl.run(via, "put", "proxied", "yes").stdout());
        assertEquals("yes\n", Etcdctl.run(via, "get", "proxied", "--print-value-only").stdout());

        String via2 = "127.0.0.1:" + MemberProcess.freePorts(1)[0];
        Path log2 = MemberProcess.LOG_DIR.resolve("client-tls-grpc-proxy-no-cert.log");
        List<String> command = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
        command.addAll(List.of("grpc-proxy", "start", "--endpoints=" + m.endpoint(), "--listen-addr=" + via2,
                "--cacert", dir.resolve("ca.crt").toString()));
        Process anonymous = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log2.toFile()).start();
        processes.add(anonymous);
        Etcdctl.Result refused = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            refused = Etcdctl.run(via2, "put", "proxied", "no", "--command-timeout=5s");
            if (refused.stderr().contains("grpc-proxy")) {
                break; // the proxy answered, with the member's refusal
            }
            Thread.sleep(200);
        }
        assertNotEquals(0, refused.exitCode(), refused.toString());
        assertTrue(refused.stderr().contains("grpc-proxy: no endpoint is available"), refused.toString());

        // The proxy's own clients over TLS, with certificates (--cert-file, --key-file, --trusted-ca-file).
        String via3 = "127.0.0.1:" + MemberProcess.freePorts(1)[0];
        Path log3 = MemberProcess.LOG_DIR.resolve("client-tls-grpc-proxy-tls.log");
        List<String> tlsProxy = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
        tlsProxy.addAll(List.of("grpc-proxy", "start", "--endpoints=" + m.endpoint(), "--listen-addr=" + via3,
                "--cert-file", dir.resolve("server.crt").toString(), "--key-file", dir.resolve("server.key").toString(),
                "--trusted-ca-file", dir.resolve("ca.crt").toString()));
        tlsProxy.addAll(List.of(cert("client")));
        Process secured = new ProcessBuilder(tlsProxy).redirectErrorStream(true).redirectOutput(log3.toFile()).start();
        processes.add(secured);
        List<String> withCert = new ArrayList<>(List.of(cert("client")));
        withCert.addAll(List.of("get", "proxied", "--print-value-only"));
        Etcdctl.Result overTls = null;
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline && secured.isAlive()) {
            overTls = Etcdctl.run("https://" + via3, withCert.toArray(String[]::new));
            if (overTls.ok()) {
                break;
            }
            Thread.sleep(200);
        }
        assertEquals("yes\n", overTls == null ? Files.readString(log3) : overTls.stdout(),
                overTls + "\n" + Files.readString(log3));
        Etcdctl.Result noClientCert = Etcdctl.run("https://" + via3, "--cacert", dir.resolve("ca.crt").toString(),
                "get", "proxied", "--command-timeout=3s");
        assertNotEquals(0, noClientCert.exitCode(), noClientCert.toString());
        Process curl = new ProcessBuilder("curl", "-sS", "--cacert", dir.resolve("ca.crt").toString(), "--cert",
                dir.resolve("client.crt").toString(), "--key", dir.resolve("client.key").toString(),
                "https://" + via3 + "/health").redirectErrorStream(true).start();
        String health = new String(curl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(curl.waitFor(30, TimeUnit.SECONDS));
        assertEquals("{\"health\":\"true\"}", health);

        // --auto-tls: a certificate of its own, made in --data-dir (etcdctl checks nobody's with
        // --insecure-skip-tls-verify, which etcdctl 3.4 honours with --insecure-transport=false only).
        String via4 = "127.0.0.1:" + MemberProcess.freePorts(1)[0];
        Path log4 = MemberProcess.LOG_DIR.resolve("client-tls-grpc-proxy-auto-tls.log");
        List<String> autoTls = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
        autoTls.addAll(List.of("grpc-proxy", "start", "--endpoints=" + m.endpoint(), "--listen-addr=" + via4,
                "--auto-tls", "--data-dir", dir.resolve("proxy-data").toString()));
        autoTls.addAll(List.of(cert("client")));
        Process selfSigned = new ProcessBuilder(autoTls).redirectErrorStream(true).redirectOutput(log4.toFile()).start();
        processes.add(selfSigned);
        Etcdctl.Result overAutoTls = null;
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline && selfSigned.isAlive()) {
            overAutoTls = Etcdctl.run("https://" + via4, "--insecure-skip-tls-verify", "--insecure-transport=false",
                    "get", "proxied", "--print-value-only");
            if (overAutoTls.ok()) {
                break;
            }
            Thread.sleep(200);
        }
        assertEquals("yes\n", overAutoTls == null ? Files.readString(log4) : overAutoTls.stdout(),
                overAutoTls + "\n" + Files.readString(log4));
        assertTrue(Files.exists(dir.resolve("proxy-data/fixtures/proxy/cert.pem")));
    }

    /**
     * With --client-cert-auth and auth enabled, a client that sends no token is the user its
     * certificate's common name names (root here for client.crt, alice for alice.crt); a token wins over
     * the certificate; the gateway refuses a call whose certificate names someone, in etcd's words. The
     * same on etcd and vetcd.
     */
    @Test
    void theCommonNameOfAClientCertificateIsTheUser() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            Member m = startServing(kind, kind.name().toLowerCase() + "-cn", serverTls());
            for (String[] step : List.of(new String[] {"user", "add", "root", "--new-user-password=rootpw"},
                    new String[] {"user", "add", "alice", "--new-user-password=alicepw"},
                    new String[] {"role", "add", "app"},
                    new String[] {"role", "grant-permission", "app", "readwrite", "/app/", "--prefix"},
                    new String[] {"user", "grant-role", "alice", "app"},
                    new String[] {"put", "/secret", "s"},
                    new String[] {"auth", "enable"})) {
                Etcdctl.Result r = etcdctl(m, true, step);
                assertEquals(0, r.exitCode(), kind + " " + String.join(" ", step) + ": " + r);
            }
            String[] asAlice = cert("alice");
            Etcdctl.Result put = Etcdctl.run(m.endpoint(), concat(asAlice, "put", "/app/x", "1"));
            assertEquals("OK\n", put.stdout(), kind + ": " + put);
            Etcdctl.Result denied = Etcdctl.run(m.endpoint(), concat(asAlice, "get", "/secret"));
            assertTrue(denied.stderr().contains("etcdserver: permission denied"), kind + ": " + denied);
            Etcdctl.Result root = etcdctl(m, true, "get", "/secret", "--print-value-only");
            assertEquals("s\n", root.stdout(), kind + " as root by its certificate: " + root);
            Etcdctl.Result token = Etcdctl.run(m.endpoint(), concat(asAlice, "--user=root:rootpw", "get", "/secret",
                    "--print-value-only"));
            assertEquals("s\n", token.stdout(), kind + " with root's token and alice's certificate: " + token);
            String range = curl("--cacert", dir.resolve("ca.crt").toString(), "--cert",
                    dir.resolve("client.crt").toString(), "--key", dir.resolve("client.key").toString(), "-X", "POST",
                    "-d", "{\"key\":\"L3NlY3JldA==\"}", m.endpoint() + "/v3/kv/range");
            assertEquals("CommonName of client sending a request against gateway will be ignored and not used as "
                    + "expected\n", range, kind + " gateway with root's certificate");
        }
    }

    /**
     * The WebSocket watch (wss://) and /metrics are behind the same TLS, for a client trusting the CA;
     * so is an https --listen-metrics-urls port, with the client port's certificate.
     */
    @Test
    void theWebSocketAndMetricsAreServedOverTls() throws Exception {
        java.security.KeyStore trust = java.security.KeyStore.getInstance(java.security.KeyStore.getDefaultType());
        trust.load(null, null);
        try (var in = Files.newInputStream(dir.resolve("ca.crt"))) {
            trust.setCertificateEntry("ca", java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(in));
        }
        javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(
                javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        javax.net.ssl.SSLContext ssl = javax.net.ssl.SSLContext.getInstance("TLS");
        ssl.init(null, tmf.getTrustManagers(), null);
        java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder().sslContext(ssl).build();
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            String metricsUrl = "https://127.0.0.1:" + MemberProcess.freePorts(1)[0];
            Member m = startServing(kind, kind.name().toLowerCase() + "-wss", "--cert-file",
                    dir.resolve("server.crt").toString(), "--key-file", dir.resolve("server.key").toString(),
                    "--listen-metrics-urls", metricsUrl);
            java.util.concurrent.CompletableFuture<String> first = new java.util.concurrent.CompletableFuture<>();
            java.net.http.WebSocket ws = http.newWebSocketBuilder().buildAsync(
                    java.net.URI.create(m.endpoint().replace("https://", "wss://") + "/v3/watch"),
                    new java.net.http.WebSocket.Listener() {
                        @Override
                        public java.util.concurrent.CompletionStage<?> onText(java.net.http.WebSocket w, CharSequence d,
                                boolean last) {
                            first.complete(d.toString());
                            return null;
                        }
                    }).get(10, TimeUnit.SECONDS);
            ws.sendText("{\"create_request\":{\"key\":\"Zm9v\"}}", true).get(10, TimeUnit.SECONDS);
            assertTrue(first.get(10, TimeUnit.SECONDS).contains("\"created\":true"), kind + " over wss://");
            ws.abort();
            String metrics = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(m.endpoint()
                    + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(metrics.contains("etcd_server_has_leader 1"), kind + " /metrics over https");
            String ownPort = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(metricsUrl
                    + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(ownPort.contains("etcd_server_has_leader 1"), kind + " /metrics on " + metricsUrl);
        }
    }

    /** --cipher-suites (Go's names) limits the TLS 1.2 suites a client may use, as in etcd. */
    @Test
    void onlyTheCipherSuitesGivenAreOffered() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            Member m = startServing(kind, kind.name().toLowerCase() + "-ciphers", "--cert-file",
                    dir.resolve("server.crt").toString(), "--key-file", dir.resolve("server.key").toString(),
                    "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
            String ca = dir.resolve("ca.crt").toString();
            assertEquals("{\"health\":\"true\"}", curl("--cacert", ca, "--tls-max", "1.2", "--ciphers",
                    "ECDHE-RSA-AES128-GCM-SHA256", m.endpoint() + "/health").strip(), kind + " with the suite given");
            assertTrue(curl("--cacert", ca, "--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES256-GCM-SHA384",
                    m.endpoint() + "/health").startsWith("curl exit"), kind + " with another suite");
        }
    }

    /** etcd 3.4 asks for a client certificate as soon as --trusted-ca-file is given, even without --client-cert-auth. */
    @Test
    void aTrustedCaAloneRequiresAClientCertificate() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            Member m = startServing(kind, kind.name().toLowerCase() + "-ca-only", "--cert-file",
                    dir.resolve("server.crt").toString(), "--key-file", dir.resolve("server.key").toString(),
                    "--trusted-ca-file", dir.resolve("ca.crt").toString());
            assertTrue(etcdctl(m, true, "put", "k", "v").ok(), kind + " with a client certificate");
            assertNotEquals(0, etcdctl(m, false, "get", "k").exitCode(), kind + " without one");
        }
    }

    /** vetcd says in plain words why it refused each handshake (etcd logs Go's error text). */
    @Test
    void refusedHandshakesAreLoggedInPlainWords() throws Exception {
        Member m = startServing(MemberProcess.Kind.VETCD, "vetcd-words", serverTls());
        etcdctl(m, false, "get", "x");
        Etcdctl.run(m.endpoint(), "--cacert", dir.resolve("ca.crt").toString(), "--cert",
                dir.resolve("stranger.crt").toString(), "--key", dir.resolve("stranger.key").toString(),
                "--command-timeout=2s", "get", "x");
        curl(m.endpoint().replace("https://", "http://") + "/health");
        Etcdctl.run(m.endpoint(), "--cacert", dir.resolve("ca.crt").toString(), "--cert",
                dir.resolve("expired.crt").toString(), "--key", dir.resolve("expired.key").toString(),
                "--command-timeout=2s", "get", "x");
        Etcdctl.run(m.endpoint(), "--cacert", dir.resolve("ca.crt").toString(), "--cert",
                dir.resolve("future.crt").toString(), "--key", dir.resolve("future.key").toString(),
                "--command-timeout=2s", "get", "x");
        Etcdctl.run(m.endpoint(), "--cacert", dir.resolve("other-ca.crt").toString(),
                "--command-timeout=2s", "get", "x");
        awaitLog(m, "the client sent no certificate signed by an authority in --trusted-ca-file, and "
                + "--client-cert-auth requires one");
        awaitLog(m, "the other side's certificate is not signed by an authority in --trusted-ca-file");
        awaitLog(m, "the other side does not speak TLS");
        awaitLog(m, "the other side refused this member's certificate");
        awaitLog(m, "the other side's certificate has expired");
        awaitLog(m, "the other side's certificate is not valid yet");
    }

    /** A server certificate replaced on disk is what new connections get, without a restart. */
    @Test
    void aReplacedCertificateIsUsedWithoutARestart() throws Exception {
        Path cert = dir.resolve("rotating.crt");
        Path key = dir.resolve("rotating.key");
        Files.copy(dir.resolve("server.crt"), cert, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(dir.resolve("server.key"), key, StandardCopyOption.REPLACE_EXISTING);
        Member m = startServing(MemberProcess.Kind.VETCD, "vetcd-rotation", "--cert-file", cert.toString(),
                "--key-file", key.toString());
        String[] trustOther = {"--cacert", dir.resolve("other-ca.crt").toString(), "--command-timeout=2s"};
        assertNotEquals(0, Etcdctl.run(m.endpoint(), concat(trustOther, "get", "x")).exitCode(),
                "a client that trusts only the other CA before the rotation");
        Files.copy(dir.resolve("other-server.crt"), cert, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(dir.resolve("other-server.key"), key, StandardCopyOption.REPLACE_EXISTING);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!Etcdctl.run(m.endpoint(), concat(trustOther, "get", "x")).ok()) {
            assertTrue(System.nanoTime() < deadline, "the new certificate was not served within 20 s\n"
                    + Files.readString(m.log()));
            Thread.sleep(200);
        }
        awaitLog(m, "reloaded the TLS certificates");
    }

    @Test
    void anHttpsUrlWithoutACertificateIsRefusedAtStartAsEtcd() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            Member m = start(kind, kind.name().toLowerCase() + "-no-cert");
            assertTrue(m.process().waitFor(30, TimeUnit.SECONDS), kind + " still runs");
            assertEquals(1, m.process().exitValue(), kind + " exit status");
            String log = Files.readString(m.log());
            assertTrue(log.contains("TLS key/cert (--cert-file, --key-file) must be provided for client url "
                    + m.endpoint() + " with HTTPS scheme"), kind + ": " + log);
        }
    }

    private static String[] concat(String[] first, String... rest) {
        String[] all = new String[first.length + rest.length];
        System.arraycopy(first, 0, all, 0, first.length);
        System.arraycopy(rest, 0, all, first.length, rest.length);
        return all;
    }

    private static void awaitLog(Member m, String words) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!Files.readString(m.log()).contains(words)) {
            assertTrue(System.nanoTime() < deadline, "no \"" + words + "\" in the log\n" + Files.readString(m.log()));
            Thread.sleep(100);
        }
    }
}
