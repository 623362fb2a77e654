package io.vetcd.server;

import io.vetcd.raft.MessageType;
import io.vetcd.raft.RaftMessage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A follower's acknowledgements of appended entries, held back while its apply thread is behind.
 *
 * <p>Why: a follower acknowledges entries once they are on its disk, and the leader sends more as the
 * acknowledgements come (bounded by its in-flight bytes per follower). A member catching up appends
 * far faster than it applies large values, so the entries waiting for the apply thread grew without
 * bound on the heap: 400 values of 1 MiB took the catching-up member to 650-790 MiB of anonymous
 * memory. Holding the acknowledgement lets the leader's in-flight bound do the rest: it sends no more
 * until the apply thread is down to half the bound. Holding a message is a network delay to Raft:
 * safe, and the leader still hears the heartbeat responses that keep it leading and the follower
 * active.
 */
final class HeldAcks {

  /** Above this many bytes of entries waiting to be applied, acknowledgements wait. */
  static final long HOLD_ABOVE_BYTES = 8L << 20;

  /** The newest held acknowledgement to each member (they are cumulative: it says all the others did). */
  private final Map<Long, RaftMessage> held = new LinkedHashMap<>();

  /** Whether {@code m} must wait (it is then kept); once something is held, later ones wait too. */
  boolean hold(RaftMessage m, long unappliedBytes) {
    if (m.type() != MessageType.APP_RESP || m.reject()) {
      return false;
    }
    if (held.isEmpty() && unappliedBytes <= HOLD_ABOVE_BYTES) {
      return false;
    }
    held.put(m.to(), m);
    return true;
  }

  /** The held acknowledgements to send now, if the apply thread is down to half the bound; else none. */
  List<RaftMessage> release(long unappliedBytes) {
    if (held.isEmpty() || unappliedBytes > HOLD_ABOVE_BYTES / 2) {
      return List.of();
    }
    List<RaftMessage> out = new ArrayList<>(held.values());
    held.clear();
    return out;
  }
}
