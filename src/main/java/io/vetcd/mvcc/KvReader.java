package io.vetcd.mvcc;

/**
 * Reads of the keyspace at one consistent point. Range bounds follow etcd's storage layer: a null
 * {@code end} reads the single key {@code key}; an empty {@code end} reads every key from {@code key}
 * on; otherwise the keys k with {@code key <= k < end} in byte order.
 */
public interface KvReader {

  /** The newest revision this reader sees. */
  long revision();

  /** Reads below this revision fail: their history was compacted (-1: never compacted, as etcd). */
  long compactRevision();

  /**
   * Reads the keys of the range as of {@code atRevision} (0 or less: the newest), returning at most
   * {@code limit} of them (0 or less: all) but counting all.
   *
   * @throws MvccException when {@code atRevision} is compacted or in the future
   */
  RangeResult range(byte[] key, byte[] end, long atRevision, long limit, boolean countOnly);

  /** Whether a lease with this id exists (a put may attach only such a lease). */
  boolean leaseExists(long id);
}
