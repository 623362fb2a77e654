package io.vetcd.raft;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The fake network of {@link RaftSimulationTest}. A sent message becomes a {@link Packet} that may
 * be delivered from a random later step on (delay; now and then a long one, so it arrives after
 * newer traffic), in any order (delivery picks a random packet: reordering), possibly twice
 * (duplicate) or never (drop). Directed links can be cut for a while and heal by themselves: a
 * symmetric cut is two directed ones, an asymmetric cut only one. The network only decides what
 * happens to packets; {@link SimulatedCluster} delivers them and tells a SNAP's sender the outcome,
 * as the real transport does.
 *
 * <p>Deterministic: every choice comes from the schedule's {@link Random}.
 */
final class SimulatedNetwork {

  /**
   * One message on the wire from member {@code sender} (not always {@code message.from()}: a
   * forwarded TRANSFER_LEADER names the transferee there, a forwarded PROP its proposer).
   * Deliverable from step {@code deliverAt} on; {@code senderLife} is the sender's incarnation when
   * it sent, so the outcome of a SNAP is reported to that life only (a restarted member has a new
   * transport that never sent it).
   */
  record Packet(long sender, RaftMessage message, long deliverAt, int senderLife) {}

  private final Random rnd;
  /** Packets sent and neither delivered nor lost yet. Unordered: delivery picks one at random. */
  private final ArrayList<Packet> inFlight = new ArrayList<>();
  /**
   * {@code cutUntil[from][to]}: the directed link from → to loses every packet it would deliver
   * before this step. A value ≤ now means the link is up. Indexed by member id (1-based).
   */
  private final long[][] cutUntil;
  /** Chance that a message is lost when sent. */
  private final double dropRate;
  /** Chance that a message is sent twice. */
  private final double duplicateRate;
  /** Usual delay: uniform in [0, maxDelay] steps. */
  private final int maxDelay;
  /** Chance that a message is held up to {@code longDelay} steps instead. */
  private final double longDelayRate;
  private final int longDelay;
  /** The liveness phase: nothing is lost, duplicated or delayed any more. */
  private boolean calm;

  long dropped;
  long duplicated;
  long lostToCuts;

  SimulatedNetwork(Random rnd, int size, double dropRate, double duplicateRate, int maxDelay,
      double longDelayRate, int longDelay) {
    this.rnd = rnd;
    this.cutUntil = new long[size + 1][size + 1];
    this.dropRate = dropRate;
    this.duplicateRate = duplicateRate;
    this.maxDelay = maxDelay;
    this.longDelayRate = longDelayRate;
    this.longDelay = longDelay;
  }

  /**
   * Puts a message on the wire at step {@code now}. Returns false if it was lost at once (the
   * sender does not learn it: a datagram that vanished).
   */
  boolean send(long sender, RaftMessage m, int senderLife, long now) {
    if (!calm && dropRate > 0 && rnd.nextDouble() < dropRate) {
      dropped++;
      return false;
    }
    inFlight.add(new Packet(sender, m, now + delay(), senderLife));
    if (!calm && duplicateRate > 0 && rnd.nextDouble() < duplicateRate) {
      duplicated++;
      inFlight.add(new Packet(sender, m, now + delay(), senderLife));
    }
    return true;
  }

  private long delay() {
    if (calm) {
      return 0;
    }
    if (longDelayRate > 0 && rnd.nextDouble() < longDelayRate) {
      return 1 + rnd.nextInt(longDelay);
    }
    return maxDelay == 0 ? 0 : rnd.nextInt(maxDelay + 1);
  }

  /**
   * Takes a random packet off the wire if its delay has passed at step {@code now}; null if the one
   * picked is still held (or nothing is in flight). Picking at random is what reorders.
   */
  Packet takeRandom(long now) {
    if (inFlight.isEmpty()) {
      return null;
    }
    int i = rnd.nextInt(inFlight.size());
    Packet p = inFlight.get(i);
    if (p.deliverAt() > now) {
      return null;
    }
    Packet last = inFlight.remove(inFlight.size() - 1);
    if (i < inFlight.size()) {
      inFlight.set(i, last);
    }
    return p;
  }

  /** Sends a random packet in flight once more (a retransmission the receiver sees twice). */
  void duplicateRandom(long now) {
    if (!inFlight.isEmpty()) {
      Packet p = inFlight.get(rnd.nextInt(inFlight.size()));
      inFlight.add(new Packet(p.sender(), p.message(), now + delay(), p.senderLife()));
      duplicated++;
    }
  }

  /** Empties the wire, returning what was on it by delivery time (the liveness phase's flush). */
  List<Packet> takeAll() {
    List<Packet> out = new ArrayList<>(inFlight);
    out.sort((a, b) -> Long.compare(a.deliverAt(), b.deliverAt()));
    inFlight.clear();
    return out;
  }

  int inFlight() {
    return inFlight.size();
  }

  /** Whether the directed link from → to loses what it would deliver at step {@code now}. */
  boolean isCut(long from, long to, long now) {
    return cutUntil[(int) from][(int) to] > now;
  }

  /** Cuts the directed link from → to until step {@code until} (a longer cut stays as it is). */
  void cut(long from, long to, long until) {
    if (from != to) {
      cutUntil[(int) from][(int) to] = Math.max(cutUntil[(int) from][(int) to], until);
    }
  }

  void cutBothWays(long a, long b, long until) {
    cut(a, b, until);
    cut(b, a, until);
  }

  /** Every link is up again. */
  void healAll() {
    for (long[] row : cutUntil) {
      java.util.Arrays.fill(row, 0);
    }
  }

  /** From now on nothing is lost, duplicated or delayed (cuts are healed separately). */
  void calmDown() {
    calm = true;
  }

  /** A one-line picture of the cut links, for traces: "1>2 3>1". */
  String describeCuts(long now) {
    StringBuilder b = new StringBuilder();
    for (int f = 1; f < cutUntil.length; f++) {
      for (int t = 1; t < cutUntil.length; t++) {
        if (cutUntil[f][t] > now) {
          b.append(b.length() == 0 ? "" : " ").append(f).append('>').append(t);
        }
      }
    }
    return b.length() == 0 ? "none" : b.toString();
  }
}
