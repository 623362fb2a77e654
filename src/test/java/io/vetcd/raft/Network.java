package io.vetcd.raft;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * A tiny deterministic cluster for scenario tests: members are {@link RaftNode}s, "disk" is a {@link
 * MemoryStorage} each, the network a FIFO queue. {@link #stabilize()} repeatedly handles every
 * member's Ready (persist, then queue its messages, then advance, then apply) and delivers queued
 * messages, in member-id order, until nothing moves. Filters drop messages; the state machine is a
 * list of applied payload strings so tests can compare members.
 */
final class Network {

  final Map<Long, RaftNode> nodes = new TreeMap<>();
  final Map<Long, RaftConfig> configs = new TreeMap<>();
  final Map<Long, MemoryStorage> disks = new TreeMap<>();
  /** Applied payloads per member, in order (empty payloads, the leaders' no-op entries, skipped). */
  final Map<Long, List<String>> applied = new TreeMap<>();
  /** Read states delivered to each member's server. */
  final Map<Long, List<ReadState>> reads = new TreeMap<>();
  /** Every message any member sent, in order, including dropped ones. */
  final List<RaftMessage> sent = new ArrayList<>();
  /** Messages sent and not yet delivered. */
  final ArrayDeque<RaftMessage> queue = new ArrayDeque<>();
  /** Members whose Readies are not handled automatically (the test drives them by hand). */
  final Set<Long> manual = new HashSet<>();
  /** Members whose server does not report what it applied (an apply thread behind the hand-out). */
  final Set<Long> applyNotReported = new HashSet<>();
  /** Members that are down: they get nothing and do nothing. */
  final Set<Long> down = new HashSet<>();
  private final Set<List<Long>> cut = new HashSet<>();
  private final List<Predicate<RaftMessage>> dropFilters = new ArrayList<>();

  /** A cluster of members 1..n with etcd's defaults, each tweaked by {@code tweak}. */
  static Network of(int n, Consumer<RaftConfig.Builder> tweak) {
    List<Long> ids = new ArrayList<>();
    for (long i = 1; i <= n; i++) {
      ids.add(i);
    }
    Network net = new Network();
    for (long id : ids) {
      RaftConfig.Builder b = RaftConfig.builder(id, ids).randomSeed(42);
      tweak.accept(b);
      net.add(b.build(), new MemoryStorage());
    }
    return net;
  }

  static Network of(int n) {
    return of(n, b -> { });
  }

  void add(RaftConfig config, MemoryStorage disk) {
    configs.put(config.id(), config);
    disks.put(config.id(), disk);
    nodes.put(config.id(), new RaftNode(config, disk.hardState, disk.snapshot, disk.entries));
    applied.put(config.id(), new ArrayList<>());
    reads.put(config.id(), new ArrayList<>());
  }

  /** Replaces member {@code id} by one restarted from a disk holding {@code entries} at {@code term}. */
  void load(long id, long term, List<Entry> entries) {
    MemoryStorage disk = new MemoryStorage();
    disk.hardState = new HardState(term, 0, 0);
    disk.entries.addAll(entries);
    disks.put(id, disk);
    nodes.put(id, new RaftNode(configs.get(id), disk.hardState, null, disk.entries));
  }

  RaftNode node(long id) {
    return nodes.get(id);
  }

  // ---- faults

  void isolate(long id) {
    for (long other : nodes.keySet()) {
      if (other != id) {
        cut(id, other);
      }
    }
  }

  void cut(long a, long b) {
    cut.add(List.of(a, b));
    cut.add(List.of(b, a));
  }

  void heal() {
    cut.clear();
    dropFilters.clear();
  }

  void drop(Predicate<RaftMessage> filter) {
    dropFilters.add(filter);
  }

  void dropType(MessageType type) {
    drop(m -> m.type() == type);
  }

  /** A crash: the member loses everything not durable, including unsent messages to it. */
  void crash(long id) {
    down.add(id);
    queue.removeIf(m -> m.to() == id || m.from() == id);
  }

  /** Restarts a crashed member from its disk. Its applied state restarts from the snapshot. */
  void restart(long id) {
    MemoryStorage disk = disks.get(id);
    nodes.put(id, new RaftNode(configs.get(id), disk.hardState, disk.snapshot, disk.entries));
    List<String> state = new ArrayList<>();
    if (disk.snapshot != null) {
      state.addAll(decode(disk.snapshot.data()));
    }
    applied.put(id, state);
    down.remove(id);
  }

  // ---- driving

  void tick(long id, int times) {
    for (int i = 0; i < times; i++) {
      nodes.get(id).tick();
    }
  }

  void tickAll(int times) {
    for (int i = 0; i < times; i++) {
      for (long id : nodes.keySet()) {
        if (!down.contains(id)) {
          nodes.get(id).tick();
        }
      }
    }
  }

  /** Handles one member's Ready the way the server must: persist, send, advance, apply. */
  boolean handleReady(long id) {
    RaftNode n = nodes.get(id);
    if (down.contains(id) || manual.contains(id) || !n.hasReady()) {
      return false;
    }
    Ready rd = n.ready();
    enqueue(rd.leaderMessages());
    disks.get(id).persist(rd);
    enqueue(rd.messages());
    n.advance(rd);
    apply(id, rd);
    return true;
  }

  /** Applies a Ready's snapshot, committed entries and read states to member {@code id}'s state. */
  void apply(long id, Ready rd) {
    List<String> state = applied.get(id);
    if (rd.snapshot() != null) {
      state.clear();
      state.addAll(decode(rd.snapshot().data()));
    }
    for (Entry e : rd.committedEntries()) {
      if (e.type() == Entry.Type.CONF_CHANGE) {
        // As the server does: a change takes effect on the member when it applies the entry.
        nodes.get(id).applyConfChange(ConfChange.decode(e.data()));
      } else if (e.data().length > 0) {
        state.add(new String(e.data(), UTF_8));
      }
    }
    reads.get(id).addAll(rd.readStates());
    if (!rd.committedEntries().isEmpty() && !applyNotReported.contains(id)) {
      nodes.get(id).reportApplied(rd.committedEntries().get(rd.committedEntries().size() - 1).index());
    }
  }

  void enqueue(List<RaftMessage> msgs) {
    for (RaftMessage m : msgs) {
      sent.add(m);
      queue.add(m);
    }
  }

  /** Delivers one message; returns false if it was dropped. */
  boolean deliver(RaftMessage m) {
    if (down.contains(m.to()) || down.contains(m.from()) || cut.contains(List.of(m.from(), m.to()))
        || dropFilters.stream().anyMatch(f -> f.test(m))) {
      reportSnapshot(m, false);
      return false;
    }
    RaftNode to = nodes.get(m.to());
    if (to != null) {
      to.step(m);
    }
    reportSnapshot(m, true);
    return true;
  }

  /** Like the transport: tells the sender of a SNAP whether it got through. */
  private void reportSnapshot(RaftMessage m, boolean ok) {
    if (m.type() == MessageType.SNAP && !down.contains(m.from())) {
      nodes.get(m.from()).reportSnapshot(m.to(), ok);
    }
  }

  /** Runs until no member has a Ready and no message is queued. */
  void stabilize() {
    for (int round = 0; round < 100_000; round++) {
      boolean moved = false;
      for (long id : nodes.keySet()) {
        moved |= handleReady(id);
      }
      while (!queue.isEmpty()) {
        deliver(queue.poll());
        moved = true;
      }
      if (!moved) {
        return;
      }
    }
    throw new AssertionError("network did not stabilize");
  }

  /** Member {@code id} campaigns and the cluster settles. */
  void elect(long id) {
    nodes.get(id).campaign();
    stabilize();
  }

  /** Proposes through {@code id} and settles; returns whether the proposal was accepted. */
  boolean propose(long id, String data) {
    boolean ok = nodes.get(id).propose(data.getBytes(UTF_8));
    stabilize();
    return ok;
  }

  /** The server of member {@code id} snapshots its applied state and compacts. */
  void compact(long id, long index) {
    RaftNode n = nodes.get(id);
    Snapshot s = n.createSnapshot(index, encode(stateAt(id, index)));
    n.compact(s);
    disks.get(id).compact(s);
  }

  /** The payloads a member had applied through {@code index} (entries are counted via its log). */
  private List<String> stateAt(long id, long index) {
    RaftNode n = nodes.get(id);
    if (index != n.appliedIndex()) {
      throw new IllegalArgumentException("test compacts at the applied index only");
    }
    return applied.get(id);
  }

  static byte[] encode(List<String> state) {
    return String.join("\n", state).getBytes(UTF_8);
  }

  static List<String> decode(byte[] data) {
    String s = new String(data, UTF_8);
    return s.isEmpty() ? List.of() : Arrays.asList(s.split("\n"));
  }

  /** The members that currently think they lead. */
  List<Long> leaders() {
    List<Long> out = new ArrayList<>();
    nodes.forEach((id, n) -> {
      if (!down.contains(id) && n.isLeader()) {
        out.add(id);
      }
    });
    return out;
  }

  long countSent(MessageType type) {
    return sent.stream().filter(m -> m.type() == type).count();
  }

  static List<String> strings(List<Entry> entries) {
    List<String> out = new ArrayList<>();
    for (Entry e : entries) {
      out.add(new String(e.data(), UTF_8));
    }
    return out;
  }

  static byte[] bytes(String s) {
    return s.getBytes(UTF_8);
  }
}
