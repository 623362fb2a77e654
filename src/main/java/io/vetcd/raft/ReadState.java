package io.vetcd.raft;

import java.util.Arrays;

/**
 * The answer to a {@code readIndex(context)} call (Raft thesis §6.4): once the local applied index
 * reaches {@code index}, a read started before the call may be served from the local state machine and
 * is linearizable. {@code context} is the caller's own token, returned unchanged so it can find its
 * waiting reads.
 */
public record ReadState(long index, byte[] context) {

  @Override
  public boolean equals(Object o) {
    return o instanceof ReadState r && index == r.index && Arrays.equals(context, r.context);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(index) * 31 + Arrays.hashCode(context);
  }

  @Override
  public String toString() {
    return "ReadState[" + index + " ctx=" + Arrays.toString(context) + "]";
  }
}
