package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.Compare;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.CompactionResponse;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeResponse;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest.SortOrder;
import io.vetcd.proto.etcdserverpb.RangeRequest.SortTarget;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.ResponseOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
import io.vetcd.proto.internal.InternalRequest;
import io.vetcd.proto.mvccpb.KeyValue;
import io.vetcd.raft.Entry;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** etcd's request semantics (applierV3backend) through KvApplier and ApplyThread.apply on a real store. */
class KvApplierTest {

  @TempDir
  Path tmp;

  private MvccStore store;
  private long index; // the last log index handed to apply

  @BeforeEach
  void open() {
    store = MvccStore.open(tmp.resolve("db"), 1L << 28);
  }

  @AfterEach
  void close() {
    store.close();
  }

  // --- helpers ---

  private static ByteString bs(String s) {
    return ByteString.copyFromUtf8(s);
  }

  private static Entry entry(long index, InternalRequest.Builder req) {
    return new Entry(1, index, Entry.Type.NORMAL, req.setId(index).build().toByteArray());
  }

  private final io.vetcd.lease.Lessor lessor = new io.vetcd.lease.Lessor(System::nanoTime, 2);

  /** Applies entries as ApplyThread does, returning the requests' outcomes. */
  private List<ApplyThread.Result> applyAll(List<Entry> entries) {
    return ApplyThread.apply(store, lessor, entries).results();
  }

  /** Applies one request as the next log entry. */
  private ApplyThread.Result apply(InternalRequest.Builder req) {
    List<ApplyThread.Result> results = applyAll(List.of(entry(++index, req)));
    assertEquals(1, results.size());
    assertEquals(index, results.get(0).requestId());
    return results.get(0);
  }

  private <T extends Message> T ok(InternalRequest.Builder req, Class<T> type) {
    ApplyThread.Result r = apply(req);
    if (r.error() != null) {
      throw new AssertionError("request failed: " + r.error().getMessage(), r.error());
    }
    return type.cast(r.response());
  }

  /** Applies a request that must fail with an etcd error; returns which. */
  private EtcdError refused(InternalRequest.Builder req) {
    ApplyThread.Result r = apply(req);
    assertNull(r.response(), "a failed request has no response");
    return assertInstanceOf(EtcdError.EtcdException.class, r.error()).error();
  }

  private PutResponse put(String key, String value) {
    return put(PutRequest.newBuilder().setKey(bs(key)).setValue(bs(value)));
  }

  private PutResponse put(PutRequest.Builder p) {
    return ok(InternalRequest.newBuilder().setPut(p), PutResponse.class);
  }

  private DeleteRangeResponse delete(DeleteRangeRequest.Builder d) {
    return ok(InternalRequest.newBuilder().setDeleteRange(d), DeleteRangeResponse.class);
  }

  private TxnResponse txn(TxnRequest.Builder t) {
    return ok(InternalRequest.newBuilder().setTxn(t), TxnResponse.class);
  }

  private RangeResponse range(RangeRequest.Builder r) {
    try (MvccStore.ReadView view = store.read()) {
      return KvApplier.range(view, r.build());
    }
  }

  private KeyValue get(String key) {
    RangeResponse rr = range(RangeRequest.newBuilder().setKey(bs(key)));
    return rr.getKvsCount() == 0 ? null : rr.getKvs(0);
  }

  private long revision() {
    try (MvccStore.ReadView view = store.read()) {
      return view.revision();
    }
  }

  /** Every key: [key, \0) — etcd's "from key" with key "\0". */
  private static RangeRequest.Builder all() {
    return RangeRequest.newBuilder().setKey(ByteString.copyFrom(new byte[] {0})).setRangeEnd(ByteString.copyFrom(new byte[] {0}));
  }

  private static List<String> keys(RangeResponse rr) {
    return rr.getKvsList().stream().map(kv -> kv.getKey().toStringUtf8()).toList();
  }

