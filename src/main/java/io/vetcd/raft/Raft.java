package io.vetcd.raft;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;

/**
 * The Raft state machine of one member (etcd-io/raft raft.go): roles, terms, votes, replication and
 * commit. It only reacts to {@link #tick()}, {@link #step(RaftMessage)} and the local requests, and only
 * produces data: messages in {@link #messages}/{@link #leaderMessages}, read states, and changes to
 * its fields and {@link #log}. {@link RaftNode} turns those into Readies.
 *
 * <p>Single-threaded and deterministic: the only randomness is the election timeout, drawn from a
 * {@link Random} seeded by the configuration.
 */
final class Raft {

  /** Marks a VOTE sent because of TIMEOUT_NOW: voters honour it even inside a leader lease. */
  static final byte[] TRANSFER_CONTEXT = "vetcd-transfer".getBytes(StandardCharsets.US_ASCII);

  private enum CampaignKind { PRE_ELECTION, ELECTION, TRANSFER }

  /** This member's id; never 0 (0 means "nobody" in {@code vote} and {@code lead}). */
  final long id;
  final RaftConfig config;
  /** The voting members, sorted; changed only by {@link #applyConfChange}. */
  List<Long> voters;
  /** The members that receive the log without voting, sorted, disjoint from {@code voters}. */
  List<Long> learners;
  /**
   * Leader only: the index of the last membership change it appended. Another is refused (turned into
   * an empty entry) until the server has applied this one, so configurations change one at a time and
   * any two in a row share a majority (thesis §4.1).
   */
  long pendingConfIndex;
  /**
   * How far the server reports it has applied ({@link RaftNode#reportApplied}): not the log's applied
   * index, which moves when entries are handed out, before the apply thread has applied them.
   */
  long serverApplied;
  /** The log and how far each part of it has got (persisted, committed, applied). */
  final RaftLog log;
  /** Draws election timeouts; seeded, so a run is reproducible. */
  private final Random random;

  /** The latest term seen (Raft figure 2). Persisted. Never decreases. */
  long term;
  /** Whom we voted for in {@code term} (0: nobody). Persisted. Set at most once per term. */
  long vote;
  /** The leader of {@code term} as far as we know (0: unknown). */
  long lead;
  /** Our role in {@code term}; LEADER implies {@code lead == id} and {@code vote == id}. */
  Role role = Role.FOLLOWER;

  /**
   * Ticks since we last heard from the leader (follower), since the campaign started (candidate), or
   * since the last CheckQuorum round (leader). Also the leader lease: a follower with {@code lead != 0}
   * and {@code electionElapsed < electionTick} ignores vote requests when CheckQuorum is on.
   */
  int electionElapsed;
  /** Leader only: ticks since the last heartbeat broadcast. Invariant: {@code < heartbeatTick}. */
  int heartbeatElapsed;
  /** This term's election timeout, drawn in [electionTick, 2·electionTick) (Raft §5.2). */
  int randomizedElectionTimeout;
  /**
   * Leader only: the member leadership is being handed to (0: none). While set, proposals are
   * refused so the transferee can catch up; aborted after an election timeout (thesis §3.10).
   */
  long leadTransferee;

  /** Leader only: every voter's replication state, this member's included. */
  final Map<Long, Progress> progress = new TreeMap<>();
  /** (Pre-)candidate only: the answers received in this campaign, by voter. */
  final Map<Long, Boolean> votes = new TreeMap<>();
  /** Leader only: ReadIndex requests waiting for a heartbeat quorum. */
  PendingReads pendingReads = new PendingReads();
  /**
   * Leader only: ReadIndex requests that arrived before the leader committed an entry of its own
   * term (until then its commit index may lag the previous leader's, thesis §6.4 step 1).
   */
  final List<RaftMessage> earlyReads = new ArrayList<>();

  /** Messages to send only after the Ready they are in is persisted. */
  final List<RaftMessage> messages = new ArrayList<>();
  /** Leader's replication traffic, sendable before persisting (thesis §10.2.1). */
  final List<RaftMessage> leaderMessages = new ArrayList<>();
  /** Answered local reads. */
  final List<ReadState> readStates = new ArrayList<>();

