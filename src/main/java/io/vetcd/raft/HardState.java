package io.vetcd.raft;

/**
 * The Raft state a member must persist before it answers anyone (Raft figure 2, "persistent state"):
 * the latest term it has seen, whom it voted for in that term (0: nobody), and the highest index it
 * knows to be committed (kept so a restart need not wait for the leader to re-apply).
 */
public record HardState(long term, long vote, long commit) {

  public static final HardState EMPTY = new HardState(0, 0, 0);
}