  private static RequestOp opPut(String key, String value) {
    return RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(bs(key)).setValue(bs(value))).build();
  }

  private static RequestOp opRange(String key) {
    return RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs(key))).build();
  }

  private static RequestOp opDelete(String key) {
    return RequestOp.newBuilder().setRequestDeleteRange(DeleteRangeRequest.newBuilder().setKey(bs(key))).build();
  }

  private static RequestOp opTxn(TxnRequest.Builder t) {
    return RequestOp.newBuilder().setRequestTxn(t).build();
  }

  private static Compare.Builder cmp(String key, Compare.CompareTarget target, Compare.CompareResult result) {
    return Compare.newBuilder().setKey(bs(key)).setTarget(target).setResult(result);
  }

  /**
   * Four keys whose orders by key, version, create, mod and value all differ:
   * a: v2 create 3 mod 9 "m"; b: v1 create 5 mod 5 "z"; c: v3 create 2 mod 11 "a"; d: v4 create 4 mod 10 "q".
   */
  private void sortFixture() {
    put("c", "c1"); // 2
    put("a", "a1"); // 3
    put("d", "d1"); // 4
    put("b", "z"); // 5
    put("d", "d2"); // 6
    put("d", "d3"); // 7
    put("c", "c2"); // 8
    put("a", "m"); // 9
    put("d", "q"); // 10
    put("c", "a"); // 11
  }

  private RangeResponse sorted(SortTarget target, SortOrder order) {
    return range(all().setSortTarget(target).setSortOrder(order));
  }

  // --- Range ---

  @Test
  void rangeWithoutSortReturnsKeyOrderAndTheCurrentRevision() {
    sortFixture();
    RangeResponse rr = range(all());
    assertEquals(List.of("a", "b", "c", "d"), keys(rr));
    assertEquals(4, rr.getCount());
    assertFalse(rr.getMore());
    assertEquals(11, rr.getHeader().getRevision());
  }

  @Test
  void sortByEachTargetAscendingAndDescending() {
    sortFixture();
    assertEquals(List.of("b", "a", "c", "d"), keys(sorted(SortTarget.VERSION, SortOrder.ASCEND)));
    assertEquals(List.of("d", "c", "a", "b"), keys(sorted(SortTarget.VERSION, SortOrder.DESCEND)));
    assertEquals(List.of("c", "a", "d", "b"), keys(sorted(SortTarget.CREATE, SortOrder.ASCEND)));
    assertEquals(List.of("b", "d", "a", "c"), keys(sorted(SortTarget.CREATE, SortOrder.DESCEND)));
    assertEquals(List.of("b", "a", "d", "c"), keys(sorted(SortTarget.MOD, SortOrder.ASCEND)));
    assertEquals(List.of("c", "d", "a", "b"), keys(sorted(SortTarget.MOD, SortOrder.DESCEND)));
    assertEquals(List.of("c", "a", "d", "b"), keys(sorted(SortTarget.VALUE, SortOrder.ASCEND)));
    assertEquals(List.of("b", "d", "a", "c"), keys(sorted(SortTarget.VALUE, SortOrder.DESCEND)));
    assertEquals(List.of("a", "b", "c", "d"), keys(sorted(SortTarget.KEY, SortOrder.ASCEND)));
    assertEquals(List.of("d", "c", "b", "a"), keys(sorted(SortTarget.KEY, SortOrder.DESCEND)));
  }

  @Test
  void sortTargetWithoutOrderSortsAscending() {
    sortFixture();
    // etcd: "sort ASCEND by default only when target is not 'KEY'"
    assertEquals(List.of("b", "a", "c", "d"), keys(sorted(SortTarget.VERSION, SortOrder.NONE)));
    assertEquals(List.of("c", "a", "d", "b"), keys(sorted(SortTarget.VALUE, SortOrder.NONE)));
    assertEquals(List.of("a", "b", "c", "d"), keys(sorted(SortTarget.KEY, SortOrder.NONE)));
  }

  @Test
  void limitWithSortTruncatesAfterSortingAndSetsMore() {
    sortFixture();
    RangeResponse rr = range(all().setSortTarget(SortTarget.VERSION).setSortOrder(SortOrder.DESCEND).setLimit(2));
    assertEquals(List.of("d", "c"), keys(rr), "the two highest versions of all keys, not of the first two");
    assertTrue(rr.getMore());
    assertEquals(4, rr.getCount());
    RangeResponse byCreate = range(all().setSortTarget(SortTarget.CREATE).setSortOrder(SortOrder.ASCEND).setLimit(1));
    assertEquals(List.of("c"), keys(byCreate));
  }

  @Test
  void limitWithoutSortSetsMoreOnlyWhenKeysWereLeftOut() {
    sortFixture();
    RangeResponse two = range(all().setLimit(2));
    assertEquals(List.of("a", "b"), keys(two));
    assertTrue(two.getMore());
    assertEquals(4, two.getCount(), "count is every key of the range");
    RangeResponse four = range(all().setLimit(4));
    assertEquals(4, four.getKvsCount());
    assertFalse(four.getMore());
    RangeResponse five = range(all().setLimit(5));
    assertFalse(five.getMore());
  }

  @Test
  void minAndMaxModAndCreateFiltersKeepCountOfAllKeys() {
    sortFixture();
    RangeResponse minMod = range(all().setMinModRevision(9));
    assertEquals(List.of("a", "c", "d"), keys(minMod));
    assertEquals(4, minMod.getCount(), "etcd counts before filtering");
    assertEquals(List.of("a", "b"), keys(range(all().setMaxModRevision(9))));
    assertEquals(List.of("b", "d"), keys(range(all().setMinCreateRevision(4))));
    assertEquals(List.of("a", "c"), keys(range(all().setMaxCreateRevision(3))));
    assertEquals(List.of("a", "d"), keys(range(all().setMinModRevision(9).setMaxModRevision(10))));
    assertEquals(List.of("d"), keys(range(all().setMinCreateRevision(3).setMaxCreateRevision(4).setMinModRevision(10))));
  }

  @Test
  void limitAppliesAfterFilters() {
    sortFixture();
    RangeResponse rr = range(all().setMinModRevision(9).setLimit(2));
    assertEquals(List.of("a", "c"), keys(rr));
    assertTrue(rr.getMore());
    assertEquals(4, rr.getCount());
    RangeResponse exact = range(all().setMinModRevision(9).setLimit(3));
    assertFalse(exact.getMore());
  }

  @Test
  void keysOnlyDropsValuesButKeepsMetadata() {
    sortFixture();
    RangeResponse rr = range(all().setKeysOnly(true));
    assertEquals(List.of("a", "b", "c", "d"), keys(rr));
    for (KeyValue kv : rr.getKvsList()) {
      assertTrue(kv.getValue().isEmpty());
      assertTrue(kv.getModRevision() > 0 && kv.getVersion() > 0 && kv.getCreateRevision() > 0);
    }
  }

  @Test
  void countOnlyReturnsNoKeysAndTheCount() {
    sortFixture();
    RangeResponse rr = range(all().setCountOnly(true));
    assertEquals(0, rr.getKvsCount());
    assertEquals(4, rr.getCount());
    assertFalse(rr.getMore());
    assertEquals(2, range(RangeRequest.newBuilder().setKey(bs("a")).setRangeEnd(bs("c")).setCountOnly(true)).getCount());
  }

  @Test
  void rangeEndConventions() {
    sortFixture();
    assertEquals(List.of("b"), keys(range(RangeRequest.newBuilder().setKey(bs("b")))), "no range_end: one key");
    assertEquals(List.of("b", "c"), keys(range(RangeRequest.newBuilder().setKey(bs("b")).setRangeEnd(bs("d")))));
    assertEquals(List.of("b", "c", "d"),
        keys(range(RangeRequest.newBuilder().setKey(bs("b")).setRangeEnd(ByteString.copyFrom(new byte[] {0})))),
        "range_end \\0: every key from key on");
  }

  @Test
  void rangeAtARevisionAndItsRefusals() {
    sortFixture();
    RangeResponse at5 = range(all().setRevision(5));
    assertEquals(List.of("a", "b", "c", "d"), keys(at5));
    assertEquals("a1", at5.getKvs(0).getValue().toStringUtf8());
    assertEquals(11, at5.getHeader().getRevision(), "the header carries the current revision");
    EtcdError.EtcdException future = assertThrows(EtcdError.EtcdException.class, () -> range(all().setRevision(12)));
    assertEquals(EtcdError.FUTURE_REVISION, future.error());
    ok(InternalRequest.newBuilder().setCompaction(CompactionRequest.newBuilder().setRevision(6)), CompactionResponse.class);
    EtcdError.EtcdException compacted = assertThrows(EtcdError.EtcdException.class, () -> range(all().setRevision(5)));
    assertEquals(EtcdError.COMPACTED, compacted.error());
    assertEquals("etcdserver: mvcc: required revision has been compacted", compacted.getMessage());
    assertEquals(4, range(all().setRevision(6)).getKvsCount());
  }

  // --- Put ---

  @Test
  void putAnswersWithTheNewRevisionAndPrevKvWhenAsked() {
    PutResponse first = put(PutRequest.newBuilder().setKey(bs("k")).setValue(bs("v1")).setPrevKv(true));
    assertEquals(2, first.getHeader().getRevision());
    assertFalse(first.hasPrevKv(), "no previous value for a new key");
    PutResponse second = put(PutRequest.newBuilder().setKey(bs("k")).setValue(bs("v2")).setPrevKv(true));
    assertEquals(3, second.getHeader().getRevision());
    assertEquals("v1", second.getPrevKv().getValue().toStringUtf8());
    assertEquals(2, second.getPrevKv().getModRevision());
    assertFalse(put("k", "v3").hasPrevKv(), "prev_kv only when asked");
  }

  @Test
  void ignoreValueKeepsTheValueAndIgnoreLeaseKeepsTheLease() {
    put(PutRequest.newBuilder().setKey(bs("k")).setValue(bs("v1")));
    put(PutRequest.newBuilder().setKey(bs("k")).setIgnoreValue(true));
    KeyValue kv = get("k");
    assertEquals("v1", kv.getValue().toStringUtf8());
    assertEquals(2, kv.getVersion());
    put(PutRequest.newBuilder().setKey(bs("k")).setValue(bs("v2")).setIgnoreLease(true));
    kv = get("k");
    assertEquals("v2", kv.getValue().toStringUtf8());
    assertEquals(0, kv.getLease());
    assertEquals(3, kv.getVersion());
  }

  @Test
  void aPutNamingALeaseThatDoesNotExistIsLeaseNotFoundAndWritesNothing() {
    // No lease has been granted (there is no Lease service yet): etcd answers NotFound for any id.
    put("other", "x");
    assertEquals(EtcdError.LEASE_NOT_FOUND, refused(InternalRequest.newBuilder()
        .setPut(PutRequest.newBuilder().setKey(bs("k")).setValue(bs("v")).setLease(7))));
    assertEquals(2, revision());
    assertNull(get("k"));
  }

  @Test
  void ignoreValueOrLeaseOnAMissingKeyIsKeyNotFoundAndWritesNothing() {
    put("other", "x");
    // etcd: "ignore_{lease,value} flag expects previous key-value pair"
    assertEquals(EtcdError.KEY_NOT_FOUND,
        refused(InternalRequest.newBuilder().setPut(PutRequest.newBuilder().setKey(bs("k")).setIgnoreValue(true))));
    assertEquals(EtcdError.KEY_NOT_FOUND, refused(InternalRequest.newBuilder()
        .setPut(PutRequest.newBuilder().setKey(bs("k")).setValue(bs("v")).setIgnoreLease(true))));
    assertEquals(2, revision());
    assertNull(get("k"));
    assertEquals(index, store.appliedIndex(), "a refused entry is still applied");
  }

  // --- DeleteRange ---

  @Test
  void deleteRangeCountsAndReturnsPrevKvs() {
    sortFixture();
    DeleteRangeResponse plain = delete(DeleteRangeRequest.newBuilder().setKey(bs("a")));
    assertEquals(1, plain.getDeleted());
    assertEquals(0, plain.getPrevKvsCount(), "prev_kvs only when asked");
    assertEquals(12, plain.getHeader().getRevision());
    DeleteRangeResponse rest = delete(DeleteRangeRequest.newBuilder().setKey(bs("b"))
        .setRangeEnd(ByteString.copyFrom(new byte[] {0})).setPrevKv(true));
    assertEquals(3, rest.getDeleted());
    assertEquals(List.of("z", "a", "q"), rest.getPrevKvsList().stream().map(kv -> kv.getValue().toStringUtf8()).toList());
    assertEquals(13, rest.getHeader().getRevision());
    assertEquals(0, range(all()).getCount());
  }

  @Test
  void deleteOfNothingKeepsTheRevision() {
    put("k", "v");
    DeleteRangeResponse rr = delete(DeleteRangeRequest.newBuilder().setKey(bs("missing")).setPrevKv(true));
    assertEquals(0, rr.getDeleted());
    assertEquals(2, rr.getHeader().getRevision());
    assertEquals(2, revision());
  }

  // --- Txn ---

  @Test
  void compareOnAMissingKeyValueIsAlwaysFalse() {
    // etcd: "Always fail if comparing a value on a key/keys that doesn't exist"
    for (Compare.CompareResult result : List.of(Compare.CompareResult.EQUAL, Compare.CompareResult.NOT_EQUAL,
        Compare.CompareResult.LESS, Compare.CompareResult.GREATER)) {
      TxnResponse t = txn(TxnRequest.newBuilder()
          .addCompare(cmp("missing", Compare.CompareTarget.VALUE, result).setValue(ByteString.EMPTY)));
      assertFalse(t.getSucceeded(), "value " + result + " on a missing key");
    }
  }

  @Test
  void compareOnAMissingKeyUsesAZeroKeyValueForOtherTargets() {
    assertTrue(txn(TxnRequest.newBuilder()
        .addCompare(cmp("missing", Compare.CompareTarget.VERSION, Compare.CompareResult.EQUAL).setVersion(0)))
        .getSucceeded(), "version == 0: the key does not exist");
    assertTrue(txn(TxnRequest.newBuilder()
        .addCompare(cmp("missing", Compare.CompareTarget.CREATE, Compare.CompareResult.EQUAL).setCreateRevision(0)))
        .getSucceeded());
    assertTrue(txn(TxnRequest.newBuilder()
        .addCompare(cmp("missing", Compare.CompareTarget.MOD, Compare.CompareResult.LESS).setModRevision(1)))
        .getSucceeded());
    assertFalse(txn(TxnRequest.newBuilder()
        .addCompare(cmp("missing", Compare.CompareTarget.VERSION, Compare.CompareResult.GREATER).setVersion(0)))
        .getSucceeded());
    assertTrue(txn(TxnRequest.newBuilder()
        .addCompare(cmp("missing", Compare.CompareTarget.LEASE, Compare.CompareResult.EQUAL).setLease(0)))
        .getSucceeded());
  }

  @Test
  void compareOnExistingKeys() {
    put("k", "b"); // 2
    put("k", "b2"); // 3
    assertTrue(txn(TxnRequest.newBuilder()
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("b2")))
        .addCompare(cmp("k", Compare.CompareTarget.VERSION, Compare.CompareResult.EQUAL).setVersion(2))
        .addCompare(cmp("k", Compare.CompareTarget.MOD, Compare.CompareResult.EQUAL).setModRevision(3))
        .addCompare(cmp("k", Compare.CompareTarget.CREATE, Compare.CompareResult.LESS).setCreateRevision(3))
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.GREATER).setValue(bs("b")))
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.NOT_EQUAL).setValue(bs("c"))))
        .getSucceeded());
    assertFalse(txn(TxnRequest.newBuilder()
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("b2")))
        .addCompare(cmp("k", Compare.CompareTarget.VERSION, Compare.CompareResult.EQUAL).setVersion(1)))
        .getSucceeded(), "every compare must hold");
  }

  @Test
  void compareOverARangeMustHoldForEveryKey() {
    put("r/1", "x");
    put("r/2", "x");
    put("r/3", "y");
    Compare.Builder allX = cmp("r/", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL)
        .setValue(bs("x")).setRangeEnd(bs("r0"));
    assertFalse(txn(TxnRequest.newBuilder().addCompare(allX)).getSucceeded());
    assertTrue(txn(TxnRequest.newBuilder().addCompare(allX.clone().setRangeEnd(bs("r/3")))).getSucceeded());
  }

  @Test
  void txnRunsTheSuccessBranchWhenComparesHold() {
    put("k", "v"); // 2
    put("gone", "g"); // 3
    TxnResponse t = txn(TxnRequest.newBuilder()
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("v")))
        .addSuccess(opPut("s1", "1"))
        .addSuccess(opRange("k"))
        .addSuccess(opDelete("gone"))
        .addFailure(opPut("f1", "1")));
    assertTrue(t.getSucceeded());
    assertEquals(4, t.getHeader().getRevision(), "one revision for the whole txn");
    assertEquals(3, t.getResponsesCount());
    assertEquals(ResponseOp.ResponseCase.RESPONSE_PUT, t.getResponses(0).getResponseCase());
    assertEquals(4, t.getResponses(0).getResponsePut().getHeader().getRevision());
    assertEquals("v", t.getResponses(1).getResponseRange().getKvs(0).getValue().toStringUtf8());
    assertEquals(1, t.getResponses(2).getResponseDeleteRange().getDeleted());
    assertEquals(4, get("s1").getModRevision());
    assertNull(get("f1"));
    assertNull(get("gone"));
  }

  @Test
  void txnRunsTheFailureBranchWhenACompareFails() {
    put("k", "v"); // 2
    TxnResponse t = txn(TxnRequest.newBuilder()
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("other")))
        .addSuccess(opPut("s1", "1"))
        .addFailure(opRange("k"))
        .addFailure(opPut("f1", "1")));
    assertFalse(t.getSucceeded());
    assertEquals(2, t.getResponsesCount());
    assertEquals(ResponseOp.ResponseCase.RESPONSE_RANGE, t.getResponses(0).getResponseCase());
    assertEquals(ResponseOp.ResponseCase.RESPONSE_PUT, t.getResponses(1).getResponseCase());
    assertEquals(3, t.getHeader().getRevision());
    assertNull(get("s1"));
    assertEquals(3, get("f1").getModRevision());
  }

  @Test
  void txnWritesShareOneRevisionAndSeeEarlierWritesOfTheTxn() {
    put("k", "v0"); // 2
    TxnResponse t = txn(TxnRequest.newBuilder()
        .addSuccess(opPut("k", "v1"))
        .addSuccess(opPut("x", "1"))
        .addSuccess(opPut("y", "1"))
        .addSuccess(opRange("k")));
    assertEquals(3, t.getHeader().getRevision());
    RangeResponse inside = t.getResponses(3).getResponseRange();
    assertEquals("v1", inside.getKvs(0).getValue().toStringUtf8(), "a range after a put in the txn sees it");
    assertEquals(3, inside.getHeader().getRevision());
    RangeResponse at3 = range(all().setRevision(3));
    assertEquals(List.of(3L, 3L, 3L), at3.getKvsList().stream().map(KeyValue::getModRevision).toList());
    assertEquals(2, get("k").getVersion());
    assertEquals(List.of("k"), keys(range(all().setRevision(2))));
  }

  @Test
  void txnThatWritesNothingKeepsTheRevision() {
    put("k", "v");
    TxnResponse t = txn(TxnRequest.newBuilder().addSuccess(opRange("k")).addSuccess(opDelete("missing")));
    assertEquals(2, t.getHeader().getRevision());
    assertEquals(2, revision());
  }

  @Test
  void nestedTxnResponseHeaderIsEmpty() {
    put("k", "v"); // 2
    TxnResponse t = txn(TxnRequest.newBuilder()
        .addSuccess(opPut("a", "1"))
        .addSuccess(opTxn(TxnRequest.newBuilder()
            .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("v")))
            .addSuccess(opPut("b", "1"))
            .addSuccess(opTxn(TxnRequest.newBuilder().addSuccess(opRange("a")))))));
    assertEquals(3, t.getHeader().getRevision());
    TxnResponse nested = t.getResponses(1).getResponseTxn();
    assertTrue(nested.getSucceeded());
    // etcd's newTxnResp gives nested txns &pb.ResponseHeader{}: present but empty
    assertTrue(nested.hasHeader());
    assertEquals(ResponseHeader.getDefaultInstance(), nested.getHeader());
    TxnResponse deeper = nested.getResponses(1).getResponseTxn();
    assertEquals(ResponseHeader.getDefaultInstance(), deeper.getHeader());
    assertEquals(3, nested.getResponses(0).getResponsePut().getHeader().getRevision(),
        "ops inside a nested txn still carry the txn's revision");
    assertEquals(3, get("b").getModRevision());
  }

  @Test
  void nestedTxnComparesAreEvaluatedBeforeTheOuterTxnWrites() {
    // etcd's compareToPath evaluates every compare on the path against the state before the txn runs,
    // so a nested compare does not see a put made earlier in the same outer branch.
    TxnResponse t = txn(TxnRequest.newBuilder()
        .addSuccess(opPut("a", "1"))
        .addSuccess(opTxn(TxnRequest.newBuilder()
            .addCompare(cmp("a", Compare.CompareTarget.VERSION, Compare.CompareResult.EQUAL).setVersion(0))
            .addSuccess(opPut("b", "a-was-missing"))
            .addFailure(opPut("b", "a-existed")))));
    assertTrue(t.getResponses(1).getResponseTxn().getSucceeded(), "a did not exist when the txn began");
    assertEquals("a-was-missing", get("b").getValue().toStringUtf8());
  }

  @Test
  void txnBranchThatWouldFailHalfwayIsRefusedWhole() {
    put("k", "v"); // 2
    // etcd's checkRequests: ignore_value on a missing key fails the txn before any write
    assertEquals(EtcdError.KEY_NOT_FOUND, refused(InternalRequest.newBuilder().setTxn(TxnRequest.newBuilder()
        .addSuccess(opPut("written", "1"))
        .addSuccess(RequestOp.newBuilder()
            .setRequestPut(PutRequest.newBuilder().setKey(bs("missing")).setIgnoreValue(true))))));
    assertNull(get("written"));
    assertEquals(2, revision());
    // the same op in the branch not taken is not checked
    TxnResponse t = txn(TxnRequest.newBuilder()
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("v")))
        .addSuccess(opPut("written", "1"))
        .addFailure(RequestOp.newBuilder()
            .setRequestPut(PutRequest.newBuilder().setKey(bs("missing")).setIgnoreValue(true))));
    assertTrue(t.getSucceeded());
    assertEquals(3, revision());
  }

  @Test
  void txnRangeAtAFutureOrCompactedRevisionIsRefused() {
    put("k", "v1"); // 2
    put("k", "v2"); // 3
    RequestOp future = RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("k")).setRevision(4)).build();
    assertEquals(EtcdError.FUTURE_REVISION,
        refused(InternalRequest.newBuilder().setTxn(TxnRequest.newBuilder().addSuccess(opPut("x", "1")).addSuccess(future))));
    assertNull(get("x"));
    ok(InternalRequest.newBuilder().setCompaction(CompactionRequest.newBuilder().setRevision(3)), CompactionResponse.class);
    RequestOp old = RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(bs("k")).setRevision(2)).build();
    assertEquals(EtcdError.COMPACTED,
        refused(InternalRequest.newBuilder().setTxn(TxnRequest.newBuilder().addSuccess(old))));
    assertEquals(3, revision());
  }

  @Test
  void readOnlyTxnDoesNotChangeTheRevision() {
    put("k", "v"); // 2
    TxnRequest readOnly = TxnRequest.newBuilder()
        .addCompare(cmp("k", Compare.CompareTarget.VALUE, Compare.CompareResult.EQUAL).setValue(bs("v")))
        .addSuccess(opRange("k"))
        .addSuccess(opTxn(TxnRequest.newBuilder().addSuccess(opRange("k"))))
        .addFailure(opRange("other"))
        .build();
    assertTrue(KvApplier.isReadOnly(readOnly));
    try (MvccStore.ReadView view = store.read()) {
      TxnResponse t = KvApplier.readOnlyTxn(view, readOnly);
      assertTrue(t.getSucceeded());
      assertEquals(2, t.getHeader().getRevision());
      assertEquals("v", t.getResponses(0).getResponseRange().getKvs(0).getValue().toStringUtf8());
      assertEquals(ResponseHeader.getDefaultInstance(), t.getResponses(1).getResponseTxn().getHeader());
    }
    // and applied through the log it does not move the revision either
    assertEquals(2, txn(readOnly.toBuilder()).getHeader().getRevision());
    assertEquals(2, revision());
  }

  @Test
  void isReadOnlyLooksIntoBothBranchesAndNestedTxns() {
    assertTrue(KvApplier.isReadOnly(TxnRequest.getDefaultInstance()));
    assertFalse(KvApplier.isReadOnly(TxnRequest.newBuilder().addFailure(opPut("k", "v")).build()));
    assertFalse(KvApplier.isReadOnly(TxnRequest.newBuilder().addSuccess(opDelete("k")).build()));
    assertFalse(KvApplier.isReadOnly(TxnRequest.newBuilder()
        .addSuccess(opRange("k"))
        .addSuccess(opTxn(TxnRequest.newBuilder().addFailure(opPut("k", "v")))).build()));
  }

  // --- ApplyThread.apply ---

  private static InternalRequest.Builder putRequest(String key, String value) {
    return InternalRequest.newBuilder().setPut(PutRequest.newBuilder().setKey(bs(key)).setValue(bs(value)));
  }

  @Test
  void applyingTheSameEntriesTwiceChangesNothingTheSecondTime() {
    List<Entry> entries = List.of(entry(1, putRequest("a", "1")), entry(2, putRequest("b", "1")),
        entry(3, putRequest("a", "2")));
    List<ApplyThread.Result> first = applyAll(entries);
    assertEquals(3, first.size());
    assertEquals(4, revision());
    assertEquals(3, store.appliedIndex());
    // replay after a crash overlaps what was applied: skipped, not applied again
    assertEquals(List.of(), applyAll(entries));
    assertEquals(4, revision());
    assertEquals(2, get("a").getVersion());
    assertEquals(3, store.appliedIndex());
  }

  @Test
  void applyingAnOverlappingBatchAppliesOnlyTheNewEntries() {
    applyAll(List.of(entry(1, putRequest("a", "1")), entry(2, putRequest("b", "1"))));
    List<ApplyThread.Result> results = applyAll(
        List.of(entry(1, putRequest("a", "1")), entry(2, putRequest("b", "1")), entry(3, putRequest("c", "1"))));
    assertEquals(1, results.size());
    assertEquals(3, results.get(0).requestId());
    assertEquals(4, ((PutResponse) results.get(0).response()).getHeader().getRevision());
    assertEquals(4, revision());
    assertEquals(1, get("a").getVersion());
  }

  @Test
  void emptyAndMembershipEntriesUseNoRevision() {
    io.vetcd.proto.etcdserverpb.Member founding = io.vetcd.proto.etcdserverpb.Member.newBuilder()
        .setID(7).addPeerURLs("http://127.0.0.1:2380").build();
    List<ApplyThread.Result> results = applyAll(List.of(Entry.empty(1, 1),
        new Entry(1, 2, Entry.Type.CONF_CHANGE, founding.toByteArray()), entry(3, putRequest("a", "1"))));
    assertEquals(1, results.size(), "only the put is answered");
    assertEquals(3, store.appliedIndex());
    assertEquals(2, revision());
    try (MvccStore.ReadView view = store.read()) {
      assertEquals(List.of(founding),
          Keyspace.clusterRecordOf(view.record(LocalMember.CLUSTER_RECORD)).getMembersList(),
          "the member list changed in the same transaction");
    }
  }

  @Test
  void aFailingEntryIsRolledBackAloneInItsBatch() {
    List<ApplyThread.Result> results = applyAll(List.of(
        entry(1, putRequest("a", "1")),
        entry(2, InternalRequest.newBuilder().setPut(PutRequest.newBuilder().setKey(bs("missing")).setIgnoreValue(true))),
        entry(3, putRequest("b", "1"))));
    assertEquals(3, results.size());
    assertEquals(2, ((PutResponse) results.get(0).response()).getHeader().getRevision());
    assertEquals(EtcdError.KEY_NOT_FOUND, ((EtcdError.EtcdException) results.get(1).error()).error());
    assertEquals(3, ((PutResponse) results.get(2).response()).getHeader().getRevision(),
        "the failed entry used no revision");
    assertEquals(3, store.appliedIndex());
    assertEquals(List.of("a", "b"), keys(range(all())));
  }

  @Test
  void aRequestFailingAfterItsFirstWriteLeavesNoTraceAndItsBatchGoesOn() {
    // Requests write straight into their batch's transaction; the txn below writes "x" before its
    // second put fails, so the attempt is dropped and the batch applied again around the failure.
    RequestOp missingLease = RequestOp.newBuilder()
        .setRequestPut(PutRequest.newBuilder().setKey(bs("y")).setValue(bs("1")).setLease(999)).build();
    ApplyThread.Applied applied = ApplyThread.apply(store, lessor, List.of(
        entry(1, putRequest("a", "1")),
        entry(2, InternalRequest.newBuilder().setLeaseGrant(
            io.vetcd.proto.etcdserverpb.LeaseGrantRequest.newBuilder().setID(7).setTTL(60))),
        entry(3, InternalRequest.newBuilder().setTxn(TxnRequest.newBuilder()
            .addSuccess(opPut("x", "1")).addSuccess(missingLease))),
        entry(4, putRequest("b", "1"))));
    List<ApplyThread.Result> results = applied.results();
    assertEquals(4, results.size());
    assertEquals(EtcdError.LEASE_NOT_FOUND, ((EtcdError.EtcdException) results.get(2).error()).error());
    assertEquals(3, ((PutResponse) results.get(3).response()).getHeader().getRevision(),
        "the failed txn used no revision (a lease grant uses none either)");
    assertEquals(List.of("a", "b"), keys(range(all())));
    assertEquals(List.of("a", "b"),
        applied.events().stream().map(e -> e.getKv().getKey().toStringUtf8()).toList(),
        "no watch event for the failed txn's first write");
    assertEquals(1, applied.leaseChanges().size(), "the grant is reported once, not once per attempt");
    assertTrue(lessor.ids().contains(7L), "the lessor was told by the apply itself");
    assertEquals(4, store.appliedIndex());
  }

  @Test
  void severalFailuresInOneBatchAnywhereInItLeaveOnlyTheSuccessfulRequests() {
    InternalRequest.Builder missingKey =
        InternalRequest.newBuilder().setPut(PutRequest.newBuilder().setKey(bs("missing")).setIgnoreValue(true));
    InternalRequest.Builder halfTxn = InternalRequest.newBuilder().setTxn(TxnRequest.newBuilder()
        .addSuccess(opPut("half", "1"))
        .addSuccess(RequestOp.newBuilder().setRequestPut(
            PutRequest.newBuilder().setKey(bs("z")).setValue(bs("1")).setLease(404))));
    ApplyThread.Applied applied = ApplyThread.apply(store, lessor, List.of(
        entry(1, halfTxn.clone()),                      // fails first
        entry(2, putRequest("a", "1")),                 // rev 2
        entry(3, missingKey.clone()),
        entry(4, halfTxn.clone()),                      // two failures in a row
        entry(5, InternalRequest.newBuilder().setLeaseGrant(
            io.vetcd.proto.etcdserverpb.LeaseGrantRequest.newBuilder().setID(8).setTTL(60))),
        entry(6, putRequest("b", "1")),                 // rev 3
        entry(7, halfTxn.clone())));                    // and last
    List<ApplyThread.Result> results = applied.results();
    assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L), results.stream().map(ApplyThread.Result::requestId).toList());
    for (int failed : new int[] {0, 2, 3, 6}) {
      assertNull(results.get(failed).response(), "request " + (failed + 1));
      assertInstanceOf(EtcdError.EtcdException.class, results.get(failed).error());
    }
    assertEquals(EtcdError.KEY_NOT_FOUND, ((EtcdError.EtcdException) results.get(2).error()).error());
    assertEquals(EtcdError.LEASE_NOT_FOUND, ((EtcdError.EtcdException) results.get(6).error()).error());
    assertEquals(2, ((PutResponse) results.get(1).response()).getHeader().getRevision());
    assertEquals(3, ((PutResponse) results.get(5).response()).getHeader().getRevision());
    assertEquals(List.of("a", "b"), keys(range(all())));
    assertEquals(List.of("a", "b"), applied.events().stream().map(e -> e.getKv().getKey().toStringUtf8()).toList());
    assertEquals(1, applied.leaseChanges().size());
    assertEquals(7, store.appliedIndex());
    assertEquals(3, revision());
    // the next batch goes on from there
    index = 7;
    assertEquals(4, put("c", "1").getHeader().getRevision());
  }

  @Test
  void compactionEntryAnswersWithTheCurrentRevisionAndRefusesARepeat() {
    put("a", "1");
    put("a", "2"); // 3
    CompactionResponse c =
        ok(InternalRequest.newBuilder().setCompaction(CompactionRequest.newBuilder().setRevision(3)), CompactionResponse.class);
    assertEquals(3, c.getHeader().getRevision());
    assertEquals(EtcdError.COMPACTED,
        refused(InternalRequest.newBuilder().setCompaction(CompactionRequest.newBuilder().setRevision(3))));
    assertEquals(EtcdError.FUTURE_REVISION,
        refused(InternalRequest.newBuilder().setCompaction(CompactionRequest.newBuilder().setRevision(9))));
    assertEquals("2", get("a").getValue().toStringUtf8());
  }

  @Test
  void compactionInTheSameBatchSeesTheRevisionsMadeBeforeIt() {
    List<ApplyThread.Result> results = applyAll(List.of(
        entry(1, putRequest("a", "1")),
        entry(2, putRequest("a", "2")),
        entry(3, InternalRequest.newBuilder().setCompaction(CompactionRequest.newBuilder().setRevision(3))),
        entry(4, putRequest("a", "3"))));
    assertEquals(3, ((CompactionResponse) results.get(2).response()).getHeader().getRevision());
    assertEquals(4, ((PutResponse) results.get(3).response()).getHeader().getRevision());
    EtcdError.EtcdException e = assertThrows(EtcdError.EtcdException.class, () -> range(all().setRevision(2)));
    assertEquals(EtcdError.COMPACTED, e.error());
    assertEquals("2", range(all().setRevision(3)).getKvs(0).getValue().toStringUtf8());
    assertEquals(3, get("a").getVersion());
  }

  @Test
  void resultsCarryTheRequestIdsInOrder() {
    List<Entry> entries = new ArrayList<>();
    for (int i = 1; i <= 5; i++) {
      entries.add(new Entry(2, i, Entry.Type.NORMAL,
          putRequest("k" + i, "v").setId(100 + i).build().toByteArray()));
    }
    List<ApplyThread.Result> results = applyAll(entries);
    assertEquals(List.of(101L, 102L, 103L, 104L, 105L), results.stream().map(ApplyThread.Result::requestId).toList());
  }
}
