package io.vetcd.raft;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * One seeded random schedule of {@link RaftSimulationTest} (modelled on KRaft's
 * RaftEventSimulationTest): a cluster of {@link SimulatedMember}s on a {@link SimulatedNetwork}, a
 * fake clock whose only time is the step count (each step is one event; a member's {@code tick()}
 * is an event like any other, so members' clocks drift apart), clients, and faults. After every
 * event the {@link SimulationInvariants} are checked. At the end every fault is healed and the
 * cluster must elect a leader and commit a final proposal on every member within a bounded number
 * of ticks.
 *
 * <p>Each schedule draws its own profile from the seed (cluster options, pipelining depth, loss,
 * duplication, delays, how often members crash and links are cut), so a sweep covers calm and
 * hostile runs. Everything random comes from one {@link Random}: a seed replays exactly, which is
 * how a failure is re-run with a trace.
 */
final class SimulatedCluster {

  /** What a step does. Weights are per mille of steps, some drawn per schedule. */
  private enum Kind {
    DELIVER, TICK, READY, PERSIST, APPLY, PROPOSE, READ, DUPLICATE, PARTITION, HEAL, CRASH,
    POWER_FAILURE, RESTART, COMPACT, TRIM, TRANSFER, CAMPAIGN, UNREACHABLE,
    /** An operator's membership change (membership schedules only: weight 0 otherwise). */
    MEMBERSHIP
  }

  /** Counters summed over schedules, to show what a sweep exercised. */
  static final class Stats {
    long schedules;
    long events;
    long committed;
    long acknowledged;
    long leaderTerms;
    long reads;
    long snapshotsMade;
    long trims;
    long entriesReadBack;
    long snapshotsSent;
    long snapshotsInstalled;
    long crashes;
    long lostReadies;
    long partitions;
    long transfers;
    long dropped;
    long duplicated;
    long lostToCuts;
    long settleTicks;
    long membershipChanges;
    long membershipChangesCommitted;
    long membersJoined;
    long membersRetired;
    long fromRemovedDropped;

    synchronized void add(Stats o) {
      schedules += o.schedules;
      events += o.events;
      committed += o.committed;
      acknowledged += o.acknowledged;
      leaderTerms += o.leaderTerms;
      reads += o.reads;
      snapshotsMade += o.snapshotsMade;
      trims += o.trims;
      entriesReadBack += o.entriesReadBack;
      snapshotsSent += o.snapshotsSent;
      snapshotsInstalled += o.snapshotsInstalled;
      crashes += o.crashes;
      lostReadies += o.lostReadies;
      partitions += o.partitions;
      transfers += o.transfers;
      dropped += o.dropped;
      duplicated += o.duplicated;
      lostToCuts += o.lostToCuts;
      settleTicks += o.settleTicks;
      membershipChanges += o.membershipChanges;
      membershipChangesCommitted += o.membershipChangesCommitted;
      membersJoined += o.membersJoined;
      membersRetired += o.membersRetired;
      fromRemovedDropped += o.fromRemovedDropped;
    }

    @Override
    public synchronized String toString() {
      return schedules + " schedules, " + events + " events: " + committed + " entries committed, "
          + acknowledged + " values acknowledged, " + leaderTerms + " terms with a leader, " + reads
          + " ReadIndex answers, " + snapshotsMade + " snapshots taken, " + trims
          + " memory trims (" + entriesReadBack + " entries read back from disk), " + snapshotsSent
          + " SNAPs delivered, " + snapshotsInstalled + " snapshots installed, " + crashes
          + " crashes (" + lostReadies + " unpersisted Readies lost), " + partitions
          + " partitions, " + transfers + " transfer requests, " + dropped + " messages dropped, "
          + duplicated + " duplicated, " + lostToCuts + " lost to cuts; " + settleTicks
          + " ticks to recover in total" + (membershipChanges == 0 ? "" : "; " + membershipChanges
          + " membership changes proposed, " + membershipChangesCommitted + " committed and taken, "
          + membersJoined + " members joined, " + membersRetired + " removed members stopped, "
          + fromRemovedDropped + " messages from removed members refused");
    }
  }

  /** A client: at most one request outstanding, sent to the member it believes leads. */
  private static final class Client {
    /** The member it talks to next (0: pick one at random). */
    long guess;
    /** The value awaiting an answer, 0 if none. */
    long pending;
    long member;
    int memberLife;
    long deadline;
  }

  final long seed;
  /** The founding voters, 1..size. */
  final int size;
  /** Every member id there may be: the founding ones, then those a membership schedule may add. */
  final int pool;
  /** Whether operators change the membership (members added, promoted, removed) in this schedule. */
  final boolean membershipChanges;
  private final Random rnd;
  private final boolean tracing;
  final SimulatedMember[] members;
  final SimulatedNetwork net;
  final SimulationInvariants inv;
  final Stats stats = new Stats();

  /** The fake clock: the number of events so far. */
  private long now;
  /** Bit set of the member ids whose node the current event called. */
  private long touched;
  private final int electionTick;
  /** Most Readies a member hands out before the oldest is durable (1: the server's loop today). */
  private final int pipelineDepth;
  private final int[] weights = new int[Kind.values().length];
  private int totalWeight;

  /** The state each snapshot stands for, by the id its {@code data} carries. */
  private final HashMap<Long, List<Entry>> snapshotStates = new HashMap<>();
  private long nextSnapshotId;

  private final Client[] clients = new Client[6];
  private final HashMap<Long, Client> waiting = new HashMap<>();
  private final List<Entry> acknowledgedEntries = new ArrayList<>();
  private final int clientTimeout;
  private long nextValue;
  /** Read context → the highest acknowledged index when the read started. */
  private final HashMap<Long, Long> readFloor = new HashMap<>();
  private long nextRead;
  /** Values proposed in the liveness phase, and the members that applied one of them. */
  private final Set<Long> finalValues = new HashSet<>();
  private long finalAppliedBy;

  /** How many of the last events a trace keeps (-Draft.sim.traceLines). */
  private static final int TRACE_LINES = Integer.getInteger("raft.sim.traceLines", 150);
  private final ArrayDeque<String> trace = new ArrayDeque<>();
  private String what = "";
  private final String profile;

  SimulatedCluster(long seed, int size, boolean tracing) {
    this(seed, size, tracing, false);
  }

  /**
   * {@code membershipChanges}: two more ids may join, and operators add (as learners or voters),
   * promote and remove members while everything else goes on; otherwise the founding members stay and
   * the schedule is the one recorded for its seed.
   */
  SimulatedCluster(long seed, int size, boolean tracing, boolean membershipChanges) {
    this.seed = seed;
    this.size = size;
    this.membershipChanges = membershipChanges;
    this.pool = membershipChanges ? size + 2 : size;
    this.rnd = new Random(seed * 0x5DEECE66DL + size);
    this.tracing = tracing;
    // Options every member must share (a member without CheckQuorum would vote inside the others'
    // leader lease), and the schedule's profile.
    boolean preVote = rnd.nextBoolean();
    boolean checkQuorum = rnd.nextBoolean();
    electionTick = 3 + rnd.nextInt(5);
    int heartbeatTick = 1 + rnd.nextInt(electionTick / 2);
    int maxEntries = 1 + rnd.nextInt(4);
    int maxInflight = 1 + rnd.nextInt(4);
    // Drawn apart from the schedule's generator, so that every recorded schedule stays as it was: a
    // bound in bytes of a few entries' payload (or none), pausing the pipeline before its count does.
    long maxInflightBytes = new long[] {Long.MAX_VALUE, 8, 32, 128}[new java.util.Random(seed * 31 + 7).nextInt(4)];
    pipelineDepth = rnd.nextBoolean() ? 1 : 2 + rnd.nextInt(3);
    boolean durableStateMachine = rnd.nextBoolean();
    double drop = new double[] {0, 0.01, 0.05, 0.15}[rnd.nextInt(4)];
    double dup = new double[] {0, 0.01, 0.05}[rnd.nextInt(3)];
    int maxDelay = new int[] {0, 2, 6, 15}[rnd.nextInt(4)];
    double longDelayRate = new double[] {0, 0.005, 0.02}[rnd.nextInt(3)];
    int longDelay = 50 + rnd.nextInt(250);
    int crashWeight = new int[] {1, 2, 4, 7}[rnd.nextInt(4)];
    int powerFailureWeight = rnd.nextInt(3) == 0 ? 1 : 0;
    int partitionWeight = new int[] {0, 2, 5}[rnd.nextInt(3)];
    net = new SimulatedNetwork(rnd, pool, drop, dup, maxDelay, longDelayRate, longDelay);
    members = new SimulatedMember[pool + 1];
    SimulatedMembership founding = SimulatedMembership.founding(size);
    for (long id = 1; id <= pool; id++) {
      long self = id;
      java.util.function.Function<ConfState, RaftConfig> configs = conf -> RaftConfig.builder(self, conf.voters())
          .learners(conf.learners()).electionTick(electionTick)
          .heartbeatTick(heartbeatTick).preVote(preVote).checkQuorum(checkQuorum)
          .maxEntriesPerMessage(maxEntries).maxInflightMessages(maxInflight).maxInflightBytes(maxInflightBytes)
          .randomSeed(seed)
          .build();
      members[(int) id] = new SimulatedMember(id, configs, id <= size ? founding : SimulatedMembership.NONE,
          durableStateMachine);
    }
    inv = new SimulationInvariants(members, this::stateOf, size);
    for (int i = 0; i < clients.length; i++) {
      clients[i] = new Client();
    }
    // RaftMessage handling must outpace the clocks (a heartbeat interval is long next to a network hop
    // and a disk write): each member ticks about once per 30 to 50 events, so an election timeout
    // spans a few hundred events and a healthy leader commits many entries per timeout.
    weight(Kind.DELIVER, 420);
    weight(Kind.TICK, 20 * size);
    weight(Kind.READY, 140);
    weight(Kind.PERSIST, 120);
    weight(Kind.APPLY, 90);
    weight(Kind.PROPOSE, 50);
    weight(Kind.READ, 8);
    weight(Kind.DUPLICATE, 4);
    weight(Kind.PARTITION, partitionWeight);
    weight(Kind.HEAL, 1);
    weight(Kind.CRASH, crashWeight);
    weight(Kind.POWER_FAILURE, powerFailureWeight);
    weight(Kind.RESTART, 8);
    weight(Kind.COMPACT, 12);
    weight(Kind.TRIM, 12);
    weight(Kind.TRANSFER, 2);
    weight(Kind.CAMPAIGN, 2);
    weight(Kind.UNREACHABLE, 3);
    weight(Kind.MEMBERSHIP, membershipChanges ? 4 : 0);
    // About one election timeout, in events: then a client gives up and looks for the leader again.
    clientTimeout = electionTick * totalWeight * size / weights[Kind.TICK.ordinal()];
    profile = "preVote=" + preVote + " checkQuorum=" + checkQuorum + " electionTick="
        + electionTick + " heartbeatTick=" + heartbeatTick + " maxEntries=" + maxEntries
        + " maxInflight=" + maxInflight + " maxInflightBytes=" + maxInflightBytes + " pipelineDepth=" + pipelineDepth
        + " durableStateMachine=" + durableStateMachine + " drop=" + drop + " dup=" + dup
        + " maxDelay=" + maxDelay + " longDelayRate=" + longDelayRate + " crashWeight="
        + crashWeight + " powerFailureWeight=" + powerFailureWeight + " partitionWeight="
        + partitionWeight + (membershipChanges ? " membershipChanges=true" : "");
  }

  private void weight(Kind k, int w) {
    weights[k.ordinal()] = w;
    totalWeight += w;
  }

  String profile() {
    return profile;
  }

  long now() {
    return now;
  }

  /** The last events before a failure, one per line (only when tracing). */
  String traceText() {
    return String.join("\n", trace);
  }

  // ------------------------------------------------------------------ the schedule

  /** Runs {@code events} random events, then the liveness phase. */
  void run(int events) {
    try {
      for (int i = 0; i < events; i++) {
        step();
      }
      settle();
    } catch (AssertionError | RuntimeException e) {
      if (tracing) {
        trace.add(now + " " + what + " <- the event that failed");
      }
      throw e;
    }
    stats.schedules = 1;
    stats.committed = inv.committed.size();
    stats.acknowledged = inv.acknowledged;
    stats.leaderTerms = inv.leaderTerms();
    stats.membershipChangesCommitted = inv.membershipChanges;
    stats.dropped = net.dropped;
    stats.duplicated = net.duplicated;
    stats.lostToCuts = net.lostToCuts;
    for (int id = 1; id <= pool; id++) {
      stats.entriesReadBack += members[id].entriesReadBack;
    }
  }

  /**
   * One event: a kind drawn by weight, redrawn (a few times at most) while the drawn kind has
   * nothing to act on, so that events are spent on actions rather than on idle draws.
   */
  private void step() {
    begin();
    for (int attempt = 0; attempt < 8; attempt++) {
      int r = rnd.nextInt(totalWeight);
      int k = 0;
      while (r >= weights[k]) {
        r -= weights[k];
        k++;
      }
      if (act(Kind.values()[k])) {
        break;
      }
    }
    end();
  }

  /** Does one event of kind {@code k}; false if there was nothing to do. */
  private boolean act(Kind k) {
    return switch (k) {
      case DELIVER -> deliverOne();
      case TICK -> tick(anyUp());
      case READY -> handOutOne();
      case PERSIST -> persistSome();
      case APPLY -> applyOne();
      case PROPOSE -> propose(clients[rnd.nextInt(clients.length)]);
      case READ -> read(anyUp());
      case DUPLICATE -> {
        if (net.inFlight() == 0) {
          yield false;
        }
        net.duplicateRandom(now);
        if (tracing) {
          note("duplicate a packet");
        }
        yield true;
      }
      case PARTITION -> partition();
      case HEAL -> {
        net.healAll();
        if (tracing) {
          note("heal all links");
        }
        yield true;
      }
      case CRASH -> crash(anyUp());
      case POWER_FAILURE -> {
        // Every member at once: whatever no member had made durable is gone everywhere.
        boolean any = false;
        for (int id = 1; id <= pool; id++) {
          any |= crash(members[id].up() ? members[id] : null);
        }
        if (tracing) {
          note("power failure: every member crashes");
        }
        yield any;
      }
      case RESTART -> restart(members[1 + rnd.nextInt(pool)]);
      case COMPACT -> compact(anyUp());
      case TRIM -> trim(anyUp());
      case TRANSFER -> transfer(anyUp());
      case CAMPAIGN -> campaign(anyUp());
      case UNREACHABLE -> unreachable(anyUp());
      case MEMBERSHIP -> changeMembership(anyUp());
    };
  }

  private void begin() {
    now++;
    touched = 0;
    if (tracing) {
      what = "";
    }
  }

  /** Every event ends here: the invariants, then the trace line. */
  private void end() {
    stats.events++;
    inv.afterEvent(touched);
    if (tracing) {
      StringBuilder b = new StringBuilder().append(now).append(' ').append(what).append(" |");
      for (int id = 1; id <= pool; id++) {
        b.append(' ').append(members[id].describe());
      }
      b.append(" | cuts ").append(net.describeCuts(now)).append(" | wire ").append(net.inFlight());
      trace.add(b.toString());
      if (trace.size() > TRACE_LINES) {
        trace.removeFirst();
      }
    }
  }

  /** Describes the current event in the trace; call it under {@code if (tracing)}: strings cost. */
  private void note(String s) {
    what = s;
  }

  private void touch(long id) {
    touched |= 1L << id;
  }

  /** A random member that is up, or null (the event does nothing). */
  private SimulatedMember anyUp() {
    SimulatedMember m = members[1 + rnd.nextInt(pool)];
    return m.up() ? m : null;
  }

  private static final int HAS_READY = 0;
  private static final int HAS_UNPERSISTED = 1;
  private static final int HAS_UNAPPLIED = 2;

  /**
   * The first member, from a random one on, that is up and has that kind of work (so thread events
   * are not wasted on idle members); null if none.
   */
  private SimulatedMember withWork(int kind) {
    int start = rnd.nextInt(pool);
    for (int i = 0; i < pool; i++) {
      SimulatedMember m = members[1 + (start + i) % pool];
      if (!m.up()) {
        continue;
      }
      boolean has = switch (kind) {
        case HAS_READY -> m.unpersisted.size() < pipelineDepth && m.node.hasReady();
        case HAS_UNPERSISTED -> !m.unpersisted.isEmpty();
        default -> !m.unapplied.isEmpty();
      };
      if (has) {
        return m;
      }
    }
    return null;
  }

  // ------------------------------------------------------------------ the network

  private void send(SimulatedMember from, RaftMessage m) {
    boolean forwarded = m.type() == MessageType.PROP || m.type() == MessageType.READ_INDEX
        || m.type() == MessageType.TRANSFER_LEADER;
    if (m.to() < 1 || m.to() > pool || m.to() == from.id || (!forwarded && m.from() != from.id)) {
      SimulationInvariants.fail("member " + from.id + " sends a misaddressed message " + m);
    }
    if (!net.send(from.id, m, from.life, now) && m.type() == MessageType.SNAP) {
      // The transport may or may not notice that a snapshot it streamed got lost.
      from.node.reportSnapshot(m.to(), rnd.nextBoolean());
      touch(from.id);
    }
  }

  private boolean deliverOne() {
    for (int attempt = 0; attempt < 4; attempt++) {
      SimulatedNetwork.Packet p = net.takeRandom(now);
      if (p != null) {
        deliver(p);
        return true;
      }
    }
    return false;
  }

  private void deliver(SimulatedNetwork.Packet p) {
    RaftMessage m = p.message();
    SimulatedMember to = members[(int) m.to()];
    if (!to.up() || net.isCut(p.sender(), m.to(), now)) {
      if (to.up()) {
        net.lostToCuts++;
      }
      if (tracing) {
        note("lose " + m);
      }
      if (m.type() == MessageType.SNAP) {
        reportSnapshot(p, false);
      } else if (rnd.nextInt(8) == 0) {
        SimulatedMember from = members[(int) p.sender()];
        if (from.up() && from.life == p.senderLife()) {
          from.node.reportUnreachable(m.to());
          touch(from.id);
        }
      }
      return;
    }
    if (to.membership.removed().contains(p.sender())) {
      // vetcd's transport refuses a member it removed, and now and then tells it so (it then stops).
      stats.fromRemovedDropped++;
      if (tracing) {
        note("refuse " + m + ": " + p.sender() + " was removed");
      }
      SimulatedMember from = members[(int) p.sender()];
      if (rnd.nextInt(4) == 0 && from.up() && from.life == p.senderLife()) {
        retire(from);
      }
      return;
    }
    if (tracing) {
      note("deliver " + m);
    }
    to.node.step(m);
    touch(to.id);
    if (m.type() == MessageType.SNAP) {
      stats.snapshotsSent++;
      reportSnapshot(p, true);
    }
  }

  /** The transport tells the life of the leader that sent a SNAP how it went. */
  private void reportSnapshot(SimulatedNetwork.Packet p, boolean ok) {
    SimulatedMember from = members[(int) p.sender()];
    if (from.up() && from.life == p.senderLife()) {
      from.node.reportSnapshot(p.message().to(), ok);
      touch(from.id);
    }
  }

  private boolean partition() {
    long until = now + 20 + rnd.nextInt(400);
    long a = 1 + rnd.nextInt(pool);
    long b = 1 + rnd.nextInt(pool);
    stats.partitions++;
    switch (rnd.nextInt(5)) {
      case 0 -> {
        net.cutBothWays(a, b, until);
        if (tracing) {
          note("cut " + a + "<>" + b + " until " + until);
        }
      }
      case 1 -> {
        net.cut(a, b, until);
        if (tracing) {
          note("cut " + a + ">" + b + " until " + until);
        }
      }
      case 2 -> {
        for (long o = 1; o <= pool; o++) {
          net.cutBothWays(a, o, until);
        }
        if (tracing) {
          note("isolate " + a + " until " + until);
        }
      }
      case 3 -> {
        boolean inbound = rnd.nextBoolean();
        for (long o = 1; o <= pool; o++) {
          if (inbound) {
            net.cut(o, a, until);
          } else {
            net.cut(a, o, until);
          }
        }
        if (tracing) {
          note("cut all " + (inbound ? "to " : "from ") + a + " until " + until);
        }
      }
      default -> {
        boolean[] side = new boolean[pool + 1];
        for (int i = 1; i <= pool; i++) {
          side[i] = rnd.nextBoolean();
        }
        for (int i = 1; i <= pool; i++) {
          for (int j = i + 1; j <= pool; j++) {
            if (side[i] != side[j]) {
              net.cutBothWays(i, j, until);
            }
          }
        }
        if (tracing) {
          note("split " + java.util.Arrays.toString(side) + " until " + until);
        }
      }
    }
    return true;
  }

  // ------------------------------------------------------------------ a member's threads

  private boolean tick(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    if (m.leavingIn == 0) {
      retire(m); // it applied its own removal a second ago: vetcd's member has left by now
      return true;
    }
    if (m.leavingIn > 0) {
      m.leavingIn--;
    }
    if (tracing) {
      note("tick " + m.id);
    }
    m.node.tick();
    touch(m.id);
    return true;
  }

  private boolean handOutOne() {
    SimulatedMember m = withWork(HAS_READY);
    if (m == null) {
      return false;
    }
    handOut(m);
    return true;
  }

  /**
   * The consensus loop takes a Ready: the leader's replication messages leave at once, read states
   * are answered, the rest goes to the append thread.
   */
  private void handOut(SimulatedMember m) {
    Ready rd = m.node.ready();
    touch(m.id);
    if (tracing) {
      note("ready " + m.id + ": " + rd.entries().size() + " entries" + (rd.hardState() == null ? ""
          : " " + rd.hardState()) + (rd.snapshot() == null ? "" : " " + rd.snapshot()) + ", "
          + rd.committedEntries().size() + " committed, " + rd.leaderMessages().size() + "+"
          + rd.messages().size() + " messages");
    }
    for (RaftMessage msg : rd.leaderMessages()) {
      send(m, msg);
    }
    for (ReadState rs : rd.readStates()) {
      checkRead(m, rs);
    }
    m.unpersisted.add(rd);
  }

  private boolean persistSome() {
    SimulatedMember m = withWork(HAS_UNPERSISTED);
    if (m == null) {
      return false;
    }
    // Group commit: one sync may cover every write queued behind the first.
    int n = rnd.nextInt(3) == 0 ? m.unpersisted.size() : 1;
    if (tracing) {
      note("persist " + n + " Readies of " + m.id);
    }
    for (int i = 0; i < n; i++) {
      persistOldest(m);
    }
    return true;
  }

  /** The append thread's write of the oldest Ready is durable: send its messages, advance. */
  private void persistOldest(SimulatedMember m) {
    Ready rd = m.unpersisted.poll();
    m.disk.persist(rd);
    inv.afterPersist(m, rd);
    for (RaftMessage msg : rd.messages()) {
      send(m, msg);
    }
    m.node.advance(rd);
    touch(m.id);
    if (rd.snapshot() != null || !rd.committedEntries().isEmpty()) {
      m.unapplied.add(rd);
    }
  }

  private boolean applyOne() {
    SimulatedMember m = withWork(HAS_UNAPPLIED);
    if (m == null) {
      return false;
    }
    if (tracing) {
      note("apply a Ready on " + m.id);
    }
    applyOldest(m);
    return true;
  }

  /** The apply thread installs the snapshot, then applies the committed entries, of one Ready. */
  private void applyOldest(SimulatedMember m) {
    Ready rd = m.unapplied.poll();
    if (rd.snapshot() != null) {
      List<Entry> st = stateOf(rd.snapshot());
      inv.checkInstall(m, rd.snapshot(), st);
      m.state.clear();
      m.state.addAll(st);
      stats.snapshotsInstalled++;
      // As vetcd's membershipInstalled: the installed state's member list is the one the core works with.
      m.membership = SimulatedMembership.of(m.state, m.start, size);
      if (!m.membership.voters().isEmpty() && !m.membership.confState().equals(m.node.confState())) {
        m.node.resetConfState(m.membership.confState());
      }
    }
    for (Entry e : rd.committedEntries()) {
      inv.checkApply(m, e);
      m.state.add(e);
      applyMembership(m, e);
      applied(m, e);
    }
    if (!rd.committedEntries().isEmpty()) {
      m.node.reportApplied(m.applied());
    }
  }

  /**
   * The member list side of applying {@code e}, as vetcd's apply thread and consensus loop do it: a
   * joiner's first entry brings the founding voters; a CONF_CHANGE the apply-time checks let through
   * changes the list and then the core; a member that applied its own removal leaves.
   */
  private void applyMembership(SimulatedMember m, Entry e) {
    if (e.index() == 1 && m.start.voters().isEmpty()) {
      SimulatedMembership.foundingChanges(size).forEach(m.node::applyConfChange);
      m.membership = SimulatedMembership.founding(size);
    }
    if (e.type() != Entry.Type.CONF_CHANGE) {
      return;
    }
    ConfChange cc = ConfChange.decode(e.data());
    SimulatedMembership next = m.membership.apply(cc);
    if (tracing) {
      note(what + "; " + m.id + " applies " + cc + (next == null ? " (refused)" : ""));
    }
    if (next == null) {
      return;
    }
    m.membership = next;
    m.node.applyConfChange(cc);
    touch(m.id);
    if (cc.type() == ConfChange.Type.REMOVE && cc.member() == m.id) {
      m.leavingIn = electionTick;
    }
  }

  /** The server answers the client whose request this entry carries, if it proposed here. */
  private void applied(SimulatedMember m, Entry e) {
    if (e.data().length != 8) {
      return; // a leader's empty entry
    }
    long value = ByteBuffer.wrap(e.data()).getLong();
    if (finalValues.contains(value)) {
      finalAppliedBy |= 1L << m.id;
    }
    Client c = waiting.get(value);
    if (c != null && c.member == m.id && c.memberLife == m.life) {
      waiting.remove(value);
      c.pending = 0;
      c.guess = m.node.leader();
      inv.acknowledge(e);
      acknowledgedEntries.add(e);
    }
  }

  /** The server snapshots its applied state at some index and compacts its log and disk there. */
  private boolean compact(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    RaftNode n = m.node;
    long lo = n.snapshot().index();
    long hi = Math.min(Math.min(m.applied(), n.appliedIndex()), n.persistedIndex());
    if (hi <= lo) {
      return false;
    }
    long index = lo + 1 + rnd.nextInt((int) (hi - lo));
    long id = ++nextSnapshotId;
    List<Entry> st = List.copyOf(m.state.subList(0, (int) index));
    // The membership as of the snapshot's index, from the applied state (vetcd's keyspace holds it).
    ConfState conf = SimulatedMembership.of(st, m.start, size).confState();
    Snapshot s = n.createSnapshot(index, conf, ByteBuffer.allocate(8).putLong(id).array());
    inv.checkSnapshotState(m.id, s, st);
    snapshotStates.put(id, st);
    if (tracing) {
      note("compact " + m.id + " at " + s);
    }
    n.compact(s);
    m.disk.compact(s);
    inv.afterCompaction(m);
    touch(m.id);
    stats.snapshotsMade++;
    return true;
  }

  /**
   * The server drops applied, durable entries from the core's memory; the core reads them back from
   * the member's disk when a follower needs them.
   */
  private boolean trim(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    RaftNode n = m.node;
    long lo = n.firstInMemory() - 1;
    long hi = Math.min(n.appliedIndex(), n.persistedIndex());
    if (hi <= lo) {
      return false;
    }
    long index = lo + 1 + rnd.nextInt((int) (hi - lo));
    if (tracing) {
      note("trim " + m.id + " up to " + index);
    }
    n.trimMemory(index);
    touch(m.id);
    stats.trims++;
    return true;
  }

  /** The state machine content {@code s} stands for. */
  List<Entry> stateOf(Snapshot s) {
    if (s == null || s.isEmpty()) {
      return List.of();
    }
    List<Entry> st = s.data().length == 8
        ? snapshotStates.get(ByteBuffer.wrap(s.data()).getLong()) : null;
    if (st == null) {
      SimulationInvariants.fail(s + " carries data no member's snapshot had");
    }
    return st;
  }

  // ------------------------------------------------------------------ crashes

  /**
   * The member's process dies. Readies whose write had not completed are lost — except that, half
   * the time, the write of the oldest few had reached the disk and only the callback that would
   * send their messages and call {@code advance} never ran (fsync returned, then the crash).
   */
  private boolean crash(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    int synced = rnd.nextBoolean() ? 0 : rnd.nextInt(m.unpersisted.size() + 1);
    for (int i = 0; i < synced; i++) {
      Ready rd = m.unpersisted.poll();
      m.disk.persist(rd);
      inv.afterPersist(m, rd);
    }
    if (tracing) {
      note("crash " + m.id + " (" + synced + " Readies synced but not acted on, "
          + m.unpersisted.size() + " lost)");
    }
    stats.crashes++;
    stats.lostReadies += m.unpersisted.size();
    m.crash();
    return true;
  }


  private boolean restart(SimulatedMember m) {
    if (m.up() || m.retired || (!m.started && !added(m.id))) {
      return false;
    }
    if (tracing) {
      note("restart " + m.id + " from " + m.disk.hardState + " "
          + (m.disk.snapshot == null ? "no snapshot" : m.disk.snapshot) + " last "
          + m.disk.lastIndex() + " applied " + m.applied());
    }
    if (!m.started) {
      stats.membersJoined++;
    }
    m.restart(this::stateOf, size);
    inv.afterRestart(m);
    touch(m.id);
    if (m.membership.removed().contains(m.id)) {
      retire(m); // vetcd's member that finds itself removed at start leaves
    }
    return true;
  }

  /** Whether a member that never ran was added: some member applied its addition (the operator starts it then). */
  private boolean added(long id) {
    for (int i = 1; i <= pool; i++) {
      if (members[i].up() && members[i].membership.isMember(id)) {
        return true;
      }
    }
    return false;
  }

  /** A removed member stops for good. */
  private void retire(SimulatedMember m) {
    if (tracing) {
      note(what + "; " + m.id + " leaves the cluster");
    }
    m.retire();
    stats.membersRetired++;
  }

  // ------------------------------------------------------------------ clients and operators

  /**
   * A client proposes a new unique value to the member it believes leads. Sometimes other idle
   * clients of the same member join in: the server batches requests that arrive together into one
   * {@code propose(List)}. A value is acknowledged only when that member (in the same life) applies
   * it; a client that waited too long gives up (the value may still commit later: it was never
   * acknowledged) and looks for the leader again.
   */
  private boolean propose(Client c) {
    if (c.pending != 0) {
      if (now < c.deadline) {
        return false;
      }
      giveUp(c);
    }
    long target = c.guess != 0 ? c.guess : 1 + rnd.nextInt(pool);
    SimulatedMember m = members[(int) target];
    if (!m.up()) {
      c.guess = 0;
      return false;
    }
    List<Client> batch = new ArrayList<>(List.of(c));
    if (rnd.nextInt(3) == 0) {
      for (Client o : clients) {
        if (o != c && o.guess == target && (o.pending == 0 || now >= o.deadline)) {
          if (o.pending != 0) {
            giveUp(o);
          }
          batch.add(o);
        }
      }
    }
    List<byte[]> data = new ArrayList<>(batch.size());
    for (int i = 0; i < batch.size(); i++) {
      data.add(ByteBuffer.allocate(8).putLong(nextValue + 1 + i).array());
    }
    boolean ok = m.node.propose(data);
    touch(m.id);
    if (tracing) {
      note("propose v" + (nextValue + 1) + (batch.size() == 1 ? "" : "..v" + (nextValue
          + batch.size())) + " to " + m.id + (ok ? "" : ": refused"));
    }
    long leader = m.node.leader();
    for (Client b : batch) {
      if (!ok) {
        b.guess = leader;
        continue;
      }
      b.pending = ++nextValue;
      b.member = m.id;
      b.memberLife = m.life;
      b.deadline = now + clientTimeout;
      b.guess = leader != 0 ? leader : m.id;
      waiting.put(b.pending, b);
    }
    return true;
  }

  private void giveUp(Client c) {
    waiting.remove(c.pending);
    c.pending = 0;
    c.guess = 0;
  }

  private boolean read(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    long ctx = ++nextRead;
    if (m.node.readIndex(ByteBuffer.allocate(8).putLong(ctx).array())) {
      readFloor.put(ctx, inv.maxAcknowledged);
    }
    touch(m.id);
    if (tracing) {
      note("read r" + ctx + " at " + m.id);
    }
    return true;
  }

  /**
   * Linearizable reads (thesis §6.4): the read index answered for a read is at least the index of
   * every value acknowledged before the read started, and it is committed.
   */
  private void checkRead(SimulatedMember m, ReadState rs) {
    Long floor = readFloor.get(ByteBuffer.wrap(rs.context()).getLong());
    if (floor != null && rs.index() < floor) {
      SimulationInvariants.fail("linearizable read (thesis §6.4): member " + m.id
          + " got read index " + rs.index() + " but entry " + floor
          + " was acknowledged before the read started");
    }
    if (rs.index() > inv.committed.size()) {
      SimulationInvariants.fail("read index " + rs.index() + " at member " + m.id
          + " is not committed");
    }
    stats.reads++;
  }

  private boolean transfer(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    long target = 1 + rnd.nextInt(pool);
    if (tracing) {
      note("transfer leadership to " + target + " via " + m.id);
    }
    m.node.transferLeadership(target);
    touch(m.id);
    stats.transfers++;
    return true;
  }

  private boolean campaign(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    if (tracing) {
      note("campaign " + m.id);
    }
    m.node.campaign();
    touch(m.id);
    return true;
  }

  /**
   * An operator changes the membership through member {@code m} (a follower forwards it to the
   * leader): adds an id never used (as a learner, or straight as a voter) or promotes a learner, chosen
   * from the list {@code m} applied; or, through the leader only, removes a learner or a voter, chosen
   * from the list after the leader's whole log (the change goes right after it, and if it commits, all
   * of that log is what it applies to). Never from two voters to one: if the one removed is the leader
   * and the other has not heard that the change committed when it leaves, the other waits for its vote
   * forever (etcd-io/raft's README documents this; etcd and vetcd share it, hence their advice of three
   * or more). Now and then (always when nothing else is possible) the change is one the apply-time
   * checks refuse: promoting a voter, adding a member again, removing a stranger. The leader drops a
   * change while another is pending; nothing here waits for an answer.
   */
  private boolean changeMembership(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    SimulatedMembership list = m.membership;
    List<ConfChange> options = new ArrayList<>();
    for (long id = size + 1; id <= pool; id++) {
      if (!list.isMember(id) && !list.removed().contains(id) && !members[(int) id].started) {
        options.add(new ConfChange(ConfChange.Type.ADD_LEARNER, id, null));
        options.add(new ConfChange(ConfChange.Type.ADD_LEARNER, id, null));
        options.add(new ConfChange(ConfChange.Type.ADD_VOTER, id, null));
      }
    }
    for (long id : list.learners()) {
      options.add(new ConfChange(ConfChange.Type.ADD_VOTER, id, null));
      options.add(new ConfChange(ConfChange.Type.ADD_VOTER, id, null));
    }
    SimulatedMembership whole = m.node.isLeader() ? listAfterLog(m) : null;
    if (whole != null) {
      for (long id : whole.learners()) {
        options.add(new ConfChange(ConfChange.Type.REMOVE, id, null));
      }
      if (whole.voters().size() > 2) {
        options.add(new ConfChange(ConfChange.Type.REMOVE, whole.voters().get(rnd.nextInt(whole.voters().size())), null));
      }
    }
    ConfChange cc;
    if (options.isEmpty() || rnd.nextInt(10) == 0) {
      long any = 1 + rnd.nextInt(pool);
      if (list.voters().contains(any)) {
        cc = new ConfChange(ConfChange.Type.ADD_VOTER, any, null);
      } else if (list.isMember(any)) {
        cc = new ConfChange(ConfChange.Type.ADD_LEARNER, any, null);
      } else if (whole != null && !whole.isMember(any)) {
        cc = new ConfChange(ConfChange.Type.REMOVE, any, null);
      } else {
        return false;
      }
    } else {
      cc = options.get(rnd.nextInt(options.size()));
    }
    boolean ok = m.node.proposeConfChange(cc);
    touch(m.id);
    stats.membershipChanges++;
    if (tracing) {
      note("change membership via " + m.id + ": " + cc + (ok ? "" : ": refused"));
    }
    return true;
  }

  /**
   * The member list after every entry of {@code m}'s log, applied or not (null if a snapshot it has not
   * applied yet stands for some of them).
   */
  private SimulatedMembership listAfterLog(SimulatedMember m) {
    RaftNode n = m.node;
    if (m.applied() < n.snapshot().index()) {
      return null;
    }
    List<Entry> log = new ArrayList<>(m.state);
    long firstInMemory = n.firstInMemory();
    if (m.applied() + 1 < firstInMemory) {
      log.addAll(m.disk.entries(m.applied() + 1, firstInMemory - 1, Long.MAX_VALUE));
    }
    for (Entry e : n.entries()) {
      if (e.index() > m.applied()) {
        log.add(e);
      }
    }
    if (log.size() != n.lastIndex()) {
      return null; // not all of it at hand
    }
    return SimulatedMembership.of(log, m.start, size);
  }

  private boolean unreachable(SimulatedMember m) {
    if (m == null) {
      return false;
    }
    long other = 1 + rnd.nextInt(pool);
    if (tracing) {
      note("report " + other + " unreachable to " + m.id);
    }
    m.node.reportUnreachable(other);
    touch(m.id);
    return true;
  }

  // ------------------------------------------------------------------ liveness

  /**
   * Faults stop: links heal, the network stops losing, duplicating and delaying, crashed members
   * restart. Then every round ticks each member once and runs the cluster until it is quiet. Within
   * a bounded number of rounds there must be a leader and a final proposal applied on every member
   * (Raft §5.2: elections eventually succeed once the network is well-behaved); and every value
   * ever acknowledged must be in every member's state machine.
   */
  private void settle() {
    begin();
    net.healAll();
    net.calmDown();
    if (tracing) {
      note("heal everything");
    }
    end();
    for (int id = 1; id <= pool; id++) {
      begin();
      restart(members[id]);
      end();
    }
    int maxRounds = 30 * electionTick + 50;
    long finalValue = 0;
    int proposedAt = 0;
    for (int round = 1; round <= maxRounds; round++) {
      for (int id = 1; id <= pool; id++) {
        if (!members[id].up()) {
          if (membershipChanges) {
            begin();
            restart(members[id]); // added meanwhile: the operator starts it
            end();
          }
          continue;
        }
        begin();
        tick(members[id]);
        end();
      }
      drain();
      long target = finalMembers();
      if (target != 0 && (finalAppliedBy & target) == target) {
        stats.settleTicks += round;
        checkAcknowledgedEverywhere(target);
        return;
      }
      SimulatedMember leader = currentLeader();
      if (leader != null && (finalValue == 0 || round - proposedAt > 3 * electionTick)) {
        begin();
        finalValue = ++nextValue;
        finalValues.add(finalValue);
        if (tracing) {
          note("propose final value v" + finalValue + " to " + leader.id);
        }
        if (leader.node.propose(ByteBuffer.allocate(8).putLong(finalValue).array())) {
          proposedAt = round;
        } else {
          finalValue = 0; // a transfer is under way: try again next round
        }
        touch(leader.id);
        end();
      }
    }
    StringBuilder b = new StringBuilder("liveness: after healing, no final proposal was applied on "
        + "every member within " + maxRounds + " ticks; members:");
    for (int id = 1; id <= pool; id++) {
      RaftNode n = members[id].node;
      b.append("\n  ").append(n == null ? members[id].describe() : n + " progress " + n.progressSummary());
    }
    SimulationInvariants.fail(b.toString());
  }

  /**
   * The members that must apply a final value: every member of the committed list (all of them, in a
   * schedule without membership changes).
   */
  private long finalMembers() {
    SimulatedMembership list = inv.committedMembership();
    long all = 0;
    for (long id : list.voters()) {
      all |= 1L << id;
    }
    for (long id : list.learners()) {
      all |= 1L << id;
    }
    return all;
  }

  /**
   * The leader of the highest term any member is in, if there is one. Members the committed list
   * removed do not count: one that never learned it may campaign on alone, at terms the others never
   * hear of (its list names only members that are gone).
   */
  private SimulatedMember currentLeader() {
    long maxTerm = 0;
    Set<Long> removed = inv.committedMembership().removed();
    for (int id = 1; id <= pool; id++) {
      if (members[id].up() && !removed.contains((long) id)) {
        maxTerm = Math.max(maxTerm, members[id].node.term());
      }
    }
    for (int id = 1; id <= pool; id++) {
      RaftNode n = members[id].node;
      if (n != null && n.isLeader() && n.term() == maxTerm && !removed.contains((long) id)) {
        return members[id];
      }
    }
    return null;
  }

  /** Runs every member's threads and the network until nothing moves; each action is one event. */
  private void drain() {
    for (int iteration = 0; iteration < 10_000; iteration++) {
      boolean moved = false;
      for (int id = 1; id <= pool; id++) {
        SimulatedMember m = members[id];
        if (!m.up()) {
          continue; // removed, or not started
        }
        if (m.node.hasReady()) {
          begin();
          handOut(m);
          end();
          moved = true;
        }
        while (!m.unpersisted.isEmpty()) {
          begin();
          if (tracing) {
            note("persist a Ready of " + m.id);
          }
          persistOldest(m);
          end();
          moved = true;
        }
        while (!m.unapplied.isEmpty()) {
          begin();
          if (tracing) {
            note("apply a Ready on " + m.id);
          }
          applyOldest(m);
          end();
          moved = true;
        }
      }
      for (SimulatedNetwork.Packet p : net.takeAll()) {
        begin();
        deliver(p);
        end();
        moved = true;
      }
      if (!moved) {
        return;
      }
    }
    SimulationInvariants.fail("the cluster never went quiet");
  }

  /** No acknowledged entry lost: at the end, every member's state machine holds each of them. */
  private void checkAcknowledgedEverywhere(long target) {
    for (Entry e : acknowledgedEntries) {
      for (int id = 1; id <= pool; id++) {
        if ((target & (1L << id)) == 0) {
          continue; // removed, or never added
        }
        List<Entry> st = members[id].state;
        Entry got = e.index() <= st.size() ? st.get((int) (e.index() - 1)) : null;
        if (got == null || !got.equals(e)) {
          SimulationInvariants.fail("acknowledged " + e + " lost: member " + id + " has " + got
              + " at " + e.index());
        }
      }
    }
  }
}
