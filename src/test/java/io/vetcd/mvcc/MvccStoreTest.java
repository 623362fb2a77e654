package io.vetcd.mvcc;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.mvccpb.KeyValue;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lmdbjava.ByteArrayProxy;
import org.lmdbjava.CursorIterable;
import org.lmdbjava.Dbi;
import org.lmdbjava.Env;
import org.lmdbjava.EnvFlags;
import org.lmdbjava.KeyRange;
import org.lmdbjava.Txn;

/** The MVCC keyspace on LMDB: etcd's revision, version, compaction and range rules. */
class MvccStoreTest {

  private static final long MAP_SIZE = 1L << 30;
  private static final byte[] FROM_KEY = new byte[0]; // KvReader: an empty end reads every key from key on

  @TempDir
  Path tmp;

  private Path dir;
  private MvccStore store;

  @BeforeEach
  void open() {
    dir = tmp.resolve("db");
    store = MvccStore.open(dir, MAP_SIZE);
  }

  @AfterEach
  void close() {
    if (store != null) {
      store.close();
    }
  }

  // --- helpers ---

  private static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }

  private static ByteString v(String s) {
    return ByteString.copyFromUtf8(s);
  }

  /** Runs one request (one StoreTxn) in its own batch; returns the store revision after it. */
  private static long request(MvccStore s, java.util.function.Consumer<MvccStore.StoreTxn> body) {
    try (MvccStore.WriteBatch batch = s.write()) {
      MvccStore.StoreTxn txn = batch.begin();
      body.accept(txn);
      txn.end();
      batch.commit();
      return batch.revision();
    }
  }

  private long put(String key, String value) {
    return put(store, b(key), v(value));
  }

  private static long put(MvccStore s, byte[] key, ByteString value) {
    return request(s, t -> t.put(key, value, 0));
  }

  private List<KeyValue> delete(byte[] key, byte[] end) {
    List<List<KeyValue>> out = new ArrayList<>();
    request(store, t -> out.add(t.deleteRange(key, end)));
    return out.get(0);
  }

  private void compact(long revision) {
    compact(store, revision);
  }

  /** Compacts and finishes the physical compaction, as the apply thread does between batches. */
  private static void compact(MvccStore s, long revision) {
    compactLogically(s, revision);
    while (s.compactStep()) {
      // each step a write transaction of its own
    }
  }

  private static void compactLogically(MvccStore s, long revision) {
    try (MvccStore.WriteBatch batch = s.write()) {
      batch.compact(revision);
      batch.commit();
    }
  }

  private <T> T read(Function<MvccStore.ReadView, T> f) {
    try (MvccStore.ReadView view = store.read()) {
      return f.apply(view);
    }
  }

  private RangeResult range(byte[] key, byte[] end, long at, long limit) {
    return read(r -> r.range(key, end, at, limit, false));
  }

  /** The key-value of {@code key} at {@code at} (0: newest), or null. */
  private KeyValue get(String key, long at) {
    List<KeyValue> kvs = range(b(key), null, at, 0).kvs();
    return kvs.isEmpty() ? null : kvs.get(0);
  }

  private long revision() {
    return read(MvccStore.ReadView::revision);
  }

  private static List<String> keys(RangeResult rr) {
    return rr.kvs().stream().map(kv -> kv.getKey().toStringUtf8()).toList();
  }

  private static MvccException.Kind refusal(Runnable r) {
    return assertThrows(MvccException.class, r::run).kind();
  }

  /** A record of the revision table, read straight from LMDB. */
  private record Stored(Revision revision, boolean tombstone, KeyValue kv) {}

  /** Closes the store, reads the raw revision table, reopens it: the physical truth behind the API. */
  private List<Stored> rawRevisions() {
    List<Stored> out = new ArrayList<>();
    for (Map.Entry<byte[], byte[]> e : rawTable("rev")) {
      byte[] val = e.getValue();
      try {
        out.add(new Stored(Revision.fromBytes(e.getKey()), val[0] == MvccStore.TOMBSTONE,
            KeyValue.parseFrom(Arrays.copyOfRange(val, 1, val.length))));
      } catch (InvalidProtocolBufferException ex) {
        throw new AssertionError(ex);
      }
    }
    return out;
  }

  /** The LMDB keys of the key-index table (a short user key is its own LMDB key). */
  private List<String> rawIndexKeys() {
    return rawTable("key").stream().map(e -> new String(e.getKey(), UTF_8)).toList();
  }

  private List<Map.Entry<byte[], byte[]>> rawTable(String name) {
    store.close();
    store = null;
    List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
    try (Env<byte[]> env = Env.create(ByteArrayProxy.PROXY_BA).setMapSize(MAP_SIZE).setMaxDbs(8)
        .open(dir.toFile(), EnvFlags.MDB_NOTLS)) {
      Dbi<byte[]> dbi = env.openDbi(name);
      try (Txn<byte[]> txn = env.txnRead(); CursorIterable<byte[]> it = dbi.iterate(txn, KeyRange.all())) {
        for (CursorIterable.KeyVal<byte[]> kv : it) {
          out.add(Map.entry(kv.key(), kv.val()));
        }
      }
    }
    store = MvccStore.open(dir, MAP_SIZE);
    return out;
  }

  // --- revisions, versions ---

  @Test
  void freshStoreIsAtRevisionOne() {
    // etcd starts its store at revision 1
    assertEquals(1, revision());
    assertEquals(-1, read(MvccStore.ReadView::compactRevision), "etcd reports -1 before any compaction");
    assertEquals(0, store.appliedIndex());
    RangeResult rr = range(new byte[] {0}, FROM_KEY, 0, 0);
    assertEquals(List.of(), rr.kvs());
    assertEquals(0, rr.count());
    assertEquals(1, rr.revision());
  }

  @Test
  void keysAndValuesOfEverySizeRoundTripThroughTheReusedNativeBlocks() throws Exception {
    // ScratchByteArrayProxy copies keys and values into a few native blocks per thread, taken in turn
    // and replaced when too small (or, after a large value, too big): sizes that grow, shrink and cross
    // its 64 KiB bound, several to a batch, read back on this thread and on another.
    int[] sizes = {0, 1, 300, 70_000, 5, 300_000, 200, 64 * 1024, 9};
    java.util.Map<String, String> written = new java.util.LinkedHashMap<>();
    try (MvccStore.WriteBatch batch = store.write()) {
      for (int i = 0; i < sizes.length; i++) {
        String key = "k" + i + "-" + "x".repeat(i * 40);
        String value = String.valueOf((char) ('a' + i)).repeat(sizes[i]);
        MvccStore.StoreTxn txn = batch.begin();
        txn.put(b(key), v(value), 0);
        txn.end();
        written.put(key, value);
      }
      batch.commit();
    }
    Runnable check = () -> written.forEach((key, value) -> {
      KeyValue kv = get(key, 0);
      assertEquals(key, kv.getKey().toStringUtf8());
      assertEquals(value, kv.getValue().toStringUtf8(), "value of " + key.substring(0, 3));
    });
    check.run();
    java.util.concurrent.CompletableFuture.runAsync(check).get();
  }

  @Test
  void theMapReadsAhead() throws Exception {
    // A cold HashKV of 1 GB took 13-16 s without read-ahead (MDB_NORDAHEAD), 0.7-0.8 s with it.
    put("foo", "bar");
    List<io.vetcd.testing.Mappings.Mapping> map = io.vetcd.testing.Mappings.all().stream()
        .filter(m -> m.of(dir, "data.mdb")).toList();
    assertFalse(map.isEmpty(), "no mapping of the keyspace found");
    assertTrue(map.stream().noneMatch(io.vetcd.testing.Mappings.Mapping::advisedRandom), () -> "advised random: " + map);
  }

  @Test
  void firstPutMakesRevisionTwoWithCreateModAndVersionOne() {
    assertEquals(2, put("foo", "bar"));
    KeyValue kv = get("foo", 0);
    assertEquals("bar", kv.getValue().toStringUtf8());
    assertEquals(2, kv.getCreateRevision());
    assertEquals(2, kv.getModRevision());
    assertEquals(1, kv.getVersion());
    assertEquals(2, revision());
  }

  @Test
  void overwriteKeepsCreateRevisionAndBumpsVersionAndModRevision() {
    put("foo", "v1");
    put("other", "x");
    assertEquals(4, put("foo", "v2"));
    KeyValue kv = get("foo", 0);
    assertEquals("v2", kv.getValue().toStringUtf8());
    assertEquals(2, kv.getCreateRevision());
    assertEquals(4, kv.getModRevision());
    assertEquals(2, kv.getVersion());
  }

  @Test
  void deleteThenRecreateStartsANewGenerationWithVersionOne() {
    put("foo", "v1"); // 2
    put("foo", "v2"); // 3
    List<KeyValue> deleted = delete(b("foo"), null); // 4
    assertEquals(1, deleted.size());
    assertEquals("v2", deleted.get(0).getValue().toStringUtf8(), "deleteRange returns the deleted value");
    assertEquals(4, revision());
    assertNull(get("foo", 0));
    assertEquals(5, put("foo", "v3"));
    KeyValue kv = get("foo", 0);
    // etcd: a key recreated after a delete has version 1 and a new create_revision
    assertEquals(1, kv.getVersion());
    assertEquals(5, kv.getCreateRevision());
    assertEquals(5, kv.getModRevision());
  }

  @Test
  void deleteOfAMissingKeyDoesNotBumpTheRevision() {
    put("foo", "bar");
    List<List<KeyValue>> out = new ArrayList<>();
    long rev = request(store, t -> {
      out.add(t.deleteRange(b("nope"), null));
      out.add(t.deleteRange(b("x"), b("y")));
      assertEquals(2, t.revision(), "a txn that changed nothing stays at its begin revision");
    });
    assertEquals(List.of(List.of(), List.of()), out);
    assertEquals(2, rev);
    assertEquals(2, revision());
  }

  @Test
  void deleteOfADeletedKeyIsNotAChange() {
    put("foo", "bar");
    delete(b("foo"), null);
    assertEquals(List.of(), delete(b("foo"), null));
    assertEquals(3, revision());
  }

  @Test
  void deleteRangeDeletesEveryLiveKeyOfTheRangeAtOneRevision() {
    put("a", "1");
    put("b", "2");
    put("c", "3");
    put("d", "4");
    delete(b("c"), null); // 6
    List<KeyValue> deleted = delete(b("a"), b("d")); // 7: a, b (c is already gone)
    assertEquals(List.of("a", "b"), deleted.stream().map(kv -> kv.getKey().toStringUtf8()).toList());
    assertEquals(7, revision());
    assertEquals(List.of("d"), keys(range(b("a"), FROM_KEY, 0, 0)));
    List<Stored> at7 = rawRevisions().stream().filter(s -> s.revision().main() == 7).toList();
    assertEquals(List.of(new Revision(7, 0), new Revision(7, 1)), at7.stream().map(Stored::revision).toList());
    assertTrue(at7.stream().allMatch(Stored::tombstone));
  }

  // --- one revision per txn, sub revisions ---

  @Test
  void txnWithThreePutsMakesOneMainRevisionWithSubRevisionsZeroOneTwo() {
    put("before", "x"); // 2
    long rev = request(store, t -> {
      t.put(b("k1"), v("a"), 0);
      t.put(b("k2"), v("b"), 0);
      t.put(b("k3"), v("c"), 0);
    });
    assertEquals(3, rev, "three writes, one revision");
    RangeResult rr = range(b("k"), b("l"), 3, 0);
    assertEquals(List.of("k1", "k2", "k3"), keys(rr));
    for (KeyValue kv : rr.kvs()) {
      assertEquals(3, kv.getModRevision());
      assertEquals(3, kv.getCreateRevision());
    }
    List<Revision> at3 = rawRevisions().stream().map(Stored::revision).filter(r -> r.main() == 3).toList();
    assertEquals(List.of(new Revision(3, 0), new Revision(3, 1), new Revision(3, 2)), at3);
    assertEquals(List.of(), range(b("k"), b("l"), 2, 0).kvs(), "invisible at the previous revision");
  }

  @Test
  void readsInsideATxnSeeItsOwnWrites() {
    put("foo", "old"); // 2
    try (MvccStore.WriteBatch batch = store.write()) {
      MvccStore.StoreTxn t = batch.begin();
      assertEquals(2, t.revision());
      t.put(b("foo"), v("new"), 0);
      t.put(b("bar"), v("b"), 0);
      assertEquals(3, t.revision(), "after a write the txn reads at its own revision");
      RangeResult rr = t.range(b("a"), b("z"), 0, 0, false);
      assertEquals(List.of("bar", "foo"), keys(rr));
      assertEquals("new", rr.kvs().get(1).getValue().toStringUtf8());
      assertEquals(2, rr.kvs().get(1).getVersion());
      assertEquals(3, rr.revision());
      assertEquals("old", t.range(b("foo"), null, 2, 0, false).kvs().get(0).getValue().toStringUtf8(),
          "and still sees the past");
      // a reader outside the uncommitted batch does not see them
      assertEquals("old", get("foo", 0).getValue().toStringUtf8());
      t.end();
      batch.commit();
    }
    assertEquals("new", get("foo", 0).getValue().toStringUtf8());
  }

  @Test
  void batchClosedWithoutCommitLeavesNoTrace() {
    put("foo", "v1");
    try (MvccStore.WriteBatch batch = store.write()) {
      MvccStore.StoreTxn t = batch.begin();
      t.put(b("foo"), v("v2"), 0);
      t.end();
      batch.setAppliedIndex(9);
    }
    assertEquals(2, revision());
    assertEquals("v1", get("foo", 0).getValue().toStringUtf8());
    assertEquals(0, store.appliedIndex());
  }

  @Test
  void severalRequestsInOneBatchGetConsecutiveRevisions() {
    try (MvccStore.WriteBatch batch = store.write()) {
      for (String k : List.of("a", "b", "c")) {
        MvccStore.StoreTxn t = batch.begin();
        t.put(b(k), v(k), 0);
        t.end();
      }
      batch.setAppliedIndex(3);
      batch.commit();
    }
    assertEquals(4, revision());
    assertEquals(3, store.appliedIndex());
    assertEquals(List.of(2L, 3L, 4L),
        range(b("a"), b("d"), 0, 0).kvs().stream().map(KeyValue::getModRevision).toList());
  }

  // --- history ---

  @Test
  void rangeAtAnOldRevisionSeesTheValuesOfThen() {
    put("foo", "v1"); // 2
    put("bar", "b1"); // 3
    put("foo", "v2"); // 4
    delete(b("bar"), null); // 5
    put("bar", "b2"); // 6
    assertNull(get("foo", 1));
    assertEquals("v1", get("foo", 2).getValue().toStringUtf8());
    assertEquals("v1", get("foo", 3).getValue().toStringUtf8());
    assertEquals("v2", get("foo", 4).getValue().toStringUtf8());
    assertEquals("b1", get("bar", 4).getValue().toStringUtf8());
    assertNull(get("bar", 5), "deleted at 5");
    KeyValue bar = get("bar", 6);
    assertEquals("b2", bar.getValue().toStringUtf8());
    assertEquals(6, bar.getCreateRevision());
    assertEquals(List.of("bar", "foo"), keys(range(b("a"), FROM_KEY, 4, 0)));
    assertEquals(List.of("foo"), keys(range(b("a"), FROM_KEY, 5, 0)));
    assertEquals(6, range(b("a"), FROM_KEY, 3, 0).revision(), "the result carries the current revision");
  }

  @Test
  void rangeAtAFutureRevisionIsRefused() {
    put("foo", "v1");
    assertEquals(MvccException.Kind.FUTURE_REVISION, refusal(() -> get("foo", 3)));
  }

  // --- compaction ---

  /** put a(2), a(3), b(4), delete b(5), c(6), a(7). */
  private void compactionHistory() {
    put("a", "a1");
    put("a", "a2");
    put("b", "b1");
    delete(b("b"), null);
    put("c", "c1");
    put("a", "a3");
  }

  @Test
  void readsBelowTheCompactionRevisionAreRefused() {
    compactionHistory();
    compact(5);
    assertEquals(5, read(MvccStore.ReadView::compactRevision));
    // etcd: ErrCompacted for rev < compactMainRev
    assertEquals(MvccException.Kind.COMPACTED, refusal(() -> get("a", 4)));
    assertEquals(MvccException.Kind.COMPACTED, refusal(() -> get("a", 2)));
    assertEquals(MvccException.Kind.COMPACTED, refusal(() -> range(b("a"), FROM_KEY, 1, 0)));
  }

  @Test
  void readsAtAndAboveTheCompactionRevisionStillSeeTheRightValues() {
    compactionHistory();
    compact(5);
    assertEquals("a2", get("a", 5).getValue().toStringUtf8(), "the value live at the compaction point is kept");
    assertEquals(3, get("a", 5).getModRevision());
    assertNull(get("b", 5));
    assertNull(get("c", 5));
    assertEquals(List.of("a"), keys(range(b("a"), FROM_KEY, 5, 0)));
    assertEquals(List.of("a", "c"), keys(range(b("a"), FROM_KEY, 6, 0)));
    assertEquals("a2", get("a", 6).getValue().toStringUtf8());
    assertEquals("a3", get("a", 0).getValue().toStringUtf8());
    assertEquals(3, get("a", 0).getVersion(), "versions survive compaction");
    assertEquals(2, get("a", 0).getCreateRevision());
  }

  @Test
  void compactionPhysicallyRemovesWhatNoReadCanSee() {
    compactionHistory();
    compact(5);
    // keep-set at 5: a@3 (live at 5), everything above 5; b (deleted at 5) is gone entirely
    assertEquals(List.of(new Revision(3, 0), new Revision(6, 0), new Revision(7, 0)),
        rawRevisions().stream().map(Stored::revision).toList());
    assertEquals(List.of("a", "c"), rawIndexKeys(), "the deleted key leaves the key index");
  }

  @Test
  void compactionAtTheCurrentRevisionKeepsOnlyLiveValues() {
    compactionHistory();
    compact(7);
    assertEquals(List.of(new Revision(6, 0), new Revision(7, 0)),
        rawRevisions().stream().map(Stored::revision).toList());
    assertEquals(List.of("a", "c"), keys(range(b("a"), FROM_KEY, 7, 0)));
  }

  @Test
  void compactingTwiceAtTheSameRevisionIsCompacted() {
    compactionHistory();
    compact(5);
    // etcd: rev <= compactMainRev → ErrCompacted
    assertEquals(MvccException.Kind.COMPACTED, refusal(() -> compact(5)));
    assertEquals(MvccException.Kind.COMPACTED, refusal(() -> compact(4)));
    compact(6);
    assertEquals(6, read(MvccStore.ReadView::compactRevision));
  }

  @Test
  void compactingAFutureRevisionIsRefusedAndChangesNothing() {
    compactionHistory();
    assertEquals(MvccException.Kind.FUTURE_REVISION, refusal(() -> compact(8)));
    assertEquals(-1, read(MvccStore.ReadView::compactRevision));
    assertEquals("a1", get("a", 2).getValue().toStringUtf8());
    assertEquals(6, rawRevisions().size());
  }

  @Test
  void writesAfterCompactionContinueTheHistory() {
    compactionHistory();
    compact(7);
    assertEquals(8, put("b", "b2"));
    KeyValue kv = get("b", 0);
    assertEquals(1, kv.getVersion());
    assertEquals(8, kv.getCreateRevision());
    assertEquals(9, put("b", "b3"));
    assertEquals(2, get("b", 0).getVersion());
  }

  // --- ranges ---

  @Test
  void limitTruncatesButCountCountsAll() {
    for (String k : List.of("a", "b", "c", "d")) {
      put(k, k);
    }
    RangeResult rr = range(b("a"), b("e"), 0, 2);
    assertEquals(List.of("a", "b"), keys(rr));
    assertEquals(4, rr.count());
    RangeResult all = range(b("a"), b("e"), 0, 0);
    assertEquals(4, all.kvs().size());
    RangeResult countOnly = read(r -> r.range(b("a"), b("e"), 0, 0, true));
    assertEquals(List.of(), countOnly.kvs());
    assertEquals(4, countOnly.count());
  }

  @Test
  void endIsExclusiveAndEmptyEndReadsFromTheKeyOn() {
    for (String k : List.of("a", "b", "c", "d")) {
      put(k, k);
    }
    assertEquals(List.of("b", "c"), keys(range(b("b"), b("d"), 0, 0)));
    assertEquals(List.of("b", "c", "d"), keys(range(b("b"), FROM_KEY, 0, 0)));
    assertEquals(List.of("a", "b", "c", "d"), keys(range(new byte[] {0}, FROM_KEY, 0, 0)));
    assertEquals(List.of("b"), keys(range(b("b"), null, 0, 0)), "a null end reads the single key");
    assertEquals(List.of(), keys(range(b("bb"), null, 0, 0)));
    assertEquals(List.of(), keys(range(b("c"), b("c"), 0, 0)), "an empty interval");
  }

  @Test
  void prefixRangeReadsTheKeysStartingWithThePrefix() {
    for (String k : List.of("fo", "foo", "foo/a", "foo/b", "foo0", "fop", "fopa")) {
      put(k, k);
    }
    // etcdctl get --prefix foo: range_end = "fop"
    assertEquals(List.of("foo", "foo/a", "foo/b", "foo0"), keys(range(b("foo"), b("fop"), 0, 0)));
  }

  @Test
  void keysAreOrderedAsUnsignedBytes() {
    put(store, new byte[] {(byte) 0x80}, v("high"));
    put(store, new byte[] {0x7f}, v("low"));
    put(store, new byte[] {(byte) 0xff, 0x00}, v("top"));
    put(store, new byte[] {0x00}, v("zero"));
    List<String> values = range(new byte[] {0}, FROM_KEY, 0, 0).kvs().stream()
        .map(kv -> kv.getValue().toStringUtf8()).toList();
    assertEquals(List.of("zero", "low", "high", "top"), values);
  }

  // --- long keys (longer than LMDB's key limit) ---

  private static byte[] concat(byte[]... parts) {
    int n = 0;
    for (byte[] p : parts) {
      n += p.length;
    }
    byte[] out = new byte[n];
    int at = 0;
    for (byte[] p : parts) {
      System.arraycopy(p, 0, out, at, p.length);
      at += p.length;
    }
    return out;
  }

  private static byte[] fill(int n, char c) {
    byte[] out = new byte[n];
    Arrays.fill(out, (byte) c);
    return out;
  }

  @Test
  void longKeysAreStoredReadDeletedAndOrderedAmongShortKeys() {
    byte[] p480 = fill(480, 'k');
    byte[] k481 = concat(p480, new byte[] {0x00}); // the smallest key longer than the prefix
    byte[] k481b = concat(p480, b("a"));
    byte[] k600 = concat(p480, fill(120, 'm'));
    byte[] k601 = concat(k600, new byte[] {0x00}); // shares the first 600 bytes
    byte[] k2000 = concat(k600, fill(1400, 'z'));
    byte[] k100000 = concat(k600, fill(100000 - 600, 'b'));
    byte[] short479 = fill(479, 'k'); // a prefix of all of them
    byte[] after = concat(fill(479, 'k'), b("l")); // 480 bytes, greater than every key starting with p480
    byte[] before = concat(fill(479, 'k'), b("j"));
    Map<String, byte[]> named = new java.util.LinkedHashMap<>();
    named.put("k2000", k2000);
    named.put("k481", k481);
    named.put("after", after);
    named.put("k100000", k100000);
    named.put("p480", p480);
    named.put("k600", k600);
    named.put("short479", short479);
    named.put("k481b", k481b);
    named.put("before", before);
    named.put("k601", k601);
    named.put("j", b("j"));
    named.put("l", b("l"));
    named.forEach((name, key) -> put(store, key, v(name)));

    for (Map.Entry<String, byte[]> e : named.entrySet()) {
      List<KeyValue> kvs = range(e.getValue(), null, 0, 0).kvs();
      assertEquals(1, kvs.size(), e.getKey());
      assertEquals(e.getKey(), kvs.get(0).getValue().toStringUtf8());
      assertEquals(ByteString.copyFrom(e.getValue()), kvs.get(0).getKey());
    }
    List<String> expected = List.of("j", "short479", "before", "p480", "k481", "k481b", "k600", "k601",
        "k100000", "k2000", "after", "l");
    assertEquals(expected, values(range(new byte[] {0}, FROM_KEY, 0, 0)));
    assertEquals(List.of("k601", "k100000", "k2000"), values(range(k601, after, 0, 0)));
    assertEquals(List.of("k600", "k601", "k100000", "k2000"),
        values(range(k600, concat(p480, fill(119, 'm'), b("n")), 0, 0)), "prefix range of the 600 bytes");
    assertEquals(List.of("k481", "k481b"), values(range(k481, k600, 0, 0)));
    assertEquals(List.of("k100000", "k2000", "after", "l"), values(range(concat(k600, b("a")), FROM_KEY, 0, 0)));
    assertEquals(2, range(p480, k600, 0, 2).kvs().size());
    assertEquals(3, range(p480, k600, 0, 2).count());

    assertEquals(1, delete(k100000, null).size());
    assertEquals(1, delete(k481, null).size());
    assertEquals(List.of(), range(k100000, null, 0, 0).kvs());
    assertEquals(List.of("j", "short479", "before", "p480", "k481b", "k600", "k601", "k2000", "after", "l"),
        values(range(new byte[] {0}, FROM_KEY, 0, 0)));
    long rev = revision();
    assertEquals("k100000", range(k100000, null, rev - 2, 0).kvs().get(0).getValue().toStringUtf8(),
        "a deleted long key stays in history");
    // deleting a range of long keys
    assertEquals(3, delete(k600, after).size());
    assertEquals(List.of("j", "short479", "before", "p480", "k481b", "after", "l"),
        values(range(new byte[] {0}, FROM_KEY, 0, 0)));
  }

  @Test
  void compactionOfLongKeysSharingAPrefixKeepsTheLiveOnes() {
    byte[] k600 = fill(600, 'p');
    byte[] k2000 = concat(k600, fill(1400, 'q'));
    byte[] k100000 = concat(k600, fill(100000 - 600, 'r'));
    put(store, k600, v("a1")); // 2
    put(store, k2000, v("b1")); // 3
    put(store, k100000, v("c1")); // 4
    put(store, k2000, v("b2")); // 5
    delete(k600, null); // 6
    compact(6);
    assertEquals(List.of("b2", "c1"), values(range(new byte[] {0}, FROM_KEY, 6, 0)));
    assertEquals(List.of(new Revision(4, 0), new Revision(5, 0)),
        rawRevisions().stream().map(Stored::revision).toList(), "k600's history and b1 are gone");
    assertEquals(7, put(store, k600, v("a2")));
    KeyValue kv = range(k600, null, 0, 0).kvs().get(0);
    assertEquals(1, kv.getVersion(), "a new generation after the compacted delete");
    assertEquals(List.of("a2", "b2", "c1"), values(range(new byte[] {0}, FROM_KEY, 0, 0)));
  }

  private static List<String> values(RangeResult rr) {
    return rr.kvs().stream().map(kv -> kv.getValue().toStringUtf8()).toList();
  }

  @Test
  void aKeyWrittenThousandsOfTimesKeepsASmallRecordAndEveryRevisionReadable() {
    // Older changes move to the history table in chunks: a put never rewrites the whole history.
    byte[] hot = b("hot");
    byte[] longKey = concat(fill(600, 'p'), b("hot"));
    Map<Long, String> hotAt = new HashMap<>();    // store revision -> hot's value then (null: none)
    Map<Long, String> longAt = new HashMap<>();
    String hotNow = null;
    String longNow = null;
    for (int i = 0; i < 1500; i++) {
      boolean deleteHot = i % 97 == 96;
      boolean deleteLong = i % 131 == 130;
      if (deleteHot && hotNow != null) {
        delete(hot, null);
        hotNow = null;
      } else {
        put(store, hot, v("h" + i));
        hotNow = "h" + i;
      }
      long rev;
      if (deleteLong && longNow != null) {
        delete(longKey, null);
        longNow = null;
        rev = revision();
      } else {
        rev = put(store, longKey, v("l" + i));
        longNow = "l" + i;
      }
      hotAt.put(rev - 1, hotNow);
      hotAt.put(rev, hotNow);
      longAt.put(rev - 1, longAt.getOrDefault(rev - 2, null));
      longAt.put(rev, longNow);
    }
    checkHistory(hot, hotAt, 0);
    checkHistory(longKey, longAt, 0);
    for (Map.Entry<byte[], byte[]> e : rawTable("key")) {
      assertTrue(e.getValue().length < KeyIndexTable.SPILL_AT * 17 + 700,
          "a key record holds only the newest changes (" + e.getValue().length + " bytes)");
    }
    assertTrue(rawTable("keyhist").size() >= 2 * (1500 / KeyIndexTable.CHUNK - 2), "older changes are in chunks");

    long middle = revision() / 2;
    compact(middle);
    checkHistory(hot, hotAt, middle);
    checkHistory(longKey, longAt, middle);
    assertEquals(hotNow, value(get("hot", 0)));
    put(store, hot, v("after"));
    assertEquals("after", value(get("hot", 0)));
    assertEquals(hotNow, value(get("hot", revision() - 1)));

    delete(hot, null);
    delete(longKey, null);
    compact(revision());
    assertEquals(List.of(), rawTable("keyhist"), "a deleted key's history is gone after compaction");
    assertEquals(List.of(), rawTable("key"));
  }

  /** Reads {@code key} at every revision of {@code expected} at or after {@code from}. */
  private void checkHistory(byte[] key, Map<Long, String> expected, long from) {
    for (Map.Entry<Long, String> e : expected.entrySet()) {
      if (e.getKey() >= Math.max(from, 1)) {
        List<KeyValue> kvs = range(key, null, e.getKey(), 0).kvs();
        assertEquals(e.getValue(), kvs.isEmpty() ? null : kvs.get(0).getValue().toStringUtf8(),
            "value at revision " + e.getKey());
      }
    }
  }

  private static String value(KeyValue kv) {
    return kv == null ? null : kv.getValue().toStringUtf8();
  }

  @Test
  void randomizedLongAndShortKeysMatchAnUnsignedOrderedModel() {
    Random rnd = new Random(0x5EEDL);
    byte[] alphabet = {0x00, 0x01, 'a', 'k', 0x7f, (byte) 0x80, (byte) 0xfe, (byte) 0xff};
    byte[] stem = new byte[600];
    for (int i = 0; i < stem.length; i++) {
      stem[i] = alphabet[rnd.nextInt(alphabet.length)];
    }
    List<byte[]> candidates = new ArrayList<>();
    // keys of 481, 600, 2000 and 100000 bytes sharing the first 600 (or 480) bytes
    candidates.add(Arrays.copyOf(stem, 481));
    candidates.add(stem.clone());
    candidates.add(concat(stem, fill(1400, 'x')));
    candidates.add(concat(stem, fill(100000 - 600, 'y')));
    int[] stems = {0, 1, 2, 100, 479, 480, 481, 600};
    int[] suffixes = {0, 1, 2, 3, 40, 200};
    while (candidates.size() < 80) {
      byte[] prefix = Arrays.copyOf(stem, stems[rnd.nextInt(stems.length)]);
      byte[] suffix = new byte[suffixes[rnd.nextInt(suffixes.length)]];
      for (int i = 0; i < suffix.length; i++) {
        suffix[i] = alphabet[rnd.nextInt(alphabet.length)];
      }
      byte[] key = concat(prefix, suffix);
      if (key.length > 0) {
        candidates.add(key);
      }
    }

    List<byte[]> ordered = new ArrayList<>(candidates);
    ordered.sort(Arrays::compareUnsigned);
    NavigableMap<byte[], String> model = new TreeMap<>(Arrays::compareUnsigned);
    Map<Long, NavigableMap<byte[], String>> snapshots = new HashMap<>();
    for (int op = 0; op < 400; op++) {
      int dice = rnd.nextInt(100);
      if (dice < 70) {
        byte[] key = candidates.get(rnd.nextInt(candidates.size()));
        String value = "v" + op;
        put(store, key, v(value));
        model.put(key, value);
      } else if (dice < 92) {
        byte[] key = candidates.get(rnd.nextInt(candidates.size()));
        assertEquals(model.remove(key) == null ? 0 : 1, delete(key, null).size());
      } else {
        // a narrow interval: from a key to one a few candidates further in key order
        int i = rnd.nextInt(ordered.size() - 1);
        byte[] from = ordered.get(i);
        byte[] to = ordered.get(Math.min(ordered.size() - 1, i + 1 + rnd.nextInt(4)));
        NavigableMap<byte[], String> doomed = model.subMap(from, true, to, false);
        int expected = doomed.size();
        doomed.clear();
        assertEquals(expected, delete(from, to).size());
      }
      if (op % 50 == 49) {
        snapshots.put(revision(), new TreeMap<>(model));
        checkAgainstModel(model, candidates, rnd, 0);
      }
    }
    for (Map.Entry<Long, NavigableMap<byte[], String>> s : snapshots.entrySet()) {
      checkAgainstModel(s.getValue(), candidates, rnd, s.getKey());
    }
    // the seed must have left both kinds of key live for the checks above to mean something
    assertTrue(model.keySet().stream().filter(k -> k.length > KeyIndexTable.DIRECT_MAX).count() >= 5);
    assertTrue(model.keySet().stream().filter(k -> k.length <= KeyIndexTable.DIRECT_MAX).count() >= 5);
  }

  private void checkAgainstModel(NavigableMap<byte[], String> model, List<byte[]> candidates, Random rnd, long at) {
    String where = "at revision " + (at == 0 ? "now" : at);
    assertEquals(describe(model), describe(range(new byte[] {0}, FROM_KEY, at, 0)), "full scan " + where);
    for (byte[] key : candidates) {
      String expected = model.get(key);
      List<KeyValue> kvs = range(key, null, at, 0).kvs();
      assertEquals(expected, kvs.isEmpty() ? null : kvs.get(0).getValue().toStringUtf8(),
          "get of a " + key.length + "-byte key " + where);
    }
    for (int i = 0; i < 30; i++) {
      byte[] from = candidates.get(rnd.nextInt(candidates.size()));
      byte[] to = candidates.get(rnd.nextInt(candidates.size()));
      if (Arrays.compareUnsigned(from, to) > 0) {
        byte[] t = from;
        from = to;
        to = t;
      }
      int limit = rnd.nextInt(4);
      NavigableMap<byte[], String> sub = model.subMap(from, true, to, false);
      RangeResult rr = range(from, to, at, limit);
      assertEquals(describe(limit == 0 ? sub : head(sub, limit)), describe(rr),
          "[" + from.length + "-byte key, " + to.length + "-byte key) limit " + limit + " " + where);
      assertEquals(sub.size(), rr.count());
      NavigableMap<byte[], String> tail = model.tailMap(from, true);
      RangeResult fromKey = range(from, FROM_KEY, at, 0);
      assertEquals(describe(tail), describe(fromKey), "from a " + from.length + "-byte key " + where);
    }
  }

  private static NavigableMap<byte[], String> head(NavigableMap<byte[], String> m, int n) {
    NavigableMap<byte[], String> out = new TreeMap<>(Arrays::compareUnsigned);
    for (Map.Entry<byte[], String> e : m.entrySet()) {
      if (out.size() == n) {
        break;
      }
      out.put(e.getKey(), e.getValue());
    }
    return out;
  }

  /** "length:hash=value" per key, in order: short enough to read in a failure message. */
  private static List<String> describe(NavigableMap<byte[], String> m) {
    List<String> out = new ArrayList<>();
    m.forEach((k, val) -> out.add(k.length + ":" + Integer.toHexString(Arrays.hashCode(k)) + "=" + val));
    return out;
  }

  private static List<String> describe(RangeResult rr) {
    List<String> out = new ArrayList<>();
    for (KeyValue kv : rr.kvs()) {
      byte[] k = kv.getKey().toByteArray();
      out.add(k.length + ":" + Integer.toHexString(Arrays.hashCode(k)) + "=" + kv.getValue().toStringUtf8());
    }
    return out;
  }

  // --- hash, persistence ---

  private static void sameHistory(MvccStore s) {
    put(s, b("a"), v("1"));
    put(s, b("b"), v("2"));
    request(s, t -> {
      t.put(b("a"), v("3"), 0);
      t.deleteRange(b("b"), null);
    });
    put(s, b("c"), v("4"));
  }

  @Test
  void equalHistoriesHashEquallyAndAFurtherPutChangesTheHash() {
    store.close();
    store = null;
    try (MvccStore one = MvccStore.open(tmp.resolve("one"), MAP_SIZE);
        MvccStore two = MvccStore.open(tmp.resolve("two"), MAP_SIZE)) {
      sameHistory(one);
      sameHistory(two);
      assertEquals(hash(one, 0), hash(two, 0));
      assertEquals(hash(one, 3), hash(two, 3));
      long before = hash(one, 0);
      put(two, b("d"), v("5"));
      assertNotEquals(hash(one, 0), hash(two, 0));
      assertEquals(before, hash(two, 5), "the hash at the old revision ignores the newer put");
      put(one, b("d"), v("5"));
      assertEquals(hash(one, 0), hash(two, 0));
      compact(one, 4);
      compact(two, 4);
      assertEquals(hash(one, 0), hash(two, 0), "compaction is physical and the same everywhere");
      assertNotEquals(before, hash(one, 5), "compaction changed what is stored at or below 5");
      assertEquals(MvccException.Kind.COMPACTED, refusal(() -> one.hashKv(3)));
      assertEquals(MvccException.Kind.FUTURE_REVISION, refusal(() -> one.hashKv(7)));
    }
  }

  private static long hash(MvccStore s, long at) {
    return s.hashKv(at).hash();
  }

  @Test
  void aCompactionTakesEffectAtOnceAndDeletesTheOldHistoryInBoundedStepsThatSurviveARestart() {
    store.close();
    store = null;
    int keys = 2 * MvccStore.COMPACT_STEP_KEYS + 10;
    long compactedHash;
    try (MvccStore one = MvccStore.open(tmp.resolve("one"), MAP_SIZE);
        MvccStore two = MvccStore.open(tmp.resolve("two"), MAP_SIZE)) {
      for (MvccStore m : List.of(one, two)) {
        for (int round = 0; round < 2; round++) {
          for (int k = 0; k < keys; k++) {
            put(m, b(String.format("k%05d", k)), v("r" + round));
          }
        }
      }
      long compactTo = keys + 5; // the second round of the first five keys is at or below it
      long before;
      try (MvccStore.ReadView r = one.read()) {
        before = r.revision();
      }
      compact(two, compactTo);
      compactedHash = hash(two, 0);
      compactLogically(one, compactTo);
      assertEquals(MvccException.Kind.COMPACTED, refusal(() -> one.hashKv(compactTo - 1)), "reads below fail at once");
      assertTrue(one.compactionPending());
      assertEquals(compactedHash, hash(one, 0), "before any step: the same hash as a member that finished");
      assertTrue(one.compactStep(), "a step covers " + MvccStore.COMPACT_STEP_KEYS + " keys, not all " + keys);
      assertEquals(compactedHash, hash(one, 0), "part way: still the same hash");
      put(one, b("between"), v("steps"));
      put(two, b("between"), v("steps"));
      assertEquals(before + 1, one.hashKv(0).revision(), "writes go on between steps");
      compactedHash = hash(two, 0);
    }
    try (MvccStore one = MvccStore.open(tmp.resolve("one"), MAP_SIZE)) {
      assertTrue(one.compactionPending(), "a restart resumes the compaction where it stopped");
      assertTrue(one.compactStep());
      assertFalse(one.compactStep(), "the third step is the last");
      assertFalse(one.compactionPending());
      assertEquals(compactedHash, hash(one, 0));
    }
  }

  @Test
  void databaseSizeInUseIsWithinTheFileSize() {
    for (int i = 0; i < 100; i++) {
      put("key" + i, "value" + i);
    }
    long size = store.dbSize();
    long inUse = store.dbSizeInUse();
    assertTrue(inUse > 0 && inUse <= size, inUse + " of " + size);
  }

  @Test
  void reopenedStoreHasTheSameState() {
    compactionHistory(); // up to revision 7
    compact(5);
    try (MvccStore.WriteBatch batch = store.write()) {
      batch.setAppliedIndex(42);
      batch.commit();
    }
    long hashBefore = hash(store, 0);
    store.close();
    store = MvccStore.open(dir, MAP_SIZE);
    assertEquals(7, revision());
    assertEquals(5, read(MvccStore.ReadView::compactRevision));
    assertEquals(42, store.appliedIndex());
    assertEquals(42, read(MvccStore.ReadView::appliedIndex));
    assertEquals(hashBefore, hash(store, 0));
    assertEquals("a2", get("a", 5).getValue().toStringUtf8());
    assertEquals("a3", get("a", 0).getValue().toStringUtf8());
    assertEquals(MvccException.Kind.COMPACTED, refusal(() -> get("a", 4)));
    assertEquals(8, put("b", "again"), "the next write continues the revision sequence");
  }

  @Test
  void aSnapshotReplacesTheKeyspaceOnlyIfItAppliedMore() throws Exception {
    MvccStore leader = MvccStore.open(tmp.resolve("leader"), MAP_SIZE);
    try {
      put(leader, b("a"), v("1"));
      setApplied(leader, 5);
      java.nio.file.Files.createDirectories(tmp.resolve("older"));
      assertEquals(5, leader.copyTo(tmp.resolve("older")), "a copy says which applied index it holds");
      java.nio.file.Path older = tmp.resolve("older/data.mdb");
      put(leader, b("b"), v("2"));
      setApplied(leader, 20);
      java.nio.file.Files.createDirectories(tmp.resolve("newer"));
      assertEquals(20, leader.copyTo(tmp.resolve("newer")));
      // As a member receives it: a file of any name.
      java.nio.file.Path newer = java.nio.file.Files.move(tmp.resolve("newer/data.mdb"), tmp.resolve("received.snap"));

      put("mine", "x");
      setApplied(store, 10);
      assertFalse(store.install(older), "a snapshot at applied index 5 must not take back a keyspace at 10");
      assertEquals(10, store.appliedIndex());
      try (MvccStore.ReadView view = store.read()) {
        assertEquals(1, view.range(b("mine"), null, 0, 0, false).count());
      }
      assertTrue(store.install(newer));
      assertEquals(20, store.appliedIndex());
      try (MvccStore.ReadView view = store.read()) {
        assertEquals(0, view.range(b("mine"), null, 0, 0, false).count());
        assertEquals(2, view.range(b("a"), FROM_KEY, 0, 0, false).count());
      }
    } finally {
      leader.close();
    }
  }

  /** A copy of a keyspace holding key {@code k} at applied index {@code applied}, as a member receives it. */
  private java.nio.file.Path copyHolding(String k, long applied) throws Exception {
    MvccStore leader = MvccStore.open(tmp.resolve("leader-" + k), MAP_SIZE);
    try {
      put(leader, b(k), v("from the leader"));
      setApplied(leader, applied);
      java.nio.file.Path out = java.nio.file.Files.createDirectories(tmp.resolve("copy-" + k));
      leader.copyTo(out);
      return java.nio.file.Files.move(out.resolve("data.mdb"), tmp.resolve("received-" + k + ".snap"));
    } finally {
      leader.close();
    }
  }

  @Test
  void aReaderOpenAcrossAnInstallFinishesOnTheKeyspaceItStartedOn() throws Exception {
    java.nio.file.Path copy = copyHolding("theirs", 20);
    put("mine", "x");
    setApplied(store, 10);
    try (MvccStore.ReadView before = store.read()) {
      assertTrue(store.install(copy));
      assertEquals(1, before.range(b("mine"), null, 0, 0, false).count(), "the old state, whole");
      assertEquals(0, before.range(b("theirs"), null, 0, 0, false).count());
      try (MvccStore.ReadView after = store.read()) {
        assertEquals(0, after.range(b("mine"), null, 0, 0, false).count());
        assertEquals(1, after.range(b("theirs"), null, 0, 0, false).count());
      }
    }
    assertFalse(java.nio.file.Files.exists(copy), "moved into place, not copied");
    assertFalse(java.nio.file.Files.exists(tmp.resolve("db.next")));
    assertFalse(java.nio.file.Files.exists(tmp.resolve("db.old")));
    assertEquals(3, put("more", "y"), "writes go on from the installed keyspace's revision (its one put was 2)");
    store.close();
    store = MvccStore.open(dir, MAP_SIZE);
    assertEquals(20, store.appliedIndex(), "the install outlives a restart");
    assertEquals(1, range(b("theirs"), null, 0, 0).count());
  }

  @Test
  void aCrashAfterTheCopyWasMovedIntoPlaceFinishesTheInstallOnOpen() throws Exception {
    java.nio.file.Path copy = copyHolding("theirs", 20);
    put("mine", "x");
    setApplied(store, 10);
    store.close();
    // As install leaves it at its point of no return, before the directories are swapped.
    java.nio.file.Path next = java.nio.file.Files.createDirectories(tmp.resolve("db.next"));
    java.nio.file.Files.move(copy, next.resolve("data.mdb"));
    store = MvccStore.open(dir, MAP_SIZE);
    assertEquals(20, store.appliedIndex());
    assertEquals(0, range(b("mine"), null, 0, 0).count());
    assertFalse(java.nio.file.Files.exists(next));
    assertFalse(java.nio.file.Files.exists(tmp.resolve("db.old")));
  }

  @Test
  void aKeyspaceDirectoryThatIsASymbolicLinkIsRefusedAtOpen() throws Exception {
    java.nio.file.Path elsewhere = java.nio.file.Files.createDirectories(tmp.resolve("elsewhere"));
    java.nio.file.Path linked = java.nio.file.Files.createSymbolicLink(tmp.resolve("linked"), elsewhere);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> MvccStore.open(linked, MAP_SIZE));
    assertTrue(e.getMessage().contains("symbolic link or a mount point"), e.getMessage());
  }

  @Test
  void aClosedStoreRefusesReadsInsteadOfSpinning() {
    store.close();
    store.close(); // twice is fine
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> store.read());
    assertEquals("the keyspace is closed", e.getMessage());
    store = null;
  }

  @Test
  @org.junit.jupiter.api.Timeout(30) // a hold released twice closed the environment under the store: it spun
  void aViewClosedTwiceReleasesItsHoldOnce() throws Exception {
    MvccStore.ReadView view = store.read();
    view.close();
    view.close();
    java.nio.file.Path copy = copyHolding("theirs", 20);
    assertTrue(store.install(copy), "the old environment closes only once its holds are gone, and not twice");
    assertEquals(20, store.appliedIndex());
  }

  @Test
  void anInstallCutShortBeforeItsPointOfNoReturnLeavesTheKeyspaceAsItWas() throws Exception {
    put("mine", "x");
    setApplied(store, 10);
    store.close();
    java.nio.file.Files.createDirectories(tmp.resolve("db.next")); // the copy never got there
    store = MvccStore.open(dir, MAP_SIZE);
    assertEquals(10, store.appliedIndex());
    assertEquals(1, range(b("mine"), null, 0, 0).count());
    assertFalse(java.nio.file.Files.exists(tmp.resolve("db.next")));
  }

  private static void setApplied(MvccStore s, long index) {
    try (MvccStore.WriteBatch batch = s.write()) {
      batch.setAppliedIndex(index);
      batch.commit();
    }
  }
}
