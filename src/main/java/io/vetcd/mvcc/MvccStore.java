package io.vetcd.mvcc;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.internal.LeaseRecord;
import io.vetcd.proto.mvccpb.Event;
import io.vetcd.proto.mvccpb.KeyValue;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.CRC32C;
import org.lmdbjava.CopyFlags;
import org.lmdbjava.Cursor;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.EnvFlags;
import org.lmdbjava.EnvInfo;
import org.lmdbjava.GetOp;
import org.lmdbjava.Stat;
import org.lmdbjava.Txn;

/**
 * The MVCC keyspace in one LMDB environment, as etcd keeps it in bbolt:
 * <ul>
 *   <li>{@code rev}: {@link Revision} (16 bytes) → a flag byte (0 put, 1 tombstone) + the KeyValue
 *       as protobuf. The full history, oldest first.
 *   <li>{@code key}: user key → its {@link KeyIndex} (see {@link KeyIndexTable}).
 *   <li>{@code meta}: the current and compacted revisions and the applied log index, written in the
 *       same transaction as the changes they describe, so the three never disagree after a crash.
 *   <li>{@code lease}, {@code leasekey}: leases and the keys attached to them ({@link LeaseTable}).
 * </ul>
 * Write transactions are made by one thread only, the apply thread ({@link #write()}); reads take a
 * short read transaction on any thread ({@link #read()}). Each commit syncs its pages but not the meta
 * page (see {@link #flags()}): a power loss may undo the last commit, never corrupt the file; replay
 * of the log from the applied index redoes what was undone.
 */
public final class MvccStore implements AutoCloseable {

  static final byte PUT = 0;
  static final byte TOMBSTONE = 1;
  private static final byte[] CURRENT_REVISION = meta("current_revision");
  private static final byte[] COMPACT_REVISION = meta("compact_revision");
  /**
   * The physical compaction under way, if any: the revision it compacts to, then the first key whose
   * history it has not compacted yet. Written with the compaction, advanced by each {@link
   * #compactStep}, removed by the last; a restart resumes it.
   */
  private static final byte[] COMPACT_PENDING = meta("compact_pending");
  /**
   * Keys whose history one {@link #compactStep} compacts (etcd's compaction batch limit, 1000 keys): a
   * step is one write transaction of its own, and writes are applied between steps.
   */
  public static final int COMPACT_STEP_KEYS = 1000;
  /** Revision records {@link #hashKv} reads per read transaction. */
  static final int HASH_STEP_RECORDS = 10_000;
  private static final byte[] APPLIED_INDEX = meta("applied_index");

  /** The keyspace's directory, and the map size its environments are opened with. */
  private final Path dir;
  private final long mapSize;
  /** How many times the keyspace was replaced (a snapshot installed, a defragmented copy swapped in). */
  private final java.util.concurrent.atomic.AtomicLong generation = new java.util.concurrent.atomic.AtomicLong();
  /**
   * The environment in use. Replaced whole when a copy from the leader is installed ({@link
   * #install}); readers and writers hold the one they started on until they are done with it.
   */
  private volatile Tables current;
  /**
   * Bytes of pages in use as of the last commit (-1: not known yet). Every write is checked against
   * the quota; counting at commit, on the apply thread, keeps that check off the event loops.
   */
  private volatile long bytesInUse = -1;
  private volatile boolean closed;

  private MvccStore(Path dir, long mapSize) {
    this.dir = dir;
    this.mapSize = mapSize;
    this.current = Tables.open(dir, mapSize);
  }

  /**
   * One open LMDB environment and its tables. Held by the store while it is the one in use, and by
   * each reader and writer while it runs; closed when the last of them lets go, so that an install
   * never closes an environment under a transaction (lmdbjava would crash the JVM, not throw).
   */
  private static final class Tables {
    final Env<byte[]> env;
    final Dbi<byte[]> revisions;
    final Dbi<byte[]> metadata;
    final KeyIndexTable keys;
    final LeaseTable leases;
    final long pageSize;
    /** The store's hold while in use, plus one per reader or writer; 0: closed. */
    private final AtomicInteger holds = new AtomicInteger(1);
    private volatile boolean retired;

    private Tables(Env<byte[]> env) {
      this.env = env;
      this.revisions = env.openDbi("rev", DbiFlags.MDB_CREATE);
      this.metadata = env.openDbi("meta", DbiFlags.MDB_CREATE);
      this.keys = new KeyIndexTable(env);
      this.leases = new LeaseTable(env);
      this.pageSize = env.stat().pageSize;
    }

    static Tables open(Path dir, long mapSize) {
      Env<byte[]> env;
      try {
        env = Env.create(ScratchByteArrayProxy.PROXY)
            .setMapSize(mapSize)
            .setMaxDbs(8)
            .setMaxReaders(4096)
            .open(dir.toFile(), flags());
      } catch (org.lmdbjava.LmdbException e) {
        throw new IllegalStateException("the keyspace in " + dir + " cannot be opened (" + e.getMessage() + "): it "
            + "is damaged or not a vetcd keyspace. Restore the data directory from a backup, or remove it and add "
            + "the member back to the cluster", e);
      }
      try {
        return new Tables(env);
      } catch (RuntimeException e) {
        env.close();
        throw e;
      }
    }

