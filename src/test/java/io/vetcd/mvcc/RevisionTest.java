package io.vetcd.mvcc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Revision encoding: LMDB byte order must equal revision order (etcd's 17-byte revision keys do too). */
class RevisionTest {

  @Test
  void encodesToSixteenBytesAndBack() {
    Revision r = new Revision(0x0102030405060708L, 7);
    byte[] b = r.toBytes();
    assertEquals(Revision.BYTES, b.length);
    assertEquals(r, Revision.fromBytes(b));
    assertArrayEquals(new Revision(9, 0).toBytes(), Revision.startOf(9));
  }

  @Test
  void byteOrderEqualsRevisionOrder() {
    List<Revision> revs = new ArrayList<>();
    for (long main : new long[] {1, 2, 255, 256, 65535, 65536, 1L << 40}) {
      for (long sub : new long[] {0, 1, 255, 256}) {
        revs.add(new Revision(main, sub));
      }
    }
    for (Revision a : revs) {
      for (Revision b : revs) {
        assertEquals(Integer.signum(a.compareTo(b)),
            Integer.signum(Arrays.compareUnsigned(a.toBytes(), b.toBytes())), a + " vs " + b);
      }
    }
  }

  @Test
  void printsAsMainDotSub() {
    assertEquals("3.2", new Revision(3, 2).toString());
  }
}
