package io.vetcd.watch;

import io.vetcd.proto.mvccpb.Event;
import java.util.ArrayList;
import java.util.List;

/**
 * The newest revisions' events in memory, so that watchers that keep up are served without reading
 * the store. Revisions are contiguous (every revision has at least one change); the oldest are
 * evicted when a bound on revisions, events or bytes is reached. A watcher that needs an evicted
 * revision catches up from the store instead: memory does not grow with a slow watcher.
 */
final class EventRing {

  /** The events of one revision, in the order the request made them. */
  record Revision(long revision, List<Event> events, long bytes) {}

  private final Revision[] slots;
  private final long maxEvents;
  private final long maxBytes;
  /** Kept: revisions in [first, next). */
  private long first;
  private long next;
  private long events;
  private long bytes;

  EventRing(int maxRevisions, long maxEvents, long maxBytes) {
    this.slots = new Revision[maxRevisions];
    this.maxEvents = maxEvents;
    this.maxBytes = maxBytes;
  }

  /** Drops everything; the next revision added is {@code nextRevision}. */
  synchronized void reset(long nextRevision) {
    java.util.Arrays.fill(slots, null);
    first = next = nextRevision;
    events = bytes = 0;
  }

  synchronized void add(long revision, List<Event> revisionEvents) {
    if (revision != next) {
      reset(revision); // not contiguous (cannot happen when fed in order): keep only what follows
    }
    long size = 0;
    for (Event e : revisionEvents) {
      size += e.getSerializedSize();
    }
    while (first < next && (next - first >= slots.length
        || events + revisionEvents.size() > maxEvents || bytes + size > maxBytes)) {
      Revision old = slots[slot(first)];
      slots[slot(first)] = null;
      events -= old.events().size();
      bytes -= old.bytes();
      first++;
    }
    slots[slot(revision)] = new Revision(revision, revisionEvents, size);
    events += revisionEvents.size();
    bytes += size;
    next = revision + 1;
  }

  /**
   * Revisions from {@code from} on, whole, until at least {@code maxEvents} events are taken; empty if
   * {@code from} is newer than the newest kept; null if it is older than the oldest kept.
   */
  synchronized List<Revision> from(long from, int maxEvents) {
    if (from < first) {
      return null;
    }
    List<Revision> out = new ArrayList<>();
    int taken = 0;
    for (long r = from; r < next && taken < maxEvents; r++) {
      Revision rev = slots[slot(r)];
      out.add(rev);
      taken += rev.events().size();
    }
    return out;
  }

  private int slot(long revision) {
    return (int) Math.floorMod(revision, (long) slots.length);
  }
}
