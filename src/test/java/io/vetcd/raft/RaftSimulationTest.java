package io.vetcd.raft;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Deterministic simulation of the Raft core (issue 3), after KRaft's RaftEventSimulationTest:
 * seeded random schedules of 3- and 5-member clusters, with invariants checked after every event.
 *
 * <p>A schedule ({@link SimulatedCluster}) mixes ticks of each member's fake clock, message
 * delivery on a network that drops, delays, reorders, duplicates and partitions (symmetric and
 * one-way cuts that heal), client proposals (batched as the server does) acknowledged only when the
 * proposing member applied them, ReadIndex reads, snapshots with log compaction (so lagging members
 * get SNAPs, whose outcome is reported to the leader), leadership transfers, forced campaigns, and
 * crashes of one member or of all at once. The server around each core is modelled as vetcd's:
 * Readies persist at a random later step (the append thread), only then are their messages sent and
 * {@code advance} called, and committed entries apply later still (the apply thread). A crash loses
 * every Ready not yet durable (or finds the oldest few synced but never acted on), and restart
 * rebuilds the core from the disk's hard state, snapshot and entries and the state machine's
 * applied index.
 *
 * <p>After every event ({@link SimulationInvariants}): Election Safety (§5.2), Leader Append-Only
 * (§5.3), Log Matching over memory and disk logs (§5.3), Leader Completeness (§5.4), State Machine
 * Safety (§5.4.3), commit index monotonic per member life (figure 2), every committed and every
 * acknowledged entry durable on a majority, and linearizable read indexes (thesis §6.4). After the
 * schedule: heal everything, restart everyone, and within bounded ticks a leader must commit a
 * final proposal on every member, whose state machines must then hold every acknowledged value.
 *
 * <p>A second sweep adds membership changes (thesis §4.1, applied as etcd's: on apply, one pending at
 * a time): operators add members as learners or voters, promote and remove them, the leader included,
 * under the same faults; a joining member starts knowing no voters, a removed one that has not
 * learned it keeps running and is refused by the members that removed it.
 *
 * <p>System properties: {@code raft.sim.seeds} (schedules in the sweep, half per cluster size,
 * default 2000), {@code raft.sim.membershipSeeds} (the membership sweep, default 4000), {@code raft.sim.events} (events per schedule, default 1500), {@code
 * raft.sim.firstSeed} (default 1), {@code raft.sim.traceLines} (events kept in a failure's trace,
 * default 150). A failure names its seed and size, replays the schedule with tracing and shows its
 * last events; to replay one yourself: {@code mvn test
 * -Dtest='io.vetcd.raft.RaftSimulationTest#replayOneSchedule' -Draft.sim.seed=S -Draft.sim.size=N}
 * (and {@code -Draft.sim.membership=true} for the membership sweep).
 * To search more: {@code -Draft.sim.seeds=100000 -Draft.sim.firstSeed=1000000}.
 * Reference: figure 3, sections 5.2, 5.3, 5.4 and 7
 */
class RaftSimulationTest {

  private static final int SCHEDULES = Integer.getInteger("raft.sim.seeds", 2000);
  private static final int MEMBERSHIP_SCHEDULES = Integer.getInteger("raft.sim.membershipSeeds", 4000);
  private static final int EVENTS = Integer.getInteger("raft.sim.events", 1500);
  private static final long FIRST_SEED = Long.getLong("raft.sim.firstSeed", 1);
  /** Seeds per parameterized invocation: few reports, yet small enough to show where it failed. */
  private static final int BLOCK = 125;

  private static final SimulatedCluster.Stats STATS = new SimulatedCluster.Stats();
  /** CPU time spent in schedules (summed over threads). */
  private static final AtomicLong NANOS = new AtomicLong();

  /** The sweep: per cluster size, consecutive seed blocks [from, to). */
  static Stream<Arguments> seedBlocks() {
    return seedBlocks(SCHEDULES);
  }

  static Stream<Arguments> membershipSeedBlocks() {
    return seedBlocks(MEMBERSHIP_SCHEDULES);
  }

  private static Stream<Arguments> seedBlocks(int schedules) {
    List<Arguments> out = new ArrayList<>();
    long perSize = Math.max(1, schedules / 2);
    for (int size : new int[] {3, 5}) {
      for (long from = FIRST_SEED; from < FIRST_SEED + perSize; from += BLOCK) {
        out.add(Arguments.of(size, from, Math.min(from + BLOCK, FIRST_SEED + perSize)));
      }
    }
    return out.stream();
  }

  /**
   * Thousands of random schedules keep every safety property after every event, and the cluster
   * recovers once faults stop. Reference: figure 3, sections 5.2 to 5.4
   */
  @ParameterizedTest(name = "{0} members, seeds [{1}, {2})")
  @MethodSource("seedBlocks")
  void randomSchedulesAreSafeAndRecover(int size, long from, long to) {
    sweep(size, from, to, false);
  }