  Raft(RaftConfig config, HardState hardState, Snapshot snapshot, List<Entry> entries, long applied,
      LogStorage storage) {
    this.id = config.id();
    this.config = config;
    this.voters = config.voters();
    this.learners = config.learners();
    this.random = new Random(config.randomSeed() ^ (id * 0x9E3779B97F4A7C15L));
    this.log = new RaftLog(snapshot, entries, hardState.commit(), applied, storage);
    this.serverApplied = applied;
    if (hardState.vote() != 0 && hardState.term() == 0) {
      throw new IllegalArgumentException("vote without a term: " + hardState);
    }
    this.term = hardState.term();
    this.vote = hardState.vote();
    becomeFollower(term, 0);
  }

  HardState hardState() {
    return new HardState(term, vote, log.committed());
  }

  SoftState softState() {
    return new SoftState(lead, role);
  }

  /**
   * Whether a membership change this member knows committed is not yet applied by the server
   * (etcd-io/raft's hasUnappliedConfChanges): then it must not campaign. It would count votes, and as
   * leader commits, with a member list one or two changes old, whose majority need not meet the
   * current one's: a write acknowledged through it could be lost. It campaigns once its apply thread
   * caught up.
   */
  private boolean confChangeToApply() {
    long lo = Math.max(serverApplied, log.firstIndex() - 1) + 1;
    long hi = log.committed();
    while (lo <= hi) {
      List<Entry> batch = log.entriesFrom(lo, (int) Math.min(1024, hi - lo + 1), Long.MAX_VALUE);
      if (batch == null || batch.isEmpty()) {
        return false; // compacted: a snapshot the server installs stands for them, with its member list
      }
      for (Entry e : batch) {
        if (e.index() > hi) {
          return false;
        }
        if (e.type() == Entry.Type.CONF_CHANGE) {
          return true;
        }
      }
      lo = batch.get(batch.size() - 1).index() + 1;
    }
    return false;
  }

  /** Whether this member may campaign: it is a voter (a learner or a removed member never is). */
  boolean promotable() {
    return voters.contains(id);
  }

  ConfState confState() {
    return new ConfState(voters, learners);
  }

  // ---------------------------------------------------------------- time

  void tick() {
    if (role == Role.LEADER) {
      tickHeartbeat();
    } else {
      tickElection();
    }
  }

  private void tickElection() {
    electionElapsed++;
    if (promotable() && electionElapsed >= randomizedElectionTimeout) {
      electionElapsed = 0;
      hup();
    }
  }

  private void tickHeartbeat() {
    heartbeatElapsed++;
    electionElapsed++;
    if (electionElapsed >= config.electionTick()) {
      electionElapsed = 0;
      if (config.checkQuorum() && !quorumRecentlyActive()) {
        // Thesis §6.2: a leader cut off from a quorum stops serving, so clients go elsewhere and a
        // stale leader cannot hand out stale ReadIndex answers for long.
        becomeFollower(term, 0);
        return;
      }
      // The transfer did not finish within an election timeout: take proposals again.
      leadTransferee = 0;
    }
    if (heartbeatElapsed >= config.heartbeatTick()) {
      heartbeatElapsed = 0;
      broadcastHeartbeat();
    }
  }

  /** Whether a quorum was heard from since the last round; starts the next round. */
  private boolean quorumRecentlyActive() {
    List<Long> active = new ArrayList<>();
    for (Map.Entry<Long, Progress> e : progress.entrySet()) {
      if (e.getKey() == id || e.getValue().recentActive) {
        active.add(e.getKey());
      }
      if (e.getKey() != id) {
        e.getValue().recentActive = false;
      }
    }
    return MajorityQuorum.isQuorum(voters, active);
  }

  private void resetRandomizedElectionTimeout() {
    randomizedElectionTimeout = config.electionTick() + random.nextInt(config.electionTick());
  }

  // ---------------------------------------------------------------- roles

  /** Moves to {@code newTerm} (forgetting the vote if it is a new term) and clears per-term state. */
  private void reset(long newTerm) {
    if (term != newTerm) {
      term = newTerm;
      vote = 0;
    }
    lead = 0;
    electionElapsed = 0;
    heartbeatElapsed = 0;
    resetRandomizedElectionTimeout();
    leadTransferee = 0;
    votes.clear();
    progress.clear();
    pendingReads = new PendingReads();
    earlyReads.clear();
  }

