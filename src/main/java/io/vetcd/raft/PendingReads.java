package io.vetcd.raft;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;

/**
 * The leader's ReadIndex requests waiting for a heartbeat round to confirm it is still leader (thesis
 * §6.4; etcd-io/raft read_only.go). Each request records the commit index when it arrived; once a
 * quorum has answered a heartbeat sent after it arrived, no other leader can have committed anything
 * newer at that moment, so the recorded index is safe to read at. A quorum for one request confirms
 * every earlier one too (their heartbeats left no later than its own).
 *
 * <p>Requests are told apart by who asked and their context: each member numbers its own reads, so
 * two members may well use the same context at once (only a member's own contexts must be unique
 * among its pending reads; a repeated one, e.g. a duplicated message, is dropped). Heartbeats do not
 * carry a requester's context but a round number of the leader's own: the k-th request of this
 * leadership is confirmed by answers to heartbeats carrying k, which left only after it arrived. So
 * an answer to an older heartbeat (a late one, held back by the network) can never confirm a newer
 * request, whatever contexts the requesters chose. Cleared whenever leadership changes.
 */
final class PendingReads {

  /** One waiting read: its round, its index, the request to answer, and the voters that acknowledged it. */
  record Pending(long round, long index, RaftMessage request, Set<Long> acks) {}

  /** Who asked, with what context (ByteBuffer gives byte-wise equality). */
  private record Requester(long from, ByteBuffer context) {}

  /** Waiting reads by requester, to drop a repeated request. */
  private final Map<Requester, Pending> byRequester = new HashMap<>();
  /** Waiting reads by round, i.e. in arrival order; the same reads as {@code byRequester}. */
  private final NavigableMap<Long, Pending> byRound = new TreeMap<>();
  /** The round of the last read registered (rounds start at 1 and never repeat in one leadership). */
  private long lastRound;

  /**
   * Registers a read at {@code index}; returns it, or null if the same member's request with the same
   * context is already pending.
   */
  Pending add(long index, RaftMessage request) {
    Requester key = new Requester(request.from(), ByteBuffer.wrap(request.context()));
    if (byRequester.containsKey(key)) {
      return null;
    }
    Pending p = new Pending(++lastRound, index, request, new HashSet<>());
    byRequester.put(key, p);
    byRound.put(p.round(), p);
    return p;
  }

  /**
   * Records {@code from}'s answer to a heartbeat that carried {@code context}; returns everyone who
   * acknowledged that heartbeat's read, or null if no read of that round is waiting (answered
   * already, of an earlier leadership, or not a round of ours).
   */
  Set<Long> ack(long from, byte[] context) {
    Pending p = byRound.get(round(context));
    if (p == null) {
      return null;
    }
    p.acks().add(from);
    return p.acks();
  }

  /** Removes and returns the read of the heartbeat context's round and every read before it. */
  List<Pending> releaseThrough(byte[] context) {
    long round = round(context);
    List<Pending> released = new ArrayList<>();
    if (!byRound.containsKey(round)) {
      return released;
    }
    NavigableMap<Long, Pending> through = byRound.headMap(round, true);
    for (Pending p : through.values()) {
      released.add(p);
      byRequester.remove(new Requester(p.request().from(), ByteBuffer.wrap(p.request().context())));
    }
    through.clear();
    return released;
  }

  /** What every heartbeat carries: the newest waiting read's round (null: nothing waits). */
  byte[] lastContext() {
    return byRound.isEmpty() ? null : ByteBuffer.allocate(8).putLong(byRound.lastKey()).array();
  }

  int size() {
    return byRound.size();
  }

  /** The round a heartbeat context names; 0 (never a round) for anything else. */
  private static long round(byte[] context) {
    return context != null && context.length == 8 ? ByteBuffer.wrap(context).getLong() : 0;
  }
}
