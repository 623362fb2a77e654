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
 *       disk's hard state, snapshot and entries and the state machine's applied index.
 * </ul>
 */
final class SimulatedMember {

  final long id;
  final RaftConfig config;
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

  SimulatedMember(RaftConfig config, boolean durableStateMachine) {
    this.id = config.id();
    this.config = config;
    this.durableStateMachine = durableStateMachine;
    this.node = new RaftNode(config, HardState.EMPTY, null, List.of(), 0, readBack);
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
    life++;
  }

  /**
   * The process starts again from its disk. {@code stateOf} gives the state machine content a
   * snapshot stands for. A non-durable state machine, or one older than the disk's snapshot (the
   * member crashed after persisting a leader's snapshot but before installing it), restarts from
   * that snapshot.
   */
  void restart(Function<Snapshot, List<Entry>> stateOf) {
    Snapshot snap = disk.snapshot;
    long snapIndex = snap == null ? 0 : snap.index();
    if (!durableStateMachine || state.size() < snapIndex) {
      state.clear();
      if (snap != null) {
        state.addAll(stateOf.apply(snap));
      }
    }
    node = new RaftNode(config, disk.hardState, snap, disk.entries, state.size(), readBack);
  }

  /** "1:L5c12" — id, role, term, commit — or "1:down", for traces. */
  String describe() {
    if (node == null) {
      return id + ":down";
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
