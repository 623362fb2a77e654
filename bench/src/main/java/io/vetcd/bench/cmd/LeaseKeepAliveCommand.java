package io.vetcd.bench.cmd;

import io.vertx.core.Future;
import io.vetcd.bench.Session;
import io.vetcd.bench.cli.Command;
import io.vetcd.bench.cli.FlagSet;
import io.vetcd.bench.report.Recorder;
import io.vetcd.bench.report.Result;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.run.Progress;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrantResponse;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code lease-keepalive}: etcd's "Benchmark lease keepalive". Each of the {@code --clients} clients
 * grants itself a lease (not timed), then sends keep-alives for it on its own LeaseKeepAlive stream,
 * one in flight at a time, until {@code --total} keep-alives have been answered between them. The
 * leases are revoked at the end.
 *
 * <p>etcd's tool calls KeepAliveOnce, which opens a stream per keep-alive; keeping the stream open is
 * what real clients (clientv3's KeepAlive, jetcd) do, so that is what is measured here.
 */
public final class LeaseKeepAliveCommand implements Command {

  /** Long enough that no lease expires during a run, short enough that a killed run's leases go away. */
  private static final long LEASE_TTL_SECONDS = 60;
  private static final long SETUP_SECONDS = 30;

  private final FlagSet flags = new FlagSet()
      .intFlag("total", 10000, "total number of lease keepalive requests");

  private int total;

  @Override
  public String name() {
    return "lease-keepalive";
  }

  @Override
  public String summary() {
    return "Benchmark lease keepalive";
  }

  @Override
  public FlagSet flags() {
    return flags;
  }

  @Override
  public void configure(List<String> args) {
    Args.none(this, args);
    total = flags.integer("total", 1);
  }

  @Override
  public Result run(Session session) throws Exception {
    int clients = session.options().clients();
    List<Long> leases = grant(session, clients);
    Recorder recorder = new Recorder();
    AtomicLong next = new AtomicLong();
    CountDownLatch finished = new CountDownLatch(clients);
    try (Progress progress = session.progress(total, recorder::finished)) {
      recorder.start();
      for (int c = 0; c < clients; c++) {
        Conn conn = session.connOf(c);
        KeepAliveStream stream = new KeepAliveStream(conn, leases.get(c), total, next, recorder, finished);
        conn.context().runOnContext(v -> stream.start());
      }
      finished.await();
      recorder.stop();
    }
    revoke(session, leases);
    return recorder.result(name(), session.flagValues(), Map.of());
  }

  private static List<Long> grant(Session session, int clients) throws Exception {
    List<Future<LeaseGrantResponse>> granting = new ArrayList<>();
    for (int c = 0; c < clients; c++) {
      Conn conn = session.connOf(c);
      granting.add(conn.onContext(() -> conn.unary(Methods.LEASE_GRANT,
          LeaseGrantRequest.newBuilder().setTTL(LEASE_TTL_SECONDS).build())));
    }
    session.await(Future.all(granting), SETUP_SECONDS, "granting " + clients + " lease(s)");
    List<Long> leases = new ArrayList<>();
    for (Future<LeaseGrantResponse> granted : granting) {
      leases.add(granted.result().getID());
    }
    return leases;
  }

  /** Best effort: a lease left behind expires on its own after its TTL. */
  private static void revoke(Session session, List<Long> leases) {
    List<Future<?>> revoking = new ArrayList<>();
    for (int c = 0; c < leases.size(); c++) {
      Conn conn = session.connOf(c);
      long lease = leases.get(c);
      revoking.add(conn.onContext(() -> conn.unary(Methods.LEASE_REVOKE,
          LeaseRevokeRequest.newBuilder().setID(lease).build())));
    }
    try {
      session.await(Future.join(revoking), SETUP_SECONDS, "revoking the leases");
    } catch (Exception e) {
      System.err.println("warning: " + e.getMessage());
    }
  }
}
