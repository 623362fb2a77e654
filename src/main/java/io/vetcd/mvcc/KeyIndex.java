package io.vetcd.mvcc;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The history of one key: every revision at which it was put or deleted, in order, split into
 * generations. A generation is one life of the key, from its creation to its deletion (the tombstone).
 *
 * <p>Worked example (as etcd's key_index.go does it): put(1.0), put(2.0), delete(3.0), put(4.0),
 * delete(5.0), put(6.0) gives
 * <pre>
 *   generation 0: 1.0, 2.0, 3.0(t)   -- created at 1, ended by the tombstone at 3
 *   generation 1: 4.0, 5.0(t)
 *   generation 2: 6.0                -- the live generation
 * </pre>
 * Stored flat: a list of revisions with a tombstone flag; a generation ends at each tombstone.
 *
 * <p>Compaction at revision c keeps, of everything at or below c, only the newest revision if it is not
 * a tombstone (a read at c must still find the live value); everything above c is kept. Compacting the
 * example at 5 keeps only 6.0; at 4 keeps 4.0, 5.0(t), 6.0; at 2 keeps 2.0, 3.0(t), 4.0, ...
 *
 * <p>Invariant: revisions strictly increase; two tombstones never follow each other (a delete of a
 * deleted key is not a change).
 */
public final class KeyIndex {

  static final int CHANGE_BYTES = 8 + 8 + 1;

  /** One recorded change of the key. */
  public record Change(Revision revision, boolean tombstone) {}

  private final List<Change> changes;
  /**
   * How many chunks of this key's oldest changes the store keeps apart from these (see
   * {@link KeyIndexTable}); all of them are older than every change here.
   */
  private int spilled;

  public KeyIndex() {
    this.changes = new ArrayList<>();
  }

  private KeyIndex(List<Change> changes, int spilled) {
    this.changes = changes;
    this.spilled = spilled;
  }

  /** A history of changes given oldest first (they must follow the invariant above). */
  static KeyIndex of(List<Change> changes) {
    return new KeyIndex(new ArrayList<>(changes), 0);
  }

  int size() {
    return changes.size();
  }

  int spilled() {
    return spilled;
  }

  /**
   * Whether {@link #find} can answer for {@code atRevision} from the changes held here: when none are
   * kept apart, or the oldest one here is at or before it.
   */
  boolean covers(long atRevision) {
    return spilled == 0 || (!changes.isEmpty() && changes.get(0).revision().main() <= atRevision);
  }

  /** Removes the oldest {@code n} changes, which the caller keeps apart as one more chunk. */
  List<Change> spillOldest(int n) {
    List<Change> oldest = new ArrayList<>(changes.subList(0, n));
    changes.subList(0, n).clear();
    spilled++;
    return oldest;
  }

  public boolean isEmpty() {
    return changes.isEmpty();
  }

  public List<Change> changes() {
    return Collections.unmodifiableList(changes);
  }

  /** True when the newest change is a put, i.e. the key exists at the newest revision. */
  public boolean isLive() {
    return !changes.isEmpty() && !changes.get(changes.size() - 1).tombstone();
  }

  public void put(Revision revision) {
    append(new Change(revision, false));
  }

  public void tombstone(Revision revision) {
    if (!isLive()) {
      throw new IllegalStateException("tombstone of a key that does not exist at " + revision);
    }
    append(new Change(revision, true));
  }

  private void append(Change change) {
    if (!changes.isEmpty() && changes.get(changes.size() - 1).revision().compareTo(change.revision()) >= 0) {
      throw new IllegalStateException("revision " + change.revision() + " is not newer than the last one");
    }
    changes.add(change);
  }

  /**
   * The revision holding the key's value as of store revision {@code atRevision}, or null when the key
   * did not exist then (never created, deleted, or compacted away).
   */
  public Revision find(long atRevision) {
    for (int i = changes.size() - 1; i >= 0; i--) {
      Change c = changes.get(i);
      if (c.revision().main() <= atRevision) {
        return c.tombstone() ? null : c.revision();
      }
    }
    return null;
  }

  /** The generations, oldest first; the last one is empty when the key is currently deleted. */
  public List<List<Change>> generations() {
    List<List<Change>> gens = new ArrayList<>();
    List<Change> current = new ArrayList<>();
    for (Change c : changes) {
      current.add(c);
      if (c.tombstone()) {
        gens.add(current);
        current = new ArrayList<>();
      }
    }
    gens.add(current);
    return gens;
  }

  /**
   * Drops the history a read at or after {@code compactRevision} can no longer see, and returns the
   * revisions dropped (their records must be deleted from the revision table too).
   */
  public List<Revision> compact(long compactRevision) {
    int newestAtOrBelow = -1;
    for (int i = 0; i < changes.size(); i++) {
      if (changes.get(i).revision().main() <= compactRevision) {
        newestAtOrBelow = i;
      }
    }
    if (newestAtOrBelow < 0) {
      return List.of();
    }
    // Keep the newest change at or below the compaction point unless it is a tombstone.
    int firstKept = changes.get(newestAtOrBelow).tombstone() ? newestAtOrBelow + 1 : newestAtOrBelow;
    List<Revision> dropped = new ArrayList<>(firstKept);
    for (int i = 0; i < firstKept; i++) {
      dropped.add(changes.get(i).revision());
    }
    changes.subList(0, firstKept).clear();
    return dropped;
  }

  /** Bytes {@link #encodeTo} writes: a count, then main, sub and a tombstone flag per change. */
  int encodedSize() {
    return 4 + changes.size() * CHANGE_BYTES;
  }

  /** The changes only: the count of spilled chunks is the caller's to store. */
  void encodeTo(ByteBuffer out) {
    out.putInt(changes.size());
    for (Change c : changes) {
      encodeChange(out, c.revision(), c.tombstone());
    }
  }

  /** One change as {@link #encodeTo} writes it: {@link #CHANGE_BYTES} bytes. */
  static void encodeChange(ByteBuffer out, Revision revision, boolean tombstone) {
    out.putLong(revision.main());
    out.putLong(revision.sub());
    out.put((byte) (tombstone ? 1 : 0));
  }

  public byte[] encode() {
    ByteBuffer out = ByteBuffer.allocate(encodedSize());
    encodeTo(out);
    return out.array();
  }

  /** Reads what {@link #encodeTo} wrote, leaving {@code in} just after it. */
  public static KeyIndex decode(ByteBuffer in) {
    return decode(in, 0);
  }

  static KeyIndex decode(ByteBuffer in, int spilled) {
    int n = in.getInt();
    List<Change> changes = new ArrayList<>(n + 1); // room for the put that usually follows a read
    for (int i = 0; i < n; i++) {
      changes.add(new Change(new Revision(in.getLong(), in.getLong()), in.get() != 0));
    }
    return new KeyIndex(changes, spilled);
  }
}
