package io.vetcd.raft;

/**
 * The APP messages a leader has sent to one follower and not yet seen acknowledged, as the last entry
 * index each carried (etcd-io/raft tracker/inflights.go). It bounds pipelining: a follower in the
 * REPLICATE state gets no more APPs while the window is full, so a slow or dead follower costs the
 * leader at most {@code capacity} messages, and about {@code maxBytes} of payload (the message that
 * crosses it is let go), of memory and bandwidth.
 *
 * <p>A ring buffer of increasing indexes: invariant {@code 0 <= count <= capacity} and the {@code
 * count} values from {@code start} (wrapping) are strictly increasing, oldest first.
 */
final class Inflights {

  /** The last entry index of each in-flight message, in a ring starting at {@code start}. */
  private final long[] buffer;
  /** The payload bytes of each, in the same ring. */
  private final long[] sizes;
  private final long maxBytes;
  /** The payload bytes in flight. */
  private long bytes;
  /** Position of the oldest in-flight message in {@code buffer}. */
  private int start;
  /** How many messages are in flight. */
  private int count;

  Inflights(int capacity) {
    this(capacity, Long.MAX_VALUE);
  }

  Inflights(int capacity, long maxBytes) {
    this.buffer = new long[capacity];
    this.sizes = new long[capacity];
    this.maxBytes = maxBytes;
  }

  /** Records a sent message whose last entry is {@code lastIndex}; it must exceed all recorded. */
  void add(long lastIndex) {
    add(lastIndex, 0);
  }

  /** As {@link #add(long)}, for a message carrying {@code size} bytes of payload. */
  void add(long lastIndex, long size) {
    if (full()) {
      throw new IllegalStateException("inflight window full");
    }
    if (count > 0 && buffer[(start + count - 1) % buffer.length] >= lastIndex) {
      throw new IllegalStateException("inflight index " + lastIndex + " not increasing");
    }
    buffer[(start + count) % buffer.length] = lastIndex;
    sizes[(start + count) % buffer.length] = size;
    bytes += size;
    count++;
  }

  /** The follower acknowledged everything up to {@code index}: those messages are no longer in flight. */
  void freeLE(long index) {
    while (count > 0 && buffer[start] <= index) {
      bytes -= sizes[start];
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
    return count == buffer.length || bytes >= maxBytes;
  }

  long bytes() {
    return bytes;
  }

  int count() {
    return count;
  }

  void reset() {
    start = 0;
    count = 0;
    bytes = 0;
  }
}
