package io.vetcd;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vetcd.api.ClientServer;
import io.vetcd.server.Config;
import io.vetcd.server.Flags;
import io.vetcd.server.LocalMember;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The vetcd process: parses etcd's flags, starts one member and its client port, and shuts down
 * cleanly on SIGINT/SIGTERM (goreman and foreman send these) within a few seconds.
 */
public final class Main {

  public static final String VERSION = "0.1.0";

  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("snapshot")) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
      System.exit(SnapshotCli.run(java.util.Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
      return;
    }
    if (args.length > 0 && args[0].equals("grpc-proxy")) {
      logging("info");
      System.exit(io.vetcd.proxy.GrpcProxyCommand.run(java.util.Arrays.copyOfRange(args, 1, args.length), System.out,
          System.err));
      return;
    }
    io.vetcd.k8s.StatefulSetMember.Plan pod = null;
    if (args.length > 0 && args[0].equals("statefulset")) {
      // A StatefulSet's pod: whether it founds, comes back, replaces itself or joins is decided first.
      quietLogging(args);
      try {
        pod = io.vetcd.k8s.StatefulSetMember.plan(java.util.Arrays.copyOfRange(args, 1, args.length),
            System.getenv());
      } catch (Flags.UsageException e) {
        System.err.println(e.getMessage());
        System.exit(e.exitCode());
        return;
      } catch (Exception e) {
        String message = String.valueOf(e.getMessage());
        System.err.println(message.startsWith("vetcd") ? message : "vetcd: " + message);
        System.exit(1);
        return;
      } catch (LinkageError e) {
        // A runtime without a module the decision needs (the distribution's is trimmed).
        System.err.println("vetcd: " + e);
        System.exit(1);
        return;
      }
      org.slf4j.LoggerFactory.getLogger(Main.class).info("StatefulSet pod {}: {}", pod.ordinal(), pod.decision());
      args = pod.args();
    }
    Flags.Command command;
    try {
      command = Flags.parse(args, System.getenv());
    } catch (Flags.UsageException e) {
      System.err.println(e.getMessage());
      System.exit(e.exitCode());
      return;
    }
    if (command instanceof Flags.Help) {
      System.out.print(Flags.usage());
      return;
    }
    if (command instanceof Flags.Version) {
      System.out.println("vetcd Version: " + VERSION);
      System.out.println("etcd API Version: " + LocalMember.API_VERSION);
      System.out.println("Java Version: " + System.getProperty("java.version"));
      System.out.println("OS/Arch: " + System.getProperty("os.name").toLowerCase() + "/" + System.getProperty("os.arch"));
      return;
    }
    Config config = ((Flags.Run) command).config();
    if (pod == null) {
      logging(config.logLevel());
    }
    io.vetcd.k8s.StatefulSetMember.Plan statefulSetPod = pod;
    run(config, statefulSetPod == null ? (vertx, member) -> { }
        : (vertx, member) -> io.vetcd.k8s.StatefulSetMember.beforeStop(statefulSetPod, member.id(), System.getenv(),
            vertx));
  }

  /** Before the first logger exists: slf4j-simple reads its settings once, and logs to stderr. */
  private static void logging(String level) {
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", level);
    System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
    System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd HH:mm:ss.SSS");
    System.setProperty("org.slf4j.simpleLogger.log.net.openhft", "warn");
  }

  /** The log level of {@code args} if one is given there (the pod logs its decision before the flags are read). */
  private static void quietLogging(String[] args) {
    String level = "info";
    for (int i = 0; i < args.length; i++) {
      if (args[i].matches("--?log-level=.*")) {
        level = args[i].substring(args[i].indexOf('=') + 1);
      } else if (args[i].matches("--?log-level") && i + 1 < args.length) {
        level = args[i + 1];
      }
    }
    String env = System.getenv("ETCD_LOG_LEVEL");
    logging(level.equals("info") && env != null && !env.isBlank() ? env : level);
  }

  /**
   * Runs the member until a stop signal. {@code beforeStop} runs first at a stop, while the member still
   * serves (a StatefulSet's pod leaving the cluster at a scale-down).
   */
  private static void run(Config config, java.util.function.BiConsumer<Vertx, LocalMember> beforeStop)
      throws InterruptedException {
    org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Main.class);
    log.info("vetcd {} starting: name={} data-dir={}", VERSION, config.name(), config.dataDir());
    // Netty's epoll transport where it loads (Linux): fewer system calls and allocations per read and
    // write than the JDK's selector, about a tenth of the event loops' CPU under puts. NIO otherwise.
    Vertx vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    if (!vertx.isNativeTransportEnabled()) {
      log.info("network transport: Java NIO (epoll unavailable: {})", vertx.unavailableNativeTransportCause());
    }
    io.vetcd.server.StallProbe stalls = io.vetcd.server.StallProbe.start(vertx);
    AtomicReference<LocalMember> started = new AtomicReference<>();
    CountDownLatch stopped = new CountDownLatch(1);
    // A stop that was asked for exits with status 0: process managers report other codes as crashes.
    for (String signal : new String[] {"INT", "TERM"}) {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> System.exit(0));
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log.info("vetcd received a stop signal; shutting down");
      try {
        // Queued writes finish and sync before the log and keyspace close; then the event loops go.
        LocalMember member = started.get();
        if (member != null) {
          beforeStop.accept(vertx, member);
          member.close();
        }
        stalls.close();
        vertx.close().await(1, TimeUnit.SECONDS);
      } catch (Exception e) {
        log.warn("shutdown did not finish cleanly: {}", e.toString());
      }
      stopped.countDown();
    }, "vetcd-shutdown"));
    try {
      serve(vertx, config, started::set).await();
    } catch (Exception e) {
      log.error("vetcd failed to start: {}", e.getMessage());
      log.debug("start failure", e);
      System.exit(1);
      return;
    }
    stalls.serving();
    log.info("vetcd ready to serve client requests");
    stopped.await();
  }

  /**
   * Starts a member, publishes it and opens its client port: what a vetcd process does between its
   * flags and serving. {@code opened} gets the member as soon as it is open, so that a stop signal
   * during the wait for a quorum still closes it cleanly.
   */
  public static Future<LocalMember> serve(Vertx vertx, Config config, Consumer<LocalMember> opened) {
    org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Main.class);
    return LocalMember.start(vertx, config).compose(member -> {
      opened.accept(member);
      // One full collection once the member is published and before any client is answered (30-50 ms,
      // on a worker). Otherwise what the start left live (the member, the servers, their libraries'
      // state) is copied by the first two young collections under load, into survivor and old pages
      // never touched before: 17-43 ms each on every member of a fresh cluster here, where later ones
      // take 3-7 ms, and they set a fresh cluster's tail (bench/NOTES.md, "Cold start").
      Future<Void> published = member.publish().compose(v -> vertx.executeBlocking(() -> {
        System.gc();
        return null;
      }));
      // The client port listens from now on, as etcd's does, and answers once the member is published:
      // a client that connects meanwhile waits rather than being refused and backing off (etcdctl
      // retries a refused connection for its whole command timeout), and nobody reads a member that
      // has not caught up. One client server per core: Vert.x spreads the connections to one port over
      // them, so gRPC framing and protobuf work of many clients use every core, as etcd's goroutines do.
      return vertx.deployVerticle(() -> new ClientServer(member, published),
              new io.vertx.core.DeploymentOptions().setInstances(Runtime.getRuntime().availableProcessors()))
          .compose(id -> {
            log.info("waiting for a quorum to publish this member (clients are answered after that)");
            return published;
          })
          .map(v -> member);
    });
  }
}
