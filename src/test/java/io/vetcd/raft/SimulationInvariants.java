package io.vetcd.raft;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.function.Function;

/**
 * The safety properties of Raft (figure 3 of the paper) and of the server built on it, checked by
 * {@link SimulatedCluster} after every event of a schedule. The checker keeps the history they
 * need: who led each term, every (index, term) position ever seen in any log, and the committed
 * sequence.
 *
 * <p>The committed sequence {@link #committed} is built from observation: whenever a member's
 * commit index passes an index, the entry its log holds there joins the sequence (or must equal the
 * one already there). Each index also records the lowest term in which a member was seen knowing it
 * committed: at least the term of the leader that committed it, and exactly that term when the
 * leader is seen doing it (which it is: the check runs after the event in which the leader's commit
 * index moves). A member's commit covers a prefix, so these terms never decrease along the
 * sequence.
 *
 * <p>Checks are incremental so that thousands of schedules fit a CI budget: a member's in-memory
 * log is re-verified from the first entry that changed since its last check (entries are immutable
 * values, so a reference comparison finds it), and a disk only where a write touched it.
 */
final class SimulationInvariants {

  /** Log Matching bookkeeping: the entry first seen at a position, and its predecessor's term. */
  private record Seen(Entry entry, long prevTerm) {}

  private final SimulatedMember[] members;
  /** Member ids are 1..size: the founding members, and those a schedule may add. */
  private final int size;
  /**
   * The member list after the committed sequence's membership changes, and the one before the last of
   * them: every committed entry must be durable on enough voters of both to meet every quorum of
   * either (consecutive lists differ by one member, so their majorities overlap, thesis §4.1).
   */
  private SimulatedMembership committedMembership;
  private SimulatedMembership previousMembership;
  /** The state machine content a snapshot stands for (the simulation's snapshot store). */
  private final Function<Snapshot, List<Entry>> stateOf;

  /** Election Safety history: term → the one member that led it. */
  private final HashMap<Long, Long> leaderOfTerm = new HashMap<>();
  /** The committed sequence: the entry committed at index i is at position i - 1. */
  final ArrayList<Entry> committed = new ArrayList<>();
  /** {@code commitTerm[i - 1]}: the lowest term in which index i was seen committed (sorted). */
  private long[] commitTerm = new long[256];
  /** Log Matching registry: (index, term) → what every log must hold there and just before it. */
  private final HashMap<Long, Seen> seen = new HashMap<>();

  /** Per member id: the commit index seen at the last check in its current life. */
  private final long[] lastCommit;
  /** Per member id: the in-memory log as last verified (a copy), null to verify all of it again. */
  private final List<Entry>[] verifiedLog;
  /** Per member id: the compaction point of {@link #verifiedLog}. */
  private final long[] verifiedBase;
  /** Per member id: the term it led when its log was last verified, 0 if it was not leader. */
  private final long[] verifiedLeaderTerm;
  /** Per member id: bumped at every disk write; keys the cached {@link #diskMatch} result. */
  private final long[] diskVersion;
  private final long[] diskMatchVersion;
  private final long[] diskMatchAt;
  private final long[] diskMatch;
  private final long[] scratch;
  /** Whether a disk, the committed sequence or the acknowledged set changed since last checked. */
  private boolean durabilityDirty = true;

  /** How many membership changes committed (and were not refused by the apply-time checks). */
  int membershipChanges;

  /** The highest index of an acknowledged value, and how many values were acknowledged. */
  long maxAcknowledged;
  int acknowledged;

  @SuppressWarnings("unchecked")
  SimulationInvariants(SimulatedMember[] members, Function<Snapshot, List<Entry>> stateOf, int foundingSize) {
    this.members = members;
    this.size = members.length - 1;
    this.committedMembership = SimulatedMembership.founding(foundingSize);
    this.previousMembership = committedMembership;
    this.stateOf = stateOf;
    this.lastCommit = new long[size + 1];
    this.verifiedLog = new List[size + 1];
    this.verifiedBase = new long[size + 1];
    this.verifiedLeaderTerm = new long[size + 1];
    this.diskVersion = new long[size + 1];
    this.diskMatchVersion = new long[size + 1];
    Arrays.fill(diskMatchVersion, -1);
    this.diskMatchAt = new long[size + 1];
    this.diskMatch = new long[size + 1];
    this.scratch = new long[size + 1];
  }

