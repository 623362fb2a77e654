package io.vetcd.raft;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * A small seeded random-schedule check of the core's safety properties (Raft figure 3): Election
 * Safety, Log Matching, Leader Completeness, State Machine Safety, plus linearizable ReadIndex and
 * eventual progress once faults stop. The server is modelled with pipelined Readies (handed out,
 * persisted later, possibly lost in a crash); the network reorders, duplicates, drops and
 * partitions. This is a smoke test of the core, not the full simulation suite of issue 3.
 */
class SimulationSmokeTest {

  /**
   * Figure 3's properties over many seeded schedules (-DsimFrom / -DsimTo choose the seeds; a failure
   * names its seed and step). Reference: section 5.4.3 and figure 3
   */
  @Test
  void randomSchedulesKeepRaftSafetyProperties() {
    for (long seed = Long.getLong("simFrom", 1); seed <= Long.getLong("simTo", 150); seed++) {
      new Sim(seed, seed % 2 == 0 ? 3 : 5).run(2500);
    }
  }

  private static final class Sim {
    final long seed;
    final Random rnd;
    final List<Long> ids = new ArrayList<>();
    final Map<Long, RaftConfig> configs = new TreeMap<>();
    final Map<Long, RaftNode> nodes = new TreeMap<>();
    final Map<Long, MemoryStorage> disks = new TreeMap<>();
    /** Readies handed out and not yet persisted (lost on crash). */
    final Map<Long, ArrayDeque<Ready>> pending = new TreeMap<>();
    final List<RaftMessage> network = new ArrayList<>();
    final Set<List<Long>> cut = new HashSet<>();
    final Map<Long, Long> leaderOfTerm = new HashMap<>();
    /** Every entry any member handed out for applying, by index: what was acknowledged. */
    final TreeMap<Long, Entry> committed = new TreeMap<>();
    /** Read context → highest acknowledged index when the read started. */
    final Map<String, Long> readsStarted = new HashMap<>();
    int proposals;
    int reads;
    int step;

    Sim(long seed, int size) {
      this.seed = seed;
      this.rnd = new Random(seed);
      for (long i = 1; i <= size; i++) {
        ids.add(i);
      }
      // Cluster-wide settings (members must agree: a member without CheckQuorum/PreVote never
      // answers a stale leader, while the others would ignore its votes under the lease).
      boolean preVote = rnd.nextBoolean();
      boolean checkQuorum = rnd.nextBoolean();
      for (long id : ids) {
        RaftConfig c = RaftConfig.builder(id, ids).randomSeed(seed).maxEntriesPerMessage(4)
            .maxInflightMessages(4).preVote(preVote).checkQuorum(checkQuorum).build();
        configs.put(id, c);
        disks.put(id, new MemoryStorage());
        pending.put(id, new ArrayDeque<>());
        nodes.put(id, new RaftNode(c));
      }
    }

    void run(int steps) {
      try {
        for (step = 0; step < steps; step++) {
          act();
          check();
        }
        settle();
      } catch (AssertionError | RuntimeException e) {
        throw new AssertionError("seed " + seed + " step " + step + ": " + e.getMessage(), e);
      }
    }

    long any() {
      return ids.get(rnd.nextInt(ids.size()));
    }

    void act() {
      int r = rnd.nextInt(100);
      long id = any();
      RaftNode n = nodes.get(id);
      if (r < 30) {
        if (!network.isEmpty()) {
          deliver(network.remove(rnd.nextInt(network.size())));
        }
      } else if (r < 33) {
        if (!network.isEmpty()) {
          RaftMessage m = network.remove(rnd.nextInt(network.size()));
          if (m.type() == MessageType.SNAP) {
            nodes.get(m.from()).reportSnapshot(m.to(), false);
          }
        }
      } else if (r < 35) {
        if (!network.isEmpty()) {
          network.add(network.get(rnd.nextInt(network.size())));
        }
      } else if (r < 50) {
        n.tick();
      } else if (r < 63) {
        if (n.hasReady()) {
          Ready rd = n.ready();
          network.addAll(rd.leaderMessages());
          applyCommitted(id, rd);
          pending.get(id).add(rd);
        }
      } else if (r < 78) {
        persistOne(id);
      } else if (r < 86) {
        n.propose(("v" + (++proposals)).getBytes(UTF_8));
      } else if (r < 89) {
        String ctx = "r" + (++reads);
        if (n.readIndex(ctx.getBytes(UTF_8))) {
          readsStarted.put(ctx, committed.isEmpty() ? 0 : committed.lastKey());
        }
      } else if (r < 90) {
        crash(id);
      } else if (r < 93) {
        long other = any();
        if (other != id) {
          cut.add(List.of(id, other));
          cut.add(List.of(other, id));
        }
      } else if (r < 96) {
        cut.clear();
      } else if (r < 97) {
        long applied = n.appliedIndex();
        if (applied > n.snapshot().index() && applied <= n.persistedIndex()) {
          Snapshot s = n.createSnapshot(applied, new byte[0]);
          n.compact(s);
          disks.get(id).compact(s);
        }
      } else {
        if (rnd.nextInt(10) == 0 && n.isLeader()) {
          n.transferLeadership(any());
        } else if (rnd.nextInt(5) == 0) {
          n.campaign();
        }
      }
    }