  void becomeFollower(long newTerm, long leader) {
    reset(newTerm);
    lead = leader;
    role = Role.FOLLOWER;
  }

  private void becomePreCandidate() {
    if (role == Role.LEADER) {
      throw new IllegalStateException("leader cannot become pre-candidate");
    }
    // Neither term nor vote changes: that is the point of pre-vote (thesis §9.6).
    votes.clear();
    lead = 0;
    electionElapsed = 0;
    role = Role.PRE_CANDIDATE;
  }

  private void becomeCandidate() {
    if (role == Role.LEADER) {
      throw new IllegalStateException("leader cannot become candidate");
    }
    reset(term + 1);
    vote = id;
    role = Role.CANDIDATE;
  }

  private void becomeLeader() {
    if (role == Role.FOLLOWER) {
      throw new IllegalStateException("follower cannot become leader");
    }
    reset(term);
    lead = id;
    role = Role.LEADER;
    for (long v : voters) {
      progress.put(v, newProgress());
    }
    for (long l : learners) {
      progress.put(l, newProgress());
    }
    // Whether a change is among the entries not yet applied is not known here: take none until all of
    // them are (etcd-io/raft does the same).
    pendingConfIndex = log.lastIndex();
    Progress self = progress.get(id);
    self.match = log.persisted();
    self.becomeReplicate();
    self.next = log.lastIndex() + 1;
    self.recentActive = true;
    // Raft §5.4.2 / thesis §6.4: an entry of our own term, so earlier ones commit and reads can go.
    appendEntries(List.of(Entry.empty(0, 0)));
  }

