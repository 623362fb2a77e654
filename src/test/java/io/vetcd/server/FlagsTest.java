package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** etcd's command line: flag names, defaults, Go's flag syntax, ETCD_* variables. */
class FlagsTest {

  private static Config run(Map<String, String> env, String... args) throws Flags.UsageException {
    return assertInstanceOf(Flags.Run.class, Flags.parse(args, env)).config();
  }

  private static Config run(String... args) throws Flags.UsageException {
    return run(Map.of(), args);
  }

  private static Flags.UsageException usage(String... args) {
    return assertThrows(Flags.UsageException.class, () -> Flags.parse(args, Map.of()));
  }

  @Test
  void defaultsAreEtcds() throws Exception {
    Config c = run();
    assertEquals("default", c.name());
    assertEquals(Path.of("default.vetcd"), c.dataDir());
    assertEquals(List.of("http://localhost:2379"), c.listenClientUrls());
    assertEquals(List.of("http://localhost:2379"), c.advertiseClientUrls());
    assertEquals(List.of("http://localhost:2380"), c.listenPeerUrls());
    assertEquals(List.of("http://localhost:2380"), c.initialAdvertisePeerUrls());
    assertEquals("default=http://localhost:2380", c.initialCluster());
    assertEquals("etcd-cluster", c.initialClusterToken());
    assertEquals("new", c.initialClusterState());
    assertEquals(1572864, c.maxRequestBytes()); // 1.5 MiB
    assertEquals(128, c.maxTxnOps());
    assertEquals(0, c.quotaBackendBytes());
    assertEquals(2L * 1024 * 1024 * 1024, c.effectiveQuotaBytes(), "0 means etcd's 2 GiB default");
    assertEquals(100, c.heartbeatIntervalMs());
    assertEquals(1000, c.electionTimeoutMs());
    assertEquals(100000, c.snapshotCount());
    assertEquals("info", c.logLevel());
    assertTrue(c.initialElectionTickAdvance());
  }

  @Test
  void initialElectionTickAdvanceCanBeTurnedOff() throws Exception {
    assertEquals(false, run("--initial-election-tick-advance=false").initialElectionTickAdvance());
    assertEquals(false, run(Map.of("ETCD_INITIAL_ELECTION_TICK_ADVANCE", "false")).initialElectionTickAdvance());
    assertTrue(run("--initial-election-tick-advance").initialElectionTickAdvance());
  }

  @Test
  void acceptsGoFlagForms() throws Exception {
    assertEquals("n1", run("--name=n1").name());
    assertEquals("n2", run("--name", "n2").name());
    assertEquals("n3", run("-name", "n3").name());
    assertEquals("n4", run("-name=n4").name());
    assertEquals(Path.of("/var/lib/x"), run("--data-dir", "/var/lib/x").dataDir());
    assertEquals("", run("--name=").name(), "an explicit empty value");
  }

  @Test
  void bareBooleanFlagTakesNoValue() throws Exception {
    Config c = run("--enable-pprof", "--name", "n1");
    assertEquals("n1", c.name(), "the argument after a boolean flag is the next flag");
    run("--enable-pprof=true");
    run("--enable-pprof=false");
  }

  @Test
  void helpAndVersion() throws Exception {
    assertInstanceOf(Flags.Help.class, Flags.parse(new String[] {"--help"}, Map.of()));
    assertInstanceOf(Flags.Help.class, Flags.parse(new String[] {"-h"}, Map.of()));
    assertInstanceOf(Flags.Version.class, Flags.parse(new String[] {"--version"}, Map.of()));
    assertTrue(Flags.usage().contains("--data-dir"));
  }

  @Test
  void environmentVariablesSetFlags() throws Exception {
    Config c = run(Map.of("ETCD_NAME", "envname", "ETCD_MAX_TXN_OPS", "64", "ETCD_INITIAL_CLUSTER_TOKEN", "tok",
        "ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:12379"));
    assertEquals("envname", c.name());
    assertEquals(64, c.maxTxnOps());
    assertEquals("tok", c.initialClusterToken());
    assertEquals(List.of("http://127.0.0.1:12379"), c.listenClientUrls());
    assertEquals(Path.of("envname.vetcd"), c.dataDir(), "the data-dir default follows the name from the env");
  }

