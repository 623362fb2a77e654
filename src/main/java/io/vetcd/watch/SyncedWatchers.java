package io.vetcd.watch;

import com.google.protobuf.ByteString;
import io.vetcd.proto.mvccpb.Event;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The watchers of one stream that are all at the same next revision (etcd's synced group), indexed by
 * what they watch, so that an event finds its watchers by lookups instead of being tested against
 * every watcher (etcd keeps an interval tree). Ten thousand watchers on a stream cost a revision of a
 * few events a few lookups each:
 * <ul>
 *   <li>a single key: one hash lookup of the event's key;
 *   <li>a prefix (what {@code --prefix} and Kubernetes' watches ask for: the end is the prefix's
 *       end): one hash lookup per prefix length in use, of the event key's first bytes;
 *   <li>every key from one on (an empty end): the sorted map's head up to the event's key, all of
 *       which take it;
 *   <li>any other range: those starting at or before the event's key, sorted by start, are tested
 *       for their end (such ranges are rare: clients ask for a prefix or a key).
 * </ul>
 * Stream's context only.
 */
final class SyncedWatchers {

  private static final Comparator<ByteString> BYTES = ByteString.unsignedLexicographicalComparator();

  /** Watchers of one key, by that key. */
  private final Map<ByteString, List<WatchStream.Watcher>> byKey = new HashMap<>();
  /** Watchers of a prefix, by the prefix. */
  private final Map<ByteString, List<WatchStream.Watcher>> byPrefix = new HashMap<>();
  /** The lengths of the prefixes watched, with how many prefixes of each length. */
  private final TreeMap<Integer, Integer> prefixLengths = new TreeMap<>();
  /** Watchers of every key from theirs on, by that key. */
  private final TreeMap<ByteString, List<WatchStream.Watcher>> fromKey = new TreeMap<>(BYTES);
  /** Watchers of other ranges, by their start. */
  private final TreeMap<ByteString, List<WatchStream.Watcher>> ranges = new TreeMap<>(BYTES);
  private int size;

  void add(WatchStream.Watcher w) {
    if (w.end == null) {
      byKey.computeIfAbsent(w.key, k -> new ArrayList<>(1)).add(w);
    } else if (w.end.isEmpty()) {
      fromKey.computeIfAbsent(w.key, k -> new ArrayList<>(1)).add(w);
    } else if (isPrefix(w)) {
      byPrefix.computeIfAbsent(w.key, k -> {
        prefixLengths.merge(k.size(), 1, Integer::sum);
        return new ArrayList<>(1);
      }).add(w);
    } else {
      ranges.computeIfAbsent(w.key, k -> new ArrayList<>(1)).add(w);
    }
    size++;
  }

  void remove(WatchStream.Watcher w) {
    boolean removed;
    if (w.end == null) {
      removed = removeFrom(byKey, w);
    } else if (w.end.isEmpty()) {
      removed = removeFrom(fromKey, w);
    } else if (isPrefix(w)) {
      removed = removeFrom(byPrefix, w);
      if (removed && !byPrefix.containsKey(w.key)) {
        prefixLengths.computeIfPresent(w.key.size(), (length, n) -> n == 1 ? null : n - 1);
      }
    } else {
      removed = removeFrom(ranges, w);
    }
    if (removed) {
      size--;
    }
  }

  private static boolean removeFrom(Map<ByteString, List<WatchStream.Watcher>> index, WatchStream.Watcher w) {
    List<WatchStream.Watcher> of = index.get(w.key);
    boolean removed = of != null && of.remove(w);
    if (of != null && of.isEmpty()) {
      index.remove(w.key);
    }
    return removed;
  }

  /** Whether the watcher's range is exactly the keys that start with its key. */
  private static boolean isPrefix(WatchStream.Watcher w) {
    ByteString end = prefixEnd(w.key);
    return end != null && end.equals(w.end);
  }

  /**
   * The end of the range of keys that start with {@code prefix} (etcd's GetPrefixRangeEnd), or null if
   * there is none short of "every key from it" (empty, or all bytes 0xff).
   */
  static ByteString prefixEnd(ByteString prefix) {
    byte[] end = prefix.toByteArray();
    for (int i = end.length - 1; i >= 0; i--) {
      if (end[i] != (byte) 0xff) {
        end[i]++;
        return ByteString.copyFrom(end, 0, i + 1);
      }
    }
    return null;
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
    byPrefix.values().forEach(all::addAll);
    fromKey.values().forEach(all::addAll);
    ranges.values().forEach(all::addAll);
    return all;
  }

  void clear() {
    byKey.clear();
    byPrefix.clear();
    prefixLengths.clear();
    fromKey.clear();
    ranges.clear();
    size = 0;
  }

  /** Hands {@code to} each watcher that takes {@code e} (its key, and its filters). */
  void forEachTaking(Event e, Consumer<WatchStream.Watcher> to) {
    ByteString k = e.getKv().getKey();
    offer(byKey.get(k), e, to);
    for (int length : prefixLengths.headMap(k.size(), true).keySet()) {
      offer(byPrefix.get(k.substring(0, length)), e, to);
    }
    for (List<WatchStream.Watcher> from : fromKey.headMap(k, true).values()) {
      offer(from, e, to);
    }
    for (List<WatchStream.Watcher> starting : ranges.headMap(k, true).values()) {
      offer(starting, e, to); // accepts() tests the end
    }
  }

  private static void offer(List<WatchStream.Watcher> watchers, Event e, Consumer<WatchStream.Watcher> to) {
    if (watchers != null) {
      for (WatchStream.Watcher w : watchers) {
        if (w.accepts(e)) {
          to.accept(w);
        }
      }
    }
  }
}
