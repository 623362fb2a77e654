package io.vetcd.wal;

import java.util.Arrays;

/**
 * Where each live entry of the log lies: for the contiguous Raft indexes {@code first..last}, the
 * entry's term, the generation whose queue holds it and its Chronicle index there. Filled by the
 * thread that appends (and at open, from what the replay accepted) and read by the Raft loop, which
 * reads back entries it dropped from memory; hence synchronized. Three longs an entry, in arrays that
 * slide forward as the front is released: no object per entry.
 */
final class EntryPositions {

  private static final long ABSENT = -1;

  private long[] terms = new long[1024];
  private long[] generations = new long[1024];
  private long[] positions = new long[1024];
  /** Array slot of {@code first}, and how many entries are held. */
  private int head;
  private int count;
  /** The Raft index of the entry in slot {@code head}. */
  private long first = 1;

  /**
   * Records the entry {@code index} just written; as on replay, it supersedes every entry held with
   * an index at or above its own. An index past the end (after a snapshot from the leader voided the
   * log) starts over from it.
   */
  synchronized void add(long index, long term, long generation, long position) {
    if (count > 0 && index >= first && index <= first + count) {
      count = (int) (index - first); // drops the superseded suffix, if any
    } else {
      head = 0;
      count = 0;
      first = index;
    }
    if (head + count == terms.length) {
      makeRoom();
    }
    int slot = head + count;
    terms[slot] = term;
    generations[slot] = generation;
    positions[slot] = position;
    count++;
  }

  /** Forgets the entries up to {@code index}: their files are being deleted. */
  synchronized void releaseUpTo(long index) {
    if (count == 0 || index < first) {
      return;
    }
    int drop = (int) Math.min(count, index - first + 1);
    head += drop;
    count -= drop;
    first += drop;
  }

  /** Forgets every entry (a snapshot from the leader voided the log). */
  synchronized void clear() {
    head = 0;
    count = 0;
  }

  /** The term of entry {@code index}, or -1 if not held. */
  synchronized long term(long index) {
    int slot = slot(index);
    return slot < 0 ? ABSENT : terms[slot];
  }

  /**
   * Fills {@code where} with the generation and Chronicle index of entry {@code index}; false if not
   * held.
   */
  synchronized boolean locate(long index, long[] where) {
    int slot = slot(index);
    if (slot < 0) {
      return false;
    }
    where[0] = generations[slot];
    where[1] = positions[slot];
    return true;
  }

  /** The generation of the oldest entry held, or -1 if none. */
  synchronized long oldestGeneration() {
    return count == 0 ? ABSENT : generations[head];
  }

  /** The index of the oldest entry held, or -1 if none. */
  synchronized long firstIndex() {
    return count == 0 ? ABSENT : first;
  }

  synchronized long lastIndex() {
    return count == 0 ? ABSENT : first + count - 1;
  }

  private int slot(long index) {
    if (count == 0 || index < first || index >= first + count) {
      return -1;
    }
    return head + (int) (index - first);
  }

  /** Slides the live entries to the front, growing the arrays if they are more than half full. */
  private void makeRoom() {
    int capacity = count * 2 > terms.length ? terms.length * 2 : terms.length;
    terms = slide(terms, capacity);
    generations = slide(generations, capacity);
    positions = slide(positions, capacity);
    head = 0;
  }

  private long[] slide(long[] from, int capacity) {
    long[] to = capacity == from.length ? from : Arrays.copyOf(from, capacity);
    System.arraycopy(from, head, to, 0, count);
    return to;
  }
}
