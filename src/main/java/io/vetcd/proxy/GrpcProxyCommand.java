package io.vetcd.proxy;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.net.SocketAddress;
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
 * --enable-pprof} (taken, and ignored as by vetcd's members). Others are refused by name.
 */
public final class GrpcProxyCommand {

  private static final Map<String, String> DEFAULTS = new LinkedHashMap<>();

  static {
    DEFAULTS.put("endpoints", "127.0.0.1:2379");
    DEFAULTS.put("listen-addr", "127.0.0.1:23790");
    DEFAULTS.put("advertise-client-url", "127.0.0.1:23790");
    DEFAULTS.put("enable-pprof", "false");
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
      } else if (name.equals("enable-pprof")) {
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
    System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
    System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd HH:mm:ss.SSS");
    org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(GrpcProxyCommand.class);
    Vertx vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    GrpcProxy proxy;
    try {
      proxy = GrpcProxy.start(vertx, endpoints, listen.host(), listen.port()).await();
    } catch (Exception e) {
      err.println("Error: listen tcp " + listen.host() + ":" + listen.port() + ": " + e.getMessage());
      vertx.close();
      return 1;
    }
    log.info("grpc-proxy listening for gRPC on {}:{} (advertised as {}), in front of {}", listen.host(), proxy.port(),
        flags.get("advertise-client-url"), flags.get("endpoints"));
    // A stop that was asked for exits with status 0, as a member's does.
    CountDownLatch forever = new CountDownLatch(1);
    for (String signal : new String[] {"INT", "TERM"}) {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> System.exit(0));
    }
    forever.await();
    return 0;
  }

  /** "host:port", or a URL ("http://host:port"): its host and port. */
  static SocketAddress address(String endpoint) {
    String hostPort = endpoint.contains("://") ? URI.create(endpoint).getAuthority() : endpoint;
    if (endpoint.startsWith("https://")) {
      throw new IllegalArgumentException("endpoint " + endpoint + ": the proxy speaks to members without TLS only "
          + "(--cacert, --cert and --key are not supported yet)");
    }
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
