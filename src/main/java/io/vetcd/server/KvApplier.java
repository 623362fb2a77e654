package io.vetcd.server;

import com.google.protobuf.ByteString;
import io.vetcd.mvcc.KvReader;
import io.vetcd.mvcc.MvccException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.mvcc.RangeResult;
import io.vetcd.proto.etcdserverpb.Compare;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeResponse;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.ResponseOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
import io.vetcd.proto.mvccpb.KeyValue;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;

/**
 * etcd's request semantics over the MVCC keyspace (etcd's applierV3backend): what Range, Put,
 * DeleteRange and Txn mean. Responses carry a header with the revision only; the member fills in its
 * cluster id, member id and term where etcd does (the outermost response).
 */
public final class KvApplier {

  private KvApplier() {}

  /** Range as etcd does it: filters and sorting need every match, so the limit applies after them. */
  public static RangeResponse range(KvReader reader, RangeRequest r) {
    boolean fetchAll = r.getSortOrder() != RangeRequest.SortOrder.NONE
        || r.getMinModRevision() != 0 || r.getMaxModRevision() != 0
        || r.getMinCreateRevision() != 0 || r.getMaxCreateRevision() != 0;
    long limit = fetchAll || r.getLimit() <= 0 ? 0 : r.getLimit() + 1; // one more tells "more"
    RangeResult rr = mvcc(() -> reader.range(
        r.getKey().toByteArray(), rangeEnd(r.getRangeEnd()), r.getRevision(), limit, r.getCountOnly()));
    List<KeyValue> kvs = new ArrayList<>(rr.kvs());
    if (r.getMaxModRevision() != 0) {
      kvs.removeIf(kv -> kv.getModRevision() > r.getMaxModRevision());
    }
    if (r.getMinModRevision() != 0) {
      kvs.removeIf(kv -> kv.getModRevision() < r.getMinModRevision());
    }
    if (r.getMaxCreateRevision() != 0) {
      kvs.removeIf(kv -> kv.getCreateRevision() > r.getMaxCreateRevision());
    }
    if (r.getMinCreateRevision() != 0) {
      kvs.removeIf(kv -> kv.getCreateRevision() < r.getMinCreateRevision());
    }
    RangeRequest.SortOrder order = r.getSortOrder();
    if (r.getSortTarget() != RangeRequest.SortTarget.KEY && order == RangeRequest.SortOrder.NONE) {
      order = RangeRequest.SortOrder.ASCEND; // results come in key order; other targets need a sort
    }
    if (order == RangeRequest.SortOrder.ASCEND || order == RangeRequest.SortOrder.DESCEND) {
      Comparator<KeyValue> by = sortBy(r.getSortTarget());
      kvs.sort(order == RangeRequest.SortOrder.ASCEND ? by : by.reversed());
    }
    RangeResponse.Builder resp = RangeResponse.newBuilder();
    if (r.getLimit() > 0 && kvs.size() > r.getLimit()) {
      kvs = kvs.subList(0, (int) r.getLimit());
      resp.setMore(true);
    }
    for (KeyValue kv : kvs) {
      resp.addKvs(r.getKeysOnly() ? kv.toBuilder().clearValue().build() : kv);
    }
    return resp.setCount(rr.count()).setHeader(header(rr.revision())).build();
  }

  private static Comparator<KeyValue> sortBy(RangeRequest.SortTarget target) {
    return switch (target) {
      case VERSION -> Comparator.comparingLong(KeyValue::getVersion);
      case CREATE -> Comparator.comparingLong(KeyValue::getCreateRevision);
      case MOD -> Comparator.comparingLong(KeyValue::getModRevision);
      case VALUE -> (a, b) -> ByteString.unsignedLexicographicalComparator().compare(a.getValue(), b.getValue());
      default -> (a, b) -> ByteString.unsignedLexicographicalComparator().compare(a.getKey(), b.getKey());
    };
  }

  public static PutResponse put(MvccStore.StoreTxn txn, PutRequest p) {
    checkLease(txn, p.getLease());
    ByteString value = p.getValue();
    long lease = p.getLease();
    KeyValue prev = null;
    if (p.getIgnoreValue() || p.getIgnoreLease() || p.getPrevKv()) {
      List<KeyValue> found = txn.range(p.getKey().toByteArray(), null, 0, 0, false).kvs();
      prev = found.isEmpty() ? null : found.get(0);
    }
    if ((p.getIgnoreValue() || p.getIgnoreLease()) && prev == null) {
      throw EtcdError.KEY_NOT_FOUND.exception(); // there is no previous value or lease to keep
    }
    if (p.getIgnoreValue()) {
      value = prev.getValue();
    }
    if (p.getIgnoreLease()) {
      lease = prev.getLease();
    }
    txn.put(p.getKey().toByteArray(), value, lease);
    PutResponse.Builder resp = PutResponse.newBuilder().setHeader(header(txn.revision()));
    if (p.getPrevKv() && prev != null) {
      resp.setPrevKv(prev);
    }
    return resp.build();
  }

