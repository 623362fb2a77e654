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
  void aBoundInBytesFillsTheWindowBeforeItsCountDoes() {
    Inflights in = new Inflights(256, 4 << 20);
    in.add(1, 1 << 20);
    in.add(2, 1 << 20);
    in.add(3, (1 << 20) + 1);
    assertFalse(in.full(), "3 MiB and a byte of 4");
    in.add(4, 1 << 20); // the message that crosses the bound is let go
    assertTrue(in.full(), "4 MiB in flight: paused, with 252 message slots left");
    in.freeLE(1);
    assertFalse(in.full());
    assertEquals(3L * (1 << 20) + 1, in.bytes());
    in.reset();
    assertEquals(0, in.bytes());
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
