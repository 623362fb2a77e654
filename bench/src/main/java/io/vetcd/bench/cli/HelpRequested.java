package io.vetcd.bench.cli;

/** {@code -h}/{@code --help} was given: print the usage of {@code command} (all commands if null). */
public final class HelpRequested extends RuntimeException {

  private final transient Command command;

  public HelpRequested(Command command) {
    super("help", null, false, false);
    this.command = command;
  }

  public Command command() {
    return command;
  }
}
