package io.vetcd.raft;

/**
 * The kinds of {@link RaftMessage}. Field use per kind is listed here once, so the transport knows what
 * to carry; fields not listed are zero/empty.
 */
public enum MessageType {
  /**
   * A proposal forwarded by a follower to the leader: {@code entries} (term and index 0, the leader
   * stamps them). Term-less (term 0): it is a request, not protocol state, so a forwarder that lags a
   * term behind does not disturb anyone. {@code from} is the member that proposed.
   */
  PROP,
  /**
   * Leader → follower: append {@code entries} after the entry at ({@code index}, {@code logTerm});
   * {@code commit} is the leader's commit index. Empty {@code entries} probes or carries commit.
   */
  APP,
  /**
   * Follower → leader. Accepted: {@code index} is the last index now known to match the leader's log
   * (and durable: the message leaves only after the Ready that persisted it). Rejected: {@code index}
   * echoes the rejected APP's index, {@code rejectHint}/{@code logTerm} say where to probe next.
   */
  APP_RESP,
  /** Candidate → voter: vote for me at {@code term}; my last entry is ({@code index}, {@code logTerm}). */
  VOTE,
  /** Voter → candidate: granted unless {@code reject}. */
  VOTE_RESP,
  /**
   * As VOTE but for {@code term} = the sender's term + 1, without the sender raising its own term
   * (thesis §9.6). Granting it changes nothing on the voter.
   */
  PRE_VOTE,
  /** Answer to PRE_VOTE; {@code term} is the asked term when granted, the voter's term when not. */
  PRE_VOTE_RESP,
  /**
   * Leader → follower: I am alive; {@code commit} = min(the follower's match, leader commit);
   * {@code context} non-null when the round also confirms leadership for ReadIndex.
   */
  HEARTBEAT,
  /** Follower → leader: echoes the heartbeat's {@code context}. */
  HEARTBEAT_RESP,
  /** Leader → follower: install {@code snapshot} (the follower needs entries the leader compacted). */
  SNAP,
  /**
   * Ask the leader to hand leadership to the member in {@code from} (etcd's convention: {@code from}
   * is the transferee, not the sender). Term-less, forwarded by followers to the leader.
   */
  TRANSFER_LEADER,
  /** Leader → transferee: campaign now, at once, bypassing pre-vote and the leader lease. */
  TIMEOUT_NOW,
  /**
   * Follower → leader: a linearizable read wants an index; {@code context} identifies it and {@code
   * from} is the member waiting. Term-less, like PROP.
   */
  READ_INDEX,
  /** Leader → follower: the read identified by {@code context} may proceed once applied ≥ index. */
  READ_INDEX_RESP;

  /** The answer a voter gives to this request kind. */
  MessageType response() {
    return switch (this) {
      case VOTE -> VOTE_RESP;
      case PRE_VOTE -> PRE_VOTE_RESP;
      default -> throw new IllegalArgumentException(this + " has no vote response");
    };
  }
}