  @Test
  void aFlagWinsOverItsEnvironmentVariable() throws Exception {
    // etcd: "recognized environment variable ETCD_NAME, but unused: shadowed by corresponding flag"
    Config c = run(Map.of("ETCD_NAME", "envname", "ETCD_DATA_DIR", "/env"), "--name", "flagname");
    assertEquals("flagname", c.name());
    assertEquals(Path.of("/env"), c.dataDir());
  }

  @Test
  void unknownFlagIsAUsageErrorWithExitCodeTwo() {
    Flags.UsageException e = usage("--foo", "bar");
    assertEquals(2, e.exitCode());
    // Go's flag package: "flag provided but not defined: -foo"
    assertTrue(e.getMessage().startsWith("flag provided but not defined: -foo"), e.getMessage());
    assertTrue(usage("-foo=1").getMessage().startsWith("flag provided but not defined: -foo"));
  }

  @Test
  void malformedCommandLinesAreUsageErrors() {
    assertEquals(2, usage("--name").exitCode(), "a value flag without its value");
    assertEquals(2, usage("positional").exitCode());
    assertEquals(2, usage("--max-txn-ops", "many").exitCode());
    assertEquals(2, usage("--initial-cluster-state", "old").exitCode());
    assertEquals(2, usage("--log-level", "chatty").exitCode());
    assertEquals(2, usage("--listen-client-urls", "localhost:2379").exitCode());
  }

  @Test
  void dataDirDefaultsToNameDotVetcd() throws Exception {
    assertEquals(Path.of("infra1.vetcd"), run("--name", "infra1").dataDir());
    assertEquals(Path.of("/d"), run("--name", "infra1", "--data-dir", "/d").dataDir());
  }

  @Test
  void initialClusterDefaultsToNameAndAdvertisedPeerUrls() throws Exception {
    Config c = run("--name", "infra1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380");
    assertEquals("infra1=http://10.0.0.1:2380", c.initialCluster());
    assertEquals("infra1=http://localhost:2380", run("--name", "infra1").initialCluster());
    Config explicit = run("--name", "infra1", "--initial-cluster", "a=http://a:2380,infra1=http://b:2380");
    assertEquals("a=http://a:2380,infra1=http://b:2380", explicit.initialCluster());
  }

  @Test
  void initialClusterDefaultNamesEveryAdvertisedPeerUrl() throws Exception {
    // etcd's InitialClusterFromName: one name=url pair per advertised peer URL
    Config c = run("--name", "infra1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380,http://10.0.0.2:2380");
    assertEquals("infra1=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380", c.initialCluster());
    Membership m = Membership.initial(c.initialCluster(), c.initialClusterToken());
    assertEquals(List.of("http://10.0.0.1:2380", "http://10.0.0.2:2380"), m.byName("infra1").peerUrls());
  }

  @Test
  void listFlagsSplitOnCommas() throws Exception {
    Config c = run("--listen-client-urls", "http://127.0.0.1:2379, http://10.0.0.1:2379");
    assertEquals(List.of("http://127.0.0.1:2379", "http://10.0.0.1:2379"), c.listenClientUrls());
  }

  @Test
  void clientTlsComesFromEtcdsFlagsVariablesAndConfigBlock(@org.junit.jupiter.api.io.TempDir Path dir)
      throws Exception {
    assertEquals(null, run().clientTls(), "no TLS by default");
    Config flags = run("--listen-client-urls", "https://127.0.0.1:2379", "--cert-file", "s.crt", "--key-file", "s.key",
        "--trusted-ca-file", "ca.crt", "--client-cert-auth");
    assertEquals(new Config.Tls("s.crt", "s.key", "ca.crt", true), flags.clientTls());
    Config env = run(Map.of("ETCD_CERT_FILE", "e.crt", "ETCD_KEY_FILE", "e.key"),
        "--listen-client-urls", "https://127.0.0.1:2379");
    assertEquals(new Config.Tls("e.crt", "e.key", "", false), env.clientTls());

    Path yaml = dir.resolve("vetcd.yaml");
    java.nio.file.Files.writeString(yaml, """
        name: infra1
        listen-client-urls: https://127.0.0.1:2379
        client-transport-security:
          cert-file: /etc/vetcd/server.crt
          key-file: /etc/vetcd/server.key
          client-cert-auth: true
          trusted-ca-file: /etc/vetcd/ca.crt
        peer-transport-security:
          cert-file: /etc/vetcd/peer.crt
          key-file: /etc/vetcd/peer.key
          trusted-ca-file: /etc/vetcd/peer-ca.crt
        snapshot-count: 500
        """);
    Config file = run("--config-file", yaml.toString());
    assertEquals(new Config.Tls("/etc/vetcd/server.crt", "/etc/vetcd/server.key", "/etc/vetcd/ca.crt", true),
        file.clientTls());
    assertEquals(new Config.Tls("/etc/vetcd/peer.crt", "/etc/vetcd/peer.key", "/etc/vetcd/peer-ca.crt", false),
        file.peerTls());
    assertEquals(500, file.snapshotCount(), "keys after the block are top level again");
  }

