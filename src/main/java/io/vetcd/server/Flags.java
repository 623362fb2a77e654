package io.vetcd.server;

import io.vetcd.auth.JwtTokens;
import io.vetcd.tls.SelfSignedCertificate;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * etcd's command line: the same flag names, defaults and {@code ETCD_*} variables (flag
 * {@code --data-dir} ↔ {@code ETCD_DATA_DIR}); a flag on the command line wins over its variable.
 * Accepts Go's forms: {@code --flag value}, {@code --flag=value}, {@code -flag}, and bare boolean
 * flags. A flag etcd does not have is an error (exit code 2, as etcd's).
 */
public final class Flags {

  private static final Logger LOG = LoggerFactory.getLogger(Flags.class);

  /** Why the process should not start, and with which exit code. */
  public static final class UsageException extends Exception {
    private final int exitCode;

    UsageException(String message, int exitCode) {
      super(message);
      this.exitCode = exitCode;
    }

    public int exitCode() {
      return exitCode;
    }
  }

  /** What the command line asked for. */
  public sealed interface Command permits Run, Help, Version {}

  public record Run(Config config) implements Command {}

  public record Help() implements Command {}

  public record Version() implements Command {}

  private record Spec(String name, String defaultValue, boolean bool, String help) {}

  private static final Map<String, Spec> SPECS = new LinkedHashMap<>();

  private static void flag(String name, String defaultValue, String help) {
    SPECS.put(name, new Spec(name, defaultValue, false, help));
  }

  private static void bool(String name, String help) {
    SPECS.put(name, new Spec(name, "false", true, help));
  }

  static {
    flag("name", "default", "Human-readable name for this member.");
    flag("data-dir", "${name}.vetcd", "Path to the data directory.");
    flag("listen-client-urls", "http://localhost:2379",
        "List of URLs to listen on for client traffic (gRPC and HTTP on the same port).");
    flag("advertise-client-urls", "http://localhost:2379",
        "List of this member's client URLs to advertise to the public.");
    flag("listen-peer-urls", "http://localhost:2380", "List of URLs to listen on for peer traffic.");
    flag("initial-advertise-peer-urls", "http://localhost:2380",
        "List of this member's peer URLs to advertise to the rest of the cluster.");
    flag("initial-cluster", "default=http://localhost:2380",
        "Initial cluster configuration for bootstrapping (name=peer-url,...).");
    flag("initial-cluster-state", "new", "Initial cluster state ('new' or 'existing').");
    flag("initial-cluster-token", "etcd-cluster", "Initial cluster token for the cluster during bootstrap.");
    SPECS.put("strict-reconfig-check", new Spec("strict-reconfig-check", "true", true,
        "Reject reconfiguration requests that would cause quorum loss."));
    SPECS.put("initial-election-tick-advance", new Spec("initial-election-tick-advance", "true", true,
        "Whether to fast-forward initial election ticks on boot for faster election."));
    bool("auto-promote-learners", "Promote a learner to a voting member as soon as it is in sync with the leader "
        + "(vetcd; etcd 3.4 waits for 'member promote').");
    flag("max-request-bytes", "1572864", "Maximum client request size in bytes the server will accept.");
    flag("max-txn-ops", "128", "Maximum number of operations permitted in a transaction.");
    flag("quota-backend-bytes", "0",
        "Raise alarms when the keyspace size exceeds the given quota (0 defaults to 2 GiB).");
    flag("heartbeat-interval", "100", "Time (in milliseconds) of a heartbeat interval.");
    flag("election-timeout", "1000", "Time (in milliseconds) for an election to timeout.");
    flag("snapshot-count", "100000", "Number of committed transactions to trigger a snapshot to disk.");
    flag("experimental-watch-progress-notify-interval", "10m",
        "Duration of periodic watch progress notifications (e.g. 10m, 1m30s, 500ms).");
    flag("cert-file", "", "Path to the client server TLS cert file.");
    flag("key-file", "", "Path to the client server TLS key file.");
    flag("trusted-ca-file", "", "Path to the client server TLS trusted CA cert file.");
    bool("client-cert-auth", "Enable client cert authentication.");
    bool("auto-tls", "Client TLS using generated certificates (made in <data-dir>/fixtures/client at the first "
        + "start).");
    flag("cipher-suites", "", "Comma-separated list of supported TLS cipher suites between client/server and "
        + "peers (empty will be auto-populated by the JDK).");
    flag("peer-cert-file", "", "Path to the peer server TLS cert file.");
    flag("peer-key-file", "", "Path to the peer server TLS key file.");
    flag("peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file.");
    bool("peer-client-cert-auth", "Enable peer client cert authentication.");
    bool("peer-auto-tls", "Peer TLS using generated certificates (made in <data-dir>/fixtures/peer at the first "
        + "start).");
    flag("auth-token", "simple", "Specify auth token specific options: 'simple', or "
        + "'jwt,sign-method=RS256,priv-key=/path/key.pem,pub-key=/path/key.pub,ttl=5m'.");
    flag("auth-token-ttl", "300", "The lifetime in seconds of the auth token.");
    flag("bcrypt-cost", "10", "Specify bcrypt algorithm cost factor for auth password hashing.");
    flag("log-level", "info", "Configures log level. Only supports debug, info, warn, error.");
    flag("logger", "zap", "Accepted for etcd compatibility; vetcd always logs to stderr.");
    flag("log-outputs", "default", "Accepted for etcd compatibility; vetcd always logs to stderr.");
    flag("listen-metrics-urls", "",
        "List of URLs to listen on for the metrics and health endpoints (/metrics, /health, /livez, /readyz).");
    flag("metrics", "basic",
        "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics.");
    bool("enable-pprof", "Accepted for etcd compatibility; Go's pprof has no JVM counterpart (ignored).");
    flag("config-file", "",
        "Path to the server configuration file (YAML, etcd's keys; see conf/vetcd.yaml). If given, "
        + "other command line flags and environment variables are ignored, as etcd does.");
    bool("help", "Show the help information about vetcd.");
    bool("h", "Show the help information about vetcd.");
    bool("version", "Print the version and exit.");
  }

  private Flags() {}

  public static Command parse(String[] args, Map<String, String> env) throws UsageException {
    Map<String, String> values = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("-") || arg.equals("-") || arg.equals("--")) {
        throw new UsageException("vetcd: unexpected argument " + arg + " (flags only; see --help)", 2);
      }
      String body = arg.startsWith("--") ? arg.substring(2) : arg.substring(1);
      String name = body;
      String value = null;
      int eq = body.indexOf('=');
      if (eq >= 0) {
        name = body.substring(0, eq);
        value = body.substring(eq + 1);
      }
      Spec spec = SPECS.get(name);
      if (spec == null) {
        throw new UsageException("flag provided but not defined: -" + name + "\n(see vetcd --help)", 2);
      }
      if (value == null) {
        if (spec.bool()) {
          value = "true";
        } else if (i + 1 < args.length) {
          value = args[++i];
        } else {
          throw new UsageException("flag needs an argument: -" + name, 2);
        }
      }
      values.put(name, value);
    }
    if (isTrue(values, "help") || isTrue(values, "h")) {
      return new Help();
    }
    if (isTrue(values, "version")) {
      return new Version();
    }
    for (Spec spec : SPECS.values()) {
      String var = "ETCD_" + spec.name().toUpperCase(Locale.ROOT).replace('-', '_');
      if (env.containsKey(var) && !values.containsKey(spec.name())) {
        values.put(spec.name(), env.get(var));
      }
    }
    String configFile = values.getOrDefault("config-file", "");
    if (!configFile.isEmpty()) {
      values = readConfigFile(Path.of(configFile));
    }
    return new Run(toConfig(values));
  }

  /**
   * Reads etcd's YAML configuration file: one {@code key: value} per line, keys named as the flags,
   * URL lists comma-separated; {@code #} starts a comment. etcd's {@code client-transport-security:}
   * and {@code peer-transport-security:} blocks hold the TLS keys ({@code cert-file}, {@code key-file},
   * {@code trusted-ca-file}, {@code client-cert-auth}) indented under them, as the client and
   * {@code --peer-*} flags; other nested sections are refused rather than ignored.
   */
  static Map<String, String> readConfigFile(Path file) throws UsageException {
    List<String> lines;
    try {
      lines = java.nio.file.Files.readAllLines(file);
    } catch (java.io.IOException e) {
      throw new UsageException("vetcd: cannot read --config-file " + file + ": " + e.getMessage(), 1);
    }
    Map<String, String> values = new LinkedHashMap<>();
    String section = null; // the flag prefix of the TLS block being read: "" (client) or "peer-"
    for (int n = 0; n < lines.size(); n++) {
      String line = lines.get(n).replaceFirst("(^|\\s)#.*$", "").stripTrailing();
      if (line.isBlank()) {
        continue;
      }
      int colon = line.indexOf(':');
      boolean indented = line.startsWith(" ") || line.startsWith("\t");
      if (indented && section == null || colon <= 0) {
        throw new UsageException("vetcd: " + file + " line " + (n + 1) + ": expected \"key: value\"", 1);
      }
      String key = line.substring(0, colon).trim();
      if (!indented) {
        boolean block = line.substring(colon + 1).isBlank();
        section = block && key.equals("client-transport-security") ? ""
            : block && key.equals("peer-transport-security") ? "peer-" : null;
        if (section != null) {
          continue;
        }
      } else if (!SECURITY_KEYS.contains(key)) {
        throw new UsageException("vetcd: " + file + " line " + (n + 1) + ": unknown key \"" + key + "\" in "
            + (section.isEmpty() ? "client" : "peer") + "-transport-security", 1);
      } else {
        key = section + key;
      }
      String value = line.substring(colon + 1).trim();
      if (value.length() >= 2 && (value.startsWith("'") && value.endsWith("'")
          || value.startsWith("\"") && value.endsWith("\""))) {
        value = value.substring(1, value.length() - 1);
      }
      if (!indented && TOP_LEVEL_ONLY_IN_BLOCKS.contains(key)) {
        throw new UsageException("vetcd: " + file + " line " + (n + 1) + ": \"" + key + "\" belongs in a "
            + (key.startsWith("peer-") ? "peer" : "client") + "-transport-security block (as in etcd's file)", 1);
      }
      Spec spec = SPECS.get(key);
      if (spec == null || key.equals("config-file") || key.equals("help") || key.equals("h")
          || key.equals("version")) {
        throw new UsageException("vetcd: " + file + " line " + (n + 1) + ": unknown key \"" + key + "\"", 1);
      }
      if (!value.isEmpty() && !value.equals("null") && !value.equals("~")) {
        values.put(key, value);
      }
    }
    return values;
  }

  /** TLS flags whose config-file keys are inside etcd's transport-security blocks, not at top level. */
  private static final java.util.Set<String> TOP_LEVEL_ONLY_IN_BLOCKS = java.util.Set.of("cert-file", "key-file",
      "trusted-ca-file", "client-cert-auth", "auto-tls", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file",
      "peer-client-cert-auth", "peer-auto-tls");

  /** The keys of etcd's client- and peer-transport-security blocks that vetcd serves. */
  private static final java.util.Set<String> SECURITY_KEYS =
      java.util.Set.of("cert-file", "key-file", "trusted-ca-file", "client-cert-auth", "auto-tls");

  private static boolean isTrue(Map<String, String> values, String name) {
    return "true".equalsIgnoreCase(values.getOrDefault(name, "false"));
  }

  private static Config toConfig(Map<String, String> v) throws UsageException {
    String name = get(v, "name");
    String dataDir = v.containsKey("data-dir") ? v.get("data-dir") : name + ".vetcd";
    List<String> peerUrls = urls(v, "initial-advertise-peer-urls");
    String initialCluster = v.containsKey("initial-cluster")
        ? v.get("initial-cluster")
        : String.join(",", peerUrls.stream().map(url -> name + "=" + url).toList());
    String state = get(v, "initial-cluster-state");
    if (!state.equals("new") && !state.equals("existing")) {
      throw new UsageException("vetcd: invalid value \"" + state + "\" for flag -initial-cluster-state: "
          + "valid values are \"new\" or \"existing\"", 2);
    }
    cipherSuites(v); // refused when unknown even without TLS, as etcd does
    String level = get(v, "log-level");
    if (!List.of("debug", "info", "warn", "error", "panic", "fatal").contains(level)) {
      throw new UsageException("vetcd: unknown log-level \"" + level + "\" (debug, info, warn, error)", 2);
    }
    return new Config(
        name,
        Path.of(dataDir),
        urls(v, "listen-client-urls"),
        urls(v, "advertise-client-urls"),
        urls(v, "listen-peer-urls"),
        peerUrls,
        initialCluster,
        get(v, "initial-cluster-token"),
        state,
        number(v, "max-request-bytes"),
        (int) number(v, "max-txn-ops"),
        number(v, "quota-backend-bytes"),
        number(v, "heartbeat-interval"),
        number(v, "election-timeout"),
        number(v, "snapshot-count"),
        duration(v, "experimental-watch-progress-notify-interval"),
        level,
        bool(v, "strict-reconfig-check"),
        bool(v, "auto-promote-learners"),
        bool(v, "initial-election-tick-advance"),
        get(v, "listen-metrics-urls").isBlank() ? List.of() : urls(v, "listen-metrics-urls"),
        metricsLevel(get(v, "metrics")),
        clientTls(v, Path.of(dataDir)),
        peerTls(v, Path.of(dataDir)),
        auth(v));
  }

  /**
   * --auth-token, --auth-token-ttl, --bcrypt-cost. The token option is etcd's: a kind, then
   * comma-separated name=value options ("jwt,sign-method=RS256,priv-key=k.pem,pub-key=k.pub,ttl=10m");
   * a malformed or repeated option and an unknown kind are etcd's "invalid auth options" (exit 1,
   * with the reason, which etcd only logs); JWT keys are read now, so a bad key stops the start.
   */
  private static Config.AuthOptions auth(Map<String, String> v) throws UsageException {
    String[] parts = get(v, "auth-token").split(",", -1);
    String kind = parts[0];
    Map<String, String> options = new LinkedHashMap<>();
    for (int i = 1; i < parts.length; i++) {
      String[] pair = parts[i].split("=", -1);
      if (pair.length != 2) {
        throw invalidAuthOptions("invalid token option \"" + parts[i] + "\"");
      }
      if (options.putIfAbsent(pair[0], pair[1]) != null) {
        throw invalidAuthOptions("token option \"" + pair[0] + "\" given twice");
      }
    }
    long cost = number(v, "bcrypt-cost"); // out of bcrypt's range: the default, with a warning (see Auth)
    long ttl = number(v, "auth-token-ttl");
    switch (kind) {
      case "simple" -> {
        return new Config.AuthOptions(kind, ttl > 0 ? ttl : 300, (int) cost, null);
      }
      case "jwt" -> {
        List<String> unknown = options.keySet().stream()
            .filter(k -> !List.of("sign-method", "pub-key", "priv-key", "ttl").contains(k)).toList();
        if (!unknown.isEmpty()) {
          LOG.warn("unknown JWT options {} (known: sign-method, pub-key, priv-key, ttl)", unknown); // etcd warns too
        }
        String ttlText = options.getOrDefault("ttl", "");
        long ttlMillis = ttlText.isEmpty() ? JwtTokens.Options.DEFAULT_TTL_MILLIS : goDurationMillis(ttlText);
        if (ttlMillis < 0) {
          throw invalidAuthOptions("time: invalid duration \"" + ttlText + "\" for ttl");
        }
        JwtTokens.Options jwt = new JwtTokens.Options(options.getOrDefault("sign-method", ""),
            options.getOrDefault("pub-key", ""), options.getOrDefault("priv-key", ""), ttlMillis);
        try {
          JwtTokens.load(jwt, System::currentTimeMillis);
        } catch (JwtTokens.BadOptions e) {
          throw new UsageException("vetcd: " + e.getMessage(), 1);
        }
        return new Config.AuthOptions(kind, ttl > 0 ? ttl : 300, (int) cost, jwt);
      }
      default -> throw invalidAuthOptions("unknown token type \"" + kind + "\"; simple or jwt");
    }
  }

  private static UsageException invalidAuthOptions(String why) {
    return new UsageException("vetcd: auth: invalid auth options (" + why + ")", 1);
  }

  /**
   * The client port's TLS, if any: etcd refuses an https client URL without a cert and key (exit 1,
   * its words), and serves plain HTTP on http URLs even when they are given. With --auto-tls and no
   * cert and key, the member's own certificate in the data dir (see SelfSignedCertificate).
   */
  private static Config.Tls clientTls(Map<String, String> v, Path dataDir) throws UsageException {
    String cert = get(v, "cert-file");
    String key = get(v, "key-file");
    boolean auto = selfSigned(v, "auto-tls", cert, key, "client");
    if (auto) {
      cert = SelfSignedCertificate.certFile(dataDir.resolve("fixtures/client")).toString();
      key = SelfSignedCertificate.keyFile(dataDir.resolve("fixtures/client")).toString();
    }
    List<String> metricsUrls = get(v, "listen-metrics-urls").isBlank() ? List.of() : urls(v, "listen-metrics-urls");
    for (String url : java.util.stream.Stream.concat(urls(v, "listen-client-urls").stream(), metricsUrls.stream())
        .toList()) {
      if (tlsUrl(url) && (cert.isEmpty() || key.isEmpty())) {
        throw new UsageException("TLS key/cert (--cert-file, --key-file) must be provided for "
            + (metricsUrls.contains(url) ? "metrics" : "client") + " url " + url + " with HTTPS scheme", 1);
      }
    }
    if (cert.isEmpty() && key.isEmpty()) {
      return null;
    }
    if (auto) {
      return selfSignedTls(v, cert, key, "trusted-ca-file", "client-cert-auth");
    }
    return new Config.Tls(cert, key, get(v, "trusted-ca-file"), bool(v, "client-cert-auth"), cipherSuites(v));
  }

  /**
   * The peer port's TLS, if any, used to listen on https peer URLs and to dial https peers; etcd
   * refuses an https peer URL to listen on without a cert and key (exit 1, its words). With
   * --peer-auto-tls and no cert and key, the member's own certificate.
   */
  private static Config.Tls peerTls(Map<String, String> v, Path dataDir) throws UsageException {
    String cert = get(v, "peer-cert-file");
    String key = get(v, "peer-key-file");
    boolean auto = selfSigned(v, "peer-auto-tls", cert, key, "peer");
    if (auto) {
      cert = SelfSignedCertificate.certFile(dataDir.resolve("fixtures/peer")).toString();
      key = SelfSignedCertificate.keyFile(dataDir.resolve("fixtures/peer")).toString();
    }
    for (String url : urls(v, "listen-peer-urls")) {
      if (tlsUrl(url) && (cert.isEmpty() || key.isEmpty())) {
        throw new UsageException("cannot listen on TLS for " + java.net.URI.create(url).getAuthority()
            + ": KeyFile and CertFile are not presented", 1);
      }
    }
    if (cert.isEmpty() && key.isEmpty()) {
      return null;
    }
    if (auto) {
      return selfSignedTls(v, cert, key, "peer-trusted-ca-file", "peer-client-cert-auth");
    }
    return new Config.Tls(cert, key, get(v, "peer-trusted-ca-file"), bool(v, "peer-client-cert-auth"),
        cipherSuites(v));
  }

  /**
   * The member's own certificate, as etcd's SelfCert makes it: no CA, and no client certificate asked
   * (each member's is its own, so none could be checked); a CA or client-cert-auth flag given beside it
   * is ignored, as etcd ignores it, but said.
   */
  private static Config.Tls selfSignedTls(Map<String, String> v, String cert, String key, String caFlag,
      String authFlag) throws UsageException {
    if (!get(v, caFlag).isEmpty() || bool(v, authFlag)) {
      LOG.warn("--{} and --{} are ignored with auto TLS: the certificate is self-signed, nobody's is checked",
          caFlag, authFlag);
    }
    return new Config.Tls(cert, key, "", false, cipherSuites(v), true);
  }

  /**
   * Whether the auto-TLS flag {@code flag} applies: set, and no certificate given (etcd ignores it then,
   * and says so).
   */
  private static boolean selfSigned(Map<String, String> v, String flag, String cert, String key, String side)
      throws UsageException {
    if (!bool(v, flag)) {
      return false;
    }
    if (!cert.isEmpty() || !key.isEmpty()) {
      LOG.warn("ignoring {} auto TLS since certs given", side);
      return false;
    }
    return true;
  }

  private static boolean tlsUrl(String url) {
    return url.regionMatches(true, 0, "https://", 0, 8) || url.regionMatches(true, 0, "unixs://", 0, 8);
  }

  /**
   * A boolean flag as Go's flag package reads it (1, t, T, TRUE, true, True and their false forms), and
   * YAML's yes/no/on/off from the config file; anything else is refused, never taken as false.
   */
  private static boolean bool(Map<String, String> v, String name) throws UsageException {
    return goBool(get(v, name), name);
  }

  private static boolean goBool(String value, String name) throws UsageException {
    return switch (value) {
      case "1", "t", "T", "TRUE", "true", "True", "yes", "Yes", "YES", "on", "On", "ON" -> true;
      case "0", "f", "F", "FALSE", "false", "False", "no", "No", "NO", "off", "Off", "OFF", "" -> false;
      default -> throw new UsageException("invalid boolean value \"" + value + "\" for -" + name + ": parse error", 2);
    };
  }

  /** The cipher suites etcd 3.4 accepts in --cipher-suites, by Go's names. */
  static final java.util.Set<String> CIPHER_SUITES = java.util.Set.of(
      "TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
      "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305");

  /** --cipher-suites, each checked against etcd's list (its refusal, word for word). */
  private static List<String> cipherSuites(Map<String, String> v) throws UsageException {
    List<String> suites = Arrays.stream(get(v, "cipher-suites").replaceAll("^\\[|\\]$", "").split(",")).map(String::trim)
        .filter(s -> !s.isEmpty()).toList();
    for (String suite : suites) {
      if (!CIPHER_SUITES.contains(suite)) {
        throw new UsageException("unexpected TLS cipher suite \"" + suite + "\"", 1);
      }
    }
    return suites;
  }

  private static String metricsLevel(String level) throws UsageException {
    if (!level.equals("basic") && !level.equals("extensive")) {
      throw new UsageException("vetcd: invalid value \"" + level + "\" for flag -metrics: "
          + "valid values are \"basic\" or \"extensive\"", 2);
    }
    return level;
  }

  /** A Go duration ("10m", "1m30s", "250ms", "1h"), in milliseconds; it must be positive. */
  private static long duration(Map<String, String> v, String name) throws UsageException {
    String s = get(v, name).trim();
    long ms = goDurationMillis(s);
    if (ms < 1) {
      throw new UsageException("invalid value \"" + s + "\" for flag -" + name + ": parse error", 2);
    }
    return ms;
  }

  /** A Go duration in milliseconds, -1 if it is not one. */
  static long goDurationMillis(String s) {
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)").matcher(s);
    double ms = 0;
    int at = 0;
    while (m.find() && m.start() == at) {
      double n = Double.parseDouble(m.group(1));
      ms += switch (m.group(2)) {
        case "ms" -> n;
        case "s" -> n * 1000;
        case "m" -> n * 60_000;
        default -> n * 3_600_000;
      };
      at = m.end();
    }
    return s.isEmpty() || at != s.length() ? -1 : (long) ms;
  }

  private static String get(Map<String, String> v, String name) {
    return v.getOrDefault(name, SPECS.get(name).defaultValue());
  }

  private static long number(Map<String, String> v, String name) throws UsageException {
    String s = get(v, name);
    try {
      return Long.parseLong(s.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("invalid value \"" + s + "\" for flag -" + name + ": parse error", 2);
    }
  }

  private static List<String> urls(Map<String, String> v, String name) throws UsageException {
    List<String> urls = Arrays.stream(get(v, name).split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    for (String url : urls) {
      if (!url.matches("(?i)(http|https|unix|unixs)://[^/]+/?")) {
        throw new UsageException("vetcd: invalid value \"" + get(v, name) + "\" for flag -" + name
            + ": URL must look like http://host:port", 2);
      }
    }
    if (urls.isEmpty()) {
      throw new UsageException("vetcd: flag -" + name + " needs at least one URL", 2);
    }
    return urls;
  }

  /** The text of --help, in etcd's layout. */
  public static String usage() {
    StringBuilder out = new StringBuilder("""
        Usage:

          vetcd [flags]
            Start a vetcd member (etcd's v3 API, etcd's flags and ETCD_* variables).

          vetcd --version
            Show the version of vetcd.

          vetcd -h | --help
            Show the help information about vetcd.

        Flags (each may also be set by its ETCD_* variable, e.g. --data-dir by ETCD_DATA_DIR):
        """);
    for (Spec spec : SPECS.values()) {
      if (spec.name().equals("h") || spec.name().equals("help") || spec.name().equals("version")) {
        continue;
      }
      out.append("  --").append(spec.name());
      if (!spec.bool()) {
        out.append(" '").append(spec.defaultValue()).append('\'');
      }
      out.append("\n    ").append(spec.help()).append('\n');
    }
    out.append("""

        Endpoints (each --listen-client-urls port serves gRPC and HTTP/1.1):
          gRPC          etcd's KV, Watch, Lease, Cluster, Maintenance; grpc.health.v1.Health
          POST /v3/...  etcd's JSON gateway (also /v3beta/): kv/range, kv/put, kv/deleterange, kv/txn,
                        kv/compaction, lease/{grant,revoke,timetolive,leases,keepalive},
                        cluster/member/{add,remove,update,list,promote}, maintenance/{status,alarm,
                        defragment,hash,hashkv,snapshot,transfer-leadership}; ?encoding=utf8 for plain keys
          /v3/watch     watch over a WebSocket or a streamed POST
          GET /health   {"health":"true"} or 503; GET /livez, /readyz (?verbose, ?exclude=)
          GET /metrics  Prometheus text format, etcd's metric names (also on --listen-metrics-urls)
          GET /version, /ui/watch
        """);
    return out.toString();
  }
}