  public static DeleteRangeResponse deleteRange(MvccStore.StoreTxn txn, DeleteRangeRequest d) {
    List<KeyValue> deleted = txn.deleteRange(d.getKey().toByteArray(), rangeEnd(d.getRangeEnd()));
    DeleteRangeResponse.Builder resp = DeleteRangeResponse.newBuilder()
        .setDeleted(deleted.size())
        .setHeader(header(txn.revision()));
    if (d.getPrevKv()) {
      resp.addAllPrevKvs(deleted);
    }
    return resp.build();
  }

  /**
   * A txn: evaluate the compares (of this txn and of the nested txns on the path taken), check the
   * branch can run whole (so a failure changes nothing), then run it. A txn that writes moves the
   * store one revision; its header carries that revision.
   */
  public static TxnResponse txn(MvccStore.StoreTxn txn, TxnRequest t) {
    List<Boolean> path = comparePath(txn, t, new ArrayList<>());
    checkBranch(txn, t, path.iterator());
    TxnResponse resp = runTxn(txn, t, path.iterator());
    return resp.toBuilder().setHeader(header(txn.revision())).build();
  }

  /** A txn of ranges only: no log entry, no new revision. */
  public static TxnResponse readOnlyTxn(KvReader reader, TxnRequest t) {
    List<Boolean> path = comparePath(reader, t, new ArrayList<>());
    checkBranch(reader, t, path.iterator());
    return runTxn(reader, t, path.iterator()).toBuilder().setHeader(header(reader.revision())).build();
  }

  /**
   * etcd's compareToPath: the outcome of every compare on the path taken — this txn's, then each
   * nested txn's in the chosen branch, depth first — all evaluated against the state before the txn
   * writes anything.
   */
  private static List<Boolean> comparePath(KvReader reader, TxnRequest t, List<Boolean> path) {
    boolean succeeded = compares(reader, t);
    path.add(succeeded);
    for (RequestOp op : succeeded ? t.getSuccessList() : t.getFailureList()) {
      if (op.hasRequestTxn()) {
        comparePath(reader, op.getRequestTxn(), path);
      }
    }
    return path;
  }

  /** True when the txn, in either branch and at any depth, has a put: a write that can grow the keyspace. */
  public static boolean hasPut(TxnRequest t) {
    for (List<RequestOp> ops : List.of(t.getSuccessList(), t.getFailureList())) {
      for (RequestOp op : ops) {
        if (op.hasRequestPut() || (op.hasRequestTxn() && hasPut(op.getRequestTxn()))) {
          return true;
        }
      }
    }
    return false;
  }

  /** True when the txn, in either branch and at any depth, only reads. */
  public static boolean isReadOnly(TxnRequest t) {
    for (List<RequestOp> ops : List.of(t.getSuccessList(), t.getFailureList())) {
      for (RequestOp op : ops) {
        switch (op.getRequestCase()) {
          case REQUEST_PUT, REQUEST_DELETE_RANGE -> {
            return false;
          }
          case REQUEST_TXN -> {
            if (!isReadOnly(op.getRequestTxn())) {
              return false;
            }
          }
          default -> { }
        }
      }
    }
    return true;
  }

  /**
   * Runs the branch the compares choose. Writes need {@code reader} to be a {@link MvccStore.StoreTxn};
   * read-only txns never reach them. A nested txn's header is empty, as etcd leaves it.
   */
  private static TxnResponse runTxn(KvReader txn, TxnRequest t, Iterator<Boolean> path) {
    boolean succeeded = path.next();
    TxnResponse.Builder resp = TxnResponse.newBuilder().setSucceeded(succeeded);
    for (RequestOp op : succeeded ? t.getSuccessList() : t.getFailureList()) {
      ResponseOp.Builder r = ResponseOp.newBuilder();
      switch (op.getRequestCase()) {
        case REQUEST_RANGE -> r.setResponseRange(range(txn, op.getRequestRange()));
        case REQUEST_PUT -> r.setResponsePut(put((MvccStore.StoreTxn) txn, op.getRequestPut()));
        case REQUEST_DELETE_RANGE ->
            r.setResponseDeleteRange(deleteRange((MvccStore.StoreTxn) txn, op.getRequestDeleteRange()));
        case REQUEST_TXN -> r.setResponseTxn(
            runTxn(txn, op.getRequestTxn(), path).toBuilder().setHeader(ResponseHeader.getDefaultInstance()));
        default -> { }
      }
      resp.addResponses(r);
    }
    return resp.build();
  }

