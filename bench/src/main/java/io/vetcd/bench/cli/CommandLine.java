package io.vetcd.bench.cli;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits argv into the global flags, one command, its flags and its positional arguments. Global
 * flags may come before or after the command name, as cobra's persistent flags do in etcd's tool.
 */
public final class CommandLine {

  /** The chosen command and its positional arguments. */
  public record Invocation(Command command, List<String> args) {}

  private CommandLine() {}

  public static Invocation parse(String[] argv, FlagSet global, List<Command> commands) {
    Command command = null;
    List<String> positional = new ArrayList<>();
    for (int i = 0; i < argv.length; i++) {
      String token = argv[i];
      if (token.equals("--")) {
        positional.addAll(List.of(argv).subList(i + 1, argv.length));
        break;
      }
      if (token.equals("-h") || token.equals("--help") || token.equals("help") && command == null) {
        throw new HelpRequested(command);
      }
      if (token.startsWith("--")) {
        int eq = token.indexOf('=');
        String name = eq < 0 ? token.substring(2) : token.substring(2, eq);
        FlagSet owner = command != null && command.flags().has(name) ? command.flags()
            : global.has(name) ? global : null;
        if (owner == null) {
          throw new UsageException("unknown flag: --" + name + hint(name, command, commands), command);
        }
        String value;
        if (eq >= 0) {
          value = token.substring(eq + 1);
        } else if (owner.isBool(name)) {
          value = "true";
        } else if (i + 1 < argv.length) {
          value = argv[++i];
        } else {
          throw new UsageException("flag needs an argument: --" + name, command);
        }
        try {
          owner.set(name, value);
        } catch (UsageException e) {
          throw new UsageException(e.getMessage(), command);
        }
      } else if (token.startsWith("-") && token.length() > 1) {
        throw new UsageException("unknown shorthand flag: " + token + " (flags are spelled --name)", command);
      } else if (command == null) {
        command = find(token, commands);
      } else {
        positional.add(token);
      }
    }
    if (command == null) {
      throw new UsageException("no command given");
    }
    return new Invocation(command, positional);
  }

  /** A flag of another command given before the command name is the likely slip: say so. */
  private static String hint(String flag, Command command, List<Command> commands) {
    for (Command other : commands) {
      if (other != command && other.flags().has(flag)) {
        return command == null
            ? " (a flag of " + other.name() + ": put it after the command name)"
            : " (command " + command.name() + " has no such flag; " + other.name() + " has)";
      }
    }
    return command == null ? "" : " (command " + command.name() + ")";
  }

  private static Command find(String name, List<Command> commands) {
    for (Command command : commands) {
      if (command.name().equals(name)) {
        return command;
      }
    }
    throw new UsageException("unknown command \"" + name + "\"");
  }
}
