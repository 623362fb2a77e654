package io.vetcd.api;

import io.vertx.core.Future;
import io.vetcd.proto.etcdserverpb.ClusterService;
import io.vetcd.proto.etcdserverpb.Member;
import io.vetcd.proto.etcdserverpb.MemberAddRequest;
import io.vetcd.proto.etcdserverpb.MemberAddResponse;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.MemberListResponse;
import io.vetcd.proto.etcdserverpb.MemberPromoteRequest;
import io.vetcd.proto.etcdserverpb.MemberPromoteResponse;
import io.vetcd.proto.etcdserverpb.MemberRemoveRequest;
import io.vetcd.proto.etcdserverpb.MemberRemoveResponse;
import io.vetcd.proto.etcdserverpb.MemberUpdateRequest;
import io.vetcd.proto.etcdserverpb.MemberUpdateResponse;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.internal.MemberAnswer;
import io.vetcd.server.LocalMember;
import java.util.ArrayList;
import java.util.List;

/**
 * etcd's Cluster service. Changes go through the log, one at a time, judged by the leader (see
 * LocalMember); each answers once this member applied it, with the member list after it, sorted by id
 * as etcd sorts it.
 */
final class ClusterGrpc extends ClusterService {

  private final LocalMember member;

  ClusterGrpc(LocalMember member) {
    this.member = member;
  }

  @Override
  public Future<MemberListResponse> memberList(MemberListRequest request) {
    return GrpcErrors.call(() -> Future.succeededFuture(MemberListResponse.newBuilder()
        .setHeader(header()).addAllMembers(sorted(member.members())).build()));
  }

  @Override
  public Future<MemberAddResponse> memberAdd(MemberAddRequest request) {
    return GrpcErrors.call(() -> admin().memberAdd(request).map(answer -> MemberAddResponse.newBuilder()
        .setHeader(header())
        .setMember(answer.getAdded())
        .addAllMembers(members(answer))
        .build()));
  }

  @Override
  public Future<MemberRemoveResponse> memberRemove(MemberRemoveRequest request) {
    return GrpcErrors.call(() -> admin().memberRemove(request).map(answer -> MemberRemoveResponse.newBuilder()
        .setHeader(header()).addAllMembers(members(answer)).build()));
  }

  @Override
  public Future<MemberUpdateResponse> memberUpdate(MemberUpdateRequest request) {
    return GrpcErrors.call(() -> admin().memberUpdate(request).map(answer -> MemberUpdateResponse.newBuilder()
        .setHeader(header()).addAllMembers(members(answer)).build()));
  }

  @Override
  public Future<MemberPromoteResponse> memberPromote(MemberPromoteRequest request) {
    return GrpcErrors.call(() -> admin().memberPromote(request).map(answer -> MemberPromoteResponse.newBuilder()
        .setHeader(header()).addAllMembers(members(answer)).build()));
  }

  /**
   * etcd's checkMembershipOperationPermission: with auth enabled, changing the member list is the root
   * role's (listing it is anyone's). Throws etcd's error otherwise.
   */
  private LocalMember admin() {
    member.auth().store().checkAdmin(Callers.resolve(member.auth()));
    return member;
  }

  /** etcd's Cluster header: no revision. */
  private ResponseHeader header() {
    return member.header(0).toBuilder().clearRevision().build();
  }

  private static List<Member> members(MemberAnswer answer) {
    return sorted(answer.getRecord().getMembersList());
  }

  /** By id, as unsigned numbers (etcd's MembersByID over uint64 ids). */
  private static List<Member> sorted(List<Member> members) {
    List<Member> sorted = new ArrayList<>(members);
    sorted.sort((a, b) -> Long.compareUnsigned(a.getID(), b.getID()));
    return sorted;
  }
}
