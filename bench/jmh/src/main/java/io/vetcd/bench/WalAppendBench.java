package io.vetcd.bench;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.wal.Wal;
import java.nio.file.Path;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The append thread's loop (server.AppendThread): a batch of entries, then the hard state, then one
 * {@link Wal#sync()} (msync MS_SYNC) covering them all. Each invocation is one batch and counts as
 * {@code batchSize} operations, so the score is entries per second. Batch 1 is an idle cluster's
 * single put; larger batches are what group commit reaches under load.
 *
 * <p>The log lives under java.io.tmpdir: pass -jvmArgsPrepend -Djava.io.tmpdir=DIR to measure the
 * disk a data dir would sit on (a tmpfs makes the sync free and the numbers meaningless).
 */
@State(Scope.Thread)
public class WalAppendBench extends BenchDefaults {

  /** About what a put of a short key and a 256-byte value encodes to. */
  static final int PAYLOAD_SIZE = 256;
  private static final long TERM = 1;

  private Path dir;
  private Wal wal;
  private byte[] payload;
  /** The index of the last entry appended: dense, from 1, as the Raft log is. */
  private long index;

  @Setup(Level.Trial)
  public void open() {
    dir = Fixtures.tempDir("wal");
    wal = Wal.open(dir.resolve("wal"));
    // Chronicle binds the appender to one thread; setup and the benchmark run on the same one
    // (Scope.Thread), but say so rather than depend on it.
    wal.takeOver();
    payload = Fixtures.randomBytes(PAYLOAD_SIZE, 42);
  }

  @TearDown(Level.Trial)
  public void close() {
    wal.close();
    Fixtures.deleteTree(dir);
  }

  @Benchmark
  @OperationsPerInvocation(1)
  public void batch1() {
    appendAndSync(1);
  }

  @Benchmark
  @OperationsPerInvocation(16)
  public void batch16() {
    appendAndSync(16);
  }

  @Benchmark
  @OperationsPerInvocation(256)
  public void batch256() {
    appendAndSync(256);
  }

  private void appendAndSync(int batchSize) {
    for (int i = 0; i < batchSize; i++) {
      wal.append(new Entry(TERM, ++index, Entry.Type.NORMAL, payload));
    }
    // The leader's commit index moves with each batch, so the append thread writes a hard state too.
    wal.append(new HardState(TERM, 1, index));
    wal.sync();
  }
}
