package io.vetcd.bench;

import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.FlagSet;
import java.io.PrintStream;
import java.util.List;

/** The usage text, laid out as cobra lays out etcd's {@code benchmark --help}. */
final class Usage {

  private Usage() {}

  /** Prints the usage of one command, or of the whole tool when {@code command} is null. */
  static void print(PrintStream out, FlagSet global, List<Command> commands, Command command) {
    if (command == null) {
      out.println("A load generator for etcd v3 API servers (vetcd, etcd), after etcd's tools/benchmark.");
      out.println();
      out.println("Usage:");
      out.println("  vetcd-bench [global flags] COMMAND [flags] [args]");
      out.println();
      out.println("Commands:");
      for (Command c : commands) {
        out.printf("  %-18s %s%n", c.name(), c.summary());
      }
      out.println();
      out.println("Global flags:");
      global.helpLines().forEach(out::println);
      out.println();
      out.println("Use \"vetcd-bench COMMAND --help\" for the flags of a command.");
    } else {
      out.println(command.summary());
      out.println();
      out.println("Usage:");
      String args = command.argsUsage().isEmpty() ? "" : " " + command.argsUsage();
      out.println("  vetcd-bench " + command.name() + args + " [flags]");
      out.println();
      out.println("Flags:");
      command.flags().helpLines().forEach(out::println);
      out.println();
      out.println("Global flags:");
      global.helpLines().forEach(out::println);
    }
  }
}
