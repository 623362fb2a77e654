package io.vetcd.raft;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * The member list a simulated member's state machine holds, as vetcd's keyspace does
 * (server/ClusterMembers): the founding voters, then each applied CONF_CHANGE entry that the apply-time
 * checks let through. Removed ids stay removed. A refused change is committed like any entry and
 * changes nothing, on every member alike, which is why the check runs at apply time on the applied
 * list and not when proposing.
 *
 * <p>A member of the founding cluster starts from the founding list; a member that joins a running
 * cluster starts from none (its core knows no voters) and, like vetcd's, gets the founding voters
 * when it applies the log's first entry (vetcd's founding entries sit at the log's start), then every
 * change after them.
 */
record SimulatedMembership(List<Long> voters, List<Long> learners, Set<Long> removed) {

  static final SimulatedMembership NONE = new SimulatedMembership(List.of(), List.of(), Set.of());

  SimulatedMembership {
    voters = voters.stream().sorted().toList();
    learners = learners.stream().sorted().toList();
    removed = Set.copyOf(removed);
  }

  static SimulatedMembership founding(int size) {
    List<Long> voters = new ArrayList<>();
    for (long id = 1; id <= size; id++) {
      voters.add(id);
    }
    return new SimulatedMembership(voters, List.of(), Set.of());
  }

  boolean isMember(long id) {
    return voters.contains(id) || learners.contains(id);
  }

  ConfState confState() {
    return new ConfState(voters, learners);
  }

  /**
   * The list after {@code cc}, or null if the apply-time checks refuse it (etcd's
   * ValidateConfigurationChange: adding a member or a removed id, promoting a non-learner, removing a
   * stranger; vetcd's own: never the last voter).
   */
  SimulatedMembership apply(ConfChange cc) {
    long m = cc.member();
    List<Long> v = new ArrayList<>(voters);
    List<Long> l = new ArrayList<>(learners);
    Set<Long> r = new TreeSet<>(removed);
    switch (cc.type()) {
      case ADD_LEARNER -> {
        if (isMember(m) || removed.contains(m)) {
          return null;
        }
        l.add(m);
      }
      case ADD_VOTER -> {
        if (voters.contains(m) || removed.contains(m)) {
          return null;
        }
        l.remove(m); // a promotion, or a plain add
        v.add(m);
      }
      case REMOVE -> {
        if (!isMember(m) || (voters.size() == 1 && voters.contains(m))) {
          return null;
        }
        v.remove(m);
        l.remove(m);
        r.add(m);
      }
    }
    return new SimulatedMembership(v, l, r);
  }

  /** The founding voters a joiner's first applied entry brings, as ADD_VOTER changes. */
  static List<ConfChange> foundingChanges(int size) {
    List<ConfChange> out = new ArrayList<>();
    for (long id = 1; id <= size; id++) {
      out.add(new ConfChange(ConfChange.Type.ADD_VOTER, id, null));
    }
    return out;
  }

  /**
   * The list after applying {@code state} (entries 1..n, in order) from {@code start}: the list of a
   * member with nothing applied (the founding one, or {@link #NONE} for a joiner).
   */
  static SimulatedMembership of(List<Entry> state, SimulatedMembership start, int foundingSize) {
    SimulatedMembership m = state.isEmpty() || !start.voters.isEmpty() ? start : founding(foundingSize);
    for (Entry e : state) {
      if (e.type() == Entry.Type.CONF_CHANGE) {
        SimulatedMembership next = m.apply(ConfChange.decode(e.data()));
        if (next != null) {
          m = next;
        }
      }
    }
    return m;
  }
}
