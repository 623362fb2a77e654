package io.vetcd.proxy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import org.junit.jupiter.api.Test;

class RangeCacheTest {

  private static ByteString b(String s) {
    return ByteString.copyFromUtf8(s);
  }

  private static RangeRequest range(String key, String end) {
    return RangeRequest.newBuilder().setKey(b(key)).setRangeEnd(b(end)).setSerializable(true).build();
  }

  @Test
  void rangesIntersectAsEtcdWritesThem() {
    assertTrue(RangeCache.intersects(b("a"), b(""), b("a"), b("")));
    assertFalse(RangeCache.intersects(b("a"), b(""), b("b"), b("")));
    assertTrue(RangeCache.intersects(b("b"), b(""), b("a"), b("c")));
    assertFalse(RangeCache.intersects(b("c"), b(""), b("a"), b("c")), "the end is not in the range");
    assertTrue(RangeCache.intersects(b("a"), b("c"), b("b"), b("d")));
    assertFalse(RangeCache.intersects(b("a"), b("b"), b("b"), b("d")));
    assertTrue(RangeCache.intersects(b("zz"), b(""), b("b"), ByteString.copyFrom(new byte[] {0})), "\\0: to the end");
  }

  @Test
  void aWriteRemovesTheAnswersItTouchesOnly() throws Exception {
    RangeCache cache = new RangeCache();
    cache.add("t", range("a", ""), new byte[] {1});
    cache.add("t", range("a", "m"), new byte[] {2});
    cache.add("t", range("x", ""), new byte[] {3});
    // A linearizable read's answer serves the same read made serializable.
    assertArrayEquals(new byte[] {1}, cache.get("t", range("a", "")));
    cache.invalidate(b("c"), ByteString.EMPTY);
    assertArrayEquals(new byte[] {1}, cache.get("t", range("a", "")));
    assertNull(cache.get("t", range("a", "m")));
    assertArrayEquals(new byte[] {3}, cache.get("t", range("x", "")));
    assertEquals(2, cache.size());
    assertEquals(3, cache.hits());
    assertEquals(1, cache.misses());
  }

  @Test
  void everyWriteOrCompactionMovesTheGenerationOn() {
    RangeCache cache = new RangeCache();
    long before = cache.generation();
    cache.invalidate(b("x"), ByteString.EMPTY);
    assertTrue(cache.generation() > before, "a write to a key nobody cached still counts");
    long after = cache.generation();
    cache.compact(3);
    assertTrue(cache.generation() > after);
  }

  @Test
  void anAnswerIsKeptForTheTokenItWasReadWith() throws Exception {
    RangeCache cache = new RangeCache();
    cache.add("alice", range("a", ""), new byte[] {1});
    assertNull(cache.get("bob", range("a", "")));
    assertArrayEquals(new byte[] {1}, cache.get("alice", range("a", "")));
  }

  @Test
  void aReadBelowTheCompactedRevisionIsCompactedAndTheOldestAnswersGoFirst() throws Exception {
    RangeCache cache = new RangeCache();
    RangeRequest at5 = range("a", "").toBuilder().setRevision(5).build();
    cache.add("t", at5, new byte[] {5});
    cache.compact(7);
    RangeCache.Compacted compacted = assertThrows(RangeCache.Compacted.class, () -> cache.get("t", at5));
    assertEquals("etcdserver: mvcc: required revision has been compacted", compacted.getMessage());
    for (int i = 0; i <= RangeCache.MAX_ENTRIES; i++) {
      cache.add("t", range("k" + i, ""), new byte[] {1});
    }
    assertEquals(RangeCache.MAX_ENTRIES, cache.size());
    assertNull(cache.get("t", range("k0", "")));
  }
}
