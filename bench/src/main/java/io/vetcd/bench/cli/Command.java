package io.vetcd.bench.cli;

import io.vetcd.bench.Session;
import io.vetcd.bench.report.Result;
import java.util.List;

/** One subcommand of the tool ({@code put}, {@code range}, ...), as etcd's benchmark has them. */
public interface Command {

  /** The word that selects it on the command line. */
  String name();

  /** What follows the name in the usage, e.g. {@code "KEY [END]"}; empty if it takes no argument. */
  default String argsUsage() {
    return "";
  }

  String summary();

  /** The command's own flags; the parser fills them in. */
  FlagSet flags();

  /**
   * Checks the flags and positional arguments once parsing is done, before anything connects, so
   * that every usage error is reported at once and nothing is sent.
   */
  void configure(List<String> args);

  /** Runs the benchmark; failed requests are counted in the result, not thrown. */
  Result run(Session session) throws Exception;
}