  @Test
  void peerTlsComesFromThePeerFlags() throws Exception {
    assertEquals(null, run().peerTls());
    Config c = run("--listen-peer-urls", "https://127.0.0.1:2380", "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380", "--peer-cert-file", "p.crt", "--peer-key-file", "p.key", "--peer-trusted-ca-file",
        "ca.crt", "--peer-client-cert-auth");
    assertEquals(new Config.Tls("p.crt", "p.key", "ca.crt", true), c.peerTls());
    Flags.UsageException e = usage("--listen-peer-urls", "https://127.0.0.1:2380");
    assertEquals(1, e.exitCode());
    assertEquals("cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented", e.getMessage());
  }

  @Test
  void cipherSuitesAreEtcdsNames() throws Exception {
    Config c = run("--cert-file", "s.crt", "--key-file", "s.key", "--peer-cert-file", "p.crt", "--peer-key-file", "p.key",
        "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305");
    List<String> suites = List.of("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305");
    assertEquals(suites, c.clientTls().cipherSuites());
    assertEquals(suites, c.peerTls().cipherSuites());
    Flags.UsageException e = usage("--cipher-suites", "TLS_BOGUS", "--cert-file", "s.crt", "--key-file", "s.key");
    assertEquals(1, e.exitCode());
    assertEquals("unexpected TLS cipher suite \"TLS_BOGUS\"", e.getMessage());
  }

  @Test
  void booleansAreReadAsGoReadsThemAndNeverSilentlyFalse() throws Exception {
    assertTrue(run("--cert-file", "s.crt", "--key-file", "s.key", "--client-cert-auth=1").clientTls().clientCertAuth());
    assertTrue(run(Map.of("ETCD_CLIENT_CERT_AUTH", "T", "ETCD_CERT_FILE", "s.crt", "ETCD_KEY_FILE", "s.key"))
        .clientTls().clientCertAuth());
    Flags.UsageException e = usage("--cert-file", "s.crt", "--key-file", "s.key", "--client-cert-auth=ture");
    assertEquals(2, e.exitCode());
    assertEquals("invalid boolean value \"ture\" for -client-cert-auth: parse error", e.getMessage());
  }

  @Test
  void unknownCipherSuitesAreRefusedEvenWithoutTls() {
    assertEquals("unexpected TLS cipher suite \"TLS_BOGUS\"", usage("--cipher-suites", "TLS_BOGUS").getMessage());
  }

  @Test
  void tlsKeysBelongInTheirConfigBlocks(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
    Path top = dir.resolve("top.yaml");
    java.nio.file.Files.writeString(top, "name: a\ncert-file: /x.crt\n");
    Flags.UsageException e = usage("--config-file", top.toString());
    assertTrue(e.getMessage().contains("\"cert-file\" belongs in a client-transport-security block"), e.getMessage());
    Path auto = dir.resolve("auto.yaml");
    java.nio.file.Files.writeString(auto, "name: a\nclient-transport-security:\n  auto-tls: false\n"
        + "cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n");
    assertEquals(null, run("--config-file", auto.toString()).clientTls(), "etcd's sample file: auto-tls: false");
    java.nio.file.Files.writeString(auto, "name: a\ndata-dir: /d\nclient-transport-security:\n  auto-tls: true\n"
        + "peer-transport-security:\n  auto-tls: true\n");
    Config c = run("--config-file", auto.toString());
    assertTrue(c.clientTls().selfSigned() && c.peerTls().selfSigned(), c.toString());
  }