  private Progress newProgress() {
    return new Progress(0, log.lastIndex() + 1, config.maxInflightMessages(), config.maxInflightBytes());
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election if this member may (the tick timeout and {@link RaftNode#campaign()}). */
  void hup() {
    if (role == Role.LEADER || !promotable() || confChangeToApply()) {
      return;
    }
    campaign(config.preVote() ? CampaignKind.PRE_ELECTION : CampaignKind.ELECTION);
  }

  private void campaign(CampaignKind kind) {
    MessageType type;
    long voteTerm;
    if (kind == CampaignKind.PRE_ELECTION) {
      becomePreCandidate();
      type = MessageType.PRE_VOTE;
      voteTerm = term + 1;
    } else {
      becomeCandidate();
      type = MessageType.VOTE;
      voteTerm = term;
    }
    // Our own vote counts at once: the requests below leave only after the Ready holding our new
    // term and vote is durable, so no answer can arrive before then.
    if (poll(id, true) == VoteResult.WON) {
      // A single-voter cluster.
      if (kind == CampaignKind.PRE_ELECTION) {
        campaign(CampaignKind.ELECTION);
      } else {
        becomeLeader();
      }
      return;
    }
    for (long v : voters) {
      if (v == id) {
        continue;
      }
      send(out(type).to(v).term(voteTerm).index(log.lastIndex())
          .logTerm(log.lastTerm())
          .context(kind == CampaignKind.TRANSFER ? TRANSFER_CONTEXT : null).build());
    }
  }

  private VoteResult poll(long from, boolean granted) {
    votes.putIfAbsent(from, granted);
    return MajorityQuorum.voteResult(voters, votes);
  }

  // ---------------------------------------------------------------- messages in

  /** Handles a message from a peer. Stale, misaddressed and unknown-sender messages are dropped. */
  void step(RaftMessage m) {
    if (m.to() != id) {
      return;
    }
    if (m.term() > term) {
      if (m.type() == MessageType.VOTE || m.type() == MessageType.PRE_VOTE) {
        boolean force = Arrays.equals(m.context(), TRANSFER_CONTEXT);
        boolean inLease = config.checkQuorum() && lead != 0
            && electionElapsed < config.electionTick();
        if (!force && inLease) {
          // Thesis §4.2.3: we heard from a live leader within the minimum election timeout, so this
          // candidate is the disruptive one (e.g. just back from a partition). Do not even raise our
          // term for it.
          return;
        }
      }
      if (m.type() == MessageType.PRE_VOTE) {
        // A pre-vote asks about a future term; answering changes nothing here.
      } else if (m.type() == MessageType.PRE_VOTE_RESP && !m.reject()) {
        // A grant for the term we would campaign at; the term moves only when we campaign.
      } else if (m.type() == MessageType.APP || m.type() == MessageType.HEARTBEAT
          || m.type() == MessageType.SNAP) {
        becomeFollower(m.term(), m.from());
      } else {
        becomeFollower(m.term(), 0);
      }
    } else if (m.term() < term && !isTermless(m.type())) {
      if ((config.checkQuorum() || config.preVote() || !promotable())
          && (m.type() == MessageType.APP || m.type() == MessageType.HEARTBEAT)) {
        // A leader of an old term is talking to us. With the lease or pre-vote, a member that raised
        // its term alone (partitioned) could never win nor learn the leader; answering with our term
        // makes that stale leader step down so the cluster can converge. A learner, or a member that
        // joined and knows no voters yet, can never campaign to end the gap itself: it always answers
        // (found by RaftSimulationTest's membership sweep: a joiner whose term a removed member's vote
        // request raised ignored the leader for good).
        send(out(MessageType.APP_RESP).to(m.from()).term(term).build());
      } else if (m.type() == MessageType.PRE_VOTE) {
        // Tell the pre-candidate our term so it catches up instead of retrying forever.
        send(out(MessageType.PRE_VOTE_RESP).to(m.from()).term(term).reject(true)
            .build());
      }
      return;
    }

    if (m.type() == MessageType.VOTE || m.type() == MessageType.PRE_VOTE) {
      handleVoteRequest(m);
      return;
    }
    switch (role) {
      case LEADER -> stepLeader(m);
      case CANDIDATE, PRE_CANDIDATE -> stepCandidate(m);
      case FOLLOWER -> stepFollower(m);
    }
  }

  private static boolean isTermless(MessageType t) {
    return t == MessageType.PROP || t == MessageType.READ_INDEX
        || t == MessageType.TRANSFER_LEADER;
  }

  private void handleVoteRequest(RaftMessage m) {
    boolean pre = m.type() == MessageType.PRE_VOTE;
    // Raft §5.2: one vote per term, first come first served (repeating it to the same candidate is
    // fine). A pre-vote for a later term is not a vote and binds nothing.
    boolean canVote = vote == m.from() || (vote == 0 && lead == 0) || (pre && m.term() > term);
    if (canVote && log.isUpToDate(m.index(), m.logTerm())) {
      send(out(m.type().response()).to(m.from()).term(m.term()).build());
      if (!pre) {
        electionElapsed = 0;
        vote = m.from();
      }
    } else {
      send(out(m.type().response()).to(m.from()).term(term).reject(true).build());
    }
  }

  private void stepFollower(RaftMessage m) {
    switch (m.type()) {
      case PROP, READ_INDEX, TRANSFER_LEADER -> {
        if (lead != 0) {
          send(m.withTo(lead));
        }
      }
      case APP -> {
        electionElapsed = 0;
        lead = m.from();
        handleAppend(m);
      }
      case HEARTBEAT -> {
        electionElapsed = 0;
        lead = m.from();
        handleHeartbeat(m);
      }
      case SNAP -> {
        electionElapsed = 0;
        lead = m.from();
        handleSnapshot(m);
      }
      case TIMEOUT_NOW -> {
        if (promotable() && !confChangeToApply()) {
          // Thesis §3.10: the leader asked us to take over; we know it is alive, so no pre-vote.
          campaign(CampaignKind.TRANSFER);
        }
      }
      case READ_INDEX_RESP -> readStates.add(new ReadState(m.index(), m.context()));
      default -> { }
    }
  }

  private void stepCandidate(RaftMessage m) {
    MessageType myResponse =
        role == Role.PRE_CANDIDATE ? MessageType.PRE_VOTE_RESP : MessageType.VOTE_RESP;
    switch (m.type()) {
      case APP -> {
        // Raft §5.2: a leader of our term exists; concede.
        becomeFollower(m.term(), m.from());
        handleAppend(m);
      }
      case HEARTBEAT -> {
        becomeFollower(m.term(), m.from());
        handleHeartbeat(m);
      }
      case SNAP -> {
        becomeFollower(m.term(), m.from());
        handleSnapshot(m);
      }
      default -> {
        if (m.type() != myResponse) {
          return; // proposals and reads are dropped: no leader known
        }
        switch (poll(m.from(), !m.reject())) {
          case WON -> {
            if (role == Role.PRE_CANDIDATE) {
              campaign(CampaignKind.ELECTION);
            } else {
              becomeLeader();
              broadcastAppend();
            }
          }
          case LOST -> becomeFollower(term, 0);
          case PENDING -> { }
        }
      }
    }
  }

  private void stepLeader(RaftMessage m) {
    Progress pr = progress.get(m.from());
    switch (m.type()) {
      case PROP -> propose(m.entries());
      case READ_INDEX -> handleReadIndex(m);
      case TRANSFER_LEADER -> transferLeadership(m.from());
      case APP_RESP -> {
        if (pr != null) {
          handleAppendResponse(m, pr);
        }
      }
      case HEARTBEAT_RESP -> {
        if (pr != null) {
          handleHeartbeatResponse(m, pr);
        }
      }
      default -> { }
    }
  }

  // ---------------------------------------------------------------- follower side of replication

  private void handleAppend(RaftMessage m) {
    if (m.index() < log.committed()) {
      // Everything up to our commit matches any leader's log (Leader Completeness), so the APP is
      // old; tell the leader where we really are.
      send(out(MessageType.APP_RESP).to(m.from()).term(term).index(log.committed())
          .build());
      return;
    }
    long lastNew = log.maybeAppend(m.index(), m.logTerm(), m.commit(), m.entries());
    if (lastNew >= 0) {
      send(out(MessageType.APP_RESP).to(m.from()).term(term).index(lastNew).build());
      return;
    }
    // Raft §5.3 consistency check failed. Fast backtracking (§5.3, last paragraphs): point the leader
    // at our last entry whose term is at most the one it asked about; everything after that entry
    // has a later term than the leader's entry at the same place, so cannot match.
    long hint = log.findConflictByTerm(Math.min(m.index(), log.lastIndex()), m.logTerm());
    send(out(MessageType.APP_RESP).to(m.from()).term(term).index(m.index())
        .reject(true).rejectHint(hint).logTerm(log.term(hint)).build());
  }

  private void handleHeartbeat(RaftMessage m) {
    // The leader sends min(our match, its commit), so this never passes what we hold in common.
    log.commitTo(Math.min(m.commit(), log.lastIndex()));
    send(out(MessageType.HEARTBEAT_RESP).to(m.from()).term(term)
        .context(m.context()).build());
  }

  private void handleSnapshot(RaftMessage m) {
    Snapshot s = m.snapshot();
    if (s == null) {
      return;
    }
    if (s.index() <= log.committed()) {
      // Already have it all.
    } else if (log.matchTerm(s.index(), s.term())) {
      // Our log already holds the snapshot's last entry, hence everything before it: just commit.
      log.commitTo(s.index());
    } else {
      log.restore(s);
      restoreConfState(s);
    }
    send(out(MessageType.APP_RESP).to(m.from()).term(term).index(log.committed())
        .build());
  }

  // ---------------------------------------------------------------- leader side of replication

  /** Leader: appends proposals to the log and starts replicating them. False if refused. */
  boolean propose(List<Entry> proposed) {
    if (role != Role.LEADER || leadTransferee != 0) {
      return false;
    }
    appendEntries(proposed);
    broadcastAppend();
    return true;
  }

  private void appendEntries(List<Entry> proposed) {
    long index = log.lastIndex();
    List<Entry> stamped = new ArrayList<>(proposed.size());
    for (Entry e : proposed) {
      ++index;
      if (e.type() == Entry.Type.CONF_CHANGE) {
        if (pendingConfIndex > serverApplied) {
          // One change at a time: this one is dropped, its place kept by an empty entry (the server's
          // timeout answers its caller; etcd's server refuses a second change before proposing it).
          stamped.add(Entry.empty(term, index));
          continue;
        }
        pendingConfIndex = index;
      }
      stamped.add(e.at(term, index));
    }
    log.append(stamped);
    // Our own match moves only when the server reports the entries durable (onPersisted).
    progress.get(id).next = log.lastIndex() + 1;
  }

  /** The server persisted more of our log: as leader, count our own copy now (thesis §10.2.1). */
  void onPersisted() {
    if (role != Role.LEADER) {
      return;
    }
    progress.get(id).maybeUpdate(log.persisted());
    if (maybeCommit()) {
      releaseEarlyReads();
      broadcastAppend();
    }
  }

  private void handleAppendResponse(RaftMessage m, Progress pr) {
    pr.recentActive = true;
    if (m.reject()) {
      long next = m.rejectHint();
      if (m.logTerm() > 0) {
        // Skip, on our side too, every entry whose term is above the follower's term at the hint.
        next = log.findConflictByTerm(m.rejectHint(), m.logTerm());
      }
      if (pr.maybeDecrTo(m.index(), next)) {
        if (pr.state == ProgressState.REPLICATE) {
          pr.becomeProbe();
        }
        sendAppend(m.from());
      }
      return;
    }
    boolean wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index())) {
      return;
    }
    switch (pr.state) {
      case PROBE -> pr.becomeReplicate();
      case SNAPSHOT -> {
        if (pr.match + 1 >= log.firstIndex()) {
          // The snapshot (or entries it saw) landed: ordinary replication can resume.
          pr.becomeProbe();
          pr.becomeReplicate();
        }
      }
      case REPLICATE -> pr.inflights.freeLE(m.index());
    }
    if (maybeCommit()) {
      releaseEarlyReads();
      broadcastAppend();
    } else if (wasPaused) {
      sendAppend(m.from());
    }
    // Fill the pipeline.
    while (maybeSendAppend(m.from(), false)) {
      // keep going
    }
    if (m.from() == leadTransferee && pr.match == log.lastIndex()) {
      sendTimeoutNow(m.from());
    }
  }

  private void handleHeartbeatResponse(RaftMessage m, Progress pr) {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state == ProgressState.REPLICATE && pr.inflights.full()) {
      // It is alive: let one more message through in case an APP was lost.
      pr.inflights.freeFirstOne();
    }
    if (pr.match < log.lastIndex()) {
      sendAppend(m.from());
    }
    if (m.context() == null) {
      return;
    }
    Set<Long> acks = pendingReads.ack(m.from(), m.context());
    if (acks == null || !MajorityQuorum.isQuorum(voters, acks)) {
      return;
    }
    for (PendingReads.Pending p : pendingReads.releaseThrough(m.context())) {
      answerRead(p.request(), p.index());
    }
  }

