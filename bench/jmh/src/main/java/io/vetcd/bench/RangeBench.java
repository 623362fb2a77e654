package io.vetcd.bench;

import io.vetcd.mvcc.MvccStore;
import io.vetcd.mvcc.RangeResult;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.server.KvApplier;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Range reads as the KV service serves them (api.KvGrpc#range): open a read view, run
 * {@link KvApplier#range}, close the view. The store holds {@value Fixtures#KEY_SPACE} keys with one
 * revision each; each request starts at a random key. One operation is one request, whatever its
 * size. The whole file fits in the page cache, so this measures CPU, not the disk.
 *
 * <p>Not included: serializing the response and the gRPC layer.
 */
@State(Scope.Benchmark)
public class RangeBench extends BenchDefaults {

  /** Requests are drawn from a fixed set: building one per call would be measured too. */
  private static final int REQUESTS = 4096;

  private Path dir;
  private MvccStore store;
  private RangeRequest[] get;
  private RangeRequest[] range100;
  private RangeRequest[] range1000;
  private RangeRequest[] count1000;
  private int next;

  @Setup(Level.Trial)
  public void fill() {
    dir = Fixtures.tempDir("range");
    store = MvccStore.open(dir, Fixtures.MAP_SIZE);
    Fixtures.prefill(store);
    SplittableRandom random = new SplittableRandom(11);
    get = requests(random, 1, false);
    range100 = requests(random, 100, false);
    range1000 = requests(random, 1000, false);
    count1000 = requests(random, 1000, true);
  }

  @TearDown(Level.Trial)
  public void close() {
    store.close();
    Fixtures.deleteTree(dir);
  }

  /** A single-key get: no range_end, so a point lookup rather than a scan. */
  @Benchmark
  public RangeResponse range1() {
    return range(get);
  }

  @Benchmark
  public RangeResponse range100() {
    return range(range100);
  }

  @Benchmark
  public RangeResponse range1000() {
    return range(range1000);
  }

  /**
   * count_only over 1000 keys: the key-index scan without loading any value, so the difference from
   * {@link #range1000} is the cost of the value lookups and decoding.
   */
  @Benchmark
  public RangeResponse rangeCountOnly1000() {
    return range(count1000);
  }

  /**
   * {@link #range1000} below KvApplier, straight on the store's reader: the difference is the cost
   * of KvApplier's copy of the results and of building the response.
   */
  @Benchmark
  public RangeResult readerRange1000() {
    RangeRequest r = range1000[nextIndex()];
    try (MvccStore.ReadView view = store.read()) {
      return view.range(r.getKey().toByteArray(), r.getRangeEnd().toByteArray(), 0, 0, false);
    }
  }

  private RangeResponse range(RangeRequest[] requests) {
    RangeRequest r = requests[nextIndex()];
    try (MvccStore.ReadView view = store.read()) {
      return KvApplier.range(view, r);
    }
  }

  private int nextIndex() {
    next = (next + 1) & (REQUESTS - 1);
    return next;
  }

  /** Requests for {@code size} consecutive keys from random starts; size 1 is a single-key get. */
  private static RangeRequest[] requests(SplittableRandom random, int size, boolean countOnly) {
    RangeRequest[] requests = new RangeRequest[REQUESTS];
    for (int i = 0; i < REQUESTS; i++) {
      int start = random.nextInt(Fixtures.KEY_SPACE - size + 1);
      RangeRequest.Builder r = RangeRequest.newBuilder().setKey(Fixtures.key(start)).setCountOnly(countOnly);
      if (size > 1) {
        r.setRangeEnd(Fixtures.key(start + size));
      }
      requests[i] = r.build();
    }
    return requests;
  }
}
