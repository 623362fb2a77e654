package io.vetcd.proxy;

import com.google.protobuf.ByteString;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * etcd's proxy cache of serializable reads: the answers to Range requests, by request, least recently
 * used first out ({@value #MAX_ENTRIES} entries, etcd's default). A write that passes through the
 * proxy removes the answers whose range it touches; a compaction passed through makes older
 * revisions' answers "compacted". As etcd's: writes that reach the cluster by another way are not
 * seen, so a serializable read through the proxy can be as stale as the cache (linearizable reads
 * always go to the cluster). Beyond etcd's: an answer is kept per caller token, so with auth on one
 * user never gets an answer read with another's rights.
 *
 * <p>Used on the proxy's event loop only.
 */
final class RangeCache {

  static final int MAX_ENTRIES = 2048;
  private static final Comparator<ByteString> BYTES = ByteString.unsignedLexicographicalComparator();

  /** A cached answer's key: the request (made serializable) and the token it was read with. */
  private record Key(String token, ByteString request) {}

  private record Entry(RangeRequest request, byte[] response) {}

  private final Map<Key, Entry> entries = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Key, Entry> eldest) {
      return size() > MAX_ENTRIES;
    }
  };
  private long compactedRevision = -1;
  /** Moves on with every write or compaction seen: an answer read before one is not kept after it. */
  private long generation;
  private long hits;
  private long misses;

  /** Thrown for a read at a revision the cache knows to be compacted. */
  static final class Compacted extends Exception {
    Compacted() {
      super("etcdserver: mvcc: required revision has been compacted", null, false, false);
    }
  }

  /** The cached answer to a serializable read, or null. */
  byte[] get(String token, RangeRequest request) throws Compacted {
    Key key = new Key(token, request.toByteString());
    if (request.getRevision() > 0 && request.getRevision() < compactedRevision) {
      entries.remove(key);
      hits++;
      throw new Compacted();
    }
    Entry entry = entries.get(key);
    if (entry == null) {
      misses++;
      return null;
    }
    hits++;
    return entry.response;
  }

  /** Keeps a read's answer (a linearizable one too: it serves later serializable reads). */
  void add(String token, RangeRequest request, byte[] response) {
    RangeRequest serializable = request.toBuilder().setSerializable(true).build();
    // (etcd's proxy keeps no read of the newest revision once a compaction passed through it.)
    if (request.getRevision() == 0 || request.getRevision() >= compactedRevision) {
      entries.put(new Key(token, serializable.toByteString()), new Entry(serializable, response));
    }
  }

  /** A write to [key, end) (end empty: the key alone) passed through: the answers it may change go. */
  void invalidate(ByteString key, ByteString end) {
    generation++;
    for (Iterator<Entry> i = entries.values().iterator(); i.hasNext(); ) {
      RangeRequest cached = i.next().request;
      if (cached.getRevision() == 0 && intersects(cached.getKey(), cached.getRangeEnd(), key, end)) {
        i.remove();
      }
    }
  }

  void compact(long revision) {
    generation++;
    compactedRevision = Math.max(compactedRevision, revision);
  }

  long generation() {
    return generation;
  }

  long size() {
    return entries.size();
  }

  long hits() {
    return hits;
  }

  long misses() {
    return misses;
  }

  /**
   * Whether [k1, e1) and [k2, e2) share a key, etcd's way of writing ranges: an empty end is the key
   * alone, "\0" every key from the start on.
   */
  static boolean intersects(ByteString k1, ByteString e1, ByteString k2, ByteString e2) {
    return below(k1, k2, e2) && below(k2, k1, e1);
  }

  /** Whether key {@code a} comes before the end of the range [k, e). */
  private static boolean below(ByteString a, ByteString k, ByteString e) {
    if (e.isEmpty()) {
      return BYTES.compare(a, k) <= 0;
    }
    if (e.size() == 1 && e.byteAt(0) == 0) {
      return true;
    }
    return BYTES.compare(a, e) < 0;
  }
}
