package io.vetcd.bench.cli;

/** A bad command line: the message says what is wrong, and the caller prints the usage after it. */
public final class UsageException extends RuntimeException {

  /** The command whose usage to print; null for the tool's. */
  private final transient Command command;

  public UsageException(String message) {
    this(message, null);
  }

  public UsageException(String message, Command command) {
    super(message, null, false, false);
    this.command = command;
  }

  public Command command() {
    return command;
  }
}