    /** Takes a hold, unless the tables are closed already (then false). */
    boolean hold() {
      while (true) {
        int n = holds.get();
        if (n <= 0) {
          return false;
        }
        if (holds.compareAndSet(n, n + 1)) {
          return true;
        }
      }
    }

    void release() {
      int n = holds.decrementAndGet();
      if (n == 0) {
        if (retired) {
          // The last reader of a keyspace an install replaced may be an event loop: closing unmaps the
          // file, and the kernel then frees its (unlinked, maybe gigabytes of) blocks. Not there.
          ForkJoinPool.commonPool().execute(env::close);
        } else {
          env.close();
        }
      } else if (n < 0) {
        throw new IllegalStateException("the keyspace's environment was released more often than held");
      }
    }

    /** Replaced by an install: the store lets go of it; it closes once its last holder is done. */
    void retire() {
      retired = true;
      release();
    }

    long getLong(Txn<byte[]> txn, byte[] key) {
      return getLong(txn, key, 0);
    }

    long getLong(Txn<byte[]> txn, byte[] key, long absent) {
      byte[] v = metadata.get(txn, key);
      return v == null ? absent : ByteBuffer.wrap(v).getLong();
    }

    void putLong(Txn<byte[]> txn, byte[] key, long value) {
      metadata.put(txn, key, ByteBuffer.allocate(8).putLong(value).array());
    }

    long bytesInUse(Txn<byte[]> txn) {
      long pages = 2; // LMDB's two meta pages
      for (Dbi<byte[]> dbi : all()) {
        Stat s = dbi.stat(txn);
        pages += s.branchPages + s.leafPages + s.overflowPages;
      }
      return pages * pageSize;
    }

    List<Dbi<byte[]>> all() {
      List<Dbi<byte[]>> all = new ArrayList<>(List.of(revisions, metadata, keys.dbi(), keys.historyDbi()));
      all.addAll(leases.dbis());
      return all;
    }
  }

  /** The tables in use, held for the caller, who releases them. */
  private Tables hold() {
    while (true) {
      Tables t = current;
      if (t.hold()) {
        return t;
      }
      if (closed) {
        throw new IllegalStateException("the keyspace is closed");
      }
      // an install swapped them and the last holder closed them between the read and the hold
    }
  }