  /** The member list after the committed sequence's membership changes. */
  SimulatedMembership committedMembership() {
    return committedMembership;
  }

  static void fail(String message) {
    throw new AssertionError(message);
  }

  int leaderTerms() {
    return leaderOfTerm.size();
  }

  // ------------------------------------------------------------------ after every event

  /**
   * Runs every per-event check. {@code touched} is a bit set of the member ids whose node the event
   * called: only their in-memory logs can have changed.
   */
  void afterEvent(long touched) {
    for (int id = 1; id <= size; id++) {
      SimulatedMember m = members[id];
      if (m.up() && (touched & (1L << id)) != 0) {
        checkMemoryLog(m);
      }
    }
    for (int id = 1; id <= size; id++) {
      SimulatedMember m = members[id];
      if (m.up()) {
        checkIndexOrder(m);
        checkElectionSafety(m);
        observeCommit(m);
      }
    }
    for (int id = 1; id <= size; id++) {
      SimulatedMember m = members[id];
      if (m.up() && m.node.isLeader()) {
        checkLeaderCompleteness(m);
      }
    }
    checkCommittedIsDurable();
  }

  /**
   * Figure 2 ("lastApplied ≤ commitIndex", and an entry is committed only if it is in the log) and
   * the Ready contract: the state machine never applies more than the core handed out.
   */
  private void checkIndexOrder(SimulatedMember m) {
    RaftNode n = m.node;
    long first = n.firstIndex();
    long applied = n.appliedIndex();
    long commit = n.commitIndex();
    if (applied < first - 1 || applied > commit || commit > n.lastIndex()
        || m.applied() > applied) {
      fail("index order broken on member " + m.id + ": snapshot " + (first - 1) + " applied(core) "
          + applied + " applied(state machine) " + m.applied() + " commit " + commit + " last "
          + n.lastIndex());
    }
  }

  /**
   * Election Safety (figure 3, §5.2): at most one leader can be elected in a given term — over the
   * whole history, including members that crashed since.
   */
  private void checkElectionSafety(SimulatedMember m) {
    RaftNode n = m.node;
    if (n.isLeader()) {
      Long prev = leaderOfTerm.putIfAbsent(n.term(), m.id);
      if (prev != null && prev != m.id) {
        fail("Election Safety (§5.2): members " + prev + " and " + m.id + " both led term "
            + n.term());
      }
    }
  }

  /**
   * The member's log after its compaction point as the core sees it: the entries it trimmed from memory
   * (read back from its disk, as the core would) followed by those in memory.
   */
  private static List<Entry> logAfterSnapshot(SimulatedMember m) {
    RaftNode n = m.node;
    long trimmed = n.firstInMemory() - 1;
    long base = n.snapshot().index();
    if (trimmed == base) {
      return n.entries();
    }
    List<Entry> stored = m.disk.entries(base + 1, trimmed, Long.MAX_VALUE);
    if (stored.size() != trimmed - base) {
      fail("member " + m.id + " trimmed entries " + (base + 1) + ".." + trimmed + " from memory but its disk holds "
          + stored.size() + " of them");
    }
    List<Entry> log = new ArrayList<>(stored);
    log.addAll(n.entries());
    return log;
  }

  /**
   * Log Matching (figure 3, §5.3): if two logs contain an entry with the same index and term, the
   * logs are identical in all entries up through that index. Checked on the in-memory log against
   * every log ever seen (memory, disk and snapshot state, all members, all lives): each position
   * (index, term) must always hold the same entry preceded by the same term, which by induction
   * makes the prefixes identical. Also: a log's terms never decrease, and Leader Append-Only
   * (figure 3, §5.3): a leader never overwrites or deletes entries of its own log during its term.
   */
  private void checkMemoryLog(SimulatedMember m) {
    int id = (int) m.id;
    RaftNode n = m.node;
    Snapshot base = n.snapshot();
    List<Entry> log = logAfterSnapshot(m);
    List<Entry> prev = verifiedLog[id];
    int from = 0;
    if (prev != null && verifiedBase[id] == base.index()) {
      int limit = Math.min(prev.size(), log.size());
      while (from < limit && prev.get(from) == log.get(from)) {
        from++;
      }
      if (verifiedLeaderTerm[id] != 0 && n.isLeader() && n.term() == verifiedLeaderTerm[id]
          && from < prev.size()) {
        fail("Leader Append-Only (§5.3): leader " + m.id + " of term " + n.term()
            + " changed its entry " + (base.index() + 1 + from) + " from " + prev.get(from) + " to "
            + (from < log.size() ? log.get(from) : "nothing"));
      }
    } else {
      checkSnapshotKnown(base, "member " + m.id + "'s compaction point");
    }
    checkRun(m.id, "memory log", base.index(), base.term(), log, from);
    verifiedLog[id] = log;
    verifiedBase[id] = base.index();
    verifiedLeaderTerm[id] = n.isLeader() ? n.term() : 0;
  }

