package io.vetcd.server;

/**
 * When a member refuses new proposals with etcd's "etcdserver: too many requests" instead of letting
 * them pile up in memory: when its keyspace is more than {@link #MAX_APPLY_GAP} committed entries
 * behind (etcd 3.4's maxGapBetweenApplyAndCommitIndex), or when the entries not yet committed, with
 * those proposed and not yet handed to the core, would hold more than {@link #MAX_UNCOMMITTED_BYTES}
 * (etcd-io/raft's MaxUncommittedEntriesSize: a cluster that cannot commit, or a flood of large values,
 * would otherwise grow the leader's heap without bound). A refused request changed nothing; the
 * client may retry.
 */
final class ProposalBounds {

  static final long MAX_APPLY_GAP = 5000;
  static final long MAX_UNCOMMITTED_BYTES = 64L << 20;

  private ProposalBounds() {}

  /**
   * Whether a proposal of {@code bytes} must be refused, given the commit and applied indexes, the
   * uncommitted entries' bytes and those of proposals queued before it.
   */
  static boolean refuse(long commitIndex, long appliedIndex, long uncommittedBytes, long queuedBytes, long bytes) {
    return commitIndex - appliedIndex > MAX_APPLY_GAP
        || uncommittedBytes + queuedBytes + bytes > MAX_UNCOMMITTED_BYTES;
  }
}