  /**
   * Raft §5.3/§5.4.2: commit the highest index a quorum holds, but only if that entry is of the
   * current term; entries of earlier terms commit with it, never by counting their own replicas
   * (figure 8 shows why).
   */
  boolean maybeCommit() {
    long index = MajorityQuorum.committedIndex(voters, v -> progress.get(v).match);
    if (index > log.committed() && log.term(index) == term) {
      log.commitTo(index);
      return true;
    }
    return false;
  }

  /** To every member the leader tracks: voters and learners. */
  void broadcastAppend() {
    for (long to : progress.keySet()) {
      if (to != id) {
        sendAppend(to);
      }
    }
  }

  private void sendAppend(long to) {
    maybeSendAppend(to, true);
  }

  /**
   * Sends {@code to} the entries it needs next, or the snapshot if they are compacted. With {@code
   * sendIfEmpty} false, only sends if there are entries. Returns whether a message was sent.
   */
  private boolean maybeSendAppend(long to, boolean sendIfEmpty) {
    Progress pr = progress.get(to);
    if (pr.isPaused()) {
      return false;
    }
    long prevIndex = pr.next - 1;
    long prevTerm = log.term(prevIndex);
    List<Entry> ents = prevTerm == RaftLog.UNAVAILABLE ? null
        : log.entriesFrom(pr.next, config.maxEntriesPerMessage(), config.maxBytesPerMessage());
    if (ents == null) {
      // Raft §7: the follower needs entries we compacted. Not to a member we have not heard from:
      // a snapshot is expensive and it may be gone.
      if (!pr.recentActive) {
        return false;
      }
      Snapshot s = log.snapshot();
      send(out(MessageType.SNAP).to(to).term(term).snapshot(s).build());
      pr.becomeSnapshot(s.index());
      return true;
    }
    if (ents.isEmpty() && !sendIfEmpty) {
      return false;
    }
    send(out(MessageType.APP).to(to).term(term).index(prevIndex).logTerm(prevTerm)
        .entries(ents).commit(log.committed()).build());
    if (!ents.isEmpty()) {
      pr.sentEntries(ents.size(), ents.get(ents.size() - 1).index(), Entry.size(ents));
    }
    return true;
  }