  /**
   * Records the positions of {@code log[from..]} (whose entry 0 follows ({@code baseIndex}, {@code
   * baseTerm})) and fails if one disagrees with what another log held there (Log Matching, §5.3).
   */
  private void checkRun(long member, String what, long baseIndex, long baseTerm, List<Entry> log,
      int from) {
    long prevTerm = from == 0 ? baseTerm : log.get(from - 1).term();
    for (int k = from; k < log.size(); k++) {
      Entry e = log.get(k);
      long index = baseIndex + 1 + k;
      if (e.index() != index) {
        fail("member " + member + "'s " + what + " is not contiguous: position " + index + " holds "
            + e);
      }
      if (e.term() < prevTerm) {
        fail("member " + member + "'s " + what + ": term falls from " + prevTerm + " to " + e.term()
            + " at " + index + " (log terms never decrease, §5.3)");
      }
      Long key = (index << 24) | e.term();
      Seen s = seen.get(key);
      if (s == null) {
        seen.put(key, new Seen(e, prevTerm));
      } else if ((s.entry() != e && !s.entry().equals(e)) || s.prevTerm() != prevTerm) {
        fail("Log Matching (§5.3): member " + member + "'s " + what + " holds " + e
            + " after an entry of term " + prevTerm + ", but another log held " + s.entry()
            + " after an entry of term " + s.prevTerm());
      }
      prevTerm = e.term();
    }
  }

  /** A compaction point must be the last entry of a snapshot state seen before. */
  private void checkSnapshotKnown(Snapshot s, String what) {
    if (s == null || s.isEmpty()) {
      return;
    }
    List<Entry> st = stateOf.apply(s);
    if (st.size() != s.index() || st.get(st.size() - 1).term() != s.term()) {
      fail(what + " " + s + " does not match the state it carries (" + st.size() + " entries)");
    }
  }

  /**
   * Commit index never decreases in a member's life (figure 2: commitIndex "increases
   * monotonically"), and State Machine Safety (figure 3, §5.4.3) in its log form: no two members
   * ever hold different entries at an index they both know committed. Extends {@link #committed}.
   */
  private void observeCommit(SimulatedMember m) {
    int id = (int) m.id;
    RaftNode n = m.node;
    long commit = n.commitIndex();
    long from = lastCommit[id];
    if (commit < from) {
      fail("commit index of member " + m.id + " fell from " + from + " to " + commit
          + " (figure 2: it only grows)");
    }
    if (commit == from) {
      return;
    }
    long term = n.term();
    Snapshot base = n.snapshot();
    List<Entry> snapState = null;
    List<Entry> log = null;
    for (long i = from + 1; i <= commit; i++) {
      Entry e;
      if (i <= base.index()) {
        if (snapState == null) {
          snapState = stateOf.apply(base);
        }
        e = snapState.get((int) (i - 1));
      } else {
        if (log == null) {
          log = logAfterSnapshot(m);
        }
        e = log.get((int) (i - base.index() - 1));
      }
      int pos = (int) (i - 1);
      if (pos < committed.size()) {
        Entry g = committed.get(pos);
        if (g != e && !g.equals(e)) {
          fail("State Machine Safety (§5.4.3): member " + m.id + " knows " + e + " committed at "
              + i + " but " + g + " was committed there");
        }
        if (commitTerm[pos] > term) {
          commitTerm[pos] = term;
        }
      } else {
        committed.add(e);
        if (e.type() == Entry.Type.CONF_CHANGE) {
          SimulatedMembership next = committedMembership.apply(ConfChange.decode(e.data()));
          if (next != null) {
            previousMembership = committedMembership;
            committedMembership = next;
            membershipChanges++;
          }
        }
        if (pos >= commitTerm.length) {
          commitTerm = Arrays.copyOf(commitTerm, commitTerm.length * 2);
        }
        commitTerm[pos] = term;
      }
    }
    lastCommit[id] = commit;
    durabilityDirty = true;
  }