  /**
   * The same, while operators add members (as learners or voters), promote learners and remove
   * members, the leader included, through any member: every property above holds across the changes
   * (durability against the member lists before and after each), a removed member that has not
   * learned it keeps running without disrupting the others (vetcd's transport refuses it and tells it
   * so), and after healing every member of the final list applies a final value. Reference: thesis §4.1
   */
  @ParameterizedTest(name = "{0} founding members, seeds [{1}, {2})")
  @MethodSource("membershipSeedBlocks")
  void membershipChangesUnderFaultsAreSafeAndRecover(int size, long from, long to) {
    sweep(size, from, to, true);
  }

  private static void sweep(int size, long from, long to, boolean membership) {
    // Schedules are independent and each owns its Random, so they run on every core; the failure
    // reported is the lowest failing seed, whatever the interleaving.
    Map<Long, Throwable> failures = new ConcurrentSkipListMap<>();
    LongStream.range(from, to).parallel().forEach(seed -> {
      try {
        runSchedule(seed, size, EVENTS, membership);
      } catch (Throwable t) {
        failures.put(seed, t);
      }
    });
    if (!failures.isEmpty()) {
      Map.Entry<Long, Throwable> first = failures.entrySet().iterator().next();
      AssertionError e = failure(first.getKey(), size, EVENTS, first.getValue(), membership);
      if (failures.size() > 1) {
        e.addSuppressed(
            new AssertionError("also failing in this block: seeds " + failures.keySet()));
      }
      throw e;
    }
  }

  /**
   * A few long schedules: many terms, compactions and restarts in one history, long-lived logs.
   * Reference: figure 3, sections 5.2 to 5.4 and 7
   */
  @ParameterizedTest(name = "{0} members, seed {1}, {2} events, membership changes: {3}")
  @CsvSource({"3, 900001, 30000, false", "3, 900002, 30000, false", "5, 900003, 30000, false",
      "5, 900004, 30000, false", "3, 900005, 30000, true", "5, 900006, 30000, true"})
  void longSchedulesAreSafeAndRecover(int size, long seed, int events, boolean membership) {
    try {
      runSchedule(seed, size, events, membership);
    } catch (Throwable t) {
      throw failure(seed, size, events, t, membership);
    }
  }

  /** Replays one schedule with its trace: -Draft.sim.seed=S -Draft.sim.size=3|5. */
  @Test
  @EnabledIfSystemProperty(named = "raft.sim.seed", matches = "-?\\d+")
  void replayOneSchedule() {
    long seed = Long.getLong("raft.sim.seed");
    int size = Integer.getInteger("raft.sim.size", 3);
    SimulatedCluster c = new SimulatedCluster(seed, size, true, Boolean.getBoolean("raft.sim.membership"));
    try {
      c.run(EVENTS);
    } finally {
      System.out.println("profile: " + c.profile() + "\n" + c.traceText());
    }
  }

  @AfterAll
  static void summary() {
    if (STATS.schedules == 0) {
      return;
    }
    System.out.printf("RaftSimulationTest: %s; %.1f s of simulation (CPU, all threads)%n", STATS,
        NANOS.get() / 1e9);
  }

  /** Runs one schedule of {@code events} events and its liveness phase; throws what it violated. */
  static void runSchedule(long seed, int size, int events, boolean membership) {
    long start = System.nanoTime();
    SimulatedCluster c = new SimulatedCluster(seed, size, false, membership);
    try {
      c.run(events);
      STATS.add(c.stats);
    } finally {
      NANOS.addAndGet(System.nanoTime() - start);
    }
  }

  /**
   * Runs a failed schedule again with tracing (a seed replays exactly) and describes the failure:
   * the seed, how to replay it, the profile, the violated property and the last events before it.
   */
  static AssertionError failure(long seed, int size, int events, Throwable cause, boolean membership) {
    SimulatedCluster replay = new SimulatedCluster(seed, size, true, membership);
    String again;
    try {
      replay.run(events);
      again = "the traced replay did NOT fail: the schedule is not deterministic";
    } catch (AssertionError | RuntimeException e) {
      again = e.toString().equals(cause.toString()) ? "replayed identically"
          : "the traced replay failed differently: " + e;
    }
    String replayFlags = "-Draft.sim.seed=" + seed + " -Draft.sim.size=" + size
        + (events == EVENTS ? "" : " -Draft.sim.events=" + events) + (membership ? " -Draft.sim.membership=true" : "");
    return new AssertionError("Raft simulation failed: seed=" + seed + " members=" + size
        + " at event " + replay.now() + " (replay: " + replayFlags + ")\n" + cause + "\nprofile: "
        + replay.profile() + "\n(" + again + ") last events; members shown as id:role term, "
        + "c=commit l=last a=applied u=unpersisted Readies:\n" + replay.traceText(), cause);
  }
}
