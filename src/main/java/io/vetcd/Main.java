package io.vetcd;

import io.vertx.core.Vertx;
import io.vetcd.api.ClientServer;
import io.vetcd.server.Config;
import io.vetcd.server.Flags;
import io.vetcd.server.Member;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The vetcd process: parses etcd's flags, starts one member and its client port, and shuts down
 * cleanly on SIGINT/SIGTERM (goreman and foreman send these) within a few seconds.
 */
public final class Main {

  public static final String VERSION = "0.1.0";

  private Main() {}

  public static void main(String[] args) throws Exception {
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
      System.out.println("etcd API Version: " + Member.API_VERSION);
      System.out.println("Java Version: " + System.getProperty("java.version"));
      System.out.println("OS/Arch: " + System.getProperty("os.name").toLowerCase() + "/" + System.getProperty("os.arch"));
      return;
    }
    Config config = ((Flags.Run) command).config();
    // Before the first logger exists: slf4j-simple reads its settings once, and logs to stderr.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", config.logLevel().equals("warn") ? "warn" : config.logLevel());
    System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
    System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd HH:mm:ss.SSS");
    System.setProperty("org.slf4j.simpleLogger.log.net.openhft", "warn");
    run(config);
  }

  private static void run(Config config) throws InterruptedException {
    org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Main.class);
    log.info("vetcd {} starting: name={} data-dir={}", VERSION, config.name(), config.dataDir());
    Vertx vertx = Vertx.vertx();
    Member member;
    try {
      member = Member.start(vertx, config)
          .compose(m -> vertx.deployVerticle(new ClientServer(m)).map(id -> m))
          .await(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      log.error("vetcd failed to start: {}", e.getMessage());
      log.debug("start failure", e);
      vertx.close();
      System.exit(1);
      return;
    }
    log.info("vetcd ready to serve client requests");
    // A process started in the background by a shell inherits SIGINT ignored, and the JVM then leaves it
    // ignored; goreman stops members with SIGINT, so take both signals explicitly.
    for (String signal : new String[] {"INT", "TERM"}) {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> System.exit(0));
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log.info("vetcd received a stop signal; shutting down");
      try {
        // Queued writes finish and sync before the log and keyspace close; then the event loops go.
        member.close();
        vertx.close().await(1, TimeUnit.SECONDS);
      } catch (Exception e) {
        log.warn("shutdown did not finish cleanly: {}", e.toString());
      }
      stopped.countDown();
    }, "vetcd-shutdown"));
    stopped.await();
  }
}
