package io.vetcd.api;

import com.google.protobuf.ByteString;
import io.vetcd.proto.etcdserverpb.Compare;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.server.EtcdError;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The checks etcd makes before a request reaches consensus (etcd's api/v3rpc/key.go), with its
 * errors. A request refused here costs nothing and changes nothing.
 */
final class RequestChecks {

  private RequestChecks() {}

  static void range(RangeRequest r) {
    if (r.getKey().isEmpty()) {
      throw EtcdError.EMPTY_KEY.exception();
    }
  }

  static void put(PutRequest r) {
    if (r.getKey().isEmpty()) {
      throw EtcdError.EMPTY_KEY.exception();
    }
    if (r.getIgnoreValue() && !r.getValue().isEmpty()) {
      throw EtcdError.VALUE_PROVIDED.exception();
    }
    if (r.getIgnoreLease() && r.getLease() != 0) {
      throw EtcdError.LEASE_PROVIDED.exception();
    }
  }

  static void deleteRange(DeleteRangeRequest r) {
    if (r.getKey().isEmpty()) {
      throw EtcdError.EMPTY_KEY.exception();
    }
  }

  /** Op counts and keys first (cheap), then the overlap rule, as etcd orders them. */
  static void txn(TxnRequest r, int maxTxnOps) {
    txnShape(r, maxTxnOps);
    overlaps(r.getSuccessList());
    overlaps(r.getFailureList());
  }

  private static void txnShape(TxnRequest r, int maxTxnOps) {
    int ops = Math.max(r.getCompareCount(), Math.max(r.getSuccessCount(), r.getFailureCount()));
    if (ops > maxTxnOps) {
      throw EtcdError.TOO_MANY_OPS.exception();
    }
    for (Compare c : r.getCompareList()) {
      if (c.getKey().isEmpty()) {
        throw EtcdError.EMPTY_KEY.exception();
      }
    }
    for (List<RequestOp> branch : List.of(r.getSuccessList(), r.getFailureList())) {
      for (RequestOp op : branch) {
        switch (op.getRequestCase()) {
          case REQUEST_RANGE -> range(op.getRequestRange());
          case REQUEST_PUT -> put(op.getRequestPut());
          case REQUEST_DELETE_RANGE -> deleteRange(op.getRequestDeleteRange());
          case REQUEST_TXN -> txnShape(op.getRequestTxn(), maxTxnOps);
          default -> { }
        }
      }
    }
  }

  /** A half-open key interval [start, end) of a delete; a point when end is empty. */
  private record Interval(ByteString start, ByteString end) {
    boolean contains(ByteString key) {
      if (end.isEmpty()) {
        return start.equals(key);
      }
      return compare(start, key) <= 0 && compare(key, end) < 0;
    }
  }

  private record Writes(Set<ByteString> puts, List<Interval> deletes) {
    boolean deletes(ByteString key) {
      return deletes.stream().anyMatch(d -> d.contains(key));
    }
  }

  /**
   * etcd's checkIntervals: within one branch (and the txns nested in it), a key may be put only once
   * and not also deleted; the two branches of a nested txn exclude each other, so they may repeat.
   */
  private static Writes overlaps(List<RequestOp> ops) {
    List<Interval> deletes = new ArrayList<>();
    for (RequestOp op : ops) {
      if (op.hasRequestDeleteRange()) {
        DeleteRangeRequest d = op.getRequestDeleteRange();
        deletes.add(new Interval(d.getKey(), d.getRangeEnd()));
      }
    }
    Writes level = new Writes(new HashSet<>(), deletes);
    for (RequestOp op : ops) {
      if (!op.hasRequestTxn()) {
        continue;
      }
      Writes then = overlaps(op.getRequestTxn().getSuccessList());
      Writes otherwise = overlaps(op.getRequestTxn().getFailureList());
      for (ByteString k : then.puts()) {
        if (level.puts().contains(k) || level.deletes(k)) {
          throw EtcdError.DUPLICATE_KEY.exception();
        }
        level.puts().add(k);
      }
      for (ByteString k : otherwise.puts()) {
        if ((level.puts().contains(k) && !then.puts().contains(k)) || level.deletes(k)) {
          throw EtcdError.DUPLICATE_KEY.exception();
        }
        level.puts().add(k);
      }
      deletes.addAll(then.deletes());
      deletes.addAll(otherwise.deletes());
    }
    for (RequestOp op : ops) {
      if (!op.hasRequestPut()) {
        continue;
      }
      ByteString k = op.getRequestPut().getKey();
      if (level.puts().contains(k) || level.deletes(k)) {
        throw EtcdError.DUPLICATE_KEY.exception();
      }
      level.puts().add(k);
    }
    return level;
  }

  private static int compare(ByteString a, ByteString b) {
    return ByteString.unsignedLexicographicalComparator().compare(a, b);
  }
}
