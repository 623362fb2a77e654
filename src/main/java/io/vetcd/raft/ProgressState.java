package io.vetcd.raft;

/** How the leader currently replicates to one follower (etcd-io/raft tracker/state.go). */
enum ProgressState {
  /**
   * The leader does not know where the follower's log matches its own: it sends one APP at a time
   * and waits for the answer (or a heartbeat answer) before the next, walking {@code next} back on
   * rejections.
   */
  PROBE,
  /**
   * The follower's log matches up to {@code match}: the leader streams APPs optimistically, advancing
   * {@code next} as it sends, bounded by the inflight window.
   */
  REPLICATE,
  /**
   * The follower needs entries the leader has compacted: a snapshot is on its way, and nothing else is
   * sent until the follower answers or the server reports the snapshot's fate.
   */
  SNAPSHOT,
}
