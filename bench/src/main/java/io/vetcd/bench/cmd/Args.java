package io.vetcd.bench.cmd;

import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.UsageException;
import java.util.List;

/** Checks on a command's positional arguments. */
final class Args {

  private Args() {}

  static void none(Command command, List<String> args) {
    between(command, args, 0, 0);
  }

  static void between(Command command, List<String> args, int min, int max) {
    if (args.size() < min || args.size() > max) {
      String want = max == 0 ? "no argument" : min == max ? min + " argument(s)" : min + " to " + max + " arguments";
      throw new UsageException(command.name() + " takes " + want + ", got " + args.size() + (args.isEmpty() ? "" : ": " + args));
    }
  }
}
