package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.file.AsyncFile;
import io.vertx.core.file.OpenOptions;
import io.vertx.core.streams.WriteStream;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServerResponse;
import io.vetcd.backup.EtcdSnapshot;
import io.vetcd.proto.etcdserverpb.DefragmentRequest;
import io.vetcd.proto.etcdserverpb.DefragmentResponse;
import io.vetcd.proto.etcdserverpb.SnapshotRequest;
import io.vetcd.proto.etcdserverpb.SnapshotResponse;
import io.vetcd.mvcc.MvccException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.AlarmRequest;
import io.vetcd.proto.etcdserverpb.AlarmResponse;
import io.vetcd.proto.etcdserverpb.HashKVRequest;
import io.vetcd.proto.etcdserverpb.HashKVResponse;
import io.vetcd.proto.etcdserverpb.MaintenanceService;
import io.vetcd.proto.etcdserverpb.MoveLeaderRequest;
import io.vetcd.proto.etcdserverpb.MoveLeaderResponse;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import io.vetcd.proto.etcdserverpb.StatusResponse;
import io.vetcd.server.KvApplier;
import io.vetcd.server.EtcdError;
import io.vertx.grpc.server.StatusException;
import io.vetcd.server.LocalMember;

/** etcd's Maintenance service: status, keyspace hash, alarms, leadership transfer and snapshots. */
final class MaintenanceGrpc extends MaintenanceService {

  private final Vertx vertx;
  private final LocalMember member;

  MaintenanceGrpc(Vertx vertx, LocalMember member) {
    this.vertx = vertx;
    this.member = member;
  }

  /**
   * etcd's authMaintenanceServer: with auth enabled, hashes, snapshots and defragmentation are for
   * the root role only (true, or etcd's error thrown). Status, alarms and leadership moves are not checked.
   */
  boolean admin() {
    try {
      member.auth().store().checkAdmin(Callers.resolve(member.auth()));
      return true;
    } catch (EtcdError.EtcdException e) {
      // etcd's maintenance server returns the auth store's own error, unmapped: code Unknown, and the
      // auth package's words ("auth: permission denied"), which clients print as they come.
      String words = e.error() == EtcdError.USER_NOT_FOUND ? "user not found" // the auth package's own words
          : e.getMessage().substring("etcdserver: ".length());
      throw new StatusException(GrpcStatus.UNKNOWN, "auth: " + words);
    }
  }

  @Override
  public Future<StatusResponse> status(StatusRequest request) {
    return GrpcErrors.call(() -> vertx.executeBlocking(() -> {
      long revision;
      try (MvccStore.ReadView view = member.store().read()) {
        revision = view.revision();
      }
      StatusResponse.Builder status = StatusResponse.newBuilder();
      if (member.leaderId() == 0) {
        status.addErrors(EtcdError.NO_LEADER.message()); // etcd's first error, before the alarms
      }
      member.alarms().forEach(a -> status.addErrors(LocalMember.describe(a)));
      return status
          .setHeader(member.header(revision))
          .setVersion(LocalMember.API_VERSION)
          .setDbSize(member.store().dbSize())
          .setDbSizeInUse(member.store().dbSizeInUse())
          .setLeader(member.leaderId())
          .setRaftIndex(member.commitIndex())
          .setRaftTerm(member.term())
          .setRaftAppliedIndex(member.appliedIndex())
          .setIsLearner(member.isLearner())
          .build();
    }, false));
  }

  /**
   * etcd's Hash hashes its whole bbolt file, which no other store reproduces; vetcd answers with what
   * HashKV answers at the current revision (equal on members that applied the same log), so that a
   * client comparing members with it still finds a divergent one.
   */
  @Override
  public Future<io.vetcd.proto.etcdserverpb.HashResponse> hash(io.vetcd.proto.etcdserverpb.HashRequest request) {
    return hashKV(HashKVRequest.getDefaultInstance()).map(h -> io.vetcd.proto.etcdserverpb.HashResponse.newBuilder()
        .setHeader(h.getHeader()).setHash(h.getHash()).build());
  }

  @Override
  public Future<HashKVResponse> hashKV(HashKVRequest request) {
    return GrpcErrors.call(() -> admin() ? vertx.executeBlocking(() -> {
      try {
        MvccStore.HashKv h = member.store().hashKv(request.getRevision());
        return HashKVResponse.newBuilder()
            .setHeader(member.header(h.revision()))
            .setHash((int) h.hash())
            .setCompactRevision(h.compactRevision())
            .build();
      } catch (MvccException e) {
        throw KvApplier.toEtcd(e);
      }
    }, false) : null);
  }

