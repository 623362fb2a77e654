package io.vetcd.raft;

/** Where an election stands from the candidate's side. */
enum VoteResult {
  /** Neither a quorum of grants nor a quorum of refusals yet. */
  PENDING,
  WON,
  /** Enough refusals that a quorum of grants is no longer possible. */
  LOST,
}
