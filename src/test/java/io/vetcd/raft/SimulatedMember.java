package io.vetcd.raft;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * One member of a {@link SimulatedCluster}, modelled on the vetcd server (RaftVerticle,
 * AppendThread, ApplyThread): a {@link RaftNode}, its disk, the append thread's queue and the apply
 * thread's queue.
 *
 * <ul>
 *   <li>A Ready handed out goes to {@link #unpersisted}. Its entries, snapshot and hard state reach
 *       {@link #disk} only when the simulation completes that write, at a random later step; only
 * then       are its {@code messages} sent and {@code advance} called (the append thread's
 * callback).
 *   <li>An advanced Ready goes to {@link #unapplied}; the apply thread installs its snapshot and
 *       applies its committed entries at a random later step.
 *   <li>A crash loses the node, both queues and everything in them: the member's durable state is
 *       exactly what the Readies it completed persisting wrote. Restart rebuilds the node from the
 *       disk's hard state, snapshot and entries and the state machine's applied index, with the
 *       membership its state machine applied ({@link SimulatedMembership}).
 *   <li>In a schedule with membership changes a member may not be started yet (it joins once added,
 *       knowing no voters, as vetcd's joining member) or be gone for good (removed).
 * </ul>
 */
final class SimulatedMember {

  final long id;
  /** The core's options with a membership: the voters and learners of what the member applied. */
  private final Function<ConfState, RaftConfig> configs;
  /** The member list with nothing applied: the founding one, or none for a member that joins later. */
  final SimulatedMembership start;
  /** The member list of what the state machine applied (vetcd's keyspace holds it). */
  SimulatedMembership membership;
  /** Never started: a member that will join the running cluster once added. */
  boolean started;
  /**
   * Ticks left before a member that applied its own removal stops (vetcd's leaves a second later,
   * about an election timeout, answering its peers meanwhile); -1 if it is not leaving.
   */
  int leavingIn = -1;
  /** Gone for good: removed from the cluster (it never starts again). */
  boolean retired;
  /**
   * Whether the state machine survives a crash (like the server's LMDB keyspace, which records its
   * applied index with the data) or is rebuilt from the disk's snapshot on restart.
   */
  final boolean durableStateMachine;
  /** The running core; null while the member is down. */
  RaftNode node;
  /** Bumped at every crash: which life of the member sent a message, or acknowledges a client. */
  int life;
  /** What survives a crash: the durable result of every Ready whose write completed. */
  final MemoryStorage disk = new MemoryStorage();
  /** How many entries the core read back from the disk (it had trimmed them from memory). */
  long entriesReadBack;
  /** The disk as the core's storage, counting what it reads. */
  private final LogStorage readBack = new LogStorage() {
    @Override
    public long term(long index) {
      return disk.term(index);
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
      List<Entry> read = disk.entries(lo, hi, maxBytes);
      entriesReadBack += read.size();
      return read;
    }
  };
  /** Readies handed out whose write has not completed, oldest first (the append thread's queue). */
  final ArrayDeque<Ready> unpersisted = new ArrayDeque<>();
  /** Advanced Readies with a snapshot or committed entries the apply thread has not applied yet. */
  final ArrayDeque<Ready> unapplied = new ArrayDeque<>();
  /**
   * The state machine: the entries applied so far, in order, the one at index i at position i - 1
   * (installing a snapshot replaces it with the snapshot's prefix). Its size is the applied index.
   */
  final ArrayList<Entry> state = new ArrayList<>();

  /** A member of the founding cluster ({@code start} its list), running; or a later one, not yet started. */
  SimulatedMember(long id, Function<ConfState, RaftConfig> configs, SimulatedMembership start,
      boolean durableStateMachine) {
    this.id = id;
    this.configs = configs;
    this.start = start;
    this.membership = start;
    this.durableStateMachine = durableStateMachine;
    if (!start.voters().isEmpty()) {
      this.node = new RaftNode(configs.apply(start.confState()), HardState.EMPTY, null, List.of(), 0, readBack);
      this.started = true;
    }
  }

  boolean up() {
    return node != null;
  }

  /** The state machine's applied index. */
  long applied() {
    return state.size();
  }

  /** The process dies: nothing that was not durable survives. */
  void crash() {
    node = null;
    unpersisted.clear();
    unapplied.clear();
    leavingIn = -1;
    life++;
  }

  /**
   * The process starts again from its disk. {@code stateOf} gives the state machine content a
   * snapshot stands for. A non-durable state machine, or one older than the disk's snapshot (the
   * member crashed after persisting a leader's snapshot but before installing it), restarts from
   * that snapshot.
   */
  void restart(Function<Snapshot, List<Entry>> stateOf, int foundingSize) {
    Snapshot snap = disk.snapshot;
    long snapIndex = snap == null ? 0 : snap.index();
    if (!durableStateMachine || state.size() < snapIndex) {
      state.clear();
      if (snap != null) {
        state.addAll(stateOf.apply(snap));
      }
    }
    // As vetcd's: the core starts with the membership the keyspace applied; later changes come again.
    membership = SimulatedMembership.of(state, start, foundingSize);
    started = true;
    node = new RaftNode(configs.apply(membership.confState()), disk.hardState, snap, disk.entries, state.size(),
        readBack);
  }

  /** Removed from the cluster: the process ends and never starts again. */
  void retire() {
    crash();
    retired = true;
  }

  /** "1:L5c12" — id, role, term, commit — or "1:down", for traces. */
  String describe() {
    if (node == null) {
      return id + (retired ? ":gone" : started ? ":down" : ":new");
    }
    char role = switch (node.role()) {
      case LEADER -> 'L';
      case CANDIDATE -> 'C';
      case PRE_CANDIDATE -> 'P';
      default -> 'F';
    };
    return id + ":" + role + node.term() + "c" + node.commitIndex() + "l" + node.lastIndex()
        + "a" + state.size() + (unpersisted.isEmpty() ? "" : "u" + unpersisted.size());
  }
}
