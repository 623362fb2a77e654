package io.vetcd.raft;

/**
 * The APP messages a leader has sent to one follower and not yet seen acknowledged, as the last entry
 * index each carried (etcd-io/raft tracker/inflights.go). It bounds pipelining: a follower in the
 * REPLICATE state gets no more APPs while the window is full, so a slow or dead follower costs the
 * leader at most {@code capacity} messages of memory and bandwidth.
 *
 * <p>A ring buffer of increasing indexes: invariant {@code 0 <= count <= capacity} and the {@code
 * count} values from {@code start} (wrapping) are strictly increasing, oldest first.
 */
final class Inflights {

  /** The last entry index of each in-flight message, in a ring starting at {@code start}. */
  private final long[] buffer;
  /** Position of the oldest in-flight message in {@code buffer}. */
  private int start;
  /** How many messages are in flight. */
  private int count;

  Inflights(int capacity) {
    this.buffer = new long[capacity];
  }

  /** Records a sent message whose last entry is {@code lastIndex}; it must exceed all recorded. */
  void add(long lastIndex) {
    if (full()) {
      throw new IllegalStateException("inflight window full");
    }
    if (count > 0 && buffer[(start + count - 1) % buffer.length] >= lastIndex) {
      throw new IllegalStateException("inflight index " + lastIndex + " not increasing");
    }
    buffer[(start + count) % buffer.length] = lastIndex;
    count++;
  }

  /** The follower acknowledged everything up to {@code index}: those messages are no longer in flight. */
  void freeLE(long index) {
    while (count > 0 && buffer[start] <= index) {
      start = (start + 1) % buffer.length;
      count--;
    }
    if (count == 0) {
      start = 0;
    }
  }

  /** Forgets the oldest message: a heartbeat answer shows the follower is alive, so let one more go. */
  void freeFirstOne() {
    if (count > 0) {
      freeLE(buffer[start]);
    }
  }

  boolean full() {
    return count == buffer.length;
  }

  int count() {
    return count;
  }

  void reset() {
    start = 0;
    count = 0;
  }
}
