package io.vetcd.server;

import io.vetcd.auth.AuthStore;
import io.vetcd.auth.Caller;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.authpb.Permission;
import io.vetcd.proto.etcdserverpb.Compare;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.internal.InternalRequest;
import java.util.List;

/**
 * The permissions a client's request needs, as etcd's authApplierV3 checks them: a put needs write on
 * its key (and read with prev_kv; write on every key already attached to its lease, which it could
 * otherwise revoke); a delete write on its range (and read with prev_kv); a txn read on every compared
 * key and what each of its operations needs, nested txns too (etcd 3.4 does not look into those); a
 * lease revoke write on every key attached. Compaction and lease grants need nothing, as in etcd.
 * Writes are checked as their entry applies, against the store as of that entry ({@link #check}); a
 * read-only txn, which never enters the log, by the API after its read barrier ({@link #txn}).
 */
public final class WriteChecks {

  private WriteChecks() {}

  /** Throws etcd's error for the first permission the caller lacks. */
  public static void check(AuthStore auth, Caller caller, InternalRequest req, MvccStore.WriteBatch batch) {
    switch (req.getRequestCase()) {
      case PUT -> put(auth, caller, req.getPut(), batch);
      case DELETE_RANGE -> delete(auth, caller, req.getDeleteRange());
      case TXN -> txn(auth, caller, req.getTxn());
      case LEASE_REVOKE -> leaseKeys(auth, caller, batch.begin().leaseKeys(req.getLeaseRevoke().getID()));
      default -> { }
    }
  }

  private static void put(AuthStore auth, Caller caller, PutRequest p, MvccStore.WriteBatch batch) {
    auth.checkKeys(caller, p.getKey().toByteArray(), null, Permission.Type.WRITE);
    if (p.getLease() != 0) {
      leaseKeys(auth, caller, batch.begin().leaseKeys(p.getLease())); // a txn with no change: a read
    }
    if (p.getPrevKv()) {
      auth.checkKeys(caller, p.getKey().toByteArray(), null, Permission.Type.READ);
    }
  }

  private static void delete(AuthStore auth, Caller caller, DeleteRangeRequest d) {
    auth.checkKeys(caller, d.getKey().toByteArray(), d.getRangeEnd().toByteArray(), Permission.Type.WRITE);
    if (d.getPrevKv()) {
      auth.checkKeys(caller, d.getKey().toByteArray(), d.getRangeEnd().toByteArray(), Permission.Type.READ);
    }
  }

  public static void txn(AuthStore auth, Caller caller, TxnRequest t) {
    for (Compare c : t.getCompareList()) {
      auth.checkKeys(caller, c.getKey().toByteArray(), c.getRangeEnd().toByteArray(), Permission.Type.READ);
    }
    ops(auth, caller, t.getSuccessList());
    ops(auth, caller, t.getFailureList());
  }

  private static void ops(AuthStore auth, Caller caller, List<RequestOp> ops) {
    for (RequestOp op : ops) {
      switch (op.getRequestCase()) {
        case REQUEST_RANGE -> auth.checkKeys(caller, op.getRequestRange().getKey().toByteArray(),
            op.getRequestRange().getRangeEnd().toByteArray(), Permission.Type.READ);
        case REQUEST_PUT -> auth.checkKeys(caller, op.getRequestPut().getKey().toByteArray(), null,
            Permission.Type.WRITE);
        case REQUEST_DELETE_RANGE -> delete(auth, caller, op.getRequestDeleteRange());
        case REQUEST_TXN -> txn(auth, caller, op.getRequestTxn());
        default -> { }
      }
    }
  }

  private static void leaseKeys(AuthStore auth, Caller caller, List<byte[]> keys) {
    for (byte[] key : keys) {
      auth.checkKeys(caller, key, null, Permission.Type.WRITE);
    }
  }
}
