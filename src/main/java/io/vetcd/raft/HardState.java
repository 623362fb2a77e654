package io.vetcd.raft;

/**
 * The Raft state a member must persist before it answers anyone (Raft figure 2, "persistent state"):
 * the latest term it has seen, whom it voted for in that term (0: nobody), and the highest index it
 * knows to be committed (kept so a restart need not wait for the leader to re-apply).
 *
 * <p>Invariant of a persisted hard state: every entry up to {@code commit} is on the same disk (the
 * core never hands out a commit index whose entries are not in the same or an earlier Ready).
 */
public record HardState(long term, long vote, long commit) {

  public static final HardState EMPTY = new HardState(0, 0, 0);

  public boolean isEmpty() {
    return equals(EMPTY);
  }
}
