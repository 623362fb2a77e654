package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vetcd.mvcc.MvccException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.AlarmMember;
import io.vetcd.proto.etcdserverpb.AlarmRequest;
import io.vetcd.proto.etcdserverpb.AlarmType;
import io.vetcd.proto.etcdserverpb.AlarmResponse;
import io.vetcd.proto.etcdserverpb.HashKVRequest;
import io.vetcd.proto.etcdserverpb.HashKVResponse;
import io.vetcd.proto.etcdserverpb.MaintenanceService;
import io.vetcd.proto.etcdserverpb.MoveLeaderRequest;
import io.vetcd.proto.etcdserverpb.MoveLeaderResponse;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import io.vetcd.proto.etcdserverpb.StatusResponse;
import io.vetcd.server.KvApplier;
import io.vetcd.server.Member;

/** etcd's Maintenance service: status, keyspace hash and alarms (none are raised yet). */
final class MaintenanceGrpc extends MaintenanceService {

  private final Vertx vertx;
  private final Member member;

  MaintenanceGrpc(Vertx vertx, Member member) {
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
      if (member.noSpaceAlarm()) {
        status.addErrors("memberID:" + Long.toUnsignedString(member.id()) + " alarm:NOSPACE ");
      }
      return status
          .setHeader(member.header(revision))
          .setVersion(Member.API_VERSION)
          .setDbSize(member.store().dbSize())
          .setDbSizeInUse(member.store().dbSizeInUse())
          .setLeader(member.leaderId())
          .setRaftIndex(member.commitIndex())
          .setRaftTerm(member.term())
          .setRaftAppliedIndex(member.appliedIndex())
          .setIsLearner(false)
          .build();
    }, false));
  }

  @Override
  public Future<HashKVResponse> hashKV(HashKVRequest request) {
    return GrpcErrors.call(() -> vertx.executeBlocking(() -> {
      try (MvccStore.ReadView view = member.store().read()) {
        return HashKVResponse.newBuilder()
            .setHeader(member.header(view.revision()))
            .setHash((int) view.hash(request.getRevision()))
            .setCompactRevision(view.compactRevision())
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

  /** Alarms: NOSPACE is the only one vetcd raises; GET lists it, DEACTIVATE (etcdctl alarm disarm) clears it. */
  @Override
  public Future<AlarmResponse> alarm(AlarmRequest request) {
    return GrpcErrors.call(() -> vertx.executeBlocking(() -> {
      boolean disarm = request.getAction() == AlarmRequest.AlarmAction.DEACTIVATE
          && (request.getAlarm() == AlarmType.NOSPACE || request.getAlarm() == AlarmType.NONE);
      AlarmResponse.Builder resp = AlarmResponse.newBuilder();
      if (member.noSpaceAlarm()) {
        resp.addAlarms(AlarmMember.newBuilder().setMemberID(member.id()).setAlarm(AlarmType.NOSPACE));
      }
      if (disarm) {
        member.disarmNoSpace();
      }
      try (MvccStore.ReadView view = member.store().read()) {
        return resp.setHeader(member.header(view.revision())).build();
      }
    }, false));
  }
}
