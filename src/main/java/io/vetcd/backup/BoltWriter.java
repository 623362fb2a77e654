package io.vetcd.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes a bbolt database file (the format of etcd's backend, which {@code etcdctl snapshot status}
 * and {@code snapshot restore} open) in one pass: buckets one after another, each bucket's keys in
 * ascending byte order. Leaf pages go to the file as they fill, so memory holds one page and, per
 * bucket, the first key and page id of each leaf (for the branch pages written at its end), never the
 * data.
 *
 * <p>The layout is bbolt's (page header: id, flags, count, overflow; leaf elements: flags, pos, ksize,
 * vsize; branch elements: pos, ksize, pgid; little-endian, as bbolt writes its structs on x86 and
 * ARM): pages 0 and 1 are the two meta pages, page 2 an empty freelist, then the buckets' pages, then
 * the root bucket's leaf naming them. An item larger than a page gets a page of its own with overflow
 * pages, as bbolt does. Nothing is freed, so every page below the high-water mark is reachable: what
 * bbolt's consistency check ({@code tx.Check}, which {@code snapshot status} runs) asks.
 */
public final class BoltWriter implements AutoCloseable {

  static final int MAGIC = 0xED0CDAED;
  static final int VERSION = 2;
  static final short BRANCH = 0x01;
  static final short LEAF = 0x02;
  static final short META = 0x04;
  static final short FREELIST = 0x10;
  /** A root-bucket leaf element that names a bucket. */
  static final int BUCKET_LEAF_FLAG = 0x01;
  static final int PAGE_HEADER = 16;
  static final int ELEMENT = 16;
  /** The meta struct up to its checksum (magic .. txid), what the checksum covers. */
  static final int META_CHECKSUMMED = 56;

  private final FileChannel out;
  private final int pageSize;
  private long nextPage = 3;
  /** The buckets finished so far: name and root page, in the order written (names ascending). */
  private final List<byte[]> bucketNames = new ArrayList<>();
  private final List<Long> bucketRoots = new ArrayList<>();
  private Bucket open;

  public BoltWriter(FileChannel out, int pageSize) {
    this.out = out;
    this.pageSize = pageSize;
  }

  /** Starts the next bucket; its name must sort after the previous one's. */
  public Bucket bucket(String name) throws IOException {
    if (open != null) {
      open.finish();
    }
    byte[] n = name.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    if (!bucketNames.isEmpty() && compare(bucketNames.get(bucketNames.size() - 1), n) >= 0) {
      throw new IllegalArgumentException("buckets must come in ascending name order: " + name);
    }
    open = new Bucket(n);
    return open;
  }

  /** One bucket being written: keys in ascending order. */
  public final class Bucket {
    private final byte[] name;
    private final List<byte[]> pageKeys = new ArrayList<>();
    private final List<Long> pageIds = new ArrayList<>();
    private final Page leaf = new Page(LEAF);
    private byte[] last;

    private Bucket(byte[] name) {
      this.name = name;
    }

    public void put(byte[] key, byte[] value) throws IOException {
      if (last != null && compare(last, key) >= 0) {
        throw new IllegalArgumentException("keys must come in ascending order");
      }
      last = key;
      if (!leaf.fits(key.length + value.length)) {
        flushLeaf();
      }
      leaf.add(0, key, value, 0);
    }

    private void flushLeaf() throws IOException {
      if (leaf.count() > 0) {
        pageKeys.add(leaf.firstKey());
        pageIds.add(leaf.writeTo());
      }
    }

    private void finish() throws IOException {
      flushLeaf();
      long root;
      if (pageIds.isEmpty()) {
        root = leaf.writeTo(); // an empty bucket: an empty leaf
      } else {
        root = branches(pageKeys, pageIds);
      }
      bucketNames.add(name);
      bucketRoots.add(root);
      open = null;
    }
  }

  /** Branch pages over {@code ids} (first keys {@code keys}), level by level; returns the root. */
  private long branches(List<byte[]> keys, List<Long> ids) throws IOException {
    while (ids.size() > 1) {
      List<byte[]> upperKeys = new ArrayList<>();
      List<Long> upperIds = new ArrayList<>();
      Page branch = new Page(BRANCH);
      for (int i = 0; i < ids.size(); i++) {
        if (!branch.fits(keys.get(i).length) && branch.count() > 0) {
          upperKeys.add(branch.firstKey());
          upperIds.add(branch.writeTo());
        }
        branch.add(0, keys.get(i), null, ids.get(i));
      }
      upperKeys.add(branch.firstKey());
      upperIds.add(branch.writeTo());
      keys = upperKeys;
      ids = upperIds;
    }
    return ids.get(0);
  }