  private void broadcastHeartbeat() {
    byte[] context = pendingReads.lastContext();
    for (long to : progress.keySet()) {
      if (to != id) {
        sendHeartbeat(to, context);
      }
    }
  }

  private void sendHeartbeat(long to, byte[] context) {
    // Never tell a follower to commit past what it is known to hold: it may lack those entries.
    long commit = Math.min(progress.get(to).match, log.committed());
    send(out(MessageType.HEARTBEAT).to(to).term(term).commit(commit).context(context)
        .build());
  }

  private void sendTimeoutNow(long to) {
    send(out(MessageType.TIMEOUT_NOW).to(to).term(term).build());
  }

  // ---------------------------------------------------------------- reads, transfer, reports

  /** Leader: a read request from {@code m.from()} (us or a follower). */
  void handleReadIndex(RaftMessage m) {
    if (log.term(log.committed()) != term) {
      // Thesis §6.4 step 1: until an entry of our term commits, our commit index may be behind.
      earlyReads.add(m);
      return;
    }
    if (voters.size() == 1) {
      answerRead(m, log.committed());
      return;
    }
    PendingReads.Pending pending = pendingReads.add(log.committed(), m);
    if (pending != null) {
      pending.acks().add(id);
      // Thesis §6.4 step 3: a heartbeat round proves nobody else leads.
      broadcastHeartbeat();
    }
  }

