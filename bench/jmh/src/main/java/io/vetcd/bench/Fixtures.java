package io.vetcd.bench;

import com.google.protobuf.ByteString;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.server.KvApplier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/** The keyspace the MVCC benchmarks write and read, and their scratch directories. */
final class Fixtures {

  /**
   * LMDB's map size: an upper bound on the file, not an allocation (the file is sparse). 4 GiB is far
   * above what a run writes, so MDB_MAP_FULL never interrupts one.
   */
  static final long MAP_SIZE = 4L << 30;
  /** How many distinct keys the stores hold: 100k keys of 256-byte values, about 40 MB of LMDB file. */
  static final int KEY_SPACE = 100_000;
  static final int VALUE_SIZE = 256;
  /** One value for every put: LMDB does not compress, so its content does not matter, only its size. */
  static final ByteString VALUE = ByteString.copyFrom(randomBytes(VALUE_SIZE, 1));

  private Fixtures() {}

  /**
   * Key number {@code i}: 16 bytes, "key/" and 12 zero-padded digits, so that byte order is numeric
   * order and keys i..i+n-1 are exactly the range [key(i), key(i+n)).
   */
  static ByteString key(int i) {
    return ByteString.copyFrom(String.format("key/%012d", i), StandardCharsets.US_ASCII);
  }

  static byte[] randomBytes(int size, long seed) {
    byte[] bytes = new byte[size];
    new SplittableRandom(seed).nextBytes(bytes);
    return bytes;
  }

  /** Every key of the key space, one put each, as the server would apply them (batches of 1000). */
  static void prefill(MvccStore store) {
    int batchSize = 1000;
    for (int start = 0; start < KEY_SPACE; start += batchSize) {
      try (MvccStore.WriteBatch batch = store.write()) {
        for (int i = start; i < Math.min(start + batchSize, KEY_SPACE); i++) {
          MvccStore.StoreTxn txn = batch.begin();
          KvApplier.put(txn, PutRequest.newBuilder().setKey(key(i)).setValue(VALUE).build());
          txn.end();
        }
        batch.commit();
      }
    }
  }

  static Path tempDir(String what) {
    try {
      return Files.createTempDirectory("vetcd-jmh-" + what);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.delete(p);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
