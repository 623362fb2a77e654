package io.vetcd.server;

import io.vetcd.raft.Entry;
import io.vetcd.raft.LogStorage;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The log as the core's storage, for entries it no longer holds in memory. A failed read stops the
 * member: the core asks only for entries the log must hold, so a failure means a damaged log or a
 * failing disk, and a member that went on would serve followers nothing but snapshots while reporting
 * healthy. Reads are reported (at most every {@link #REPORT_EVERY_NANOS}): a follower catching up from
 * the files is worth knowing about, as a snapshot would be.
 */
final class ReadBackStorage implements LogStorage {

  private static final Logger LOG = LoggerFactory.getLogger(ReadBackStorage.class);
  private static final long REPORT_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);

  private final LogStorage log;
  private final FailStop failStop;
  private long unreported;
  private long lastReport = System.nanoTime() - REPORT_EVERY_NANOS;

  ReadBackStorage(LogStorage log, FailStop failStop) {
    this.log = log;
    this.failStop = failStop;
  }

  @Override
  public long term(long index) {
    return log.term(index);
  }

  @Override
  public List<Entry> entries(long lo, long hi, long maxBytes) {
    List<Entry> read;
    try {
      read = log.entries(lo, hi, maxBytes);
    } catch (RuntimeException | Error e) {
      // An Error too: a read through a mapping of a file cut short surfaces as an InternalError.
      failStop.stop("reading entries " + lo + ".." + hi + " back from the log failed", e);
      throw e;
    }
    unreported += read.size();
    long now = System.nanoTime();
    if (!read.isEmpty() && now - lastReport >= REPORT_EVERY_NANOS) {
      LOG.info("read {} entries back from the log files for a follower behind (up to index {}): it catches up "
          + "from the log, without a snapshot", unreported, read.get(read.size() - 1).index());
      unreported = 0;
      lastReport = now;
    }
    return read;
  }
}
