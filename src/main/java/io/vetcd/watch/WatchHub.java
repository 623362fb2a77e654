package io.vetcd.watch;

import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.mvccpb.Event;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * etcd's watchable store, for one member: the apply thread publishes each committed batch's events
 * here, after the keyspace commit; watch streams read the recent ones from memory ({@link EventRing})
 * and older ones from the store. Publishing only wakes the streams (one task per stream and batch):
 * matching events to watchers happens on the streams' own event loops, not on the apply thread.
 */
public final class WatchHub {

  /**
   * Bounds of the in-memory history; beyond them watchers read the store. Watchers that keep up need
   * only the newest few revisions, and the ring is live heap whether anyone watches or not: keep it
   * small. Young collections copy it while it lives: at 8 MiB (8,192 revisions) it kept ~6 MB alive
   * at 10,000 puts/s and doubled the pauses that set the put p99.
   */
  static final int RING_REVISIONS = 1024;
  static final long RING_EVENTS = 2048;
  static final long RING_BYTES = 1024 * 1024;

  private final MvccStore store;
  private final EventRing ring;
  private final Set<WatchStream> streams = ConcurrentHashMap.newKeySet();
  /** Watchers on all streams, kept by the streams (each on its own event loop). */
  final java.util.concurrent.atomic.AtomicLong watcherCount = new java.util.concurrent.atomic.AtomicLong();
  /** The newest revision published (applied and committed to the store). */
  private volatile long revision;
  /** Revisions below this are compacted: a watcher that still needs them is cancelled. */
  private volatile long compactRevision;

  public WatchHub(MvccStore store) {
    this(store, RING_REVISIONS, RING_EVENTS, RING_BYTES);
  }

  WatchHub(MvccStore store, int ringRevisions, long ringEvents, long ringBytes) {
    this.store = store;
    this.ring = new EventRing(ringRevisions, ringEvents, ringBytes);
    reset();
  }

  /**
   * Publishes a committed batch: its events (in revision order) and the store's compacted revision.
   * Apply thread only.
   */
  public void publish(List<Event> events, long compacted) {
    compactRevision = compacted;
    if (events.isEmpty()) {
      return;
    }
    long current = 0;
    List<Event> revisionEvents = new ArrayList<>();
    for (Event e : events) {
      long r = e.getKv().getModRevision();
      if (r != current && !revisionEvents.isEmpty()) {
        ring.add(current, revisionEvents);
        revisionEvents = new ArrayList<>();
      }
      current = r;
      revisionEvents.add(e);
    }
    ring.add(current, revisionEvents);
    revision = current;
    streams.forEach(WatchStream::wake);
  }

  /** Users, roles or permissions changed: every stream checks its watchers again. */
  public void authChanged() {
    streams.forEach(WatchStream::recheckAccess);
  }

  /**
   * Starts over from the store (after a snapshot replaced the keyspace): the in-memory history no
   * longer follows on from it; watchers behind read the store.
   */
  public void reset() {
    try (MvccStore.ReadView view = store.read()) {
      revision = view.revision();
      compactRevision = view.compactRevision();
    }
    ring.reset(revision + 1);
    streams.forEach(WatchStream::wake);
  }

  public long revision() {
    return revision;
  }

  long compactRevision() {
    return compactRevision;
  }

  List<EventRing.Revision> recent(long from, int maxEvents) {
    return ring.from(from, maxEvents);
  }

  MvccStore store() {
    return store;
  }

  void register(WatchStream stream) {
    streams.add(stream);
  }

  void unregister(WatchStream stream) {
    streams.remove(stream);
  }

  /** Open watch streams (etcd's etcd_debugging_mvcc_watch_stream_total). */
  public int streamCount() {
    return streams.size();
  }

  /** Watchers on all open streams (etcd's etcd_debugging_mvcc_watcher_total). */
  public long watcherCount() {
    return watcherCount.get();
  }
}
