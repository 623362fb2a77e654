package io.vetcd.startup;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.streams.WriteStream;
import io.vertx.grpc.client.GrpcClient;
import io.vetcd.Main;
import io.vetcd.proto.etcdserverpb.ClusterGrpcClient;
import io.vetcd.proto.etcdserverpb.Compare;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.HashKVRequest;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrpcClient;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveRequest;
import io.vetcd.proto.etcdserverpb.MaintenanceGrpcClient;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchGrpcClient;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.server.Config;
import io.vetcd.server.Flags;
import io.vetcd.server.LocalMember;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The workload {@code bin/vetcd build-start-archive} runs once after a build, in a JVM started with
 * {@code -XX:ArchiveClassesAtExit}: the classes it loads are written to a class-data sharing archive,
 * which later members map at start instead of loading, verifying and linking ~5,000 classes one by one
 * from the jar (1.25 s of a member's start here, most of what a restarted member spends before it
 * catches up).
 *
 * <p>It runs what a member runs, in one process: three members of a cluster on loopback, each on its
 * own Vert.x as in its own process, written to and read through the client port with etcd's gRPC
 * services (small and large values, transactions, leases, a watch, maintenance calls), then one member
 * stopped, written past and restarted, so that a restart, the log's replay and a catch-up from the
 * leader are in the archive too. The client's own classes go in as well: they cost a little space and
 * nothing at start.
 */
public final class ArchiveTraining {

  private static final int MEMBERS = 3;
  private static final long TIMEOUT_S = 60;

  private final Path dir;
  private final List<Config> configs = new ArrayList<>();
  private final Vertx[] vertxes = new Vertx[MEMBERS];
  private final LocalMember[] members = new LocalMember[MEMBERS];

