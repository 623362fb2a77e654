package io.vetcd.api;

import io.vertx.core.Future;
import io.vetcd.proto.etcdserverpb.ClusterService;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.MemberListResponse;
import io.vetcd.server.Member;
import io.vetcd.server.Membership;

/** etcd's Cluster service: the member list (membership changes come with the Raft issue). */
final class ClusterGrpc extends ClusterService {

  private final Member member;

  ClusterGrpc(Member member) {
    this.member = member;
  }

  @Override
  public Future<MemberListResponse> memberList(MemberListRequest request) {
    return GrpcErrors.call(() -> {
      MemberListResponse.Builder resp = MemberListResponse.newBuilder()
          .setHeader(member.header(0).toBuilder().clearRevision());
      for (Membership.MemberInfo m : member.membership().members()) {
        resp.addMembers(io.vetcd.proto.etcdserverpb.Member.newBuilder()
            .setID(m.id())
            .setName(m.name())
            .addAllPeerURLs(m.peerUrls())
            .addAllClientURLs(m.clientUrls()));
      }
      return Future.succeededFuture(resp.build());
    });
  }
}