  /**
   * Opens (creating if needed) the keyspace in {@code dir}. {@code mapSize} bounds the file: size it
   * above the backend quota so that the quota alarm, not LMDB's MDB_MAP_FULL, is what users meet.
   */
  public static MvccStore open(Path dir, long mapSize) {
    try {
      settleInstall(dir);
      Files.createDirectories(dir);
      if (Files.isSymbolicLink(dir) || !Files.getFileStore(dir).equals(Files.getFileStore(dir.getParent()))) {
        throw new IllegalStateException("the keyspace directory " + dir + " is a symbolic link or a mount point: "
            + "it must be a plain directory on the same file system as " + dir.getParent() + ", because a "
            + "snapshot from the leader replaces it by renaming a new one into its place. Put the whole data "
            + "directory on the disk you want instead");
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new MvccStore(dir, mapSize);
  }

  /**
   * How LMDB runs, and why these flags: it must never be left corrupt by a power loss (the log is the
   * durable record; the keyspace may lag it, never be damaged).
   * <ul>
   *   <li>{@code MDB_NOMETASYNC}: each commit writes its pages, syncs them (fdatasync), then writes the
   *       meta page that points at them without a sync of its own. LMDB documents that this keeps
   *       atomicity and consistency (a crash may undo the last commit, which replay from the log
   *       redoes), with one sync per commit instead of two. vetcd ran with {@code MDB_NOSYNC} and
   *       {@code MDB_WRITEMAP} before, a combination LMDB documents as able to corrupt the file in a
   *       system crash: the kernel may write the meta page back before the pages it points at. The
   *       commit's sync is kept out of request latency: the apply thread answers a batch just before
   *       committing it (see the server's ApplyThread).
   *   <li>No {@code MDB_WRITEMAP}: with it the commit's sync is an msync of the whole map (twice the
   *       quota), measured slower per commit than LMDB's pwrite of the dirty pages and fdatasync; and a
   *       page written through the map with no disk space behind it is a SIGBUS that kills the JVM,
   *       where pwrite reports ENOSPC.
   *   <li>{@code MDB_NOTLS}: read transactions are not tied to threads (Vert.x's event loops and workers
   *       share them).
   *   <li>No {@code MDB_NORDAHEAD} (bbolt advises its map MADV_RANDOM; LMDB would with it): with a cold
   *       page cache a HashKV of 1 GB took 13-16 s without read-ahead against 0.7-0.8 s with it (this
   *       machine's disk reads ahead 8 MiB); restart and the compacting copy for a snapshot scan the map
   *       the same way. Random point reads pay for read-ahead they do not use; scans are what a cold
   *       member does first.
   * </ul>
   */
  private static EnvFlags[] flags() {
    return new EnvFlags[] {EnvFlags.MDB_NOMETASYNC, EnvFlags.MDB_NOTLS};
  }

  /** A consistent read of the newest committed state; close it soon (a long reader pins old pages). */
  public ReadView read() {
    return read(hold());
  }

  /** A read on tables held for it (the hold passes to the view). */
  private static ReadView read(Tables t) {
    try {
      return new ReadView(t);
    } catch (RuntimeException e) {
      t.release();
      throw e;
    }
  }

  /** Starts the write transaction of one batch of log entries. Apply thread only. */
  public WriteBatch write() {
    Tables t = hold();
    try {
      return new WriteBatch(t);
    } catch (RuntimeException e) {
      t.release();
      throw e;
    }
  }

  /** The log index of the last entry applied; replay starts after it. */
  public long appliedIndex() {
    try (ReadView view = read()) {
      return view.appliedIndex();
    }
  }

  /**
   * One step of the physical compaction under way: deletes the dropped history of the next {@link
   * #COMPACT_STEP_KEYS} keys in a write transaction of its own. Returns whether steps remain (false:
   * none was under way, or this was the last). Apply thread only, between batches of entries: a
   * compaction of a large keyspace never holds the writes up for longer than one step.
   */
  public boolean compactStep() {
    try (WriteBatch batch = write()) {
      Tables t = batch.t;
      Txn<byte[]> txn = batch.txn;
      byte[] pending = t.metadata.get(txn, COMPACT_PENDING);
      if (pending == null) {
        return false;
      }
      long revision = ByteBuffer.wrap(pending).getLong();
      byte[] from = Arrays.copyOfRange(pending, 8, pending.length);
      // The key table cannot change under its own cursor: collect, then write back.
      List<byte[]> touched = new ArrayList<>();
      List<KeyIndex> indexes = new ArrayList<>();
      byte[][] next = {null};
      int[] visited = {0};
      t.keys.scan(txn, from, null, (k, index) -> {
        if (visited[0] == COMPACT_STEP_KEYS) {
          next[0] = k;
          return false;
        }
        visited[0]++;
        KeyIndex whole = t.keys.whole(txn, k, index);
        List<Revision> dropped = whole.compact(revision);
        if (!dropped.isEmpty()) {
          dropped.forEach(r -> t.revisions.delete(txn, r.toBytes()));
          touched.add(k);
          indexes.add(whole);
        }
        return true;
      });
      for (int i = 0; i < touched.size(); i++) {
        t.keys.replace(txn, touched.get(i), indexes.get(i));
      }
      if (next[0] == null) {
        t.metadata.delete(txn, COMPACT_PENDING);
      } else {
        t.metadata.put(txn, COMPACT_PENDING, pendingCompaction(revision, next[0]));
      }
      long inUse = t.bytesInUse(txn);
      txn.commit();
      bytesInUse = inUse;
      return next[0] != null;
    }
  }

  /**
   * The keys the key table holds (etcd_debugging_mvcc_keys_total): LMDB keeps the count, so this is
   * cheap. A deleted key counts until a compaction drops its history, as in etcd's index.
   */
  public long keyCount() {
    try (ReadView view = read()) {
      return view.t.keys.dbi().stat(view.txn).entries;
    }
  }

  /** Whether a physical compaction is under way (see {@link #compactStep}). */
  public boolean compactionPending() {
    try (ReadView view = read()) {
      return view.t.metadata.get(view.txn, COMPACT_PENDING) != null;
    }
  }

  private static byte[] pendingCompaction(long revision, byte[] nextKey) {
    return ByteBuffer.allocate(8 + nextKey.length).putLong(revision).put(nextKey).array();
  }

  /** What {@link #hashKv} answers: the hash, the compacted revision it was taken with, the store's revision. */
  public record HashKv(long hash, long compactRevision, long revision) {}

  /**
   * etcd's HashKV at {@code atRevision} (0: the current one): a CRC-32C over the revision records up
   * to it that a read can still reach, equal on every member with the same history whatever the
   * progress of their physical compactions. Read in steps of {@link #HASH_STEP_RECORDS} records, a
   * read transaction each, so a large keyspace pins no pages for long (a long reader keeps LMDB from
   * reusing the pages writers free); records written meanwhile are above the revision hashed. A
   * compaction in between changes what is reachable: the hash starts over. All steps read the same
   * environment, even if a copy from the leader is installed meanwhile.
   */
  public HashKv hashKv(long atRevision) {
    Tables t = hold();
    try {
      while (true) {
        HashKv h = hashKv(t, atRevision);
        if (h != null) {
          return h;
        }
      }
    } finally {
      t.release();
    }
  }

  /** One attempt of {@link #hashKv} on {@code t}; null if a compaction made it start over. */
  private static HashKv hashKv(Tables t, long atRevision) {
    long at;
    long compacted;
    long current;
    t.hold();
    try (ReadView view = read(t)) {
      current = view.revision();
      at = view.checkRevision(atRevision, current);
      compacted = view.compactRevision();
    }
    CRC32C crc = new CRC32C();
    byte[] after = null;
    boolean done = false;
    while (!done) {
      t.hold();
      try (ReadView view = read(t)) {
        if (view.compactRevision() != compacted) {
          return null;
        }
        boolean pending = t.metadata.get(view.txn, COMPACT_PENDING) != null;
        try (Cursor<byte[]> cursor = t.revisions.openCursor(view.txn)) {
          boolean found = after == null ? cursor.first() : cursor.get(after, GetOp.MDB_SET_RANGE);
          if (found && after != null && Arrays.equals(cursor.key(), after)) {
            found = cursor.next();
          }
          int read = 0;
          while (true) {
            if (!found || Revision.fromBytes(cursor.key()).main() > at) {
              done = true;
              break;
            }
            if (read == HASH_STEP_RECORDS) {
              break;
            }
            byte[] k = cursor.key();
            byte[] v = cursor.val();
            if (!pending || Revision.fromBytes(k).main() > compacted || view.keptAtCompaction(k, v, compacted)) {
              crc.update(k);
              crc.update(v);
            }
            after = k;
            read++;
            found = cursor.next();
          }
        }
      }
    }
    return new HashKv(crc.getValue(), compacted, current);
  }

  /**
   * Writes a consistent copy of the whole keyspace (its newest committed state, applied index included:
   * LMDB's compacting copy, from one read transaction, file to file) to {@code dir}/data.mdb, the file
   * a leader streams to a member behind its log. Returns the applied index the copy holds, which is what
   * the snapshot sent with it must say.
   */
  public long copyTo(Path dir) throws IOException {
    Tables t = hold();
    try {
      t.env.copy(dir.toFile(), CopyFlags.MDB_CP_COMPACT);
    } finally {
      t.release();
    }
    return appliedIndexOf(dir.resolve("data.mdb"));
  }

  /** How many times the keyspace was replaced so far: a copy made before a replacement is of another. */
  public long generation() {
    return generation.get();
  }

  /** The map size the store was opened with (a copy of it needs as much). */
  public long mapSize() {
    return mapSize;
  }

  /** Hears each revision record of an {@link #export}, oldest first. */
  public interface RevisionSink {
    /** {@code keyValue}: the encoded mvccpb.KeyValue (for a tombstone, the key alone). */
    void revision(long main, long sub, boolean tombstone, byte[] keyValue) throws IOException;
  }

  /** What an {@link #export} covered: one consistent state. */
  public record ExportPoint(long appliedIndex, long revision, long compactRevision, List<LeaseRecord> leases) {}

  /**
   * Hands out every revision record a read can still reach (what etcd's key bucket holds after the
   * compaction), oldest first, and the leases, all from one read transaction: one consistent state,
   * whatever is written meanwhile (writers are not held up; the pages it reads stay until it ends).
   */
  public ExportPoint export(RevisionSink sink) throws IOException {
    Tables t = hold();
    try (ReadView view = read(t)) {
      long compacted = view.compactRevision();
      boolean pending = t.metadata.get(view.txn, COMPACT_PENDING) != null;
      try (Cursor<byte[]> cursor = t.revisions.openCursor(view.txn)) {
        for (boolean found = cursor.first(); found; found = cursor.next()) {
          byte[] k = cursor.key().clone();
          byte[] v = cursor.val().clone();
          Revision r = Revision.fromBytes(k);
          if (pending && r.main() <= compacted && !view.keptAtCompaction(k, v, compacted)) {
            continue;
          }
          sink.revision(r.main(), r.sub(), v[0] == TOMBSTONE, Arrays.copyOfRange(v, 1, v.length));
        }
      }
      return new ExportPoint(view.appliedIndex(), view.revision(), compacted, view.leases());
    }
  }

  /** The applied index a copy made by {@link #copyTo} holds. */
  private static long appliedIndexOf(Path copy) throws IOException {
    byte[] applied = metadataOf(copy, APPLIED_INDEX);
    return applied == null ? 0 : ByteBuffer.wrap(applied).getLong();
  }

  /** A member record as a copy made by {@link #copyTo} ({@code copy}: its data.mdb) holds it, or null. */
  public static byte[] recordOf(Path copy, String name) throws IOException {
    return metadataOf(copy, record(name));
  }

  private static byte[] metadataOf(Path copy, byte[] key) throws IOException {
    try (Env<byte[]> source = Env.create(ScratchByteArrayProxy.PROXY)
        .setMapSize(Math.max(Files.size(copy) * 2, 1 << 20)).setMaxDbs(8)
        .open(copy.toFile(), EnvFlags.MDB_RDONLY_ENV, EnvFlags.MDB_NOLOCK, EnvFlags.MDB_NOSUBDIR)) {
      Dbi<byte[]> meta = source.openDbi("meta"); // before the read transaction, to be valid in it
      try (Txn<byte[]> txn = source.txnRead()) {
        byte[] value = meta.get(txn, key);
        return value == null ? null : value.clone(); // the proxy's scratch array is reused
      }
    }
  }

  /**
   * Replaces the keyspace with a copy made by {@link #copyTo} on another member ({@code file}, on the
   * same file system), unless this keyspace has applied as much or more already: a copy older than the
   * keyspace (the leader's copy was taken at an index this member had reached since) must not take it
   * back. Returns whether it replaced the keyspace.
   *
   * <p>By rename and reopen, not by copying: the file is synced and moved into {@code <dir>.next}, which
   * is the point of no return (a restart finishes the install, see {@link #settleInstall}); the store
   * opens it and uses it from then on, and the directories are swapped on disk. Readers that started on
   * the old environment finish on it (it closes when the last lets go; its files, unlinked, go with
   * it). Nothing of the copy passes through the heap, and the install takes as long as a rename, not
   * as long as writing the whole keyspace again. Apply thread only.
   */
  public boolean install(Path file) throws IOException {
    if (appliedIndexOf(file) <= appliedIndex()) {
      return false;
    }
    replace(file);
    return true;
  }

  /**
   * Replaces the keyspace with {@code file}, a copy made by {@link #copyTo} and brought to the same
   * state (a defragmented copy): as {@link #install}, without comparing applied indexes. Apply thread
   * only.
   */
  public void replace(Path file) throws IOException {
    generation.incrementAndGet();
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
    Path next = sibling(dir, ".next");
    deleteTree(next);
    Files.createDirectories(next);
    Files.move(file, next.resolve("data.mdb"), StandardCopyOption.ATOMIC_MOVE);
    syncDirectory(next);
    syncDirectory(dir.getParent());
    Tables fresh = Tables.open(next, mapSize);
    Tables old = current;
    current = fresh;
    old.retire();
    bytesInUse = -1; // counted again on the next ask
    settleInstall(dir); // the files move; both environments keep theirs open
  }

  /**
   * Finishes an install a crash (or {@link #install} itself) left on disk: {@code <dir>.next} holding a
   * copy replaces {@code dir}, which goes by way of {@code <dir>.old}; a {@code .next} without a copy
   * in it is an install that had not reached its point of no return, and goes.
   */
  private static void settleInstall(Path dir) throws IOException {
    Path next = sibling(dir, ".next");
    Path old = sibling(dir, ".old");
    if (Files.exists(next.resolve("data.mdb"))) {
      deleteTree(old);
      if (Files.exists(dir)) {
        Files.move(dir, old, StandardCopyOption.ATOMIC_MOVE);
      }
      Files.move(next, dir, StandardCopyOption.ATOMIC_MOVE);
      syncDirectory(dir.getParent());
    } else {
      deleteTree(next);
    }
    deleteTree(old);
  }

  private static Path sibling(Path dir, String suffix) {
    return dir.resolveSibling(dir.getFileName() + suffix);
  }

  private static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (var paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  /** A rename is durable once its directory is synced. */
  private static void syncDirectory(Path directory) throws IOException {
    try (FileChannel ch = FileChannel.open(directory, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }

  /** Forces LMDB's pages to disk (at snapshot points and on shutdown). */
  public void sync() {
    Tables t = hold();
    try {
      t.env.sync(true);
    } finally {
      t.release();
    }
  }

  /** Bytes of the database file that LMDB has used so far (etcd's dbSize). */
  public long dbSize() {
    Tables t = hold();
    try {
      EnvInfo info = t.env.info();
      return (info.lastPageNumber + 1) * t.pageSize;
    } finally {
      t.release();
    }
  }

  /** Bytes of pages holding live data (etcd's dbSizeInUse); freed pages are reused in place. */
  public long dbSizeInUse() {
    long cached = bytesInUse;
    if (cached >= 0) {
      return cached;
    }
    try (ReadView view = read()) {
      return bytesInUse = view.t.bytesInUse(view.txn);
    }
  }

  /**
   * Syncs and lets go of the environment; it closes now, or when the last reader still on it is done
   * (a read racing shutdown must not find it closed under its transaction).
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    Tables t = current;
    try {
      t.env.sync(true);
    } finally {
      t.release();
    }
  }

  private static byte[] meta(String name) {
    return name.getBytes(StandardCharsets.US_ASCII);
  }

  /** The member's own records live under their own prefix, apart from the store's bookkeeping. */
  private static byte[] record(String name) {
    return ("record/" + name).getBytes(StandardCharsets.US_ASCII);
  }

  private static KeyValue decodeValue(byte[] stored) {
    try {
      return KeyValue.parseFrom(ByteBuffer.wrap(stored, 1, stored.length - 1));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("corrupt revision record", e);
    }
  }

  private static byte[] encodeValue(byte flag, KeyValue kv) {
    int size = kv.getSerializedSize();
    byte[] stored = new byte[size + 1];
    stored[0] = flag;
    CodedOutputStream out = CodedOutputStream.newInstance(stored, 1, size); // one copy of a large value, not two
    try {
      kv.writeTo(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e); // an array of the message's own size: cannot happen
    }
    out.checkNoSpaceLeft();
    return stored;
  }

  /** Range reads over one LMDB transaction; the revision they see is the subclass's. */
  private abstract static class Reader implements KvReader {
    final Tables t;
    final Txn<byte[]> txn;

    Reader(Tables t, Txn<byte[]> txn) {
      this.t = t;
      this.txn = txn;
    }

    @Override
    public long compactRevision() {
      return t.getLong(txn, COMPACT_REVISION, -1);
    }

    @Override
    public RangeResult range(byte[] key, byte[] end, long atRevision, long limit, boolean countOnly) {
      long current = revision();
      long at = checkRevision(atRevision, current);
      List<Revision> found = new ArrayList<>();
      long[] count = {0};
      if (end == null) {
        KeyIndex index = t.keys.get(txn, key);
        Revision r = index == null ? null : t.keys.find(txn, key, index, at);
        if (r != null) {
          count[0] = 1;
          found.add(r);
        }
      } else {
        t.keys.scan(txn, key, end.length == 0 ? null : end, (k, index) -> {
          Revision r = t.keys.find(txn, k, index, at);
          if (r != null) {
            count[0]++;
            if (limit <= 0 || found.size() < limit) {
              found.add(r);
            }
          }
          return true;
        });
      }
      if (countOnly) {
        return new RangeResult(List.of(), count[0], current);
      }
      List<KeyValue> kvs = new ArrayList<>(found.size());
      for (Revision r : found) {
        kvs.add(load(r));
      }
      return new RangeResult(kvs, count[0], current);
    }

    long checkRevision(long atRevision, long current) {
      if (atRevision > current) {
        throw new MvccException(MvccException.Kind.FUTURE_REVISION);
      }
      long at = atRevision <= 0 ? current : atRevision;
      if (at < compactRevision()) {
        throw new MvccException(MvccException.Kind.COMPACTED);
      }
      return at;
    }

    @Override
    public boolean leaseExists(long id) {
      return t.leases.get(txn, id) != null;
    }

    /** The lease with this id, or null if there is none. */
    public LeaseRecord lease(long id) {
      return t.leases.get(txn, id);
    }

    public List<LeaseRecord> leases() {
      return t.leases.all(txn);
    }

    /** The keys attached to a lease, in key order. */
    public List<byte[]> leaseKeys(long id) {
      return t.leases.keys(txn, id);
    }

    /**
     * The changes of revisions {@code from} and later, oldest first, as watch events without previous
     * values: whole revisions only, stopping after the revision in which {@code maxEvents} is reached.
     * What a watcher that fell behind the in-memory history catches up from.
     *
     * @throws MvccException when {@code from} is below the compacted revision (its history is gone)
     */
    public History history(long from, int maxEvents) {
      if (from < compactRevision()) {
        throw new MvccException(MvccException.Kind.COMPACTED);
      }
      List<Event> events = new ArrayList<>();
      long last = revision();
      try (Cursor<byte[]> cursor = t.revisions.openCursor(txn)) {
        for (boolean found = cursor.get(Revision.startOf(from), org.lmdbjava.GetOp.MDB_SET_RANGE); found;
            found = cursor.next()) {
          long main = Revision.fromBytes(cursor.key()).main();
          if (events.size() >= maxEvents && main != events.get(events.size() - 1).getKv().getModRevision()) {
            last = main - 1;
            break;
          }
          byte[] stored = cursor.val();
          events.add(Event.newBuilder()
              .setType(stored[0] == TOMBSTONE ? Event.EventType.DELETE : Event.EventType.PUT)
              .setKv(decodeValue(stored))
              .build());
        }
      }
      return new History(events, last);
    }

    /** The key's value just before {@code revision} (what a watch event's prev_kv carries), or null. */
    public KeyValue valueBefore(byte[] key, long revision) {
      KeyIndex index = t.keys.get(txn, key);
      Revision r = index == null ? null : t.keys.find(txn, key, index, revision - 1);
      if (r == null) {
        return null;
      }
      byte[] stored = t.revisions.get(txn, r.toBytes());
      return stored == null ? null : decodeValue(stored); // compacted away
    }

    KeyValue load(Revision r) {
      byte[] stored = t.revisions.get(txn, r.toBytes());
      if (stored == null) {
        throw new IllegalStateException("key index names revision " + r + " which is not stored");
      }
      return decodeValue(stored);
    }

    /**
     * Whether the record {@code key}/{@code value} (at or below {@code compacted}) is one the compaction
     * to {@code compacted} keeps: the newest change of its key at or below it, unless a tombstone.
     * Records a physical compaction under way has not reached yet are not.
     */
    boolean keptAtCompaction(byte[] key, byte[] value, long compacted) {
      byte[] userKey = decodeValue(value).getKey().toByteArray();
      KeyIndex index = t.keys.get(txn, userKey);
      if (index == null) {
        return false;
      }
      Revision r = Revision.fromBytes(key);
      KeyIndex whole = t.keys.whole(txn, userKey, index);
      return whole.changes().stream().anyMatch(c -> c.revision().equals(r)) && !whole.compact(compacted).contains(r);
    }
  }

  /** Events read back from the store, and the last revision they cover (whole revisions). */
  public record History(List<Event> events, long lastRevision) {}

  /** A read of the newest committed state. */
  public static final class ReadView extends Reader implements AutoCloseable {
    private boolean released;

    /** On tables held for it: released when it closes (once, however often it is closed). */
    private ReadView(Tables t) {
      super(t, t.env.txnRead());
    }

    @Override
    public long revision() {
      return Math.max(1, t.getLong(txn, CURRENT_REVISION));
    }

    public long appliedIndex() {
      return t.getLong(txn, APPLIED_INDEX);
    }

    /** A record the member keeps beside the keyspace (e.g. the cluster's members), or null. */
    public byte[] record(String name) {
      return t.metadata.get(txn, MvccStore.record(name));
    }

    @Override
    public void close() {
      if (!released) {
        released = true;
        txn.close();
        t.release();
      }
    }
  }

  /**
   * One LMDB write transaction covering a batch of log entries. Each entry that changes the keyspace
   * does so through one {@link StoreTxn} (ended before the next begins), which owns one main
   * revision.
   */
  public final class WriteBatch implements AutoCloseable {
    private final Tables t;
    private final Txn<byte[]> txn;
    private boolean released;
    private long current;
    /** The changes of the requests ended so far, as watch events (with previous values), in order. */
    private final List<Event> events = new ArrayList<>();

    /** On tables held for it: released when it closes. */
    private WriteBatch(Tables t) {
      this.t = t;
      this.txn = t.env.txnWrite();
      this.current = Math.max(1, t.getLong(txn, CURRENT_REVISION));
    }

    public long revision() {
      return current;
    }

    /**
     * Starts a request that writes straight into this batch's transaction. It cannot be dropped alone
     * (no nested transaction: each costs LMDB a dirty-page list): if it fails, the whole batch must be
     * closed without committing.
     */
    public StoreTxn begin() {
      return new StoreTxn(this);
    }

    /**
     * Compacts the history before {@code revision} (etcd's Compact): from this batch's commit, reads
     * below it fail and only each key's value as of {@code revision} (and later changes) can be read.
     * The records of the history dropped are deleted afterwards, in bounded steps ({@link
     * #compactStep}); a later compaction takes over one still under way (it drops all the earlier
     * would have).
     */
    public void compact(long revision) {
      if (revision <= t.getLong(txn, COMPACT_REVISION, -1)) {
        throw new MvccException(MvccException.Kind.COMPACTED);
      }
      if (revision > current) {
        throw new MvccException(MvccException.Kind.FUTURE_REVISION);
      }
      t.putLong(txn, COMPACT_REVISION, revision);
      t.metadata.put(txn, COMPACT_PENDING, pendingCompaction(revision, new byte[0]));
    }

    public void setAppliedIndex(long index) {
      t.putLong(txn, APPLIED_INDEX, index);
    }

    public long appliedIndex() {
      return t.getLong(txn, APPLIED_INDEX);
    }

    public byte[] record(String name) {
      return t.metadata.get(txn, MvccStore.record(name));
    }

    /** Stores a member record in this transaction: it commits (or not) with the entries beside it. */
    public void putRecord(String name, byte[] value) {
      t.metadata.put(txn, MvccStore.record(name), value);
    }

    public long compactRevision() {
      return t.getLong(txn, COMPACT_REVISION, -1);
    }

    /** The batch's changes as watch events, in revision order; valid once committed. */
    public List<Event> events() {
      return events;
    }

    public void commit() {
      t.putLong(txn, CURRENT_REVISION, current);
      long inUse = t.bytesInUse(txn);
      long start = System.nanoTime();
      txn.commit();
      // etcd_disk_backend_commit_duration_seconds: the commit alone, as etcd times its bbolt commit.
      io.vetcd.metrics.EtcdMetrics.BACKEND_COMMIT.record(System.nanoTime() - start,
          java.util.concurrent.TimeUnit.NANOSECONDS);
      bytesInUse = inUse;
    }

    @Override
    public void close() {
      if (!released) {
        released = true;
        txn.close();
        t.release();
      }
    }
  }

  /**
   * The changes of one request (a put, a delete or a whole txn): they share main revision
   * {@code begin + 1}, numbered by sub revision, and reads through this txn see them.
   */
  public final class StoreTxn extends Reader {
    private final WriteBatch batch;
    private final long beginRevision;
    private int changes;
    private final List<Event> events = new ArrayList<>();

    private StoreTxn(WriteBatch batch) {
      super(batch.t, batch.txn);
      this.batch = batch;
      this.beginRevision = batch.current;
    }

    @Override
    public long revision() {
      return changes == 0 ? beginRevision : beginRevision + 1;
    }

    /** Puts a key and returns its previous value, or null if it did not exist. */
    public KeyValue put(byte[] key, ByteString value, long lease) {
      Revision revision = new Revision(beginRevision + 1, changes++);
      Revision live = t.keys.appendPut(txn, key, revision);
      if (live == KeyIndexTable.NOT_APPENDED) {
        KeyIndex index = t.keys.get(txn, key);
        if (index == null) {
          index = new KeyIndex();
        }
        live = index.isLive() ? index.find(Long.MAX_VALUE) : null;
        index.put(revision);
        t.keys.put(txn, key, index);
      }
      KeyValue prev = live == null ? null : load(live);
      KeyValue kv = KeyValue.newBuilder()
          .setKey(ByteString.copyFrom(key))
          .setCreateRevision(prev == null ? revision.main() : prev.getCreateRevision())
          .setModRevision(revision.main())
          .setVersion(prev == null ? 1 : prev.getVersion() + 1)
          .setValue(value)
          .setLease(lease)
          .build();
      t.revisions.put(txn, revision.toBytes(), encodeValue(PUT, kv));
      if (prev != null && prev.getLease() != 0 && prev.getLease() != lease) {
        t.leases.detach(txn, prev.getLease(), key);
      }
      if (lease != 0) {
        t.leases.attach(txn, lease, key);
      }
      Event.Builder event = Event.newBuilder().setType(Event.EventType.PUT).setKv(kv);
      if (prev != null) {
        event.setPrevKv(prev);
      }
      events.add(event.build());
      return prev;
    }

    /** Deletes the live keys of the range (bounds as in {@link KvReader}); returns what was deleted. */
    public List<KeyValue> deleteRange(byte[] key, byte[] end) {
      List<KeyValue> deleted = new ArrayList<>();
      if (end == null) {
        KeyIndex index = t.keys.get(txn, key);
        if (index != null && index.isLive()) {
          deleted.add(load(index.find(Long.MAX_VALUE)));
        }
      } else {
        t.keys.scan(txn, key, end.length == 0 ? null : end, (k, index) -> {
          if (index.isLive()) {
            deleted.add(load(index.find(Long.MAX_VALUE)));
          }
          return true;
        });
      }
      for (KeyValue kv : deleted) {
        byte[] k = kv.getKey().toByteArray();
        Revision revision = new Revision(beginRevision + 1, changes++);
        KeyIndex index = t.keys.get(txn, k);
        index.tombstone(revision);
        KeyValue tombstone = KeyValue.newBuilder().setKey(kv.getKey()).setModRevision(revision.main()).build();
        t.revisions.put(txn, revision.toBytes(), encodeValue(TOMBSTONE, tombstone));
        t.keys.put(txn, k, index);
        if (kv.getLease() != 0) {
          t.leases.detach(txn, kv.getLease(), k);
        }
        events.add(Event.newBuilder().setType(Event.EventType.DELETE).setKv(tombstone).setPrevKv(kv).build());
      }
      return deleted;
    }

    /** Creates a lease (the caller checked that the id is free). */
    public void grantLease(long id, long ttl) {
      t.leases.put(txn, LeaseRecord.newBuilder().setId(id).setTtl(ttl).build());
    }

    /**
     * Revokes a lease: its keys are deleted, in key order, in this request's one revision (as etcd's
     * lessor does it), and the lease is gone. Returns false if there was no such lease.
     */
    public boolean revokeLease(long id) {
      if (t.leases.get(txn, id) == null) {
        return false;
      }
      for (byte[] key : t.leases.keys(txn, id)) {
        deleteRange(key, null);
      }
      t.leases.delete(txn, id);
      return true;
    }

    /**
     * Restores one revision record of a backup exactly as it was (revisions, version, lease), records
     * coming in revision order: how {@code snapshot restore} rebuilds a keyspace. The batch's revision
     * follows the records, not this txn (whose {@link #end} is not called).
     */
    public void restore(long main, long sub, boolean tombstone, KeyValue kv) {
      Revision revision = new Revision(main, sub);
      byte[] key = kv.getKey().toByteArray();
      KeyIndex index = t.keys.get(txn, key);
      KeyValue live = index != null && index.isLive() ? load(index.find(Long.MAX_VALUE)) : null;
      if (tombstone) {
        if (live == null) {
          // A deletion whose put a compaction under way had removed already (etcd deletes in batches):
          // nothing to delete.
          batch.current = Math.max(batch.current, main);
          return;
        }
        index.tombstone(revision);
        // etcd keeps a tombstone as its key alone; vetcd's carry the revision (watch events read it).
        kv = kv.toBuilder().setModRevision(main).build();
      } else {
        index = index == null ? new KeyIndex() : index;
        index.put(revision);
      }
      t.keys.put(txn, key, index);
      t.revisions.put(txn, revision.toBytes(), encodeValue(tombstone ? TOMBSTONE : PUT, kv));
      long lease = tombstone ? 0 : kv.getLease();
      if (live != null && live.getLease() != 0 && live.getLease() != lease) {
        t.leases.detach(txn, live.getLease(), key);
      }
      if (lease != 0) {
        t.leases.attach(txn, lease, key);
      }
      batch.current = Math.max(batch.current, main);
    }

    /**
     * Restores a backup's compaction point: reads below it fail, as they did where it was taken, and
     * the history it drops that is still there (a compaction under way when it was taken) is deleted in
     * steps, as after any compaction. The revision is at least the compaction's, as etcd's is.
     */
    public void restoreCompaction(long revision) {
      t.putLong(txn, COMPACT_REVISION, revision);
      t.metadata.put(txn, COMPACT_PENDING, pendingCompaction(revision, new byte[0]));
      batch.current = Math.max(batch.current, revision);
    }

    /** Ends the request: if it changed anything, the store moves to its revision. */
    public void end() {
      batch.current = revision();
      batch.events.addAll(events);
    }
  }

}
