package io.vetcd.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** This process's memory mappings as the kernel lists them (/proc/self/smaps), for tests of madvise. */
public final class Mappings {

  private Mappings() {}

  /** One mapping: its first line ("address perms offset dev inode path") and its VmFlags. */
  public record Mapping(String line, List<String> flags) {
    public boolean of(Path dir, String suffix) {
      return line.contains(dir.toString()) && line.endsWith(suffix);
    }

    /** MADV_RANDOM shows as "rr" (no read-ahead on faults). */
    public boolean advisedRandom() {
      return flags.contains("rr");
    }
  }

  public static List<Mapping> all() throws IOException {
    List<Mapping> mappings = new ArrayList<>();
    String line = null;
    for (String l : Files.readAllLines(Path.of("/proc/self/smaps"))) {
      if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
        line = l;
      } else if (l.startsWith("VmFlags:") && line != null) {
        mappings.add(new Mapping(line, List.of(l.substring("VmFlags:".length()).trim().split(" "))));
      }
    }
    return mappings;
  }
}
