package io.vetcd.bench.run;

import com.google.protobuf.ByteString;
import io.vetcd.bench.cli.UsageException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The keys and values of the write benchmarks. A key is the zero-padded decimal of its number in the
 * key space, {@code --key-size} bytes long ({@code 00000042}): readable in etcdctl, and the number of
 * distinct keys is exactly {@code --key-space-size}. (etcd's tool writes the number as a varint into
 * the same number of bytes; the load on the server is the same.)
 */
public final class Keys {

  private final int keySpaceSize;
  private final int keySize;

  public Keys(int keySize, int keySpaceSize) {
    int digits = Integer.toString(keySpaceSize - 1).length();
    if (digits > keySize) {
      throw new UsageException("--key-space-size " + keySpaceSize + " needs keys of at least " + digits
          + " bytes; --key-size is " + keySize);
    }
    this.keySpaceSize = keySpaceSize;
    this.keySize = keySize;
  }

  /** The key numbered {@code index} modulo the key space. */
  public ByteString sequential(long index) {
    return key(index % keySpaceSize);
  }

  /** A key drawn uniformly from the key space. */
  public ByteString random() {
    return key(randomNumber());
  }

  /** A key number drawn uniformly from the key space. */
  public long randomNumber() {
    return ThreadLocalRandom.current().nextInt(keySpaceSize);
  }

  private ByteString key(long number) {
    // By hand: String.format cost ~5 % of the tool's CPU in a put run.
    byte[] key = new byte[keySize];
    long rest = number;
    for (int i = keySize - 1; i >= 0; i--) {
      key[i] = (byte) ('0' + rest % 10);
      rest /= 10;
    }
    return ByteString.copyFrom(key);
  }

  /**
   * Random bytes of the given size. Like etcd's tool, a run draws one value and writes it every time:
   * what is measured is the server, not the random generator.
   */
  public static ByteString randomValue(int size) {
    byte[] bytes = new byte[size];
    ThreadLocalRandom.current().nextBytes(bytes);
    return ByteString.copyFrom(bytes);
  }
}
