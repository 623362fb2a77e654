package io.vetcd.proxy;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.net.SocketAddress;
import io.vetcd.server.Config;
import io.vetcd.tls.SelfSignedCertificate;
import java.io.PrintStream;
import java.net.URI;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * {@code vetcd grpc-proxy start [flags]}, with etcd's flags for it: {@code --endpoints} (the cluster's
 * client URLs or host:port, comma separated), {@code --listen-addr} (host:port the proxy serves on),
 * {@code --advertise-client-url} (the proxy's own URL, as its clients reach it), {@code
 * --enable-pprof} (taken, and ignored as by vetcd's members), and TLS towards the members: {@code
 * --cacert}, {@code --cert}, {@code --key}, {@code --insecure-skip-tls-verify} (used for every member
 * when given, or when an endpoint is an https URL). Others are refused by name.
 */
public final class GrpcProxyCommand {

  private static final Map<String, String> DEFAULTS = new LinkedHashMap<>();

  static {
    DEFAULTS.put("endpoints", "127.0.0.1:2379");
    DEFAULTS.put("listen-addr", "127.0.0.1:23790");
    DEFAULTS.put("advertise-client-url", "127.0.0.1:23790");
    DEFAULTS.put("enable-pprof", "false");
    DEFAULTS.put("cacert", "");
    DEFAULTS.put("cert", "");
    DEFAULTS.put("key", "");
    DEFAULTS.put("insecure-skip-tls-verify", "false");
    DEFAULTS.put("cert-file", "");
    DEFAULTS.put("key-file", "");
    DEFAULTS.put("trusted-ca-file", "");
    DEFAULTS.put("auto-tls", "false");
    DEFAULTS.put("listen-cipher-suites", "");
    DEFAULTS.put("data-dir", "default.proxy");
    DEFAULTS.put("metrics-addr", "");
  }

  private static final String USAGE = """
      Usage: vetcd grpc-proxy start [flags]

      A stateless gRPC proxy in front of a cluster (etcd's grpc-proxy): KV, Lease, Cluster, Maintenance,
      Auth and Watch calls go to one member of --endpoints, and to the next when it cannot be reached.

      Flags:
        --endpoints string              comma separated cluster endpoints (default "127.0.0.1:2379")
        --listen-addr string            listen address (default "127.0.0.1:23790")
        --advertise-client-url string   advertise address to register (default "127.0.0.1:23790")
        --enable-pprof                  taken for etcd's command lines; vetcd has no pprof
        --cacert string                 verify certificates of TLS-enabled secure etcd servers using this CA bundle
        --cert string                   identify secure connections with etcd servers using this TLS certificate file
        --key string                    identify secure connections with etcd servers using this TLS key file
        --insecure-skip-tls-verify      skip authentication of etcd server TLS certificates (CAUTION: this option
                                        should be enabled only for testing purposes)
        --cert-file string              identify secure connections to the proxy using this TLS certificate file
        --key-file string               identify secure connections to the proxy using this TLS key file
        --trusted-ca-file string        verify certificates of TLS-enabled secure proxy using this CA bundle
        --auto-tls                      proxy TLS using generated certificates
        --listen-cipher-suites strings  Comma-separated list of supported TLS cipher suites between client/proxy
                                        (empty will be auto-populated by Go).
        --data-dir string               Data directory for persistent data (default "default.proxy")
        --metrics-addr string           listen for endpoint /metrics requests on an additional interface
                                        (a URL: http://host:port, or https:// with the proxy's certificate)
      """;

  private GrpcProxyCommand() {}

