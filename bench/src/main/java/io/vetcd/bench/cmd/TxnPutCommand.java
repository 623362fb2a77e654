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
import io.vetcd.bench.run.Keys;
import io.vetcd.bench.run.RateLimiter;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import java.util.List;
import java.util.Map;

/**
 * {@code txn-put}: etcd's "Benchmark txn-put", a Txn with no compare and {@code --txn-ops} puts in its
 * success branch. As in etcd's tool the keys are sequential by default: txn i writes keys
 * i*ops .. i*ops+ops-1 modulo the key space. With {@code --sequential-keys=false} a txn writes ops
 * consecutive keys from a random start instead. Either way the keys of one txn are distinct while
 * ops <= key space (etcd refuses a txn that writes a key twice).
 */
public final class TxnPutCommand implements Command {

  private final FlagSet flags = new FlagSet()
      .intFlag("total", 10000, "total number of txn requests")
      .intFlag("key-size", 8, "key size of put request, in bytes")
      .intFlag("val-size", 8, "value size of put request, in bytes")
      .intFlag("key-space-size", 1, "number of distinct keys")
      .intFlag("txn-ops", 1, "number of puts per txn")
      .boolFlag("sequential-keys", true, "txn i writes keys i*txn-ops.. (etcd's txn-put); false: from a random key")
      .intFlag("rate", 0, "maximum txn requests per second (0 is no limit)");

  private int total;
  private Keys keys;
  private int valSize;
  private int ops;
  private boolean sequential;
  private int rate;

  @Override
  public String name() {
    return "txn-put";
  }

  @Override
  public String summary() {
    return "Benchmark txn-put";
  }

  @Override
  public FlagSet flags() {
    return flags;
  }

  @Override
  public void configure(List<String> args) {
    Args.none(this, args);
    total = flags.integer("total", 1);
    int keySpace = flags.integer("key-space-size", 1);
    keys = new Keys(flags.integer("key-size", 1), keySpace);
    valSize = flags.integer("val-size", 0);
    ops = flags.integer("txn-ops", 1);
    sequential = flags.bool("sequential-keys");
    rate = flags.integer("rate", 0);
    if (ops > keySpace) {
      // etcd refuses a txn that writes one key twice ("duplicate key given in txn request").
      throw new UsageException("--txn-ops " + ops + " is more than --key-space-size " + keySpace
          + ": a txn would put the same key twice, which etcd refuses");
    }
  }

  @Override
  public Result run(Session session) throws InterruptedException {
    ByteString value = Keys.randomValue(valSize);
    Recorder recorder = new Recorder();
    new ClosedLoop(total, new RateLimiter(rate), recorder, (conn, i, answer) -> conn.unary(Methods.TXN, txn(i, value), answer::answered))
        .run(session);
    return recorder.result(name(), session.flagValues(), Map.of());
  }

  private TxnRequest txn(long index, ByteString value) {
    TxnRequest.Builder txn = TxnRequest.newBuilder();
    long first = sequential ? index * ops : keys.randomNumber();
    for (int j = 0; j < ops; j++) {
      PutRequest put = PutRequest.newBuilder().setKey(keys.sequential(first + j)).setValue(value).build();
      txn.addSuccess(RequestOp.newBuilder().setRequestPut(put));
    }
    return txn.build();
  }
}