    void deliver(RaftMessage m) {
      if (cut.contains(List.of(m.from(), m.to()))) {
        if (m.type() == MessageType.SNAP) {
          nodes.get(m.from()).reportSnapshot(m.to(), false);
        }
        return;
      }
      nodes.get(m.to()).step(m);
      if (m.type() == MessageType.SNAP) {
        nodes.get(m.from()).reportSnapshot(m.to(), true);
      }
    }

    void persistOne(long id) {
      Ready rd = pending.get(id).poll();
      if (rd == null) {
        return;
      }
      disks.get(id).persist(rd);
      network.addAll(rd.messages());
      nodes.get(id).advance(rd);
    }

    void applyCommitted(long id, Ready rd) {
      for (Entry e : rd.committedEntries()) {
        Entry prev = committed.putIfAbsent(e.index(), e);
        if (prev != null && !prev.equals(e)) {
          fail("State Machine Safety: member " + id + " applies " + e + " at " + e.index()
              + " but " + prev + " was applied there");
        }
      }
      for (ReadState rs : rd.readStates()) {
        String ctx = new String(rs.context(), UTF_8);
        Long floor = readsStarted.get(ctx);
        if (floor != null && rs.index() < floor) {
          fail("linearizability: read " + ctx + " got index " + rs.index()
              + " but index " + floor + " was acknowledged before it started");
        }
      }
    }

    void crash(long id) {
      pending.get(id).clear();
      // Like the transport: a snapshot that was on its way to the crashed member is reported lost.
      network.stream().filter(m -> m.to() == id && m.type() == MessageType.SNAP)
          .forEach(m -> nodes.get(m.from()).reportSnapshot(id, false));
      network.removeIf(m -> m.to() == id);
      MemoryStorage d = disks.get(id);
      nodes.put(id, new RaftNode(configs.get(id), d.hardState, d.snapshot, d.entries));
    }

    void check() {
      for (RaftNode n : nodes.values()) {
        if (n.isLeader()) {
          Long prev = leaderOfTerm.putIfAbsent(n.term(), n.id());
          if (prev != null && prev != n.id()) {
            fail("Election Safety: " + prev + " and " + n.id() + " both led term " + n.term());
          }
          for (Entry e : committed.values()) {
            if (e.index() >= n.firstIndex() && n.term(e.index()) != e.term()) {
              fail("Leader Completeness: leader " + n.id() + " of term " + n.term()
                  + " lacks committed " + e);
            }
          }
        }
        if (n.commitIndex() > n.lastIndex() || n.appliedIndex() > n.commitIndex()) {
          fail("index order broken on " + n);
        }
      }
      if (step % 10 == 0) {
        checkLogMatching();
      }
    }

    void checkLogMatching() {
      List<RaftNode> all = new ArrayList<>(nodes.values());
      for (int a = 0; a < all.size(); a++) {
        for (int b = a + 1; b < all.size(); b++) {
          RaftNode x = all.get(a);
          RaftNode y = all.get(b);
          List<Entry> xs = x.entries();
          List<Entry> ys = y.entries();
          long lo = Math.max(x.firstIndex(), y.firstIndex());
          long hi = Math.min(x.lastIndex(), y.lastIndex());
          boolean matched = false;
          for (long i = hi; i >= lo; i--) {
            Entry ex = xs.get((int) (i - x.firstIndex()));
            Entry ey = ys.get((int) (i - y.firstIndex()));
            if (!matched && ex.term() == ey.term()) {
              matched = true;
            }
            if (matched && !ex.equals(ey)) {
              fail("Log Matching: " + x.id() + " and " + y.id() + " differ at " + i);
            }
          }
        }
      }
    }

    /** Faults stop: the cluster must elect a leader and commit a new entry everywhere. */
    void settle() {
      cut.clear();
      for (int round = 0; round < 400; round++) {
        for (long id : ids) {
          nodes.get(id).tick();
          drainAll();
        }
      }
      List<Long> leaders = ids.stream().filter(i -> nodes.get(i).isLeader()).toList();
      assertEquals(1, leaders.size(), "one leader after healing");
      RaftNode leader = nodes.get(leaders.get(0));
      assertTrue(leader.propose("final".getBytes(UTF_8)));
      drainAll();
      for (long id : ids) {
        assertEquals(leader.lastIndex(), nodes.get(id).commitIndex(), "member " + id);
        assertEquals(leader.commitIndex(), nodes.get(id).appliedIndex(), "member " + id);
      }
      checkLogMatching();
    }

    void drainAll() {
      for (int i = 0; i < 10_000; i++) {
        boolean moved = false;
        for (long id : ids) {
          while (!pending.get(id).isEmpty()) {
            persistOne(id);
            moved = true;
          }
          RaftNode n = nodes.get(id);
          if (n.hasReady()) {
            Ready rd = n.ready();
            network.addAll(rd.leaderMessages());
            applyCommitted(id, rd);
            pending.get(id).add(rd);
            moved = true;
          }
        }
        while (!network.isEmpty()) {
          deliver(network.remove(0));
          moved = true;
        }
        check();
        if (!moved) {
          return;
        }
      }
      fail("did not settle");
    }
  }
}
