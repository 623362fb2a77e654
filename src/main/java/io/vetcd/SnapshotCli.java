package io.vetcd;

import io.vetcd.backup.SnapshotStatus;
import io.vetcd.server.SnapshotRestore;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code vetcd snapshot status FILE [-w simple|table|json|fields]} and {@code vetcd snapshot restore FILE
 * [flags]}, with etcdctl 3.4's flags, outputs and exit codes (0; 1 for a failure; 128 for bad
 * arguments, as etcdctl's ExitBadArgs). {@code etcdctl snapshot save} makes the files (against vetcd or
 * etcd); {@code etcdctl snapshot status} reads vetcd's as well.
 */
final class SnapshotCli {

  private static final int EXIT_ERROR = 1;
  private static final int EXIT_BAD_ARGS = 128;

  private static final Map<String, String> RESTORE_DEFAULTS = new LinkedHashMap<>();

  static {
    RESTORE_DEFAULTS.put("name", "default");
    RESTORE_DEFAULTS.put("data-dir", "");
    RESTORE_DEFAULTS.put("initial-cluster", "default=http://localhost:2380");
    RESTORE_DEFAULTS.put("initial-cluster-token", "etcd-cluster");
    RESTORE_DEFAULTS.put("initial-advertise-peer-urls", "http://localhost:2380");
    RESTORE_DEFAULTS.put("skip-hash-check", "false");
  }

  private SnapshotCli() {}

  static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length == 0 || (!args[0].equals("status") && !args[0].equals("restore"))) {
      err.println("Usage: vetcd snapshot status <filename> [-w simple|table|json|fields]\n"
          + "       vetcd snapshot restore <filename> [--data-dir D] [--name N] [--initial-cluster C]\n"
          + "             [--initial-cluster-token T] [--initial-advertise-peer-urls U] [--skip-hash-check]\n"
          + "(etcdctl snapshot save makes the file)");
      return EXIT_BAD_ARGS;
    }
    List<String> files = new ArrayList<>();
    Map<String, String> flags = new LinkedHashMap<>();
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("-")) {
        files.add(a);
        continue;
      }
      String body = a.replaceFirst("^--?", "");
      String name = body.contains("=") ? body.substring(0, body.indexOf('=')) : body;
      String value = body.contains("=") ? body.substring(body.indexOf('=') + 1) : null;
      name = name.equals("w") ? "write-out" : name;
      boolean known = args[0].equals("status") ? name.equals("write-out") : RESTORE_DEFAULTS.containsKey(name);
      if (!known) {
        err.println("Error: unknown flag: " + a);
        return EXIT_BAD_ARGS;
      }
      if (value == null) {
        if (name.equals("skip-hash-check")) {
          value = "true";
        } else if (i + 1 < args.length) {
          value = args[++i];
        } else {
          err.println("Error: flag needs an argument: " + a);
          return EXIT_BAD_ARGS;
        }
      }
      flags.put(name, value);
    }
    if (files.size() != 1) {
      err.println("Error: snapshot " + args[0] + " requires exactly one argument");
      return EXIT_BAD_ARGS;
    }
    Path file = Path.of(files.get(0));
    return args[0].equals("status") ? status(file, flags.getOrDefault("write-out", "simple"), out, err)
        : restore(file, flags, out, err);
  }

  private static int status(Path file, String format, PrintStream out, PrintStream err) {
    if (!List.of("simple", "table", "json", "fields").contains(format)) {
      err.println("Error: unsupported output format " + format);
      return EXIT_BAD_ARGS;
    }
    try {
      if (!java.nio.file.Files.exists(file)) {
        err.println("Error: stat " + file + ": no such file or directory");
        return EXIT_ERROR;
      }
      out.print(SnapshotStatus.of(file).format(format));
      return 0;
    } catch (java.io.IOException | RuntimeException e) {
      err.println("Error: " + e.getMessage());
      return EXIT_ERROR;
    }
  }

  private static int restore(Path file, Map<String, String> flags, PrintStream out, PrintStream err) {
    Map<String, String> v = new LinkedHashMap<>(RESTORE_DEFAULTS);
    v.putAll(flags);
    String name = v.get("name");
    Path dataDir = Path.of(v.get("data-dir").isEmpty() ? name + ".vetcd" : v.get("data-dir"));
    try {
      SnapshotRestore.Restored r = SnapshotRestore.restore(file, dataDir, name, v.get("initial-cluster"),
          v.get("initial-cluster-token"), List.of(v.get("initial-advertise-peer-urls").split(",")),
          Boolean.parseBoolean(v.get("skip-hash-check")));
      out.printf("restored snapshot %s into %s: revision %d, %d revision records; member %x of cluster %x%n",
          file, dataDir, r.revision(), r.records(), r.memberId(), r.clusterId());
      return 0;
    } catch (SnapshotRestore.RestoreException e) {
      err.println("Error: " + e.getMessage());
      return EXIT_ERROR;
    } catch (java.io.IOException | RuntimeException e) {
      err.println("Error: " + e.getMessage());
      return EXIT_ERROR;
    }
  }
}
