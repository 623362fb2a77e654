package io.vetcd.raft;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The Raft core as the server drives it (etcd-io/raft rawnode.go): inputs are method calls, outputs
 * are {@link Ready} values. One thread (the server's consensus event loop) owns an instance; nothing
 * here blocks, sleeps, reads a clock or touches a file.
 *
 * <h2>The Ready/advance contract</h2>
 * <ul>
 *   <li>{@link #ready()} hands out everything new since the previous call, and each piece only once.
 *       It may be called again before the previous Ready is advanced (pipelining: the leader keeps
 *       replicating while its disk write runs); the next Ready then holds only newer work.
 *   <li>Persist Readies in the order they were handed out, and call {@link #advance(Ready)} for
 *       <em>every</em> Ready (even an empty one), in that same order, once its state is durable.
 *       Advancing out of order, twice, or a Ready not from this node throws.
 *   <li>Until a Ready is advanced its entries do not count: a follower acknowledges them only through
 *       messages in that Ready; the leader counts its own copy toward the commit quorum only at
 *       advance; {@code committedEntries} never include an entry not yet advanced.
 * </ul>
 * See {@link Ready} for what may be sent before persisting and what must wait.
 */
public final class RaftNode {

  private final Raft raft;
  /** The soft state last handed out: a Ready carries it only when it changed. */
  private SoftState lastSoftState;
  /** The hard state last handed out (or restored): a Ready carries it only when it changed. */
  private HardState lastHardState;
  /** Readies handed out and not yet advanced, oldest first. */
  private final ArrayDeque<Ready> outstanding = new ArrayDeque<>();

  /** A brand-new member: empty log, term 0. */
  public RaftNode(RaftConfig config) {
    this(config, HardState.EMPTY, null, List.of());
  }

  /**
   * A member restored from disk.
   *
   * @param hardState the last persisted hard state ({@link HardState#EMPTY} if none)
   * @param snapshot the last persisted snapshot, or null
   * @param entries the persisted entries after the snapshot, in order, with superseded records
   *     already dropped (entries at or below the snapshot index are ignored); the core keeps them in
   *     memory
   */
  public RaftNode(RaftConfig config, HardState hardState, Snapshot snapshot, List<Entry> entries) {
    this(config, hardState, snapshot, entries, 0);
  }

  /**
   * As above, for a state machine that has already applied up to {@code applied} (≥ the snapshot
   * index, ≤ the commit index): committed entries up to it are not handed out again.
   */
  public RaftNode(RaftConfig config, HardState hardState, Snapshot snapshot, List<Entry> entries,
      long applied) {
    this(config, hardState, snapshot, entries, applied, LogStorage.NONE);
  }

  /**
   * As above, with the durable log as {@code storage}: entries that leave memory ({@link #trimMemory})
   * are read back from it when a follower needs them.
   */
  public RaftNode(RaftConfig config, HardState hardState, Snapshot snapshot, List<Entry> entries,
      long applied, LogStorage storage) {
    this.raft = new Raft(config, hardState == null ? HardState.EMPTY : hardState,
        snapshot == null ? Snapshot.EMPTY : snapshot, entries, applied, storage);
    this.lastSoftState = raft.softState();
    this.lastHardState = raft.hardState();
  }

  // ---------------------------------------------------------------- inputs

  /** One unit of logical time; the server calls it every heartbeat interval. */
  public void tick() {
    raft.tick();
  }

  /**
   * {@code ticks} ticks at once (etcd's advanceTicks): how a starting member brings its first election
   * forward once it can reach its peers, rather than waiting out a whole election timeout.
   */
  public void advanceTicks(int ticks) {
    for (int i = 0; i < ticks; i++) {
      raft.tick();
    }
  }

  /** The election timeout in ticks: a follower that hears no leader campaigns 1 to 2 of these later. */
  public int electionTick() {
    return raft.config.electionTick();
  }

  /** Delivers a message from a peer. Stale, misaddressed or irrelevant messages are dropped. */
  public void step(RaftMessage m) {
    raft.step(m);
  }

  /** Starts an election now (pre-vote first if configured); ignored by a leader or a non-voter. */
  public void campaign() {
    raft.hup();
  }

  /**
   * Proposes one entry. True if it was appended (leader) or forwarded to the known leader (follower);
   * that is no promise it will commit: the server learns that when it sees the entry applied, and
   * must time out otherwise. False when there is no known leader or a leadership transfer is under
   * way: answer "etcdserver: no leader" (or retry) at once.
   */
  public boolean propose(byte[] data) {
    return propose(List.of(data));
  }

  /** Proposes several entries together, in order (one APP instead of one per entry). */
  public boolean propose(List<byte[]> data) {
    List<Entry> entries = new ArrayList<>(data.size());
    for (byte[] d : data) {
      entries.add(new Entry(0, 0, Entry.Type.NORMAL, d));
    }
    return proposeEntries(entries);
  }

  /**
   * Proposes a membership change. The leader takes one at a time: while one it appended is not yet
   * applied, the next becomes an empty entry (never applied as a change), so the server must check
   * its membership before proposing and time out on what it never sees applied.
   */
  public boolean proposeConfChange(ConfChange cc) {
    return proposeEntries(List.of(new Entry(0, 0, Entry.Type.CONF_CHANGE, cc.encode())));
  }

  /**
   * The server applied a {@link Entry.Type#CONF_CHANGE} entry: the change takes effect in the core.
   * Returns the membership after it. Every such entry handed out must come back here, a no-op change
   * included, in log order.
   */
  public ConfState applyConfChange(ConfChange cc) {
    return raft.applyConfChange(cc);
  }

  /**
   * The server has applied every entry through {@code index} (its apply thread, not the hand-out):
   * a leader takes its next membership change only once the last one is applied there.
   */
  public void reportApplied(long index) {
    raft.serverApplied = Math.max(raft.serverApplied, index);
  }

  /**
   * Adopts the membership the server's applied state holds (after it installed a snapshot from the
   * leader, or kept its own keyspace for being newer): the keyspace, not the snapshot's metadata, is
   * what later membership entries apply to.
   */
  public void resetConfState(ConfState conf) {
    raft.resetConfState(conf);
  }

  /** The membership the core works with now. */
  public ConfState confState() {
    return raft.confState();
  }

  /** Proposes prepared entries (their term and index are replaced). */
  public boolean proposeEntries(List<Entry> entries) {
    if (entries.isEmpty()) {
      return true;
    }
    if (raft.role == Role.LEADER) {
      return raft.propose(entries);
    }
    if (raft.role == Role.FOLLOWER && raft.lead != 0) {
      raft.step(RaftMessage.builder(MessageType.PROP).from(raft.id).to(raft.id).entries(entries)
          .build());
      return true;
    }
    return false;
  }

  /**
   * Asks for a linearizable read point (thesis §6.4). The answer arrives later as a {@link ReadState}
   * with this {@code context} in a Ready (possibly never, if leadership changes: time out). The
   * context must be non-empty and unique among this member's pending reads (other members may use
   * the same contexts). False when there is no known leader.
   */
  public boolean readIndex(byte[] context) {
    if (context == null || context.length == 0) {
      throw new IllegalArgumentException("read context must be non-empty");
    }
    RaftMessage m = RaftMessage.builder(MessageType.READ_INDEX).from(raft.id).to(raft.id).context(context)
        .build();
    if (raft.role == Role.LEADER) {
      raft.handleReadIndex(m);
      return true;
    }
    if (raft.role == Role.FOLLOWER && raft.lead != 0) {
      raft.step(m);
      return true;
    }
    return false;
  }

  /**
   * Asks that leadership move to {@code target} (thesis §3.10); forwarded to the leader by a follower.
   * Watch {@link #leader()} for the outcome. False when there is no known leader.
   */
  public boolean transferLeadership(long target) {
    if (raft.role == Role.LEADER) {
      raft.transferLeadership(target);
      return true;
    }
    if (raft.role == Role.FOLLOWER && raft.lead != 0) {
      raft.step(RaftMessage.builder(MessageType.TRANSFER_LEADER).from(target).to(raft.id).build());
      return true;
    }
    return false;
  }

  /** The transport could not reach {@code member}: what was in flight to it is presumed lost. */
  public void reportUnreachable(long member) {
    raft.reportUnreachable(member);
  }

  /**
   * The outcome of sending a SNAP to {@code member}. Must be reported for every SNAP sent: until then
   * the leader sends that member nothing but heartbeats.
   */
  public void reportSnapshot(long member, boolean ok) {
    raft.reportSnapshot(member, ok);
  }

  /**
   * A snapshot of the current state at {@code index} (applied and durable), with the right term and
   * voters, for {@link #compact}.
   */
  public Snapshot createSnapshot(long index, byte[] data) {
    return createSnapshot(index, raft.confState(), data);
  }

  /**
   * As above, with the membership as of {@code index} (the core knows only the current one, which may
   * be later: the server keeps the membership with the state it applied).
   */
  public Snapshot createSnapshot(long index, ConfState conf, byte[] data) {
    long term = raft.log.term(index);
    if (term == RaftLog.UNAVAILABLE || index > raft.log.applied()) {
      throw new IllegalArgumentException("no applied entry at " + index);
    }
    return new Snapshot(index, term, conf.voters(), conf.learners(), data);
  }

  /**
   * The server captured its state at {@code snapshot.index()} (≤ the applied index handed out, and
   * durable): entries up to it are void, and followers that need them get a snapshot.
   */
  public void compact(Snapshot snapshot) {
    raft.log.compact(snapshot);
  }

  /**
   * The storage holds the entries from {@code index} on, before the snapshot the core was restored from:
   * followers that far behind are caught up from them, not through a snapshot. At start, before the
   * first Ready. False if the storage does not have entry {@code index}.
   */
  public boolean reachBack(long index) {
    return raft.log.reachBack(index);
  }

  /**
   * Entries up to {@code index} (applied and durable) leave memory; the storage given at construction
   * serves them from now on. Needs a storage.
   */
  public void trimMemory(long index) {
    raft.log.trimMemory(index);
  }

  /**
   * Whether the core restored {@code s} (a leader's snapshot it just stepped) and will hand it out in a
   * Ready: if not, it had what the snapshot covers and the server can discard the data that came with it.
   */
  public boolean restoring(Snapshot s) {
    Snapshot pending = raft.log.pendingSnapshot();
    return pending != null && pending.index() == s.index() && pending.term() == s.term();
  }

  /**
   * Where to trim memory so that the applied entries up to {@code applied} it keeps hold at most {@code
   * maxBytes}: the highest index to drop, or {@code firstInMemory() - 1} if they fit.
   */
  public long trimPointKeeping(long applied, long maxBytes) {
    return raft.log.trimPointKeeping(applied, maxBytes);
  }

  /** The first index the core holds in memory; older entries come from the storage. */
  public long firstInMemory() {
    return raft.log.firstInMemory();
  }

  // ---------------------------------------------------------------- outputs

  /** Whether {@link #ready()} would return a non-empty Ready. */
  public boolean hasReady() {
    RaftLog log = raft.log;
    return !raft.softState().equals(lastSoftState)
        || !raft.hardState().equals(lastHardState)
        || log.lastIndex() > log.handed()
        || log.pendingSnapshot() != null
        || log.hasNextCommittedEntries()
        || !raft.messages.isEmpty()
        || !raft.leaderMessages.isEmpty()
        || !raft.readStates.isEmpty();
  }

  /** Hands out all new work (see the class comment). Never returns null; may be empty. */
  public Ready ready() {
    RaftLog log = raft.log;
    SoftState soft = raft.softState();
    HardState hard = raft.hardState();
    List<Entry> committed = log.nextCommittedEntries();
    Ready rd = new Ready(
        soft.equals(lastSoftState) ? null : soft,
        hard.equals(lastHardState) ? null : hard,
        log.unhandedEntries(),
        log.pendingSnapshot(),
        committed,
        raft.messages,
        raft.leaderMessages,
        raft.readStates);
    lastSoftState = soft;
    lastHardState = hard;
    log.markHanded();
    log.markSnapshotHanded();
    if (!committed.isEmpty()) {
      log.appliedTo(committed.get(committed.size() - 1).index());
    }
    raft.messages.clear();
    raft.leaderMessages.clear();
    raft.readStates.clear();
    outstanding.add(rd);
    return rd;
  }

  /** The oldest outstanding Ready is durable (see the class comment). */
  public void advance(Ready rd) {
    if (outstanding.peekFirst() != rd) {
      throw new IllegalStateException(outstanding.isEmpty() ? "no Ready outstanding"
          : "advance must follow the order of ready(): this is not the oldest outstanding Ready");
    }
    outstanding.removeFirst();
    if (rd.snapshot() != null) {
      raft.log.snapshotPersisted(rd.snapshot());
    }
    raft.log.entriesPersisted(rd.entries());
    raft.onPersisted();
  }

  // ---------------------------------------------------------------- status (for the server and tests)

  /** A consistent picture of the member's Raft state, e.g. for metrics and logs. */
  public record Status(long id, long term, long vote, long leader, Role role, long commit,
      long applied, long persisted, long firstIndex, long lastIndex) {}

  public Status status() {
    RaftLog log = raft.log;
    return new Status(raft.id, raft.term, raft.vote, raft.lead, raft.role, log.committed(),
        log.applied(), log.persisted(), log.firstIndex(), log.lastIndex());
  }

  public long id() {
    return raft.id;
  }

  public long term() {
    return raft.term;
  }

  public long vote() {
    return raft.vote;
  }

  /** The known leader, 0 if none. */
  public long leader() {
    return raft.lead;
  }

  public Role role() {
    return raft.role;
  }

  public boolean isLeader() {
    return raft.role == Role.LEADER;
  }

  /** The payload bytes of the log's entries not yet committed (see the server's proposal bounds). */
  public long uncommittedBytes() {
    return raft.log.uncommittedBytes();
  }

  public long commitIndex() {
    return raft.log.committed();
  }

  public long lastIndex() {
    return raft.log.lastIndex();
  }

  public long lastTerm() {
    return raft.log.lastTerm();
  }

  public long firstIndex() {
    return raft.log.firstIndex();
  }

  /** The highest index handed out for applying (in committedEntries or as a snapshot). */
  public long appliedIndex() {
    return raft.log.applied();
  }

  /** The highest index known durable here (advanced) and still part of the log. */
  public long persistedIndex() {
    return raft.log.persisted();
  }

  /** The term of the entry at {@code index}, or -1 if it is compacted or beyond the end. */
  public long term(long index) {
    return raft.log.term(index);
  }

  /** The entries in memory (from {@link #firstInMemory()}), in order. A copy. */
  public List<Entry> entries() {
    return raft.log.entries();
  }

  /** The compaction point the in-memory log starts after ({@link Snapshot#EMPTY} if none). */
  public Snapshot snapshot() {
    return raft.log.snapshot();
  }

  /** The current hard state (whether or not handed out yet). */
  public HardState hardState() {
    return raft.hardState();
  }

  /** The leader transfer under way (0: none); leader only. */
  public long leadTransferee() {
    return raft.leadTransferee;
  }

  /** How many Readies are handed out and not yet advanced. */
  public int outstandingReadies() {
    return outstanding.size();
  }

  /** Leader only: each voter's replication state, for diagnostics. Empty on other roles. */
  public Map<Long, String> progressSummary() {
    Map<Long, String> out = new TreeMap<>();
    raft.progress.forEach((k, v) -> out.put(k, v.toString()));
    return out;
  }

  /** Whether this member leads and tracks {@code member} (a voter or learner it replicates to). */
  public boolean tracks(long member) {
    return raft.role == Role.LEADER && raft.progress.containsKey(member);
  }

  /** Leader only: the match index of {@code member}, or -1 if unknown. */
  public long matchIndex(long member) {
    Progress pr = raft.progress.get(member);
    return pr == null ? -1 : pr.match;
  }

  Raft raft() {
    return raft;
  }

  @Override
  public String toString() {
    return "RaftNode[" + raft.id + " " + raft.role + " term=" + raft.term + " lead=" + raft.lead
        + " commit=" + commitIndex() + " last=" + lastIndex() + " applied=" + appliedIndex() + "]";
  }
}