  /**
   * Leader Completeness (figure 3, §5.4): if an entry is committed in a given term, it is present
   * in the log of the leader of every later term. The latest entry committed before this leader's
   * term is checked by (index, term); with Log Matching that vouches for the whole committed
   * prefix.
   */
  private void checkLeaderCompleteness(SimulatedMember m) {
    RaftNode n = m.node;
    long term = n.term();
    // commitTerm is nondecreasing: the entries committed in an earlier term form a prefix.
    int k = lowerBound(commitTerm, committed.size(), term);
    if (k == 0) {
      return;
    }
    Entry g = committed.get(k - 1);
    Snapshot base = n.snapshot();
    boolean holds;
    if (k <= base.index()) {
      Entry e = stateOf.apply(base).get(k - 1);
      holds = e == g || e.equals(g);
    } else {
      holds = n.term(k) == g.term();
    }
    if (!holds) {
      fail("Leader Completeness (§5.4): leader " + m.id + " of term " + term + " lacks " + g
          + ", committed in term " + commitTerm[k - 1] + " (its entry " + k + " has term "
          + n.term(k) + ")");
    }
  }

  private static int lowerBound(long[] a, int n, long key) {
    int lo = 0;
    int hi = n;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (a[mid] < key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /**
   * The premise of §5.4's safety argument and of "no acknowledged entry lost": every committed
   * entry (in particular every acknowledged one) is durable — on disk, as an entry or inside a
   * snapshot — on enough voters that every quorum holds it, whoever crashed and whatever was lost with
   * them (figure 2: persistent state is "updated on stable storage before responding to RPCs"). With
   * a fixed membership: on a majority. Across a membership change: for the committed member list and
   * the one before it (a leader counts with the list it applied, which may still be the older).
   */
  private void checkCommittedIsDurable() {
    if (!durabilityDirty) {
      return;
    }
    durabilityDirty = false;
    checkDurableOn(committedMembership);
    if (previousMembership != committedMembership) {
      checkDurableOn(previousMembership);
    }
  }

  private void checkDurableOn(SimulatedMembership list) {
    List<Long> voters = list.voters();
    int n = voters.size();
    for (int i = 0; i < n; i++) {
      scratch[i] = diskMatch(voters.get(i).intValue());
    }
    Arrays.sort(scratch, 0, n);
    // Every quorum (n / 2 + 1 voters) meets the holders when n - n / 2 voters hold it.
    int needed = n - n / 2;
    long quorumDurable = scratch[n - needed];
    if (maxAcknowledged > quorumDurable) {
      fail("acknowledged entry " + maxAcknowledged + " is durable on fewer than " + needed + " of the voters "
          + voters + " (durable matching prefixes: " + Arrays.toString(Arrays.copyOf(scratch, n)) + ")");
    }
    if (committed.size() > quorumDurable) {
      fail("committed entry " + committed.size() + " is durable on fewer than " + needed + " of the voters "
          + voters + " (durable matching prefixes: " + Arrays.toString(Arrays.copyOf(scratch, n)) + ")");
    }
  }

  /** How far member {@code id}'s disk agrees with the committed sequence. */
  private long diskMatch(int id) {
    if (diskMatchVersion[id] == diskVersion[id] && diskMatchAt[id] == committed.size()) {
      return diskMatch[id];
    }
    MemoryStorage d = members[id].disk;
    long snapIndex = d.snapshot == null ? 0 : d.snapshot.index();
    long match = Math.min(snapIndex, committed.size());
    for (long i = Math.min(d.lastIndex(), committed.size()); i > snapIndex; i--) {
      // Same (index, term) means same entry and prefix: the registry checks disk logs too.
      if (d.entries.get((int) (i - snapIndex - 1)).term() == committed.get((int) (i - 1)).term()) {
        match = i;
        break;
      }
    }
    diskMatchVersion[id] = diskVersion[id];
    diskMatchAt[id] = committed.size();
    diskMatch[id] = match;
    return match;
  }

  // ------------------------------------------------------------------ at specific events

  /** A write completed: Log Matching over the durable log, from where the write started. */
  void afterPersist(SimulatedMember m, Ready rd) {
    diskVersion[(int) m.id]++;
    durabilityDirty = true;
    MemoryStorage d = m.disk;
    long snapIndex = d.snapshot == null ? 0 : d.snapshot.index();
    long snapTerm = d.snapshot == null ? 0 : d.snapshot.term();
    int from;
    if (rd.snapshot() != null) {
      checkSnapshotKnown(rd.snapshot(), "member " + m.id + "'s persisted snapshot");
      from = 0;
    } else if (rd.entries().isEmpty()) {
      return;
    } else {
      long firstWritten = rd.entries().get(0).index();
      from = (int) Math.min(d.entries.size(), Math.max(0, firstWritten - snapIndex - 1));
    }
    checkRun(m.id, "disk log", snapIndex, snapTerm, d.entries, from);
  }

  /** The member compacted its disk (and core) at a snapshot it made. */
  void afterCompaction(SimulatedMember m) {
    diskVersion[(int) m.id]++;
    durabilityDirty = true;
    checkSnapshotKnown(m.disk.snapshot, "member " + m.id + "'s disk snapshot");
  }

  /**
   * A snapshot state is about to be stored: it must be the committed prefix it claims to be (State
   * Machine Safety for snapshots: §7 "the snapshot replaces committed entries").
   */
  void checkSnapshotState(long member, Snapshot s, List<Entry> state) {
    if (state.size() != s.index() || s.index() > committed.size()) {
      fail("member " + member + " made " + s + " from " + state.size() + " applied entries, "
          + committed.size() + " known committed");
    }
    Entry last = state.get(state.size() - 1);
    Entry g = committed.get(state.size() - 1);
    if (last.term() != s.term() || (last != g && !last.equals(g))) {
      fail("State Machine Safety (§5.4.3): member " + member + "'s " + s + " ends with " + last
          + " but " + g + " was committed there");
    }
    checkRun(member, "snapshot state", 0, 0, state, 0);
  }

  /** A member restarted: its whole log is verified again and its commit observed from scratch. */
  void afterRestart(SimulatedMember m) {
    int id = (int) m.id;
    verifiedLog[id] = null;
    lastCommit[id] = 0;
    diskVersion[id]++;
    durabilityDirty = true;
  }

  /**
   * State Machine Safety (figure 3, §5.4.3): if a member has applied a log entry at a given index,
   * no other member ever applies a different entry for that index. Stronger: each member's apply
   * sequence is a prefix of the one committed sequence, applied in order, each entry exactly once
   * per life.
   */
  void checkApply(SimulatedMember m, Entry e) {
    long i = e.index();
    if (i != m.applied() + 1) {
      fail("member " + m.id + " applies entry " + i + " after applying " + m.applied()
          + " (committed entries are handed out once, in order)");
    }
    if (i > committed.size()) {
      fail("State Machine Safety (§5.4.3): member " + m.id + " applies " + e
          + " which nobody knows committed (committed up to " + committed.size() + ")");
    }
    Entry g = committed.get((int) (i - 1));
    if (g != e && !g.equals(e)) {
      fail("State Machine Safety (§5.4.3): member " + m.id + " applies " + e + " at " + i + " but "
          + g + " is committed there");
    }
  }

  /** Installing a snapshot (§7) replaces the state by a longer committed prefix, never shorter. */
  void checkInstall(SimulatedMember m, Snapshot s, List<Entry> state) {
    if (s.index() <= m.applied()) {
      fail("member " + m.id + " installs " + s + " with " + m.applied() + " already applied");
    }
    if (s.index() > committed.size()) {
      fail("State Machine Safety (§5.4.3): member " + m.id + " installs " + s + " beyond the "
          + "committed " + committed.size());
    }
    Entry last = state.get(state.size() - 1);
    Entry g = committed.get((int) (s.index() - 1));
    if (state.size() != s.index() || (last != g && !last.equals(g))) {
      fail("State Machine Safety (§5.4.3): member " + m.id + " installs " + s + " ending with "
          + last + " but " + g + " is committed there");
    }
  }

  /**
   * A client got its answer: the proposing member applied its value as {@code e}. From now on the
   * entry must stay committed and durable on a majority (checked after every event).
   */
  void acknowledge(Entry e) {
    long i = e.index();
    if (i > committed.size()) {
      fail("acknowledged " + e + " is not committed");
    }
    Entry g = committed.get((int) (i - 1));
    if (g != e && !g.equals(e)) {
      fail("acknowledged " + e + " but " + g + " is committed at " + i);
    }
    acknowledged++;
    maxAcknowledged = Math.max(maxAcknowledged, i);
    durabilityDirty = true;
  }
}
