package io.vetcd.bench.run;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * A progress bar on stderr, redrawn in place a few times a second, as etcd's tool draws one. It is
 * drawn only when stderr is a terminal: in a pipe or a log file it would be a stream of carriage
 * returns. Closing it erases it, so the report starts on a clean line.
 */
public final class Progress implements AutoCloseable {

  private static final long REDRAW_MILLIS = 200;
  private static final int WIDTH = 40;
  private static final Progress NONE = new Progress(0, () -> 0, false);

  private final long total;
  private final LongSupplier done;
  private final long startNanos = System.nanoTime();
  private final Thread drawer;
  private final PrintStream err = System.err;

  private Progress(long total, LongSupplier done, boolean draw) {
    this.total = total;
    this.done = done;
    this.drawer = draw ? new Thread(this::drawLoop, "progress") : null;
  }

  /** A bar counting {@code done} up to {@code total}; inert unless wanted and stderr is a terminal. */
  public static Progress start(long total, LongSupplier done, boolean wanted) {
    if (!wanted || total <= 0 || !stderrIsTerminal()) {
      return NONE;
    }
    Progress progress = new Progress(total, done, true);
    progress.drawer.setDaemon(true);
    progress.drawer.start();
    return progress;
  }

  private void drawLoop() {
    try {
      while (!Thread.currentThread().isInterrupted()) {
        draw();
        Thread.sleep(REDRAW_MILLIS);
      }
    } catch (InterruptedException e) {
      // closed
    }
  }

  private void draw() {
    long now = Math.min(done.getAsLong(), total);
    int filled = (int) (now * WIDTH / total);
    String bar = "=".repeat(filled) + (filled < WIDTH ? ">" + " ".repeat(WIDTH - filled - 1) : "");
    double secs = (System.nanoTime() - startNanos) / 1e9;
    err.printf(Locale.ROOT, "\r %d / %d [%s] %6.2f%% %.1fs", now, total, bar, 100.0 * now / total, secs);
    err.flush();
  }

  @Override
  public void close() {
    if (drawer == null) {
      return;
    }
    drawer.interrupt();
    try {
      drawer.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    err.print("\r\033[K");
    err.flush();
  }

  /**
   * Java can tell whether stdin and stdout are terminals (System.console) but not stderr; on Linux
   * the file descriptor's link says it. Elsewhere, fall back to the console test.
   */
  private static boolean stderrIsTerminal() {
    try {
      String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
      return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
    } catch (IOException | UnsupportedOperationException e) {
      return System.console() != null;
    }
  }
}
