package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
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
import io.vetcd.server.LocalMember;

/** etcd's Maintenance service: status, keyspace hash and alarms (none are raised yet). */
final class MaintenanceGrpc extends MaintenanceService {

  private final Vertx vertx;
  private final LocalMember member;

  MaintenanceGrpc(Vertx vertx, LocalMember member) {
    this.vertx = vertx;
    this.member = member;
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

  @Override
  public Future<HashKVResponse> hashKV(HashKVRequest request) {
    return GrpcErrors.call(() -> vertx.executeBlocking(() -> {
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
    }, false));
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
    return GrpcErrors.call(() -> member.alarm(request)
        .map(response -> response.toBuilder().setHeader(member.header(response.getHeader().getRevision())).build()));
  }
}
