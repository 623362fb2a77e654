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
  /** Rounds end once this little is left to apply: the rest goes on the apply thread. */
  private static final long LAST_ROUND_BYTES = 1L << 20;
  /** Rounds that do not get there mean writes outpace the copy: it is given up. */
  private static final int MAX_ROUNDS = 20;

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

    /** Applies what is waiting to {@code copy}; returns the entry bytes still waiting after. */
    long applyTo(MvccStore copy, Lessor scratch) {
      for (List<Entry> entries = batches.poll(); entries != null; entries = batches.poll()) {
        bytes.addAndGet(-Entry.size(entries));
        ApplyThread.apply(copy, scratch, entries); // entries the copy already holds are skipped
      }
      return bytes.get();
    }
  }

  private final Vertx vertx;
  private final MvccStore store;
  private final ApplyThread applyThread;
  private final Path workDir;
  /** The member's lessor's shortest TTL: a replayed grant must store the TTL the keyspace got. */
  private final long minTtlSeconds;
  private final FailStop failStop;
  private Future<long[]> running;

  Defragmenter(Vertx vertx, MvccStore store, ApplyThread applyThread, Path workDir, long minTtlSeconds,
      FailStop failStop) {
    this.failStop = failStop;
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
    long generation = store.generation(); // a snapshot install meanwhile makes the copy one of another keyspace
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
          if (store.generation() != generation) {
            retained.abandon("a snapshot from the leader replaced the keyspace");
          }
          try (MvccStore copy = MvccStore.open(copyDir, store.mapSize())) {
            retained.applyTo(copy, scratchLessor());
            // The copy must be the keyspace now, or it does not take its place (a replayed write that
            // failed where it had succeeded, e.g. for room, would otherwise be lost).
            try (MvccStore.ReadView live = store.read(); MvccStore.ReadView copied = copy.read()) {
              if (live.appliedIndex() != copied.appliedIndex() || live.revision() != copied.revision()) {
                retained.abandon("the copy is at applied index " + copied.appliedIndex() + ", revision "
                    + copied.revision() + ", the keyspace at " + live.appliedIndex() + ", " + live.revision());
              }
            }
          }
          if (retained.abandoned != null) {
            throw new IllegalStateException("defragmentation given up: " + retained.abandoned);
          }
          try {
            store.replace(copyDir.resolve("data.mdb"));
          } catch (java.io.IOException | RuntimeException e) {
            // Past its point of no return the copy is what a restart would find: stop rather than write on.
            failStop.stop("swapping in the defragmented keyspace failed", e);
            throw e;
          }
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
    Path copyDir = compactingCopy(store, workDir);
    try {
      try (MvccStore copy = MvccStore.open(copyDir, store.mapSize())) {
        Lessor scratch = scratchLessor();
        int rounds = 0;
        while (retained.abandoned == null && retained.applyTo(copy, scratch) > LAST_ROUND_BYTES) {
          if (++rounds == MAX_ROUNDS) {
            retained.abandon("writes outpaced the copy for " + MAX_ROUNDS + " rounds");
          }
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

  /**
   * LMDB's compacting copy of the keyspace, with its physical compaction, if one is under way, run to
   * its end in the copy and the pages that freed left out by copying once more. Otherwise the history
   * the compaction deletes would be copied and deleted only after the swap, inside a file as large as
   * before (a compaction requested through another member may still be under way on this one). Its
   * steps commute with the writes replayed after: those have revisions after the compacted one.
   */
  static Path compactingCopy(MvccStore store, Path workDir) throws Exception {
    Files.createDirectories(workDir);
    Path first = Files.createTempDirectory(workDir, "defrag-");
    Path second = null;
    try {
      store.copyTo(first);
      try (MvccStore copy = MvccStore.open(first, store.mapSize())) {
        if (!copy.compactionPending()) {
          return first;
        }
        while (copy.compactStep()) {
          // one bounded step at a time, as on the apply thread
        }
        second = Files.createTempDirectory(workDir, "defrag-");
        copy.copyTo(second);
      }
      deleteQuietly(first);
      return second;
    } catch (Exception e) {
      deleteQuietly(first);
      if (second != null) {
        deleteQuietly(second);
      }
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
