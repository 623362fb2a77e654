package io.vetcd.mvcc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.mvcc.KeyIndex.Change;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The history of one key, as etcd's key_index.go keeps it: generations, find, compaction keep-set. */
class KeyIndexTest {

  private static Revision rev(long main) {
    return new Revision(main, 0);
  }

  private static Change put(long main) {
    return new Change(rev(main), false);
  }

  private static Change del(long main) {
    return new Change(rev(main), true);
  }

  /** etcd key_index.go's worked example: put(1), put(2), tombstone(3), put(4), tombstone(5), put(6). */
  private static KeyIndex example() {
    KeyIndex ki = new KeyIndex();
    ki.put(rev(1));
    ki.put(rev(2));
    ki.tombstone(rev(3));
    ki.put(rev(4));
    ki.tombstone(rev(5));
    ki.put(rev(6));
    return ki;
  }

  @Test
  void putPutDeletePutMakesTwoGenerations() {
    KeyIndex ki = new KeyIndex();
    ki.put(rev(1));
    ki.put(rev(2));
    ki.tombstone(rev(3));
    ki.put(rev(4));
    // etcd: {1.0, 2.0, 3.0(t)} then the live generation {4.0}
    assertEquals(List.of(List.of(put(1), put(2), del(3)), List.of(put(4))), ki.generations());
    assertTrue(ki.isLive());
  }

  @Test
  void workedExampleHasThreeGenerationsTheLastLive() {
    assertEquals(
        List.of(List.of(put(1), put(2), del(3)), List.of(put(4), del(5)), List.of(put(6))),
        example().generations());
  }

  @Test
  void deletedKeyEndsWithAnEmptyGeneration() {
    KeyIndex ki = new KeyIndex();
    ki.put(rev(2));
    ki.tombstone(rev(3));
    // etcd appends an empty generation after a tombstone
    assertEquals(List.of(List.of(put(2), del(3)), List.of()), ki.generations());
    assertFalse(ki.isLive());
  }

  @Test
  void emptyIndexIsNotLiveAndHasOneEmptyGeneration() {
    KeyIndex ki = new KeyIndex();
    assertTrue(ki.isEmpty());
    assertFalse(ki.isLive());
    assertEquals(List.of(List.of()), ki.generations());
    assertNull(ki.find(Long.MAX_VALUE));
  }

  @Test
  void findReturnsTheNewestPutAtOrBelowTheRevision() {
    KeyIndex ki = example();
    assertNull(ki.find(0), "before creation");
    assertEquals(rev(1), ki.find(1));
    assertEquals(rev(2), ki.find(2));
    assertEquals(rev(4), ki.find(4));
    assertEquals(rev(6), ki.find(6));
    assertEquals(rev(6), ki.find(1000), "after the last change the live value");
  }

  @Test
  void findAtOrAfterATombstoneFindsNothingUntilTheNextPut() {
    KeyIndex ki = example();
    assertNull(ki.find(3), "deleted at 3");
    assertNull(ki.find(5), "deleted at 5");
    KeyIndex deleted = new KeyIndex();
    deleted.put(rev(2));
    deleted.tombstone(rev(3));
    assertNull(deleted.find(3));
    assertNull(deleted.find(100), "a deleted key stays deleted");
    assertEquals(rev(2), deleted.find(2), "but is visible in its past");
  }

  @Test
  void findUsesTheMainRevisionAndReturnsTheSubRevision() {
    KeyIndex ki = new KeyIndex();
    ki.put(new Revision(2, 0));
    ki.put(new Revision(3, 2)); // third change of a txn at revision 3
    assertEquals(new Revision(3, 2), ki.find(3));
    assertEquals(new Revision(2, 0), ki.find(2));
  }

  // --- compaction keep-set (etcd keyIndex.compact / keep) ---

  @Test
  void compactAtAPutKeepsThatPutAndEverythingAfter() {
    KeyIndex ki = example();
    List<Revision> dropped = ki.compact(4);
    assertEquals(List.of(rev(1), rev(2), rev(3)), dropped);
    assertEquals(List.of(put(4), del(5), put(6)), ki.changes());
    assertEquals(rev(4), ki.find(4), "a read at the compaction revision still finds the value");
  }

