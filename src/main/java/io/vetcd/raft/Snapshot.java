package io.vetcd.raft;

import java.util.Arrays;
import java.util.List;

/**
 * The application state as of log position ({@code index}, {@code term}): it replaces every entry up
 * to and including {@code index} (Raft §7). {@code voters} and {@code learners} are the membership at
 * that point, so a member restored from a snapshot knows the cluster without the entries that built it. {@code data} is opaque
 * to the core and may be empty: the server may keep the real state elsewhere and fill it in when it
 * ships the snapshot ({@link #withData}).
 */
public record Snapshot(long index, long term, List<Long> voters, List<Long> learners, byte[] data) {

  /** The start of every log: position 0 of term 0, nothing folded in yet. */
  public static final Snapshot EMPTY = new Snapshot(0, 0, List.of(), new byte[0]);

  /** A snapshot of a membership without learners. */
  public Snapshot(long index, long term, List<Long> voters, byte[] data) {
    this(index, term, voters, List.of(), data);
  }

  public Snapshot {
    if (index < 0 || term < 0 || (index == 0) != (term == 0)) {
      throw new IllegalArgumentException("bad snapshot position " + index + "@" + term);
    }
    voters = List.copyOf(voters);
    learners = List.copyOf(learners);
    data = data == null ? new byte[0] : data;
  }

  public boolean isEmpty() {
    return index == 0;
  }

  public Snapshot withData(byte[] newData) {
    return new Snapshot(index, term, voters, learners, newData);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Snapshot s && index == s.index && term == s.term && voters.equals(s.voters)
        && learners.equals(s.learners) && Arrays.equals(data, s.data);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(index) * 31 + Long.hashCode(term);
  }

  @Override
  public String toString() {
    return "Snapshot[" + index + "@" + term + " voters=" + voters + (learners.isEmpty() ? "" : " learners=" + learners) + " " + data.length + "B]";
  }
}
