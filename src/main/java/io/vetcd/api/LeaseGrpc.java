package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.core.streams.ReadStream;
import io.vertx.core.streams.WriteStream;
import io.vertx.grpc.server.GrpcServerResponse;
import io.vertx.grpc.server.StatusException;
import io.vetcd.lease.Lessor;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrantResponse;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveResponse;
import io.vetcd.proto.etcdserverpb.LeaseLeasesRequest;
import io.vetcd.proto.etcdserverpb.LeaseLeasesResponse;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import io.vetcd.proto.etcdserverpb.LeaseRevokeResponse;
import io.vetcd.proto.etcdserverpb.LeaseService;
import io.vetcd.proto.etcdserverpb.LeaseStatus;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveRequest;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveResponse;
import io.vetcd.server.EtcdError;
import io.vetcd.server.LocalMember;

/**
 * etcd's Lease service. Grants and revokes go through the log; keep-alives and time-to-live go to the
 * leader (forwarded by a follower), which alone runs the leases' clocks; the list is local.
 */
final class LeaseGrpc extends LeaseService {

  private final LocalMember member;

  LeaseGrpc(LocalMember member) {
    this.member = member;
  }

  private static final long LEASE_COST_BYTES = 64;

  @Override
  public Future<LeaseGrantResponse> leaseGrant(LeaseGrantRequest request) {
    return GrpcErrors.call(() -> {
      if (request.getTTL() > Lessor.MAX_TTL_SECONDS) {
        throw EtcdError.LEASE_TTL_TOO_LARGE.exception();
      }
      // etcd's quota gate for grants: a lease costs its record (etcd counts 64 bytes).
      if (!member.spaceAvailable(LEASE_COST_BYTES)) {
        throw EtcdError.NO_SPACE.exception();
      }
      LeaseGrantRequest.Builder grant = request.toBuilder();
      if (grant.getID() == 0) {
        grant.setID(member.newLeaseId());
      }
      return member.leaseGrant(grant.build())
          .map(r -> r.toBuilder().setHeader(member.header(r.getHeader().getRevision())).build());
    });
  }

  @Override
  public Future<LeaseRevokeResponse> leaseRevoke(LeaseRevokeRequest request) {
    return GrpcErrors.call(() -> Callers.resolveOnceKnown(member)
        .compose(caller -> member.leaseRevoke(request, caller))
        .map(r -> r.toBuilder().setHeader(member.header(r.getHeader().getRevision())).build()));
  }

  @Override
  public Future<LeaseTimeToLiveResponse> leaseTimeToLive(LeaseTimeToLiveRequest request) {
    return GrpcErrors.call(() -> member.timeToLive(request)
        .map(r -> r.toBuilder().setHeader(member.header(member.watches().revision())).build()));
  }

  @Override
  public Future<LeaseLeasesResponse> leaseLeases(LeaseLeasesRequest request) {
    LeaseLeasesResponse.Builder resp = LeaseLeasesResponse.newBuilder()
        .setHeader(member.header(member.watches().revision()));
    member.lessor().ids().forEach(id -> resp.addLeases(LeaseStatus.newBuilder().setID(id)));
    return Future.succeededFuture(resp.build());
  }

  /**
   * Each keep-alive is answered with the lease's TTL, in order; a lease that does not exist (any
   * more) is answered with TTL 0, as etcd does. Other failures end the stream with etcd's error.
   */
  @Override
  protected void leaseKeepAlive(ReadStream<LeaseKeepAliveRequest> requests,
      WriteStream<LeaseKeepAliveResponse> responses) {
    Future<?>[] previous = {Future.succeededFuture()};
    boolean[] ended = {false};
    requests.handler(req -> previous[0] = previous[0].transform(ar -> member.renewLease(req.getID())
        .onSuccess(ttl -> {
          if (!ended[0]) {
            responses.write(LeaseKeepAliveResponse.newBuilder()
                .setHeader(member.header(member.watches().revision()))
                .setID(req.getID())
                .setTTL(Math.max(0, ttl))
                .build());
          }
        })
        .onFailure(e -> {
          if (!ended[0]) {
            ended[0] = true;
            StatusException status = GrpcErrors.toStatus(e);
            GrpcServerResponse<?, ?> grpc = (GrpcServerResponse<?, ?>) responses;
            grpc.status(status.status()).statusMessage(status.message()).end();
          }
        })));
    requests.exceptionHandler(e -> ended[0] = true);
    requests.endHandler(v -> previous[0].onComplete(ar -> {
      if (!ended[0]) {
        ended[0] = true;
        responses.end();
      }
    }));
  }
}
