package io.vetcd.wal;

import java.util.Arrays;
import net.openhft.chronicle.bytes.RandomDataInput;

/**
 * Reads back what was just written through the log's mapping and compares it with what was meant.
 *
 * <p>Why: a store into a mapped page that has no block behind it (a full disk) is a SIGBUS, and
 * HotSpot does not throw the resulting InternalError where the store happened. For a copy in compiled
 * code it marks the thread and throws at a later safepoint poll, never on the way back from a native
 * call (it could block there); so the append thread can finish the record, msync the pages it did write
 * and report the entry durable before the error surfaces. The record is then torn on disk and replay
 * drops it: an acknowledged write lost. Reading the bytes back finds the pages the copy never reached,
 * before anything is reported.
 *
 * <p>The read-back lands in a buffer first filled with the complement of what is expected, so a read
 * that faults and stops part way (the same full disk can refuse the page to a read too) leaves bytes
 * that cannot match, whatever the data is, zeros included.
 */
final class WrittenCheck {
  private final byte[] scratch = new byte[64 << 10];

  /** Throws unless {@code in} holds {@code expected[off, off + len)} at {@code at}. */
  void expect(RandomDataInput in, long at, byte[] expected, int off, int len) {
    for (int done = 0; done < len; ) {
      int n = Math.min(scratch.length, len - done);
      int from = off + done;
      for (int i = 0; i < n; i++) {
        scratch[i] = (byte) ~expected[from + i];
      }
      in.read(at + done, scratch, 0, n);
      int bad = Arrays.mismatch(scratch, 0, n, expected, from, from + n);
      if (bad >= 0) {
        throw new WalException("a record was not written whole: the byte at offset " + (at + done + bad)
            + " of the log file reads back differently from what was written (a store into a mapped page"
            + " failed, e.g. on a full disk); nothing of it is taken as durable");
      }
      done += n;
    }
  }
}
