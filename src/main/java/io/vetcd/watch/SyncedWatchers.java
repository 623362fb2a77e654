package io.vetcd.watch;

import com.google.protobuf.ByteString;
import io.vetcd.proto.mvccpb.Event;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The watchers of one stream that are all at the same next revision (etcd's synced group), indexed by
 * what they watch: an event finds the watchers of its key with one lookup, plus the range watchers,
 * instead of being tested against every watcher. Ten thousand single-key watchers on a stream cost a
 * revision of a few events a few lookups, not ten thousand tests per event. Stream's context only.
 */
final class SyncedWatchers {

  /** Watchers of one key, by that key. */
  private final Map<ByteString, List<WatchStream.Watcher>> byKey = new HashMap<>();
  /** Watchers of a range or a prefix: tested one by one (etcd keeps an interval tree; ranges are few). */
  private final List<WatchStream.Watcher> ranges = new ArrayList<>();
  private int size;

  void add(WatchStream.Watcher w) {
    if (w.end == null) {
      byKey.computeIfAbsent(w.key, k -> new ArrayList<>(1)).add(w);
    } else {
      ranges.add(w);
    }
    size++;
  }

  void remove(WatchStream.Watcher w) {
    boolean removed;
    if (w.end == null) {
      List<WatchStream.Watcher> of = byKey.get(w.key);
      removed = of != null && of.remove(w);
      if (of != null && of.isEmpty()) {
        byKey.remove(w.key);
      }
    } else {
      removed = ranges.remove(w);
    }
    if (removed) {
      size--;
    }
  }

  boolean isEmpty() {
    return size == 0;
  }

  int size() {
    return size;
  }

  /** Every watcher, in no particular order (a copy). */
  List<WatchStream.Watcher> all() {
    List<WatchStream.Watcher> all = new ArrayList<>(size);
    byKey.values().forEach(all::addAll);
    all.addAll(ranges);
    return all;
  }

  void clear() {
    byKey.clear();
    ranges.clear();
    size = 0;
  }

  /** Hands {@code to} each watcher that takes {@code e} (its key, and its filters). */
  void forEachTaking(Event e, Consumer<WatchStream.Watcher> to) {
    List<WatchStream.Watcher> of = byKey.get(e.getKv().getKey());
    if (of != null) {
      for (WatchStream.Watcher w : of) {
        if (w.accepts(e)) {
          to.accept(w);
        }
      }
    }
    for (WatchStream.Watcher w : ranges) {
      if (w.accepts(e)) {
        to.accept(w);
      }
    }
  }
}
