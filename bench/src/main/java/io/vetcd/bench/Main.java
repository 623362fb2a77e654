package io.vetcd.bench;

import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.CommandLine;
import io.vetcd.bench.cli.FlagSet;
import io.vetcd.bench.cli.HelpRequested;
import io.vetcd.bench.cli.UsageException;
import io.vetcd.bench.cmd.LeaseKeepAliveCommand;
import io.vetcd.bench.cmd.PutCommand;
import io.vetcd.bench.cmd.RangeCommand;
import io.vetcd.bench.cmd.TxnPutCommand;
import io.vetcd.bench.cmd.WatchLatencyCommand;
import io.vetcd.bench.report.JsonReport;
import io.vetcd.bench.report.Result;
import io.vetcd.bench.report.TextReport;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code vetcd-bench}: a load generator for etcd v3 API servers, with the commands, flags and report
 * of etcd's {@code tools/benchmark}.
 *
 * <p>Exit status: 0 when at least one request succeeded, 1 when every request failed or the
 * benchmark could not be set up (no watcher created, no lease granted), 2 for a bad command line.
 */
public final class Main {

  static final int OK = 0;
  static final int FAILED = 1;
  static final int USAGE = 2;

  private Main() {}

  public static void main(String[] argv) {
    System.exit(run(argv));
  }

  static int run(String[] argv) {
    FlagSet global = GlobalOptions.flags();
    List<Command> commands = List.of(new PutCommand(), new RangeCommand(), new TxnPutCommand(),
        new WatchLatencyCommand(), new LeaseKeepAliveCommand());
    CommandLine.Invocation invocation = null;
    GlobalOptions options;
    try {
      invocation = CommandLine.parse(argv, global, commands);
      options = GlobalOptions.from(global);
      invocation.command().configure(invocation.args());
    } catch (HelpRequested help) {
      Usage.print(System.out, global, commands, help.command());
      return OK;
    } catch (UsageException e) {
      Command about = e.command() != null ? e.command() : invocation == null ? null : invocation.command();
      System.err.println("Error: " + e.getMessage());
      System.err.println();
      Usage.print(System.err, global, commands, about);
      return USAGE;
    }
    Command command = invocation.command();
    Map<String, String> values = new LinkedHashMap<>(global.effectiveValues());
    values.putAll(command.flags().effectiveValues());
    if (!invocation.args().isEmpty()) {
      values.put("args", String.join(" ", invocation.args()));
    }
    try (Session session = new Session(options, values)) {
      session.warmUp();
      Result result = command.run(session);
      PrintStream out = System.out;
      out.print(options.json() ? JsonReport.render(result) + "\n" : TextReport.render(result));
      out.flush();
      if (result.ops() == 0) {
        System.err.println("Error: every request failed");
        return FAILED;
      }
      return OK;
    } catch (Exception e) {
      System.err.println("Error: " + command.name() + ": " + e.getMessage());
      return FAILED;
    }
  }
}
