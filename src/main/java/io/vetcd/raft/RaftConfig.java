package io.vetcd.raft;

import java.util.List;

/**
 * The fixed parameters of one member's Raft core. Times are in ticks: the server calls {@link
 * RaftNode#tick()} every heartbeat interval, so with etcd's defaults (100 ms heartbeat, 1000 ms
 * election timeout) {@code heartbeatTick} = 1 and {@code electionTick} = 10.
 *
 * @param id this member's id, non-zero
 * @param voters every voting member's id at start: the cluster's first members, or, on a restart, the
 *     voters as of the state the server applied (changes after it come again as entries it applies);
 *     none for a member joining a running cluster, which follows until the log makes it a member
 * @param learners the non-voting members at start, likewise (none in a new cluster): they receive the
 *     log but neither vote nor count for a quorum
 * @param electionTick a follower that hears no leader for a random number of ticks in [electionTick,
 *     2·electionTick) campaigns (Raft §5.2); a leader with CheckQuorum steps down after electionTick
 *     ticks without hearing from a quorum. Must exceed heartbeatTick.
 * @param heartbeatTick ticks between a leader's heartbeats
 * @param preVote run a pre-vote round before raising the term (thesis §9.6), so a member that was cut
 *     off does not force an election when it returns
 * @param checkQuorum leader steps down without a quorum's recent contact; followers that heard from a
 *     leader within electionTick ignore vote requests (the "leader lease", thesis §6.2 and §4.2.3)
 * @param maxEntriesPerMessage most entries one APP carries
 * @param maxBytesPerMessage most payload bytes one APP carries (one entry is always allowed)
 * @param maxInflightMessages most APPs in flight to one follower in the pipelined (REPLICATE) state
 * @param maxInflightBytes most entry payload bytes in flight to one follower in that state (at least one
 *     APP is always allowed): with large values the message bound alone let 256 MiB queue up for one
 *     follower behind (etcd-io/raft's MaxInflightBytes)
 * @param randomSeed seeds the election-timeout randomness; mixed with {@code id}, so members given the
 *     same seed still draw different timeouts, and a given (seed, id) is fully reproducible
 */
public record RaftConfig(
    long id,
    List<Long> voters,
    List<Long> learners,
    int electionTick,
    int heartbeatTick,
    boolean preVote,
    boolean checkQuorum,
    int maxEntriesPerMessage,
    long maxBytesPerMessage,
    int maxInflightMessages,
    long maxInflightBytes,
    long randomSeed) {

  public RaftConfig {
    voters = voters.stream().distinct().sorted().toList();
    learners = learners.stream().distinct().sorted().toList();
    if (id == 0) {
      throw new IllegalArgumentException("id must be non-zero");
    }
    // No voters: a member joining a running cluster, which learns them from the log the leader sends.
    if (voters.contains(0L)) {
      throw new IllegalArgumentException("voters must be member ids: " + voters);
    }
    if (learners.contains(0L) || learners.stream().anyMatch(voters::contains)) {
      throw new IllegalArgumentException("learners must be member ids that are not voters: " + learners);
    }
    if (heartbeatTick <= 0 || electionTick <= heartbeatTick) {
      throw new IllegalArgumentException(
          "need 0 < heartbeatTick < electionTick, got " + heartbeatTick + ", " + electionTick);
    }
    if (maxEntriesPerMessage <= 0 || maxBytesPerMessage <= 0 || maxInflightMessages <= 0 || maxInflightBytes <= 0) {
      throw new IllegalArgumentException("message and inflight limits must be positive");
    }
  }

  /** etcd's defaults: electionTick 10, heartbeatTick 1, PreVote and CheckQuorum on. */
  public static Builder builder(long id, List<Long> voters) {
    return new Builder(id, voters);
  }

  public static final class Builder {
    private final long id;
    private final List<Long> voters;
    private List<Long> learners = List.of();
    private int electionTick = 10;
    private int heartbeatTick = 1;
    private boolean preVote = true;
    private boolean checkQuorum = true;
    private int maxEntriesPerMessage = 256;
    private long maxBytesPerMessage = 1024 * 1024;
    private int maxInflightMessages = 256;
    private long maxInflightBytes = 8L << 20;
    private long randomSeed;

    private Builder(long id, List<Long> voters) {
      this.id = id;
      this.voters = voters;
    }

    public Builder learners(List<Long> v) {
      learners = v;
      return this;
    }

    public Builder electionTick(int v) {
      electionTick = v;
      return this;
    }

    public Builder heartbeatTick(int v) {
      heartbeatTick = v;
      return this;
    }

    public Builder preVote(boolean v) {
      preVote = v;
      return this;
    }

    public Builder checkQuorum(boolean v) {
      checkQuorum = v;
      return this;
    }

    public Builder maxEntriesPerMessage(int v) {
      maxEntriesPerMessage = v;
      return this;
    }

    public Builder maxBytesPerMessage(long v) {
      maxBytesPerMessage = v;
      return this;
    }

    public Builder maxInflightMessages(int v) {
      maxInflightMessages = v;
      return this;
    }

    public Builder maxInflightBytes(long v) {
      maxInflightBytes = v;
      return this;
    }

    public Builder randomSeed(long v) {
      randomSeed = v;
      return this;
    }

    public RaftConfig build() {
      return new RaftConfig(id, voters, learners, electionTick, heartbeatTick, preVote, checkQuorum,
          maxEntriesPerMessage, maxBytesPerMessage, maxInflightMessages, maxInflightBytes, randomSeed);
    }
  }
}
