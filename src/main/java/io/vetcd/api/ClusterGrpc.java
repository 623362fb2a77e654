package io.vetcd.api;

import io.vertx.core.Future;
import io.vetcd.proto.etcdserverpb.ClusterService;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.MemberListResponse;
import io.vetcd.server.LocalMember;

/** etcd's Cluster service: the member list (adding and removing members is not supported yet). */
final class ClusterGrpc extends ClusterService {

  private final LocalMember member;

  ClusterGrpc(LocalMember member) {
    this.member = member;
  }

  @Override
  public Future<MemberListResponse> memberList(MemberListRequest request) {
    return GrpcErrors.call(() -> {
      MemberListResponse.Builder resp = MemberListResponse.newBuilder()
          .setHeader(member.header(0).toBuilder().clearRevision());
      return Future.succeededFuture(resp.addAllMembers(member.members()).build());
    });
  }
}