  @Test
  void autoTlsIsTheMembersOwnCertificateInItsDataDir() throws Exception {
    Config c = run("--data-dir", "/d", "--auto-tls", "--peer-auto-tls", "--listen-client-urls", "https://127.0.0.1:2379",
        "--advertise-client-urls", "https://127.0.0.1:2379", "--listen-peer-urls", "https://127.0.0.1:2380");
    assertEquals(new Config.Tls("/d/fixtures/client/cert.pem", "/d/fixtures/client/key.pem", "", false, List.of(), true),
        c.clientTls());
    assertEquals(new Config.Tls("/d/fixtures/peer/cert.pem", "/d/fixtures/peer/key.pem", "", false, List.of(), true),
        c.peerTls());
    // Given certificates win (etcd: "ignoring client auto TLS since certs given").
    assertEquals(new Config.Tls("s.crt", "s.key", "", false),
        run("--auto-tls", "--cert-file", "s.crt", "--key-file", "s.key").clientTls());
    assertEquals(null, run("--auto-tls=false").clientTls());
    // As etcd's SelfCert: no CA and no client certificate asked beside a self-signed one.
    assertEquals(new Config.Tls("/d/fixtures/peer/cert.pem", "/d/fixtures/peer/key.pem", "", false, List.of(), true),
        run("--data-dir", "/d", "--peer-auto-tls", "--peer-trusted-ca-file", "ca.crt", "--peer-client-cert-auth")
            .peerTls());
  }

  @Test
  void authOptionsAreEtcdsAndTheShippedConfigFileReads() throws Exception {
    assertEquals(Config.AuthOptions.DEFAULTS, run().auth());
    assertEquals(new Config.AuthOptions("simple", 60, 12, null),
        run(Map.of("ETCD_BCRYPT_COST", "12"), "--auth-token", "simple", "--auth-token-ttl", "60").auth());
    assertEquals("vetcd: auth: invalid auth options (unknown token type \"bogus\"; simple or jwt)",
        usage("--auth-token", "bogus").getMessage());
    assertEquals(1, usage("--auth-token", "jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256").exitCode());
    assertEquals(3, run("--bcrypt-cost", "3").auth().bcryptCost()); // the member uses 10 instead, as etcd
    assertEquals(10, new Auth(300, 3, false).bcryptCost());
    assertEquals(10, new Auth(300, 32, false).bcryptCost());
    Config shipped = run("--config-file", Path.of("conf/vetcd.yaml").toAbsolutePath().toString());
    assertEquals(Config.AuthOptions.DEFAULTS, shipped.auth());
  }

  @Test
  void jwtTokenOptionsAreReadAsEtcdReadsThem(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
    java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    java.security.KeyPair pair = g.generateKeyPair();
    Path key = dir.resolve("k.pem");
    java.nio.file.Files.writeString(key, "-----BEGIN PRIVATE KEY-----\n"
        + java.util.Base64.getMimeEncoder().encodeToString(pair.getPrivate().getEncoded()) + "\n-----END PRIVATE KEY-----\n");
    String k = key.toString();
    assertEquals(new io.vetcd.auth.JwtTokens.Options("RS256", "", k, 600_000),
        run("--auth-token", "jwt,sign-method=RS256,priv-key=" + k + ",ttl=10m").auth().jwt());
    assertEquals(new io.vetcd.auth.JwtTokens.Options("PS256", "", k, 300_000),
        run(Map.of("ETCD_AUTH_TOKEN", "jwt,priv-key=" + k + ",sign-method=PS256")).auth().jwt(), "etcd's 5 minutes");
    assertEquals("vetcd: auth: invalid auth options (invalid token option \"priv-key\")",
        usage("--auth-token", "jwt,sign-method=RS256,priv-key").getMessage());
    assertEquals("vetcd: auth: invalid auth options (token option \"ttl\" given twice)",
        usage("--auth-token", "jwt,sign-method=RS256,priv-key=" + k + ",ttl=1m,ttl=2m").getMessage());
    assertEquals("vetcd: auth: invalid auth options (time: invalid duration \"ten\" for ttl)",
        usage("--auth-token", "jwt,sign-method=RS256,priv-key=" + k + ",ttl=ten").getMessage());
    assertEquals("vetcd: auth: missing key data", usage("--auth-token", "jwt,sign-method=RS256").getMessage());
    assertTrue(usage("--auth-token", "jwt,sign-method=ES256,priv-key=" + k).getMessage()
        .contains("key is not a valid EC private key"));
  }

  @Test
  void anHttpsUrlWithoutCertificateIsRefusedInEtcdsWords() {
    Flags.UsageException e = usage("--listen-client-urls", "https://127.0.0.1:2379");
    assertEquals(1, e.exitCode());
    assertEquals("TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 "
        + "with HTTPS scheme", e.getMessage());
  }
}