  /** Runs the command; returns its exit status once it cannot serve (a refusal), or never while it serves. */
  public static int run(String[] args, PrintStream out, PrintStream err) throws InterruptedException {
    if (args.length == 0 || !args[0].equals("start")) {
      err.print(USAGE);
      return args.length == 1 && (args[0].equals("--help") || args[0].equals("-h")) ? 0 : 2;
    }
    Map<String, String> flags = new LinkedHashMap<>(DEFAULTS);
    for (int i = 1; i < args.length; i++) {
      String arg = args[i];
      if (arg.equals("--help") || arg.equals("-h")) {
        out.print(USAGE);
        return 0;
      }
      String bare = arg.replaceFirst("^--?", "");
      int eq = bare.indexOf('=');
      String name = eq < 0 ? bare : bare.substring(0, eq);
      if (!arg.startsWith("-") || !DEFAULTS.containsKey(name)) {
        err.println("Error: unknown flag: " + arg);
        return 2;
      }
      if (eq >= 0) {
        flags.put(name, bare.substring(eq + 1));
      } else if (name.equals("enable-pprof") || name.equals("insecure-skip-tls-verify") || name.equals("auto-tls")) {
        flags.put(name, "true");
      } else if (i + 1 < args.length) {
        flags.put(name, args[++i]);
      } else {
        err.println("Error: flag needs an argument: " + arg);
        return 2;
      }
    }
    List<SocketAddress> endpoints = new ArrayList<>();
    SocketAddress listen;
    try {
      for (String endpoint : flags.get("endpoints").split(",")) {
        if (!endpoint.isBlank()) {
          endpoints.add(address(endpoint.trim()));
        }
      }
      listen = address(flags.get("listen-addr"));
    } catch (IllegalArgumentException e) {
      err.println("Error: " + e.getMessage());
      return 2;
    }
    if (endpoints.isEmpty()) {
      err.println("Error: --endpoints names no endpoint");
      return 2;
    }
    GrpcProxy.MemberTls tls = null;
    boolean anyHttps = flags.get("endpoints").contains("https://");
    if (anyHttps || !flags.get("cacert").isEmpty() || !flags.get("cert").isEmpty() || !flags.get("key").isEmpty()
        || flags.get("insecure-skip-tls-verify").equals("true")) {
      if (flags.get("cert").isEmpty() != flags.get("key").isEmpty()) {
        err.println("Error: --cert and --key go together: a client certificate needs its key");
        return 2;
      }
      for (String file : new String[] {"cacert", "cert", "key"}) {
        String path = flags.get(file);
        if (!path.isEmpty() && !java.nio.file.Files.isReadable(java.nio.file.Path.of(path))) {
          err.println("Error: open " + path + ": no such file or directory (--" + file + ")");
          return 2;
        }
      }
      tls = new GrpcProxy.MemberTls(flags.get("cacert"), flags.get("cert"), flags.get("key"),
          flags.get("insecure-skip-tls-verify").equals("true"));
    }
    Config.Tls listenTls;
    try {
      listenTls = listenTls(flags, listen);
    } catch (IllegalArgumentException | java.io.IOException e) {
      err.println("Error: " + e.getMessage());
      return 2;
    }
    SocketAddress metricsAddr = null;
    // A URL, as etcd takes it: https serves with the proxy's own certificate.
    boolean metricsTls = flags.get("metrics-addr").startsWith("https://");
    if (!flags.get("metrics-addr").isEmpty()) {
      try {
        metricsAddr = address(flags.get("metrics-addr"));
      } catch (IllegalArgumentException e) {
        err.println("Error: " + e.getMessage());
        return 2;
      }
      if (metricsTls && listenTls == null) {
        err.println("Error: --metrics-addr " + flags.get("metrics-addr") + " is https: it needs --cert-file and "
            + "--key-file, or --auto-tls");
        return 2;
      }
    }
    org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(GrpcProxyCommand.class);
    Vertx vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    GrpcProxy proxy;
    try {
      proxy = GrpcProxy.start(vertx, endpoints, tls, listenTls, listen.host(), listen.port()).await();
      if (metricsAddr != null) {
        try {
          proxy.serveMetrics(metricsAddr.host(), metricsAddr.port(), metricsTls).await();
        } catch (Exception e) {
          err.println("Error: listen tcp " + metricsAddr.host() + ":" + metricsAddr.port() + ": " + e.getMessage());
          vertx.close();
          return 1;
        }
      }
    } catch (Exception e) {
      err.println("Error: listen tcp " + listen.host() + ":" + listen.port() + ": " + e.getMessage());
      vertx.close();
      return 1;
    }
    log.info("grpc-proxy listening for gRPC on {}:{}{} (advertised as {}), in front of {}", listen.host(), proxy.port(),
        listenTls == null ? "" : " over TLS", flags.get("advertise-client-url"), flags.get("endpoints"));
    // A stop that was asked for exits with status 0, as a member's does.
    CountDownLatch forever = new CountDownLatch(1);
    for (String signal : new String[] {"INT", "TERM"}) {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> System.exit(0));
    }
    forever.await();
    return 0;
  }

  /**
   * The proxy's own TLS towards its clients, or null: --cert-file and --key-file (and --trusted-ca-file,
   * which also asks each client for a certificate, as etcd's listeners do), else --auto-tls (a
   * certificate of its own, made once in {@code <data-dir>/fixtures/proxy}).
   */
  static Config.Tls listenTls(Map<String, String> flags, SocketAddress listen) throws java.io.IOException {
    List<String> suites = flags.get("listen-cipher-suites").isEmpty() ? List.of()
        : List.of(flags.get("listen-cipher-suites").split(","));
    String cert = flags.get("cert-file");
    String key = flags.get("key-file");
    String ca = flags.get("trusted-ca-file");
    if (!cert.isEmpty() || !key.isEmpty() || !ca.isEmpty()) {
      if (cert.isEmpty() || key.isEmpty()) {
        throw new IllegalArgumentException("--cert-file and --key-file go together: the proxy's certificate "
            + "needs its key");
      }
      for (String path : new String[] {cert, key, ca}) {
        if (!path.isEmpty() && !java.nio.file.Files.isReadable(java.nio.file.Path.of(path))) {
          throw new IllegalArgumentException("open " + path + ": no such file or directory");
        }
      }
      return new Config.Tls(cert, key, ca, !ca.isEmpty(), suites);
    }
    if (flags.get("auto-tls").equals("true")) {
      java.nio.file.Path dir = java.nio.file.Path.of(flags.get("data-dir"), "fixtures", "proxy");
      SelfSignedCertificate.ensure(dir, List.of("https://" + listen.host() + ":" + listen.port()));
      return new Config.Tls(SelfSignedCertificate.certFile(dir).toString(),
          SelfSignedCertificate.keyFile(dir).toString(), "", false, suites, true);
    }
    return null;
  }

  /** "host:port", or a URL ("http://host:port"): its host and port. */
  static SocketAddress address(String endpoint) {
    String hostPort = endpoint.contains("://") ? URI.create(endpoint).getAuthority() : endpoint;
    int colon = hostPort == null ? -1 : hostPort.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("address " + endpoint + ": missing port in address");
    }
    try {
      return SocketAddress.inetSocketAddress(Integer.parseInt(hostPort.substring(colon + 1)),
          hostPort.substring(0, colon).replace("[", "").replace("]", ""));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("address " + endpoint + ": invalid port");
    }
  }
}
