package io.vetcd.bench.rpc;

import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrantResponse;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveResponse;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import io.vetcd.proto.etcdserverpb.LeaseRevokeResponse;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;

/** The methods of etcd's v3 API that the benchmarks call (paths as in etcd's rpc.proto). */
public final class Methods {

  public static final Method<RangeRequest, RangeResponse> RANGE =
      new Method<>("/etcdserverpb.KV/Range", RangeResponse.parser());
  public static final Method<PutRequest, PutResponse> PUT =
      new Method<>("/etcdserverpb.KV/Put", PutResponse.parser());
  public static final Method<TxnRequest, TxnResponse> TXN =
      new Method<>("/etcdserverpb.KV/Txn", TxnResponse.parser());
  public static final Method<WatchRequest, WatchResponse> WATCH =
      new Method<>("/etcdserverpb.Watch/Watch", WatchResponse.parser());
  public static final Method<LeaseGrantRequest, LeaseGrantResponse> LEASE_GRANT =
      new Method<>("/etcdserverpb.Lease/LeaseGrant", LeaseGrantResponse.parser());
  public static final Method<LeaseRevokeRequest, LeaseRevokeResponse> LEASE_REVOKE =
      new Method<>("/etcdserverpb.Lease/LeaseRevoke", LeaseRevokeResponse.parser());
  public static final Method<LeaseKeepAliveRequest, LeaseKeepAliveResponse> LEASE_KEEP_ALIVE =
      new Method<>("/etcdserverpb.Lease/LeaseKeepAlive", LeaseKeepAliveResponse.parser());

  private Methods() {}
}
