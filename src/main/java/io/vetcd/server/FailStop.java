package io.vetcd.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a member does when its log or keyspace fails: it stops, at once and loudly (etcd exits on a WAL
 * or backend error). A member that kept running after such a failure would either hang — its appends
 * or applies no longer happening, every write waiting for its timeout — or, worse, acknowledge what
 * never reached the disk. So the first failure is logged in plain words, the member reports unhealthy,
 * the requests waiting on it are answered with etcd's "server stopped", nothing more is acknowledged,
 * and the process exits with status 1 so that goreman, systemd or Kubernetes restart it.
 */
public final class FailStop {

  private static final Logger LOG = LoggerFactory.getLogger(FailStop.class);

  /** How long the process lets the answers to waiting requests leave before it exits. */
  private static final long EXIT_AFTER_MS = 300;
  /** How long a removed member goes on sending (its removal's commit to the others) before it exits: etcd's. */
  private static final long LEAVE_AFTER_MS = 1000;

  /**
   * Below this much free space the failure is reported as a full disk: a write cut short by a full
   * disk does not always say ENOSPC (LMDB turns a short write into EIO, a mapped page into SIGBUS).
   */
  private static final long FULL_BELOW_BYTES = 4L << 20;

  private final AtomicReference<Throwable> cause = new AtomicReference<>();
  private final List<Runnable> onStop = new CopyOnWriteArrayList<>();
  private final Runnable exit;
  /** How a removed member ends (see {@link #leave}). */
  private final Runnable leave;
  private final Path dataDir;

  /**
   * A member's fail-stop that ends the process (status 1) after {@code onStop} actions ran; its
   * message says how much space is left on the disk holding {@code dataDir}.
   */
  public static FailStop exitingProcess(Path dataDir) {
    return new FailStop(dataDir, () -> exitAfter(EXIT_AFTER_MS, 1), () -> exitAfter(LEAVE_AFTER_MS, 0));
  }

  private static void exitAfter(long delayMs, int status) {
    Thread exiting = new Thread(() -> {
      try {
        Thread.sleep(delayMs);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      System.err.flush();
      // halt, not exit: the shutdown hook would wait for the threads that just failed to finish work.
      Runtime.getRuntime().halt(status);
    }, "vetcd-fail-stop");
    exiting.setDaemon(false);
    exiting.start();
  }

  /** A fail-stop that runs {@code exit} instead of ending the process (tests). */
  public FailStop(Runnable exit) {
    this(null, exit, exit);
  }

  private FailStop(Path dataDir, Runnable exit, Runnable leave) {
    this.dataDir = dataDir;
    this.exit = exit;
    this.leave = leave;
  }

  /** Runs {@code action} (answer waiting requests, refuse new ones) when the member stops. */
  void onStop(Runnable action) {
    onStop.add(action);
  }

  /**
   * Stops the member because {@code what} failed; only the first call acts. Safe from any thread, and
   * for any Throwable: an Error (a SIGBUS in a mapped file surfaces as InternalError) as much as an
   * exception.
   */
  public void stop(String what, Throwable error) {
    if (!cause.compareAndSet(null, error)) {
      return;
    }
    LOG.error("{}: {}{}. The member stops serving and exits (status 1); nothing acknowledged is lost, and "
        + "a restart replays the log once the cause is fixed", what, describe(error), diskSpace(), error);
    runOnStop();
    exit.run();
  }

  /**
   * Stops the member because it is no longer one (removed from the cluster): as {@link #stop}, but the
   * process exits with status 0 a second later, as etcd does, so that the change it applied can reach
   * the others first; a supervisor must not restart it (its data dir is of no use to the cluster).
   */
  public void leave(String why) {
    if (!cause.compareAndSet(null, new IllegalStateException(why))) {
      return;
    }
    LOG.warn("{}: the member stops serving and exits (status 0); the data dir it used must be removed before "
        + "it is added to a cluster again", why);
    runOnStop();
    leave.run();
  }

  private void runOnStop() {
    for (Runnable action : onStop) {
      try {
        action.run();
      } catch (RuntimeException e) {
        LOG.warn("while stopping: {}", e.toString());
      }
    }
  }

  /** Whether the member has stopped (it is then unhealthy and answers nothing). */
  public boolean stopped() {
    return cause.get() != null;
  }

  /** The free space on the data dir's disk, named as a full disk when that is the likely cause. */
  private String diskSpace() {
    if (dataDir == null) {
      return "";
    }
    try {
      long free = Files.getFileStore(dataDir).getUsableSpace();
      if (free < FULL_BELOW_BYTES) {
        return " (the disk is full: " + free + " bytes free on the file system of " + dataDir + ")";
      }
      return " (" + free + " bytes free on the file system of " + dataDir + ")";
    } catch (IOException | RuntimeException e) {
      return " (free space of " + dataDir + " unknown: " + e.getMessage() + ")";
    }
  }

  private static String describe(Throwable error) {
    String message = error.getMessage() == null ? error.getClass().getSimpleName() : error.getMessage();
    if (error instanceof InternalError && message.contains("unsafe memory access")) {
      return "a write into a memory-mapped file failed (" + message + "): most often the disk is full";
    }
    return message;
  }
}
