package io.vetcd.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a bbolt database file (one {@link BoltWriter} wrote, or etcd's own backend or snapshot): its
 * buckets and, in key order, their keys and values. Pages are read as they are visited, never the
 * whole file. What does not look like bbolt (magic, version, checksums of both meta pages, page ids
 * past the end) is refused with an IOException saying so.
 */
public final class BoltReader implements AutoCloseable {

  /** Hears one key and value of a bucket, in key order. */
  public interface Visitor {
    void entry(byte[] key, byte[] value) throws IOException;
  }

  private final FileChannel in;
  private final int pageSize;
  private final long rootPage;
  private final long highWater;
  private final long fileSize;

  private BoltReader(FileChannel in, int pageSize, long rootPage, long highWater, long fileSize) {
    this.in = in;
    this.pageSize = pageSize;
    this.rootPage = rootPage;
    this.highWater = highWater;
    this.fileSize = fileSize;
  }

  public static BoltReader open(Path file) throws IOException {
    FileChannel in = FileChannel.open(file, StandardOpenOption.READ);
    try {
      long size = in.size();
      // Page 0 is at offset 0; page 1 one page size further, which a valid page 0 says (4 KiB, the
      // usual size, when page 0 is damaged).
      ByteBuffer best = null;
      ByteBuffer first = read(in, 0, BoltWriter.PAGE_HEADER + 64);
      if (first != null && validMeta(first)) {
        best = first;
      }
      long second = best != null ? best.getInt(BoltWriter.PAGE_HEADER + 8) : 4096;
      ByteBuffer other = read(in, second, BoltWriter.PAGE_HEADER + 64);
      if (other != null && validMeta(other) && other.getInt(BoltWriter.PAGE_HEADER + 8) == second
          && (best == null || other.getLong(BoltWriter.PAGE_HEADER + 48) > best.getLong(BoltWriter.PAGE_HEADER + 48))) {
        best = other;
      }
      if (best == null) {
        throw new IOException("not a bbolt database file (a snapshot from etcdctl snapshot save): no valid meta page");
      }
      int pageSize = best.getInt(BoltWriter.PAGE_HEADER + 8);
      long root = best.getLong(BoltWriter.PAGE_HEADER + 16);
      long highWater = best.getLong(BoltWriter.PAGE_HEADER + 40);
      if (highWater * pageSize > size) {
        throw new IOException("the file is truncated: its database needs " + highWater * pageSize
            + " bytes, the file has " + size);
      }
      return new BoltReader(in, pageSize, root, highWater, size);
    } catch (IOException | RuntimeException e) {
      in.close();
      throw e;
    }
  }

  private static boolean validMeta(ByteBuffer m) {
    int base = BoltWriter.PAGE_HEADER;
    return (m.getShort(8) & BoltWriter.META) != 0 && m.getInt(base) == BoltWriter.MAGIC
        && m.getInt(base + 4) == BoltWriter.VERSION
        && m.getLong(base + BoltWriter.META_CHECKSUMMED) == BoltWriter.fnv64a(m.array(), base, BoltWriter.META_CHECKSUMMED);
  }

  /** The size bbolt reports ({@code tx.Size()}): the pages in use. */
  public long size() {
    return highWater * pageSize;
  }

  /** The bytes of the file after the database's pages (a snapshot's SHA-256 trailer, if any). */
  public long trailingBytes() {
    return fileSize - size();
  }

  /** The bucket names, in order. */
  public List<String> buckets() throws IOException {
    List<String> names = new ArrayList<>();
    walk(rootPage, (k, v) -> names.add(new String(k, java.nio.charset.StandardCharsets.UTF_8)));
    return names;
  }

  /** Visits every key and value of {@code bucket} in key order; false if there is no such bucket. */
  public boolean forEach(String bucket, Visitor visitor) throws IOException {
    byte[] wanted = bucket.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    byte[][] header = new byte[1][];
    walk(rootPage, (k, v) -> {
      if (java.util.Arrays.equals(k, wanted)) {
        header[0] = v;
      }
    });
    if (header[0] == null) {
      return false;
    }
    ByteBuffer h = ByteBuffer.wrap(header[0]).order(ByteOrder.LITTLE_ENDIAN);
    long root = h.getLong(0);
    if (root == 0) {
      // An inline bucket (bbolt keeps small ones in their header's value): its page follows the header.
      ByteBuffer page = ByteBuffer.wrap(header[0], 16, header[0].length - 16).slice().order(ByteOrder.LITTLE_ENDIAN);
      visitPage(page, visitor);
    } else {
      walk(root, visitor);
    }
    return true;
  }

  private void walk(long pageId, Visitor visitor) throws IOException {
    if (pageId < 2 || pageId >= highWater) {
      throw new IOException("corrupt database: page " + pageId + " is outside the file's " + highWater + " pages");
    }
    ByteBuffer head = read(in, pageId * pageSize, BoltWriter.PAGE_HEADER);
    if (head == null) {
      throw new IOException("the file is truncated at page " + pageId);
    }
    int overflow = head.getInt(12);
    ByteBuffer page = read(in, pageId * pageSize, (overflow + 1) * pageSize);
    if (page == null) {
      throw new IOException("the file is truncated at page " + pageId);
    }
    short flags = page.getShort(8);
    int count = page.getShort(10) & 0xFFFF;
    if ((flags & BoltWriter.BRANCH) != 0) {
      for (int i = 0; i < count; i++) {
        walk(page.getLong(BoltWriter.PAGE_HEADER + BoltWriter.ELEMENT * i + 8), visitor);
      }
    } else if ((flags & BoltWriter.LEAF) != 0) {
      visitPage(page, visitor);
    } else {
      throw new IOException("corrupt database: page " + pageId + " has type " + flags);
    }
  }

  private static void visitPage(ByteBuffer page, Visitor visitor) throws IOException {
    int count = page.getShort(10) & 0xFFFF;
    for (int i = 0; i < count; i++) {
      int element = BoltWriter.PAGE_HEADER + BoltWriter.ELEMENT * i;
      int pos = page.getInt(element + 4);
      int ksize = page.getInt(element + 8);
      int vsize = page.getInt(element + 12);
      byte[] key = new byte[ksize];
      byte[] value = new byte[vsize];
      page.get(element + pos, key);
      page.get(element + pos + ksize, value);
      visitor.entry(key, value);
    }
  }

  /** {@code length} bytes at {@code at}, little-endian; null if the file ends first. */
  private static ByteBuffer read(FileChannel in, long at, int length) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
    while (b.hasRemaining()) {
      int n = in.read(b, at + b.position());
      if (n < 0) {
        return null;
      }
    }
    return b;
  }

  @Override
  public void close() throws IOException {
    in.close();
  }
}