  /** What one response of a snapshot stream carries (etcd's snapshotSendBufferSize). */
  private static final int SNAPSHOT_CHUNK = 32 * 1024;

  /**
   * etcd's Snapshot: the keyspace as a bbolt file in etcd's layout (see EtcdSnapshot), written from one
   * consistent read off the event loop (writers go on meanwhile), then streamed in 32 KiB responses with
   * the bytes still to come, and last the file's SHA-256, which {@code etcdctl snapshot save} checks for.
   * The file is made under the member's snap directory (emptied at every start) and removed after.
   */
  @Override
  protected void snapshot(SnapshotRequest request, WriteStream<SnapshotResponse> response) {
    try {
      admin();
    } catch (RuntimeException denied) {
      var status = GrpcErrors.toStatus(denied);
      if (response instanceof GrpcServerResponse<?, ?> grpc) {
        grpc.status(status.status()).statusMessage(status.message()).end();
      } else {
        response.end();
      }
      return;
    }
    java.nio.file.Path file = member.config().dataDir().resolve("member").resolve("snap")
        .resolve("backup-" + System.nanoTime() + ".db");
    vertx.executeBlocking(() -> EtcdSnapshot.write(member.store(), file), false)
        .compose(written -> vertx.fileSystem().open(file.toString(), new OpenOptions().setRead(true).setWrite(false))
            .compose(in -> stream(in, written.size(), response)))
        .onComplete(ar -> {
          vertx.fileSystem().delete(file.toString());
          if (ar.failed() && response instanceof GrpcServerResponse<?, ?> grpc) {
            grpc.status(GrpcStatus.UNKNOWN).statusMessage(String.valueOf(ar.cause().getMessage())).end();
          } else if (ar.failed()) {
            response.end(); // the JSON gateway's stream: ended short (the client sees no trailing hash)
          }
        });
  }

  /** Streams {@code in} ({@code total} bytes) as snapshot responses, then its SHA-256, and ends. */
  private static Future<Void> stream(AsyncFile in, long total, WriteStream<SnapshotResponse> response) {
    Promise<Void> done = Promise.promise();
    java.security.MessageDigest sha;
    try {
      sha = java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      return Future.failedFuture(e);
    }
    long[] sent = {0};
    in.setReadBufferSize(SNAPSHOT_CHUNK);
    in.handler(chunk -> {
      byte[] bytes = chunk.getBytes();
      sha.update(bytes);
      sent[0] += bytes.length;
      response.write(SnapshotResponse.newBuilder().setRemainingBytes(total - sent[0])
          .setBlob(com.google.protobuf.ByteString.copyFrom(bytes)).build());
      if (response.writeQueueFull()) {
        in.pause();
        response.drainHandler(v -> in.resume());
      }
    });
    in.exceptionHandler(done::tryFail);
    // A client that goes away (a reset stream, a closed connection) ends it: the file is closed and removed.
    response.exceptionHandler(done::tryFail);
    in.endHandler(v -> {
      response.end(SnapshotResponse.newBuilder()
          .setBlob(com.google.protobuf.ByteString.copyFrom(sha.digest())).build());
      done.tryComplete();
    });
    return done.future().eventually(in::close);
  }

  /** etcd's Defragment: this member's file shrinks to what it uses; writes go on meanwhile. */
  @Override
  public Future<DefragmentResponse> defragment(DefragmentRequest request) {
    return GrpcErrors.call(() -> admin() ? member.defragment()
        .map(sizes -> DefragmentResponse.getDefaultInstance()) : null); // etcd 3.4 answers with no header
  }

  /** Leadership transfer: asked of the leader, answered once the target leads. */
  @Override
  public Future<MoveLeaderResponse> moveLeader(MoveLeaderRequest request) {
    return GrpcErrors.call(() -> member.moveLeader(request.getTargetID())
        .map(v -> MoveLeaderResponse.newBuilder().setHeader(member.header(0).toBuilder().clearRevision()).build()));
  }

  /**
   * Alarms (NOSPACE is the only one vetcd raises): every action goes through the log, as in etcd, so
   * GET answers with what the cluster has applied, and ACTIVATE and DEACTIVATE (etcdctl alarm disarm,
   * which lists the alarms and clears them one by one) take effect on every member.
   */
  @Override
  public Future<AlarmResponse> alarm(AlarmRequest request) {
    // etcd 3.4 answers with no header at all (its Alarm never fills one in).
    return GrpcErrors.call(() -> member.alarm(request).map(response -> response.toBuilder().clearHeader().build()));
  }
}
