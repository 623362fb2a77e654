package io.vetcd.raft;

/**
 * The leader's view of one member's log (etcd-io/raft tracker/progress.go). Only a leader keeps these;
 * they are rebuilt each time a member becomes leader. The leader keeps one for itself too, whose
 * {@code match} is its own durable last index, so that the commit rule counts its own disk like any
 * other (an entry counts as replicated on the leader only once persisted).
 */
final class Progress {

  /**
   * The highest index known to be durable on the member and to match the leader's log.
   * Invariant: {@code 0 <= match < next}. Only ever grows during one leadership.
   */
  long match;
  /**
   * The index of the next entry to send. In REPLICATE it runs ahead of {@code match} by what is in
   * flight; in PROBE it is the probe point ({@code match + 1 <= next}); in SNAPSHOT it is unused.
   */
  long next;
  ProgressState state = ProgressState.PROBE;
  /**
   * PROBE only: an APP with entries was sent and is unanswered, so sending pauses until an answer or
   * a heartbeat answer (one probe per heartbeat for an unresponsive member).
   */
  boolean probeSent;
  /** SNAPSHOT only: the index of the snapshot sent; 0 if its sending failed. */
  long pendingSnapshot;
  /**
   * The member has been heard from since the last CheckQuorum round (reset every electionTick on the
   * leader). The leader's own entry is always active. Also gates snapshots: none to a silent member.
   */
  boolean recentActive;
  /** REPLICATE only: the APPs in flight, bounding the pipeline. */
  final Inflights inflights;

  Progress(long match, long next, int maxInflight) {
    this(match, next, maxInflight, Long.MAX_VALUE);
  }

  Progress(long match, long next, int maxInflight, long maxInflightBytes) {
    this.match = match;
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  void becomeProbe() {
    // After a snapshot, the member is at least at the snapshot unless sending it failed.
    next = state == ProgressState.SNAPSHOT ? Math.max(match + 1, pendingSnapshot + 1) : match + 1;
    state = ProgressState.PROBE;
    probeSent = false;
    pendingSnapshot = 0;
    inflights.reset();
  }

  void becomeReplicate() {
    state = ProgressState.REPLICATE;
    next = match + 1;
    probeSent = false;
    pendingSnapshot = 0;
    inflights.reset();
  }

  void becomeSnapshot(long snapshotIndex) {
    state = ProgressState.SNAPSHOT;
    pendingSnapshot = snapshotIndex;
    probeSent = false;
    inflights.reset();
  }

  /**
   * The member acknowledged everything up to {@code index}. Returns whether {@code match} grew (a
   * stale or duplicate answer changes nothing).
   */
  boolean maybeUpdate(long index) {
    boolean updated = false;
    if (match < index) {
      match = index;
      updated = true;
      probeSent = false;
    }
    next = Math.max(next, index + 1);
    return updated;
  }

  /**
   * The member rejected an APP whose previous entry was at {@code rejected}; {@code hint} is where the
   * member's log may match. Returns false for a stale rejection (one not answering the latest probe,
   * or below {@code match} in REPLICATE), which must be ignored.
   */
  boolean maybeDecrTo(long rejected, long hint) {
    if (state == ProgressState.REPLICATE) {
      if (rejected <= match) {
        return false;
      }
      next = match + 1;
      return true;
    }
    if (next - 1 != rejected) {
      return false;
    }
    next = Math.max(Math.min(rejected, hint + 1), match + 1);
    probeSent = false;
    return true;
  }

  /** An APP carrying {@code count} entries up to {@code lastIndex} was sent. */
  void sentEntries(int count, long lastIndex) {
    sentEntries(count, lastIndex, 0);
  }

  /** As above, for entries of {@code bytes} payload bytes in all. */
  void sentEntries(int count, long lastIndex, long bytes) {
    if (count == 0) {
      return;
    }
    switch (state) {
      case REPLICATE -> {
        next = lastIndex + 1;
        inflights.add(lastIndex, bytes);
      }
      case PROBE -> probeSent = true;
      case SNAPSHOT -> throw new IllegalStateException("sending entries in SNAPSHOT state");
    }
  }

  /** Whether the leader should hold back APPs to this member now. */
  boolean isPaused() {
    return switch (state) {
      case PROBE -> probeSent;
      case REPLICATE -> inflights.full();
      case SNAPSHOT -> true;
    };
  }

  @Override
  public String toString() {
    return state + " match=" + match + " next=" + next
        + (state == ProgressState.SNAPSHOT ? " snap=" + pendingSnapshot : "")
        + (probeSent ? " paused" : "") + " inflight=" + inflights.count() + " (" + inflights.bytes() + " bytes)";
  }
}
