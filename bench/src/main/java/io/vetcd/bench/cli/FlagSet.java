package io.vetcd.bench.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The flags of one command (or the global ones), declared with a default and a one-line help, in the
 * style of Go's pflag that etcd's tools use: {@code --name value}, {@code --name=value}, and for
 * booleans a bare {@code --name} (or {@code --name=false}).
 *
 * <p>Values are kept as text and converted when read, so that a bad value is reported with the flag's
 * name whichever command reads it.
 */
public final class FlagSet {

  /** One declared flag; {@code bool} flags take no separate value. */
  private record Flag(String name, String defaultValue, String help, boolean bool) {}

  private final Map<String, Flag> flags = new LinkedHashMap<>();
  private final Map<String, String> values = new LinkedHashMap<>();

  public FlagSet intFlag(String name, int defaultValue, String help) {
    return declare(new Flag(name, Integer.toString(defaultValue), help, false));
  }

  public FlagSet stringFlag(String name, String defaultValue, String help) {
    return declare(new Flag(name, defaultValue, help, false));
  }

  public FlagSet boolFlag(String name, String help) {
    return boolFlag(name, false, help);
  }

  public FlagSet boolFlag(String name, boolean defaultValue, String help) {
    return declare(new Flag(name, Boolean.toString(defaultValue), help, true));
  }

  private FlagSet declare(Flag flag) {
    flags.put(flag.name(), flag);
    return this;
  }

  public boolean has(String name) {
    return flags.containsKey(name);
  }

  public boolean isBool(String name) {
    return flags.get(name).bool();
  }

  /** Records a value given on the command line; the flag must be declared here. */
  public void set(String name, String value) {
    Flag flag = flags.get(name);
    if (flag.bool() && !value.equals("true") && !value.equals("false")) {
      throw new UsageException("invalid value \"" + value + "\" for --" + name + ": want true or false");
    }
    values.put(name, value);
  }

  public String string(String name) {
    return values.getOrDefault(name, require(name).defaultValue());
  }

  public boolean bool(String name) {
    return Boolean.parseBoolean(string(name));
  }

  public int integer(String name) {
    String text = string(name);
    try {
      return Integer.parseInt(text);
    } catch (NumberFormatException e) {
      throw new UsageException("invalid value \"" + text + "\" for --" + name + ": not an integer");
    }
  }

  /** An integer that must be at least {@code min}: counts and sizes. */
  public int integer(String name, int min) {
    int value = integer(name);
    if (value < min) {
      throw new UsageException("--" + name + " must be at least " + min + ", got " + value);
    }
    return value;
  }

  /** The effective value of every flag, in declaration order: the "options" of a JSON result. */
  public Map<String, String> effectiveValues() {
    Map<String, String> all = new LinkedHashMap<>();
    for (String name : flags.keySet()) {
      all.put(name, string(name));
    }
    return all;
  }

  /** Help lines, one a flag, aligned like cobra's. */
  public List<String> helpLines() {
    List<String> lines = new ArrayList<>();
    for (Flag flag : flags.values()) {
      String left = "--" + flag.name() + (flag.bool() ? "" : " " + placeholder(flag));
      // As cobra: no "(default ...)" for a zero value.
      boolean silent = flag.defaultValue().isEmpty() || flag.defaultValue().equals("false") || flag.defaultValue().equals("0");
      String def = silent ? "" : " (default " + flag.defaultValue() + ")";
      lines.add(String.format("      %-26s %s%s", left, flag.help(), def));
    }
    return lines;
  }

  private static String placeholder(Flag flag) {
    return flag.defaultValue().matches("-?\\d+") ? "int" : "string";
  }

  private Flag require(String name) {
    Flag flag = flags.get(name);
    if (flag == null) {
      throw new IllegalArgumentException("flag not declared: " + name);
    }
    return flag;
  }
}
