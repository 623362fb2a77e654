package io.vetcd.server;

import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.watch.WatchHub;

/**
 * The state machine the log is applied to: the MVCC store and what follows it in memory (watchers,
 * lease deadlines, raised alarms, the auth store and its tokens).
 */
record Keyspace(MvccStore store, WatchHub watches, Lessor lessor, Alarms alarms, Auth auth) {

  /** The member list as the keyspace has applied it. */
  io.vetcd.proto.internal.ClusterRecord clusterRecord() {
    try (MvccStore.ReadView view = store.read()) {
      return clusterRecordOf(view.record(LocalMember.CLUSTER_RECORD));
    }
  }

  static io.vetcd.proto.internal.ClusterRecord clusterRecordOf(byte[] stored) {
    try {
      return stored == null ? io.vetcd.proto.internal.ClusterRecord.getDefaultInstance()
          : io.vetcd.proto.internal.ClusterRecord.parseFrom(stored);
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException("the cluster record in the keyspace is corrupt", e);
    }
  }

  /** The store was replaced (a snapshot from the leader): what follows it in memory starts over from it. */
  void reloaded() {
    lessor.reload(LocalMember.leaseTtls(store));
    alarms.reload(store);
    auth.reload(store);
    watches.authChanged();
    watches.reset();
  }
}
