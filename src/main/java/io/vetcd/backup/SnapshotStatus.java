package io.vetcd.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * What {@code etcdctl snapshot status} says of a snapshot file, computed as it does: a CRC-32C
 * (Castagnoli) over every bucket's name, keys and values in order, the main revision of the last key
 * of the key bucket, the number of keys in all buckets, and the database's size.
 */
public record SnapshotStatus(long hash, long revision, long totalKeys, long totalSize) {

  public static SnapshotStatus of(Path file) throws IOException {
    try (BoltReader bolt = BoltReader.open(file)) {
      CRC32C crc = new CRC32C();
      long[] revision = {0};
      long[] keys = {0};
      for (String bucket : bolt.buckets()) {
        crc.update(bucket.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        boolean keyBucket = bucket.equals("key");
        bolt.forEach(bucket, (k, v) -> {
          crc.update(k);
          crc.update(v);
          if (keyBucket && k.length >= 8) {
            revision[0] = ByteBuffer.wrap(k).getLong(0);
          }
          keys[0]++;
        });
      }
      return new SnapshotStatus(crc.getValue(), revision[0], keys[0], bolt.size());
    }
  }

  /** As etcdctl prints it with {@code -w format}: simple, table, json or fields. */
  public String format(String format) {
    String hex = Long.toHexString(hash);
    String size = humanBytes(totalSize);
    return switch (format) {
      case "simple" -> hex + ", " + revision + ", " + totalKeys + ", " + size + "\n";
      case "json" -> "{\"hash\":" + hash + ",\"revision\":" + revision + ",\"totalKey\":" + totalKeys
          + ",\"totalSize\":" + totalSize + "}\n";
      case "fields" -> "\"Hash\" : " + hash + "\n\"Revision\" : " + revision + "\n\"Keys\" : " + totalKeys
          + "\n\"Size\" : " + totalSize + "\n";
      case "table" -> table(new String[] {"HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"},
          new String[] {hex, Long.toString(revision), Long.toString(totalKeys), size});
      default -> throw new IllegalArgumentException("unsupported output format \"" + format + "\"");
    };
  }

  /** One row as etcdctl's tablewriter draws it: headers centred, cells right-aligned. */
  private static String table(String[] headers, String[] cells) {
    StringBuilder rule = new StringBuilder("+");
    StringBuilder head = new StringBuilder("|");
    StringBuilder row = new StringBuilder("|");
    for (int i = 0; i < headers.length; i++) {
      int width = Math.max(headers[i].length(), cells[i].length());
      rule.append("-".repeat(width + 2)).append('+');
      int gap = width - headers[i].length();
      head.append(' ').append(" ".repeat(gap / 2)).append(headers[i]).append(" ".repeat(gap - gap / 2)).append(" |");
      row.append(' ').append(" ".repeat(width - cells[i].length())).append(cells[i]).append(" |");
    }
    return rule + "\n" + head + "\n" + rule + "\n" + row + "\n" + rule + "\n";
  }

  /** go-humanize's Bytes: SI units, one decimal below 10. */
  static String humanBytes(long bytes) {
    if (bytes < 10) {
      return bytes + " B";
    }
    String[] units = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    int e = (int) Math.floor(Math.log(bytes) / Math.log(1000));
    double value = Math.floor(bytes / Math.pow(1000, e) * 10 + 0.5) / 10;
    return String.format(value < 10 ? "%.1f %s" : "%.0f %s", value, units[e]);
  }
}
