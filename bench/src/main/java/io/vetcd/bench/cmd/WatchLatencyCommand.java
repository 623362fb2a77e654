package io.vetcd.bench.cmd;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vetcd.bench.Session;
import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.FlagSet;
import io.vetcd.bench.cli.UsageException;
import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.report.Result;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.run.Keys;
import io.vetcd.bench.run.Progress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code watch-latency}: etcd's "Benchmark watch latency". {@code --watchers} watchers of one key,
 * spread over {@code --streams} Watch streams, which are spread over the conns; a writer on a conn of
 * its own puts {@code --put-total} times at {@code --put-rate}. The latency of a put is the time from
 * sending it until the last watcher has its event: the fan-out delay a client of the slowest watcher
 * sees.
 *
 * <p>The clock starts when the put is sent, not when it is answered (as etcd's tool does): the
 * server may deliver events before the put's answer arrives, and the commit is part of what a
 * watcher waits for.
 */
public final class WatchLatencyCommand implements Command {

  private static final long SETUP_SECONDS = 30;
  private static final String KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

  private final FlagSet flags = new FlagSet()
      .intFlag("watchers", 1000, "number of watchers, all on one key")
      .intFlag("streams", 10, "number of watch streams the watchers are spread over (streams are spread over the conns)")
      .intFlag("put-total", 1000, "total number of put requests")
      .intFlag("put-rate", 100, "number of puts per second")
      .intFlag("warm-up-puts", 0, "puts sent first, at the same rate, and not measured (this tool is a JVM: its own code is compiled while they run)")
      .intFlag("key-size", 32, "key size of the watched key, in bytes")
      .intFlag("val-size", 32, "value size of put request, in bytes (at least 8: the put's number)");

  private int watchers;
  private int streams;
  private int putTotal;
  private int putRate;
  private int warmUpPuts;
  private int keySize;
  private int valSize;

  @Override
  public String name() {
    return "watch-latency";
  }

  @Override
  public String summary() {
    return "Benchmark watch latency (put until every watcher has the event)";
  }

  @Override
  public FlagSet flags() {
    return flags;
  }

  @Override
  public void configure(List<String> args) {
    Args.none(this, args);
    watchers = flags.integer("watchers", 1);
    streams = flags.integer("streams", 1);
    putTotal = flags.integer("put-total", 1);
    putRate = flags.integer("put-rate", 1);
    warmUpPuts = flags.integer("warm-up-puts", 0);
    keySize = flags.integer("key-size", 1);
    valSize = flags.integer("val-size", Long.BYTES);
    if (streams > watchers) {
      throw new UsageException("--streams " + streams + " is more than --watchers " + watchers);
    }
  }

  @Override
  public Result run(Session session) throws Exception {
    ByteString key = randomKey();
    Recorder recorder = new Recorder();
    Deliveries deliveries = new Deliveries(warmUpPuts, warmUpPuts + putTotal, watchers, recorder);
    AtomicLong events = new AtomicLong();
    AtomicLong streamErrors = new AtomicLong();
    List<WatchStream> opened = new ArrayList<>();
    List<Future<Void>> created = new ArrayList<>();
    for (int s = 0; s < streams; s++) {
      int share = watchers / streams + (s < watchers % streams ? 1 : 0);
      Conn conn = session.connOf(s);
      WatchStream stream = new WatchStream(conn, key, share, deliveries, events, streamErrors);
      opened.add(stream);
      created.add(conn.onContext(stream::open));
    }
    try {
      session.await(Future.all(created), SETUP_SECONDS, "creating " + watchers + " watchers on " + streams + " streams");
      Conn putConn = session.extraConn();
      Putter putter = new Putter(putConn, key, Keys.randomValue(valSize - Long.BYTES), deliveries, putRate);
      try (Progress progress = session.progress(putTotal, recorder::finished)) {
        // The recorder's clock starts with the first measured put (Deliveries.sending).
        putConn.context().runOnContext(v -> putter.start());
        putter.awaitAllSent();
        long graceMillis = session.options().requestTimeoutMillis();
        if (!deliveries.await(graceMillis)) {
          deliveries.giveUp("event not delivered to every watcher within " + graceMillis / 1000 + " s of the last put");
        }
        recorder.stop();
      }
    } finally {
      opened.forEach(WatchStream::close);
    }
    Map<String, Object> extra = new LinkedHashMap<>();
    extra.put("watchers", watchers);
    extra.put("events_delivered", events.get());
    if (streamErrors.get() > 0) {
      extra.put("stream_errors", streamErrors.get());
    }
    return recorder.result(name(), session.flagValues(), extra);
  }

  /** A fresh printable key per run, so that no earlier run's events or other writers interfere. */
  private ByteString randomKey() {
    StringBuilder key = new StringBuilder(keySize);
    for (int i = 0; i < keySize; i++) {
      key.append(KEY_ALPHABET.charAt(ThreadLocalRandom.current().nextInt(KEY_ALPHABET.length())));
    }
    return ByteString.copyFromUtf8(key.toString());
  }
}