  private void releaseEarlyReads() {
    if (earlyReads.isEmpty() || log.term(log.committed()) != term) {
      return;
    }
    List<RaftMessage> reads = new ArrayList<>(earlyReads);
    earlyReads.clear();
    for (RaftMessage m : reads) {
      handleReadIndex(m);
    }
  }

  private void answerRead(RaftMessage request, long index) {
    if (request.from() == id) {
      readStates.add(new ReadState(index, request.context()));
    } else {
      send(out(MessageType.READ_INDEX_RESP).to(request.from()).term(term).index(index)
          .context(request.context()).build());
    }
  }

  /** Leader: start handing leadership to {@code target} (thesis §3.10). */
  void transferLeadership(long target) {
    if (role != Role.LEADER || !voters.contains(target) || target == id) {
      return;
    }
    if (leadTransferee == target) {
      return; // already under way
    }
    leadTransferee = target;
    // The transfer must finish within one election timeout, or it is abandoned (tickHeartbeat).
    electionElapsed = 0;
    Progress pr = progress.get(target);
    if (pr.match == log.lastIndex()) {
      sendTimeoutNow(target);
    } else {
      sendAppend(target);
    }
  }

  void reportUnreachable(long member) {
    Progress pr = role == Role.LEADER ? progress.get(member) : null;
    if (pr != null && pr.state == ProgressState.REPLICATE) {
      // What is in flight is probably lost; go back to probing.
      pr.becomeProbe();
    }
  }

  void reportSnapshot(long member, boolean ok) {
    Progress pr = role == Role.LEADER ? progress.get(member) : null;
    if (pr == null || pr.state != ProgressState.SNAPSHOT) {
      return;
    }
    if (!ok) {
      pr.pendingSnapshot = 0;
    }
    pr.becomeProbe();
    // Wait for the follower's answer to the snapshot (or the next heartbeat's) before probing.
    pr.probeSent = true;
  }

  // ---------------------------------------------------------------- membership

