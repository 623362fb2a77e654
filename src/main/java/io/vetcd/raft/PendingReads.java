package io.vetcd.raft;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The leader's ReadIndex requests waiting for a heartbeat round to confirm it is still leader (thesis
 * §6.4; etcd-io/raft read_only.go). Each request records the commit index when it arrived; once a
 * quorum has answered a heartbeat carrying its context, no other leader can have committed anything
 * newer at that moment, so the recorded index is safe to read at. A quorum for one request confirms
 * every earlier one too (their heartbeats left no later than its own).
 *
 * <p>Contexts identify requests and must be unique among the pending ones (the server uses a request
 * id); a request whose context is already pending is dropped. Cleared whenever leadership changes.
 */
final class PendingReads {

  /** One waiting read: its index, the request to answer, and the voters that acknowledged it. */
  record Pending(long index, Message request, Set<Long> acks) {}

  /** Waiting reads by context (ByteBuffer gives byte-wise equality). */
  private final Map<ByteBuffer, Pending> byContext = new HashMap<>();
  /** Contexts in arrival order; invariant: exactly the keys of {@code byContext}. */
  private final ArrayDeque<ByteBuffer> order = new ArrayDeque<>();

  /** Registers a read at {@code index}; false if its context is already pending. */
  boolean add(long index, Message request) {
    ByteBuffer key = ByteBuffer.wrap(request.context());
    if (byContext.containsKey(key)) {
      return false;
    }
    byContext.put(key, new Pending(index, request, new HashSet<>()));
    order.add(key);
    return true;
  }

  /** Records {@code from}'s heartbeat answer; returns everyone who acknowledged, or null if unknown. */
  Set<Long> ack(long from, byte[] context) {
    Pending p = byContext.get(ByteBuffer.wrap(context));
    if (p == null) {
      return null;
    }
    p.acks().add(from);
    return p.acks();
  }

  /** Removes and returns the read with {@code context} and every read that arrived before it. */
  List<Pending> releaseThrough(byte[] context) {
    ByteBuffer key = ByteBuffer.wrap(context);
    List<Pending> released = new ArrayList<>();
    if (!byContext.containsKey(key)) {
      return released;
    }
    while (!order.isEmpty()) {
      ByteBuffer k = order.poll();
      released.add(byContext.remove(k));
      if (k.equals(key)) {
        break;
      }
    }
    return released;
  }

  /** The newest waiting read's context, carried by every heartbeat (null: nothing waits). */
  byte[] lastContext() {
    ByteBuffer k = order.peekLast();
    return k == null ? null : k.array();
  }

  int size() {
    return order.size();
  }
}
