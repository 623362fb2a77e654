package io.vetcd.server;

import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.watch.WatchHub;

/**
 * The state machine the log is applied to: the MVCC store and what follows it in memory (watchers,
 * lease deadlines, raised alarms).
 */
record Keyspace(MvccStore store, WatchHub watches, Lessor lessor, Alarms alarms) {

  /** The store was replaced (a snapshot from the leader): what follows it in memory starts over from it. */
  void reloaded() {
    lessor.reload(LocalMember.leaseTtls(store));
    alarms.reload(store);
    watches.reset();
  }
}
