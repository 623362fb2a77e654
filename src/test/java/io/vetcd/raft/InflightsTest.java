package io.vetcd.raft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class InflightsTest {

  @Test
  void fillsUpToCapacityAndFreesByAcknowledgedIndex() {
    Inflights in = new Inflights(3);
    in.add(5);
    in.add(7);
    assertFalse(in.full());
    in.add(9);
    assertTrue(in.full());
    assertThrows(IllegalStateException.class, () -> in.add(10));
    in.freeLE(7);
    assertEquals(1, in.count());
    in.freeLE(6);
    assertEquals(1, in.count(), "nothing at or below 6 remains");
  }

  @Test
  void wrapsAroundTheRing() {
    Inflights in = new Inflights(3);
    for (long i = 1; i <= 20; i++) {
      in.add(i);
      if (in.full()) {
        in.freeFirstOne();
      }
    }
    assertEquals(2, in.count());
    in.freeLE(19);
    assertEquals(1, in.count());
    in.freeLE(100);
    assertEquals(0, in.count());
  }

  @Test
  void indexesMustIncrease() {
    Inflights in = new Inflights(4);
    in.add(5);
    assertThrows(IllegalStateException.class, () -> in.add(5));
  }
}
