package io.vetcd.bench;

import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.server.KvApplier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The apply thread's write path (server.ApplyThread#apply): one LMDB write transaction per batch of
 * committed entries, each put in its own {@link MvccStore.StoreTxn} (a nested LMDB transaction, one
 * main revision), the applied index, then the commit. Keys are drawn at random from a key space that
 * is already full, so every put replaces a live value: the steady state of a store, with the previous
 * value loaded for the watch event. Each invocation is one batch and counts as its puts, so scores
 * are puts per second.
 *
 * <p>Not included: decoding the log entry into a request (protobuf, small next to this) and the watch
 * fan-out after the commit. The keyspace runs with MDB_NOSYNC as in the server, so a commit writes
 * its pages to the page cache but does not fsync.
 */
@State(Scope.Thread)
public class MvccApplyBench extends BenchDefaults {

  private static final String DATA_FILE = "data.mdb";

  /** A store filled once per trial; each iteration starts from a copy of it. */
  private Path template;
  private Path dir;
  private MvccStore store;
  /** A put of every key in the key space, built once: the server gets them decoded from the log. */
  private PutRequest[] puts;
  private SplittableRandom random;
  private long appliedIndex;

  @Setup(Level.Trial)
  public void fillTemplate() {
    template = Fixtures.tempDir("apply-template");
    try (MvccStore filled = MvccStore.open(template, Fixtures.MAP_SIZE)) {
      Fixtures.prefill(filled);
    }
    puts = new PutRequest[Fixtures.KEY_SPACE];
    for (int i = 0; i < puts.length; i++) {
      puts[i] = PutRequest.newBuilder().setKey(Fixtures.key(i)).setValue(Fixtures.VALUE).build();
    }
    random = new SplittableRandom(7);
  }

  /**
   * A fresh copy of the filled store for every iteration. Without compaction each put adds a revision
   * to its key's history, so one store kept for a whole trial would get slower from iteration to
   * iteration (longer key indexes, a bigger file) and the error bars would measure that drift.
   */
  @Setup(Level.Iteration)
  public void openCopy() throws IOException {
    dir = Fixtures.tempDir("apply");
    Files.copy(template.resolve(DATA_FILE), dir.resolve(DATA_FILE));
    store = MvccStore.open(dir, Fixtures.MAP_SIZE);
    appliedIndex = store.appliedIndex();
  }

  @TearDown(Level.Iteration)
  public void closeCopy() {
    store.close();
    Fixtures.deleteTree(dir);
  }

  @TearDown(Level.Trial)
  public void dropTemplate() {
    Fixtures.deleteTree(template);
  }

  /** 100 puts through KvApplier, as the server applies them. */
  @Benchmark
  @OperationsPerInvocation(100)
  public void apply100(Blackhole bh) {
    applyPuts(100, bh);
  }

  /** 1000 puts through KvApplier, as the server applies them. */
  @Benchmark
  @OperationsPerInvocation(1000)
  public void apply1000(Blackhole bh) {
    applyPuts(1000, bh);
  }

  /**
   * The same 1000 puts straight through {@link MvccStore.StoreTxn#put}: the difference from
   * {@link #apply1000} is KvApplier's share (lease check, response building).
   */
  @Benchmark
  @OperationsPerInvocation(1000)
  public void storeTxn1000(Blackhole bh) {
    try (MvccStore.WriteBatch batch = store.write()) {
      for (int i = 0; i < 1000; i++) {
        PutRequest p = nextPut();
        MvccStore.StoreTxn txn = batch.begin();
        bh.consume(txn.put(p.getKey().toByteArray(), p.getValue(), 0));
        txn.end();
      }
      batch.setAppliedIndex(++appliedIndex);
      batch.commit();
      bh.consume(batch.events());
    }
  }

  /**
   * 1000 puts in one StoreTxn, as a Txn request of 1000 puts is applied: one nested LMDB transaction
   * instead of 1000, so the difference from {@link #storeTxn1000} is the nested transactions' cost.
   */
  @Benchmark
  @OperationsPerInvocation(1000)
  public void oneStoreTxn1000(Blackhole bh) {
    try (MvccStore.WriteBatch batch = store.write()) {
      MvccStore.StoreTxn txn = batch.begin();
      for (int i = 0; i < 1000; i++) {
        PutRequest p = nextPut();
        bh.consume(txn.put(p.getKey().toByteArray(), p.getValue(), 0));
      }
      txn.end();
      batch.setAppliedIndex(++appliedIndex);
      batch.commit();
      bh.consume(batch.events());
    }
  }

  private void applyPuts(int count, Blackhole bh) {
    try (MvccStore.WriteBatch batch = store.write()) {
      bh.consume(batch.appliedIndex()); // the server reads it to skip entries replay already applied
      for (int i = 0; i < count; i++) {
        MvccStore.StoreTxn txn = batch.begin();
        bh.consume(KvApplier.put(txn, nextPut()));
        txn.end();
      }
      batch.setAppliedIndex(++appliedIndex);
      batch.commit();
      bh.consume(batch.events());
    }
  }

  private PutRequest nextPut() {
    return puts[random.nextInt(puts.length)];
  }
}
