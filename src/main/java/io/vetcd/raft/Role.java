package io.vetcd.raft;

/** What a member currently is in the protocol (Raft §5.2, plus the pre-vote phase of thesis §9.6). */
public enum Role {
  FOLLOWER,
  /** Asking whether it could win an election, without raising its term (thesis §9.6). */
  PRE_CANDIDATE,
  CANDIDATE,
  LEADER,
}
