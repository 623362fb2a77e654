package io.vetcd.bench.cmd;

import com.google.protobuf.ByteString;
import io.vetcd.bench.Session;
import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.FlagSet;
import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.report.Result;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.run.ClosedLoop;
import io.vetcd.bench.run.Keys;
import io.vetcd.bench.run.RateLimiter;
import io.vetcd.proto.etcdserverpb.PutRequest;
import java.util.List;
import java.util.Map;

/** {@code put}: etcd's "Benchmark put", one Put per request. */
public final class PutCommand implements Command {

  private final FlagSet flags = new FlagSet()
      .intFlag("total", 10000, "total number of put requests")
      .intFlag("key-size", 8, "key size of put request, in bytes")
      .intFlag("val-size", 8, "value size of put request, in bytes")
      .intFlag("key-space-size", 1, "number of distinct keys")
      .boolFlag("sequential-keys", "use sequential keys (key i is i mod key-space-size) instead of random ones")
      .intFlag("rate", 0, "maximum put requests per second (0 is no limit)")
      .intFlag("duration", 0, "stop after this many seconds even if --total was not reached (0: no limit)");

  private int total;
  private Keys keys;
  private int valSize;
  private boolean sequential;
  private int rate;
  private int duration;

  @Override
  public String name() {
    return "put";
  }

  @Override
  public String summary() {
    return "Benchmark put";
  }

  @Override
  public FlagSet flags() {
    return flags;
  }

  @Override
  public void configure(List<String> args) {
    Args.none(this, args);
    total = flags.integer("total", 1);
    keys = new Keys(flags.integer("key-size", 1), flags.integer("key-space-size", 1));
    valSize = flags.integer("val-size", 0);
    sequential = flags.bool("sequential-keys");
    rate = flags.integer("rate", 0);
    duration = flags.integer("duration", 0);
  }

  @Override
  public Result run(Session session) throws InterruptedException {
    ByteString value = Keys.randomValue(valSize);
    Recorder recorder = new Recorder();
    new ClosedLoop(total, new RateLimiter(rate), recorder, (conn, i, answer) -> conn.unary(Methods.PUT,
        PutRequest.newBuilder().setKey(sequential ? keys.sequential(i) : keys.random()).setValue(value).build(),
        answer::answered))
        .forAtMost(duration)
        .run(session);
    return recorder.result(name(), session.flagValues(), Map.of());
  }
}