  /**
   * The server applied a membership change: it takes effect here now (etcd-io/raft's ApplyConfChange).
   * A change that makes no sense for the current membership (adding a voter as a learner, which would
   * demote it; removing a stranger) changes nothing: it is committed on every member, so it must not
   * fail on any; the server refuses such changes before proposing them.
   */
  ConfState applyConfChange(ConfChange cc) {
    List<Long> newVoters = new ArrayList<>(voters);
    List<Long> newLearners = new ArrayList<>(learners);
    long m = cc.member();
    switch (cc.type()) {
      case ADD_VOTER -> {
        newLearners.remove(m);
        if (!newVoters.contains(m)) {
          newVoters.add(m);
        }
      }
      case ADD_LEARNER -> {
        if (!newVoters.contains(m) && !newLearners.contains(m)) {
          newLearners.add(m);
        }
      }
      case REMOVE -> {
        newVoters.remove(m);
        newLearners.remove(m);
      }
    }
    if (newVoters.isEmpty()) {
      // Removing the last voter would leave nobody to commit anything, this change's successor included.
      return confState();
    }
    switchTo(newVoters, newLearners);
    return confState();
  }

  /** Adopts a membership: the leader starts or stops tracking members, and may commit more or step down. */
  private void switchTo(List<Long> newVoters, List<Long> newLearners) {
    voters = newVoters.stream().sorted().toList();
    learners = newLearners.stream().sorted().toList();
    if (role == Role.CANDIDATE || role == Role.PRE_CANDIDATE) {
      if (!voters.contains(id)) {
        // Removed (or made a learner) while campaigning: the votes it still gets must not make it a
        // leader with no progress of its own to count (found by RaftSimulationTest's membership sweep).
        becomeFollower(term, 0);
      }
      return;
    }
    if (role != Role.LEADER) {
      return;
    }
    if (!voters.contains(id)) {
      // Removed (or made a learner): a leader that is not a voter must not go on counting itself into
      // quorums. etcd stops such a member; until then it follows. Before it does, the others hear the
      // commit of the change that removed it (else they learn it only from the next leader, an
      // election timeout later), and the most up-to-date of them is told to campaign now.
      broadcastAppend();
      broadcastHeartbeat(); // carries the commit to those the append window holds back
      long successor = 0;
      for (long v : voters) {
        Progress pr = progress.get(v);
        if (pr != null && pr.match == log.lastIndex() && (successor == 0 || v < successor)) {
          successor = v;
        }
      }
      if (successor != 0) {
        sendTimeoutNow(successor);
      }
      becomeFollower(term, 0);
      return;
    }
    List<Long> tracked = new ArrayList<>(voters);
    tracked.addAll(learners);
    progress.keySet().retainAll(tracked);
    for (long member : tracked) {
      progress.computeIfAbsent(member, k -> {
        Progress pr = newProgress();
        // Not yet heard from, but new: CheckQuorum must not count it as lost before it could answer.
        pr.recentActive = true;
        return pr;
      });
    }
    if (leadTransferee != 0 && !voters.contains(leadTransferee)) {
      leadTransferee = 0;
    }
    // A smaller majority may already hold more entries; a new member needs the log.
    if (maybeCommit()) {
      releaseEarlyReads();
    }
    broadcastAppend();
  }

  /** The server's applied membership (see RaftNode#resetConfState). */
  void resetConfState(ConfState conf) {
    switchTo(conf.voters(), conf.learners());
  }

  /** A snapshot from the leader replaced the log: its membership is the one as of its index. */
  private void restoreConfState(Snapshot s) {
    if (!s.voters().isEmpty()) {
      switchTo(s.voters(), s.learners());
    }
  }

  // ---------------------------------------------------------------- messages out

  /** A message from us, to be completed and {@link #send sent}. */
  private RaftMessage.Builder out(MessageType type) {
    return RaftMessage.builder(type).from(id);
  }

  /**
   * Queues a message. The leader's replication traffic may leave before the Ready is persisted (it
   * depends only on our term, durable before we could win); everything else waits for it.
   */
  private void send(RaftMessage m) {
    boolean replication = m.type() == MessageType.APP || m.type() == MessageType.HEARTBEAT
        || m.type() == MessageType.SNAP || m.type() == MessageType.TIMEOUT_NOW;
    if (role == Role.LEADER && replication) {
      leaderMessages.add(m);
    } else {
      messages.add(m);
    }
  }
}
