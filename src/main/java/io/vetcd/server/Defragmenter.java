package io.vetcd.server;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vetcd.lease.Lessor;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.raft.Entry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * etcd's Defragment, without holding writes up. LMDB reuses the pages deletes and compactions free, so
 * the keyspace never needs this to stay within its quota; what it does is give the file's unused pages
 * back: the keyspace is copied with LMDB's compacting copy (a read transaction: the apply thread goes
 * on writing), the batches applied meanwhile are applied again to the copy (off the apply thread, in
 * rounds, each shorter than the last), and only the last few are applied on the apply thread, just
 * before the copy takes the keyspace's place (a rename and a reopen, as a snapshot install). etcd 3.4
 * blocks every write for the whole rewrite of its file.
 *
 * <p>If writes outpace the copy (more than {@link #MAX_RETAINED_BYTES} waiting to be applied to it) or a
 * snapshot from the leader replaces the keyspace meanwhile, the attempt is given up and says so; the
 * keyspace is untouched.
 */
final class Defragmenter {

  private static final Logger LOG = LoggerFactory.getLogger(Defragmenter.class);

  /** The most entry bytes kept for the copy to catch up with. */
  static final long MAX_RETAINED_BYTES = 64L << 20;
  /** Rounds end once one has this few batches left: the rest go on the apply thread. */
  private static final int LAST_ROUND_BATCHES = 4;

  /** The batches applied since the copy began, for the copy to apply too. */
  static final class Retained {
    private final ConcurrentLinkedQueue<List<Entry>> batches = new ConcurrentLinkedQueue<>();
    private final AtomicLong bytes = new AtomicLong();
    private volatile String abandoned;

    void add(List<Entry> entries) {
      if (bytes.addAndGet(Entry.size(entries)) > MAX_RETAINED_BYTES) {
        abandon("more than " + (MAX_RETAINED_BYTES >> 20) + " MiB were written while it copied");
        return;
      }
      batches.add(entries);
    }

    void abandon(String why) {
      if (abandoned == null) {
        abandoned = why;
      }
    }

    /** Applies what is waiting to {@code copy}; returns how many batches it applied. */
    int applyTo(MvccStore copy, Lessor scratch) {
      int n = 0;
      for (List<Entry> entries = batches.poll(); entries != null; entries = batches.poll()) {
        bytes.addAndGet(-Entry.size(entries));
        ApplyThread.apply(copy, scratch, entries); // entries the copy already holds are skipped
        n++;
      }
      return n;
    }
  }

  private final Vertx vertx;
  private final MvccStore store;
  private final ApplyThread applyThread;
  private final Path workDir;
  /** The member's lessor's shortest TTL: a replayed grant must store the TTL the keyspace got. */
  private final long minTtlSeconds;
  private Future<long[]> running;

  Defragmenter(Vertx vertx, MvccStore store, ApplyThread applyThread, Path workDir, long minTtlSeconds) {
    this.vertx = vertx;
    this.store = store;
    this.applyThread = applyThread;
    this.workDir = workDir;
    this.minTtlSeconds = minTtlSeconds;
  }

  /**
   * Defragments the keyspace; completes with its size (pages in use) before and after. A request while
   * one runs joins it.
   */
  synchronized Future<long[]> defragment() {
    if (running != null && !running.isComplete()) {
      return running;
    }
    Retained retained = new Retained();
    if (!applyThread.startRetaining(retained)) {
      return Future.failedFuture(new IllegalStateException("a defragmentation is under way"));
    }
    long before = store.dbSize();
    Promise<long[]> done = Promise.promise();
    running = done.future();
    vertx.executeBlocking(() -> copyAndCatchUp(retained), false).onComplete(ar -> {
      if (ar.failed()) {
        applyThread.stopRetaining();
        done.fail(ar.cause());
        return;
      }
      Path copyDir = ar.result();
      // The last rounds, on the apply thread: nothing is applied to the keyspace meanwhile.
      applyThread.submitKeepingState(() -> {
        try {
          applyThread.stopRetaining();
          try (MvccStore copy = MvccStore.open(copyDir, 2 * Config.DEFAULT_QUOTA_BYTES)) {
            retained.applyTo(copy, scratchLessor());
          }
          if (retained.abandoned != null) {
            throw new IllegalStateException("defragmentation given up: " + retained.abandoned);
          }
          store.replace(copyDir.resolve("data.mdb"));
          long after = store.dbSize();
          LOG.info("defragmented the keyspace: {} bytes in use before, {} after", before, after);
          done.complete(new long[] {before, after});
        } catch (Exception e) {
          done.fail(e);
        } finally {
          deleteQuietly(copyDir);
        }
      });
    });
    return running;
  }

  /** Copies the keyspace, then applies to the copy what was applied meanwhile, until little is left. */
  private Path copyAndCatchUp(Retained retained) throws Exception {
    Files.createDirectories(workDir);
    Path copyDir = Files.createTempDirectory(workDir, "defrag-");
    try {
      store.copyTo(copyDir);
      try (MvccStore copy = MvccStore.open(copyDir, 2 * Config.DEFAULT_QUOTA_BYTES)) {
        Lessor scratch = scratchLessor();
        while (retained.abandoned == null && retained.applyTo(copy, scratch) > LAST_ROUND_BATCHES) {
          // again: what was applied while this round ran
        }
      }
      if (retained.abandoned != null) {
        throw new IllegalStateException("defragmentation given up: " + retained.abandoned);
      }
      return copyDir;
    } catch (Exception e) {
      deleteQuietly(copyDir);
      throw e;
    }
  }

  /** A lessor for replays: the member's own must not hear grants and revokes a second time. */
  private Lessor scratchLessor() {
    return new Lessor(System::nanoTime, minTtlSeconds);
  }

  private static void deleteQuietly(Path dir) {
    try {
      if (Files.exists(dir)) {
        SnapshotTransfer.deleteTree(dir);
      }
    } catch (java.io.IOException e) {
      LOG.warn("cannot delete the defragmentation copy {}: {}", dir, e.toString());
    }
  }
}