  @Test
  void compactBetweenPutsKeepsTheNewestPutAtOrBelow() {
    KeyIndex ki = example();
    assertEquals(List.of(rev(1)), ki.compact(2));
    assertEquals(List.of(put(2), del(3), put(4), del(5), put(6)), ki.changes());
  }

  @Test
  void compactAtATombstoneDropsItAndEverythingBefore() {
    KeyIndex ki = example();
    assertEquals(List.of(rev(1), rev(2), rev(3), rev(4), rev(5)), ki.compact(5));
    assertEquals(List.of(put(6)), ki.changes());

    KeyIndex other = example();
    assertEquals(List.of(rev(1), rev(2), rev(3)), other.compact(3));
    assertEquals(List.of(put(4), del(5), put(6)), other.changes());
  }

  @Test
  void compactAboveTheLastChangeOfALiveKeyKeepsOnlyTheLivePut() {
    KeyIndex ki = example();
    assertEquals(List.of(rev(1), rev(2), rev(3), rev(4), rev(5)), ki.compact(100));
    assertEquals(List.of(put(6)), ki.changes());
    assertEquals(rev(6), ki.find(100));
  }

  @Test
  void compactAboveTheTombstoneOfADeletedKeyEmptiesIt() {
    KeyIndex ki = new KeyIndex();
    ki.put(rev(2));
    ki.put(rev(3));
    ki.tombstone(rev(4));
    assertEquals(List.of(rev(2), rev(3), rev(4)), ki.compact(10));
    assertTrue(ki.isEmpty(), "the key disappears from the index");
  }

  @Test
  void compactBelowTheFirstChangeDropsNothing() {
    KeyIndex ki = new KeyIndex();
    ki.put(rev(5));
    ki.put(rev(6));
    assertEquals(List.of(), ki.compact(4));
    assertEquals(List.of(put(5), put(6)), ki.changes());
  }

  @Test
  void compactingAgainAtTheSameRevisionDropsNothing() {
    KeyIndex ki = example();
    ki.compact(4);
    assertEquals(List.of(), ki.compact(4));
    assertEquals(List.of(put(4), del(5), put(6)), ki.changes());
  }

  @Test
  void compactKeepsTheNewestSubRevisionOfTheCompactedMainRevision() {
    KeyIndex ki = new KeyIndex();
    ki.put(new Revision(2, 0));
    ki.put(new Revision(3, 1));
    assertEquals(List.of(new Revision(2, 0)), ki.compact(3));
    assertEquals(List.of(new Change(new Revision(3, 1), false)), ki.changes());
  }

  // --- encoding ---

  @Test
  void encodeDecodeRoundTrip() {
    KeyIndex ki = example();
    ki.put(new Revision(7, 3));
    KeyIndex back = KeyIndex.decode(ByteBuffer.wrap(ki.encode()));
    assertEquals(ki.changes(), back.changes());
    assertEquals(ki.generations(), back.generations());

    KeyIndex empty = KeyIndex.decode(ByteBuffer.wrap(new KeyIndex().encode()));
    assertTrue(empty.isEmpty());
  }

  // --- invariants ---

  @Test
  void refusesARevisionNotNewerThanTheLast() {
    KeyIndex ki = new KeyIndex();
    ki.put(new Revision(5, 1));
    assertThrows(IllegalStateException.class, () -> ki.put(new Revision(5, 1)), "equal");
    assertThrows(IllegalStateException.class, () -> ki.put(new Revision(5, 0)), "older sub");
    assertThrows(IllegalStateException.class, () -> ki.put(new Revision(4, 9)), "older main");
    assertThrows(IllegalStateException.class, () -> ki.tombstone(new Revision(4, 0)), "older tombstone");
    assertEquals(List.of(new Change(new Revision(5, 1), false)), ki.changes(), "nothing was recorded");
  }

  @Test
  void refusesTombstoneOfADeletedOrNeverCreatedKey() {
    KeyIndex never = new KeyIndex();
    assertThrows(IllegalStateException.class, () -> never.tombstone(rev(2)));

    KeyIndex deleted = new KeyIndex();
    deleted.put(rev(2));
    deleted.tombstone(rev(3));
    // etcd: deleting a deleted key is not a change, so two tombstones never follow each other
    assertThrows(IllegalStateException.class, () -> deleted.tombstone(rev(4)));
    assertEquals(List.of(put(2), del(3)), deleted.changes());
  }
}