  /** etcd's checkRequests: refuse, before any write, a branch that would fail halfway. */
  private static void checkBranch(KvReader reader, TxnRequest t, Iterator<Boolean> path) {
    for (RequestOp op : path.next() ? t.getSuccessList() : t.getFailureList()) {
      switch (op.getRequestCase()) {
        case REQUEST_RANGE -> {
          long rev = op.getRequestRange().getRevision();
          if (rev > reader.revision()) {
            throw EtcdError.FUTURE_REVISION.exception();
          }
          if (rev > 0 && rev < reader.compactRevision()) {
            throw EtcdError.COMPACTED.exception();
          }
        }
        case REQUEST_PUT -> {
          PutRequest p = op.getRequestPut();
          checkLease(reader, p.getLease());
          if ((p.getIgnoreValue() || p.getIgnoreLease())
              && reader.range(p.getKey().toByteArray(), null, 0, 0, true).count() == 0) {
            throw EtcdError.KEY_NOT_FOUND.exception();
          }
        }
        case REQUEST_TXN -> checkBranch(reader, op.getRequestTxn(), path);
        default -> { }
      }
    }
  }

  private static boolean compares(KvReader reader, TxnRequest t) {
    for (Compare c : t.getCompareList()) {
      if (!compare(reader, c)) {
        return false;
      }
    }
    return true;
  }

  /** One compare: every key of its range must pass; a missing key compares as a zero KeyValue. */
  private static boolean compare(KvReader reader, Compare c) {
    List<KeyValue> kvs = mvcc(() -> reader.range(c.getKey().toByteArray(), rangeEnd(c.getRangeEnd()), 0, 0, false)).kvs();
    if (kvs.isEmpty()) {
      // A missing value cannot equal anything, not even the empty value.
      return c.getTarget() != Compare.CompareTarget.VALUE && compareOne(KeyValue.getDefaultInstance(), c);
    }
    for (KeyValue kv : kvs) {
      if (!compareOne(kv, c)) {
        return false;
      }
    }
    return true;
  }

  private static boolean compareOne(KeyValue kv, Compare c) {
    int result = switch (c.getTarget()) {
      case VERSION -> Long.compare(kv.getVersion(), c.getVersion());
      case CREATE -> Long.compare(kv.getCreateRevision(), c.getCreateRevision());
      case MOD -> Long.compare(kv.getModRevision(), c.getModRevision());
      case VALUE -> ByteString.unsignedLexicographicalComparator().compare(kv.getValue(), c.getValue());
      case LEASE -> Long.compare(kv.getLease(), c.getLease());
      default -> 0;
    };
    return switch (c.getResult()) {
      case EQUAL -> result == 0;
      case NOT_EQUAL -> result != 0;
      case GREATER -> result > 0;
      case LESS -> result < 0;
      default -> false;
    };
  }

  /**
   * etcd's range_end conventions mapped to the storage layer's: empty → the single key; "\0" → no
   * upper bound; anything else → exclusive end.
   */
  static byte[] rangeEnd(ByteString end) {
    if (end.isEmpty()) {
      return null;
    }
    if (end.size() == 1 && end.byteAt(0) == 0) {
      return new byte[0];
    }
    return end.toByteArray();
  }

  /** A put may only attach a lease that exists. */
  private static void checkLease(KvReader reader, long lease) {
    if (lease != 0 && !reader.leaseExists(lease)) {
      throw EtcdError.LEASE_NOT_FOUND.exception();
    }
  }

  static ResponseHeader header(long revision) {
    return ResponseHeader.newBuilder().setRevision(revision).build();
  }

  /** Runs a storage read, turning its refusals into etcd's errors. */
  static <T> T mvcc(java.util.function.Supplier<T> read) {
    try {
      return read.get();
    } catch (MvccException e) {
      throw toEtcd(e);
    }
  }

  public static EtcdError.EtcdException toEtcd(MvccException e) {
    return (e.kind() == MvccException.Kind.COMPACTED ? EtcdError.COMPACTED : EtcdError.FUTURE_REVISION).exception();
  }
}