  private ArchiveTraining(Path dir) {
    this.dir = dir;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: ArchiveTraining DATA-DIR (an empty directory the training may fill)");
      System.exit(2);
    }
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    System.setProperty("org.slf4j.simpleLogger.log.net.openhft", "warn");
    // The members' event loops are not daemon threads: whatever goes wrong, the build must not wait on
    // them forever.
    Thread watchdog = new Thread(() -> {
      try {
        Thread.sleep(TimeUnit.MINUTES.toMillis(5));
        System.err.println("archive training: not done after 5 minutes; giving up");
        Runtime.getRuntime().halt(1);
      } catch (InterruptedException done) {
        Thread.currentThread().interrupt();
      }
    }, "archive-training-watchdog");
    watchdog.setDaemon(true);
    watchdog.start();
    try {
      new ArchiveTraining(Path.of(args[0])).run();
    } catch (Throwable t) {
      System.err.println("archive training failed: " + t);
      t.printStackTrace();
      System.exit(1);
    }
    // Exit now, not when Vert.x's and Chronicle's threads would let the JVM end: the archive is written
    // at exit.
    System.exit(0);
  }

  private void run() throws Exception {
    configure();
    List<Future<LocalMember>> started = new ArrayList<>();
    for (int i = 0; i < MEMBERS; i++) {
      started.add(start(i));
    }
    Future.all(started).await(TIMEOUT_S, TimeUnit.SECONDS);
    Vertx clientVertx = Vertx.vertx();
    try {
      GrpcClient client = GrpcClient.client(clientVertx);
      // The member that goes away is a follower (a leader's stop would only add an election), and the
      // client talks to another one.
      int away = members[MEMBERS - 1].id() != members[MEMBERS - 1].leaderId() ? MEMBERS - 1 : MEMBERS - 2;
      SocketAddress staying = clientAddress((away + 1) % MEMBERS);
      retrying(() -> write(client, staying, "a/", 300));
      retrying(() -> readAndWatch(client, staying));
      stop(away);
      retrying(() -> write(client, staying, "b/", 300));
      start(away).await(TIMEOUT_S, TimeUnit.SECONDS);
      // A write through the restarted member: forwarded to the leader once it has caught up.
      retrying(() -> write(client, clientAddress(away), "c/", 20));
      client.close().await(TIMEOUT_S, TimeUnit.SECONDS);
    } finally {
      clientVertx.close().await(TIMEOUT_S, TimeUnit.SECONDS);
      for (int i = 0; i < MEMBERS; i++) {
        stop(i);
      }
    }
  }

  private interface Step {
    void run() throws Exception;
  }

  /**
   * Runs a step again if it fails, as a client would: on a loaded machine a leader may change during
   * the training ("etcdserver: leader changed"). Every step may run twice: what it writes is only
   * there to be written.
   */
  private static void retrying(Step step) throws Exception {
    for (int attempt = 1; ; attempt++) {
      try {
        step.run();
        return;
      } catch (Exception e) {
        if (attempt == 10) {
          throw e;
        }
        System.err.println("archive training: " + e.getMessage() + "; again");
        Thread.sleep(500);
      }
    }
  }

  /** Flags as a user would give them to three members on loopback, on ports free now. */
  private void configure() throws Exception {
    int[] clientPorts = new int[MEMBERS];
    int[] peerPorts = new int[MEMBERS];
    StringBuilder initial = new StringBuilder();
    for (int i = 0; i < MEMBERS; i++) {
      clientPorts[i] = freePort();
      peerPorts[i] = freePort();
      initial.append(i == 0 ? "" : ",").append("t").append(i).append("=http://127.0.0.1:").append(peerPorts[i]);
    }
    for (int i = 0; i < MEMBERS; i++) {
      String client = "http://127.0.0.1:" + clientPorts[i];
      String peer = "http://127.0.0.1:" + peerPorts[i];
      Flags.Command command = Flags.parse(new String[] {
          "--name", "t" + i, "--data-dir", dir.resolve("t" + i).toString(),
          "--listen-client-urls", client, "--advertise-client-urls", client,
          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
          "--initial-cluster", initial.toString(), "--initial-cluster-state", "new",
          "--initial-cluster-token", "archive-training", "--snapshot-count", "100", "--log-level", "warn"},
          Map.of());
      configs.add(((Flags.Run) command).config());
    }
  }

  private Future<LocalMember> start(int i) {
    vertxes[i] = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    return Main.serve(vertxes[i], configs.get(i), member -> members[i] = member);
  }

  private void stop(int i) throws Exception {
    if (members[i] != null) {
      members[i].close();
      members[i] = null;
    }
    if (vertxes[i] != null) {
      vertxes[i].close().await(TIMEOUT_S, TimeUnit.SECONDS);
      vertxes[i] = null;
    }
  }

  private SocketAddress clientAddress(int i) {
    String url = configs.get(i).advertiseClientUrls().get(0);
    return SocketAddress.inetSocketAddress(Integer.parseInt(url.substring(url.lastIndexOf(':') + 1)), "127.0.0.1");
  }

  /** Puts of 256 bytes, 64 KiB and 1 MiB, 32 at a time, a transaction and a delete under {@code prefix}. */
  private static void write(GrpcClient client, SocketAddress address, String prefix, int puts) throws Exception {
    KVGrpcClient kv = KVGrpcClient.create(client, address);
    for (int done = 0; done < puts; ) {
      List<Future<?>> batch = new ArrayList<>();
      for (int j = 0; j < 32 && done < puts; j++, done++) {
        int size = done % 100 == 99 ? 1 << 20 : done % 10 == 9 ? 64 << 10 : 256;
        batch.add(kv.put(PutRequest.newBuilder().setKey(bytes(prefix + done)).setValue(ByteString.copyFrom(new byte[size]))
            .setPrevKv(done % 2 == 0).build()));
      }
      Future.all(batch).await(TIMEOUT_S, TimeUnit.SECONDS);
    }
    ByteString key = bytes(prefix + 0);
    kv.txn(TxnRequest.newBuilder()
        .addCompare(Compare.newBuilder().setKey(key).setTarget(Compare.CompareTarget.VERSION)
            .setResult(Compare.CompareResult.GREATER).setVersion(0))
        .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(key).setValue(bytes("swapped"))))
        .addFailure(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(key)))
        .build()).await(TIMEOUT_S, TimeUnit.SECONDS);
    kv.deleteRange(DeleteRangeRequest.newBuilder().setKey(bytes(prefix + 1)).setPrevKv(true).build())
        .await(TIMEOUT_S, TimeUnit.SECONDS);
  }

  /** Ranges of both consistencies, a lease's life, a watch that sees a put, maintenance calls, a compaction. */
  private static void readAndWatch(GrpcClient client, SocketAddress address) throws Exception {
    KVGrpcClient kv = KVGrpcClient.create(client, address);
    kv.range(RangeRequest.newBuilder().setKey(bytes("a/")).setRangeEnd(bytes("a0")).setLimit(10).build())
        .await(TIMEOUT_S, TimeUnit.SECONDS);
    kv.range(RangeRequest.newBuilder().setKey(bytes("a/")).setRangeEnd(bytes("a0")).setCountOnly(true)
        .setSerializable(true).build()).await(TIMEOUT_S, TimeUnit.SECONDS);

    LeaseGrpcClient leases = LeaseGrpcClient.create(client, address);
    long lease = leases.leaseGrant(LeaseGrantRequest.newBuilder().setTTL(60).build()).await(TIMEOUT_S, TimeUnit.SECONDS).getID();
    kv.put(PutRequest.newBuilder().setKey(bytes("leased")).setValue(bytes("v")).setLease(lease).build())
        .await(TIMEOUT_S, TimeUnit.SECONDS);
    Promise<Void> keptAlive = Promise.promise();
    leases.leaseKeepAlive((WriteStream<LeaseKeepAliveRequest> requests, Throwable error) -> {
      if (error == null) {
        requests.write(LeaseKeepAliveRequest.newBuilder().setID(lease).build());
      }
    }).onFailure(keptAlive::tryFail).onSuccess(responses -> responses.handler(r -> keptAlive.tryComplete()));
    keptAlive.future().await(TIMEOUT_S, TimeUnit.SECONDS);
    leases.leaseTimeToLive(LeaseTimeToLiveRequest.newBuilder().setID(lease).setKeys(true).build())
        .await(TIMEOUT_S, TimeUnit.SECONDS);
    leases.leaseRevoke(LeaseRevokeRequest.newBuilder().setID(lease).build()).await(TIMEOUT_S, TimeUnit.SECONDS);

    Promise<Void> seen = Promise.promise();
    WatchGrpcClient.create(client, address).watch((WriteStream<WatchRequest> requests, Throwable error) -> {
      if (error == null) {
        requests.write(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
            .setKey(bytes("watched")).setPrevKv(true)).build());
      }
    }).onFailure(seen::tryFail).onSuccess(responses -> responses.handler((WatchResponse r) -> {
      if (r.getCreated()) {
        kv.put(PutRequest.newBuilder().setKey(bytes("watched")).setValue(bytes("v")).build());
      } else if (r.getEventsCount() > 0) {
        seen.tryComplete();
      }
    }));
    seen.future().await(TIMEOUT_S, TimeUnit.SECONDS);

    MaintenanceGrpcClient maintenance = MaintenanceGrpcClient.create(client, address);
    long revision = maintenance.status(StatusRequest.getDefaultInstance()).await(TIMEOUT_S, TimeUnit.SECONDS)
        .getHeader().getRevision();
    maintenance.hashKV(HashKVRequest.getDefaultInstance()).await(TIMEOUT_S, TimeUnit.SECONDS);
    kv.compact(CompactionRequest.newBuilder().setRevision(revision / 2).build()).await(TIMEOUT_S, TimeUnit.SECONDS);
    ClusterGrpcClient.create(client, address).memberList(MemberListRequest.getDefaultInstance())
        .await(TIMEOUT_S, TimeUnit.SECONDS);
  }

  private static ByteString bytes(String s) {
    return ByteString.copyFrom(s, StandardCharsets.UTF_8);
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