  /** Ends the file: the root bucket, the freelist, the meta pages. The channel stays open. */
  @Override
  public void close() throws IOException {
    if (open != null) {
      open.finish();
    }
    Page root = new Page(LEAF);
    List<byte[]> rootKeys = new ArrayList<>();
    List<Long> rootIds = new ArrayList<>();
    for (int i = 0; i < bucketNames.size(); i++) {
      byte[] header = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
          .putLong(bucketRoots.get(i)).putLong(0).array();
      if (!root.fits(bucketNames.get(i).length + header.length) && root.count() > 0) {
        rootKeys.add(root.firstKey());
        rootIds.add(root.writeTo());
      }
      root.add(BUCKET_LEAF_FLAG, bucketNames.get(i), header, 0);
    }
    long rootPage;
    if (rootIds.isEmpty()) {
      rootPage = root.writeTo();
    } else {
      rootKeys.add(root.firstKey());
      rootIds.add(root.writeTo());
      rootPage = branches(rootKeys, rootIds);
    }
    ByteBuffer freelist = page(2, FREELIST, 0, 0);
    write(freelist, 2);
    for (int txid = 0; txid < 2; txid++) {
      ByteBuffer meta = page(txid, META, 0, 0);
      meta.putInt(MAGIC).putInt(VERSION).putInt(pageSize).putInt(0)
          .putLong(rootPage).putLong(0) // the root bucket: its page, its sequence
          .putLong(2)                   // the freelist's page
          .putLong(nextPage)            // the high-water mark: pages in use
          .putLong(txid);
      meta.putLong(fnv64a(meta.array(), PAGE_HEADER, META_CHECKSUMMED));
      write(meta, txid);
    }
  }

  /** The file's size once closed: every page below the high-water mark. */
  public long size() {
    return nextPage * pageSize;
  }

  private ByteBuffer page(long id, short flags, int count, int overflow) {
    ByteBuffer b = ByteBuffer.allocate(pageSize * (overflow + 1)).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(id).putShort(flags).putShort((short) count).putInt(overflow);
    return b;
  }

  private void write(ByteBuffer page, long id) throws IOException {
    page.clear();
    long at = id * pageSize;
    while (page.hasRemaining()) {
      at += out.write(page, at);
    }
  }

  /** A page being filled with elements; written (with overflow pages if it needs them) by writeTo. */
  private final class Page {
    private final short type;
    private final List<byte[]> keys = new ArrayList<>();
    private final List<byte[]> values = new ArrayList<>();
    private final List<Integer> flags = new ArrayList<>();
    private final List<Long> children = new ArrayList<>();
    private long bytes = PAGE_HEADER;

    Page(short type) {
      this.type = type;
    }

    int count() {
      return keys.size();
    }

    byte[] firstKey() {
      return keys.get(0);
    }

    /** Whether an element of {@code dataBytes} still fits this page (an empty page takes anything). */
    boolean fits(int dataBytes) {
      return keys.isEmpty() || bytes + ELEMENT + dataBytes <= pageSize;
    }

    void add(int flag, byte[] key, byte[] value, long child) {
      if (keys.size() == 0xFFFF) {
        throw new IllegalStateException("a page holds at most 65535 elements");
      }
      keys.add(key);
      values.add(value);
      flags.add(flag);
      children.add(child);
      bytes += ELEMENT + key.length + (value == null ? 0 : value.length);
    }

    /** Writes the page at the next free page id and empties it; returns that id. */
    long writeTo() throws IOException {
      long id = nextPage;
      int overflow = (int) ((bytes + pageSize - 1) / pageSize) - 1;
      ByteBuffer b = page(id, type, keys.size(), overflow);
      int data = PAGE_HEADER + ELEMENT * keys.size();
      for (int i = 0; i < keys.size(); i++) {
        int element = PAGE_HEADER + ELEMENT * i;
        byte[] key = keys.get(i);
        b.position(element);
        if (type == LEAF) {
          byte[] value = values.get(i);
          b.putInt(flags.get(i)).putInt(data - element).putInt(key.length).putInt(value.length);
          b.position(data);
          b.put(key).put(value);
          data += key.length + value.length;
        } else {
          b.putInt(data - element).putInt(key.length).putLong(children.get(i));
          b.position(data);
          b.put(key);
          data += key.length;
        }
      }
      write(b, id);
      nextPage += overflow + 1;
      keys.clear();
      values.clear();
      flags.clear();
      children.clear();
      bytes = PAGE_HEADER;
      return id;
    }
  }

  static long fnv64a(byte[] data, int from, int length) {
    long h = 0xcbf29ce484222325L;
    for (int i = from; i < from + length; i++) {
      h ^= data[i] & 0xff;
      h *= 0x100000001b3L;
    }
    return h;
  }

  static int compare(byte[] a, byte[] b) {
    return java.util.Arrays.compareUnsigned(a, b);
  }
}
