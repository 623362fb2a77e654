package io.vetcd.bench.cmd;

import com.google.protobuf.ByteString;
import io.vetcd.bench.Session;
import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.FlagSet;
import io.vetcd.bench.cli.UsageException;
import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.report.Result;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.run.ClosedLoop;
import io.vetcd.bench.run.RateLimiter;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import java.util.List;
import java.util.Map;

/**
 * {@code range KEY [END]}: etcd's "Benchmark range", the same Range again and again. Linearizable
 * ({@code l}) reads go through the leader's read index; serializable ({@code s}) ones are answered
 * from the member's own store.
 */
public final class RangeCommand implements Command {

  private final FlagSet flags = new FlagSet()
      .intFlag("total", 10000, "total number of range requests")
      .stringFlag("consistency", "l", "linearizable (l) or serializable (s)")
      .intFlag("rate", 0, "maximum range requests per second (0 is no limit)");

  private int total;
  private int rate;
  private RangeRequest request;

  @Override
  public String name() {
    return "range";
  }

  @Override
  public String argsUsage() {
    return "KEY [END]";
  }

  @Override
  public String summary() {
    return "Benchmark range (KEY alone, or the keys in [KEY, END))";
  }

  @Override
  public FlagSet flags() {
    return flags;
  }

  @Override
  public void configure(List<String> args) {
    Args.between(this, args, 1, 2);
    total = flags.integer("total", 1);
    rate = flags.integer("rate", 0);
    String consistency = flags.string("consistency");
    if (!consistency.equals("l") && !consistency.equals("s")) {
      throw new UsageException("--consistency must be l or s, got \"" + consistency + "\"");
    }
    RangeRequest.Builder builder = RangeRequest.newBuilder()
        .setKey(ByteString.copyFromUtf8(args.get(0)))
        .setSerializable(consistency.equals("s"));
    if (args.size() == 2) {
      builder.setRangeEnd(ByteString.copyFromUtf8(args.get(1)));
    }
    request = builder.build();
  }

  @Override
  public Result run(Session session) throws InterruptedException {
    Recorder recorder = new Recorder();
    new ClosedLoop(total, new RateLimiter(rate), recorder, (conn, i, answer) -> conn.unary(Methods.RANGE, request, answer::answered))
        .run(session);
    return recorder.result(name(), session.flagValues(), Map.of());
  }
}
