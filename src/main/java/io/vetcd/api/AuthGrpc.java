package io.vetcd.api;

import com.google.protobuf.Message;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.auth.AuthStore;
import io.vetcd.auth.Caller;
import io.vetcd.auth.JwtTokens;
import io.vetcd.auth.Passwords;
import io.vetcd.proto.etcdserverpb.AuthDisableRequest;
import io.vetcd.proto.etcdserverpb.AuthDisableResponse;
import io.vetcd.proto.etcdserverpb.AuthEnableRequest;
import io.vetcd.proto.etcdserverpb.AuthEnableResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleAddRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleAddResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleDeleteRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleDeleteResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleGetRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleGetResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleGrantPermissionRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleGrantPermissionResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleListRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleListResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleRevokePermissionRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleRevokePermissionResponse;
import io.vetcd.proto.etcdserverpb.AuthService;
import io.vetcd.proto.etcdserverpb.AuthUserAddRequest;
import io.vetcd.proto.etcdserverpb.AuthUserAddResponse;
import io.vetcd.proto.etcdserverpb.AuthUserChangePasswordRequest;
import io.vetcd.proto.etcdserverpb.AuthUserChangePasswordResponse;
import io.vetcd.proto.etcdserverpb.AuthUserDeleteRequest;
import io.vetcd.proto.etcdserverpb.AuthUserDeleteResponse;
import io.vetcd.proto.etcdserverpb.AuthUserGetRequest;
import io.vetcd.proto.etcdserverpb.AuthUserGetResponse;
import io.vetcd.proto.etcdserverpb.AuthUserGrantRoleRequest;
import io.vetcd.proto.etcdserverpb.AuthUserGrantRoleResponse;
import io.vetcd.proto.etcdserverpb.AuthUserListRequest;
import io.vetcd.proto.etcdserverpb.AuthUserListResponse;
import io.vetcd.proto.etcdserverpb.AuthUserRevokeRoleRequest;
import io.vetcd.proto.etcdserverpb.AuthUserRevokeRoleResponse;
import io.vetcd.proto.etcdserverpb.AuthenticateRequest;
import io.vetcd.proto.etcdserverpb.AuthenticateResponse;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.internal.AuthChange;
import io.vetcd.proto.internal.SimpleTokenGrant;
import io.vetcd.server.EtcdError;
import io.vetcd.server.LocalMember;
import java.util.function.Function;

/**
 * etcd's Auth service. Changes go through the log (the applying members check that the caller has
 * the root role once auth is enabled, as etcd's applier does); reads of users and roles are answered
 * from the applied store after a read barrier, with etcd's rules (lists: root only; a user may read
 * itself, and a role it has). Passwords are hashed (bcrypt) on a worker, never on the event loop, and
 * only the hash enters the log; Authenticate checks the password here and then has every member
 * learn the new simple token through the log, as etcd does (a JWT token goes through the log too, so
 * a password changed meanwhile refuses it, and is signed here once applied).
 */
final class AuthGrpc extends AuthService {

  private final Vertx vertx;
  private final LocalMember member;

  AuthGrpc(Vertx vertx, LocalMember member) {
    this.vertx = vertx;
    this.member = member;
  }

  @Override
  public Future<AuthEnableResponse> authEnable(AuthEnableRequest request) {
    return change(AuthChange.newBuilder().setEnable(request), AuthEnableResponse.class);
  }

  @Override
  public Future<AuthDisableResponse> authDisable(AuthDisableRequest request) {
    return change(AuthChange.newBuilder().setDisable(request), AuthDisableResponse.class);
  }

  @Override
  public Future<AuthenticateResponse> authenticate(AuthenticateRequest request) {
    return GrpcErrors.call(() -> authenticate(request, 3));
  }

  /**
   * etcd's Authenticate: the password checked against the store after a read barrier, then the token
   * through the log, refused there if the store moved on meanwhile (a new password, the user made
   * again); then the whole is tried again, as etcd loops.
   */
  private Future<AuthenticateResponse> authenticate(AuthenticateRequest request, int attempts) {
    long[] checkedRevision = new long[1];
    return member.readBarrier()
        .compose(v -> {
          AuthStore store = member.auth().store();
          checkedRevision[0] = store.revision();
          if (!store.enabled()) {
            throw EtcdError.AUTH_NOT_ENABLED.exception();
          }
          var user = store.user(request.getName());
          if (user == null) {
            throw EtcdError.AUTH_FAILED.exception();
          }
          if (user.getOptions().getNoPassword()) {
            // etcd's ErrNoPasswordUser, which its gRPC layer does not map: code Unknown, the auth package's words.
            throw new StatusException(GrpcStatus.UNKNOWN,
                "auth: authentication failed, password was given for no password user");
          }
          byte[] hash = user.getPassword().toByteArray();
          return vertx.executeBlocking(() -> Passwords.matches(request.getPassword(), hash), false);
        })
        .compose(matches -> {
          if (!matches) {
            throw EtcdError.AUTH_FAILED.exception();
          }
          // The password is not in the entry: it was checked here (etcd's InternalAuthenticateRequest).
          SimpleTokenGrant grant = SimpleTokenGrant.newBuilder().setName(request.getName())
              .setToken(member.auth().tokens().newPrefix()).setRevision(checkedRevision[0]).build();
          return member.authChange(AuthChange.newBuilder().setAuthenticate(grant).build(), Caller.NOBODY);
        })
        .compose(r -> {
          AuthenticateResponse applied = (AuthenticateResponse) r;
          // A JWT token is signed here (on a worker: an RSA signature takes milliseconds), for the
          // revision the password was checked (and the entry applied) at.
          return vertx.executeBlocking(() -> issue(applied.getToken(), request.getName(), checkedRevision[0]), false)
              .map(token -> withHeader(applied.toBuilder().setToken(token).build()));
        })
        .recover(e -> e instanceof EtcdError.EtcdException x && x.error() == EtcdError.AUTH_OLD_REVISION
            && attempts > 1 ? authenticate(request, attempts - 1) : Future.failedFuture(e));
  }

  private String issue(String applied, String user, long revision) {
    try {
      return member.auth().tokens().issue(applied, user, revision);
    } catch (JwtTokens.VerifyOnly e) {
      throw new StatusException(GrpcStatus.UNKNOWN, e.getMessage()); // unmapped in etcd: its words, code Unknown
    }
  }

  @Override
  public Future<AuthUserAddResponse> userAdd(AuthUserAddRequest request) {
    return GrpcErrors.call(() -> {
      boolean noPassword = request.hasOptions() && request.getOptions().getNoPassword();
      return Callers.resolveOnceKnown(member).compose(caller -> {
        // Root's, before the cost of a hash (checked again as it applies).
        member.auth().store().checkAdmin(caller);
        if (request.getName().isEmpty()) {
          throw EtcdError.USER_EMPTY.exception();
        }
        return hashed(noPassword ? null : request.getPassword()).compose(hash -> {
          AuthChange.Builder change = AuthChange.newBuilder().setUserAdd(request.toBuilder().clearPassword());
          if (hash != null) {
            change.setHashedPassword(com.google.protobuf.ByteString.copyFrom(hash));
          }
          return member.authChange(change.build(), caller);
        });
      }).map(r -> withHeader((AuthUserAddResponse) r));
    });
  }

  @Override
  public Future<AuthUserChangePasswordResponse> userChangePassword(AuthUserChangePasswordRequest request) {
    return GrpcErrors.call(() -> {
      return Callers.resolveOnceKnown(member).compose(caller -> {
        member.auth().store().checkAdmin(caller); // before the cost of a hash, as above
        return hashed(request.getPassword()).compose(hash -> member.authChange(AuthChange.newBuilder()
            .setUserChangePassword(request.toBuilder().clearPassword())
            .setHashedPassword(com.google.protobuf.ByteString.copyFrom(hash)).build(), caller));
      }).map(r -> withHeader((AuthUserChangePasswordResponse) r));
    });
  }

  @Override
  public Future<AuthUserDeleteResponse> userDelete(AuthUserDeleteRequest request) {
    return change(AuthChange.newBuilder().setUserDelete(request), AuthUserDeleteResponse.class);
  }

  @Override
  public Future<AuthUserGrantRoleResponse> userGrantRole(AuthUserGrantRoleRequest request) {
    return change(AuthChange.newBuilder().setUserGrantRole(request), AuthUserGrantRoleResponse.class);
  }

  @Override
  public Future<AuthUserRevokeRoleResponse> userRevokeRole(AuthUserRevokeRoleRequest request) {
    return change(AuthChange.newBuilder().setUserRevokeRole(request), AuthUserRevokeRoleResponse.class);
  }

  @Override
  public Future<AuthRoleAddResponse> roleAdd(AuthRoleAddRequest request) {
    return change(AuthChange.newBuilder().setRoleAdd(request), AuthRoleAddResponse.class);
  }

  @Override
  public Future<AuthRoleDeleteResponse> roleDelete(AuthRoleDeleteRequest request) {
    return change(AuthChange.newBuilder().setRoleDelete(request), AuthRoleDeleteResponse.class);
  }

  @Override
  public Future<AuthRoleGrantPermissionResponse> roleGrantPermission(AuthRoleGrantPermissionRequest request) {
    return change(AuthChange.newBuilder().setRoleGrantPermission(request), AuthRoleGrantPermissionResponse.class);
  }

  @Override
  public Future<AuthRoleRevokePermissionResponse> roleRevokePermission(AuthRoleRevokePermissionRequest request) {
    return change(AuthChange.newBuilder().setRoleRevokePermission(request), AuthRoleRevokePermissionResponse.class);
  }

  @Override
  public Future<AuthUserGetResponse> userGet(AuthUserGetRequest request) {
    return read(store -> store.userGet(request.getName()), (store, caller) -> {
      if (!request.getName().equals(caller.user())) {
        store.checkAdmin(caller); // etcd: root, or the user itself
      }
    }).map(this::withHeader);
  }

  @Override
  public Future<AuthUserListResponse> userList(AuthUserListRequest request) {
    return read(AuthStore::userList, (store, caller) -> store.checkAdmin(caller)).map(this::withHeader);
  }

  @Override
  public Future<AuthRoleGetResponse> roleGet(AuthRoleGetRequest request) {
    return read(store -> store.roleGet(request.getRole()), (store, caller) -> {
      var user = store.user(caller.user());
      if (user == null || !user.getRolesList().contains(request.getRole())) {
        store.checkAdmin(caller); // etcd: root, or a user that has the role
      }
    }).map(this::withHeader);
  }

  @Override
  public Future<AuthRoleListResponse> roleList(AuthRoleListRequest request) {
    return read(AuthStore::roleList, (store, caller) -> store.checkAdmin(caller)).map(this::withHeader);
  }

  private interface Permit {
    void check(AuthStore store, Caller caller);
  }

  /** A read of the applied store after a read barrier (etcd sends these through the log: as linearizable). */
  private <R extends Message> Future<R> read(Function<AuthStore, R> reader, Permit permit) {
    return GrpcErrors.call(() -> {
      Callers.Credentials who = Callers.capture();
      return member.readBarrier().map(v -> {
        AuthStore store = member.auth().store();
        permit.check(store, who.resolve(member.auth())); // after the barrier: the token's entry is applied
        return reader.apply(store);
      });
    });
  }

  private <R extends Message> Future<R> change(AuthChange.Builder change, Class<R> type) {
    return GrpcErrors.call(() -> {
      return Callers.resolveOnceKnown(member).compose(caller -> member.authChange(change.build(), caller))
          .map(r -> withHeader(type.cast(r)));
    });
  }

  /** A bcrypt hash of {@code password} made on a worker (null for none). */
  private Future<byte[]> hashed(String password) {
    if (password == null) {
      return Future.succeededFuture(null);
    }
    int cost = member.auth().bcryptCost();
    return vertx.executeBlocking(() -> Passwords.hash(password, cost), false);
  }

  /** The applier's header (or none, for a read) completed with this member's cluster, id, term and revision. */
  @SuppressWarnings("unchecked")
  private <R extends Message> R withHeader(R response) {
    Message.Builder b = response.toBuilder();
    var field = b.getDescriptorForType().findFieldByName("header");
    long revision;
    if (response.hasField(field)) {
      revision = ((ResponseHeader) response.getField(field)).getRevision();
    } else {
      try (var view = member.store().read()) {
        revision = view.revision();
      }
    }
    return (R) b.setField(field, member.header(revision)).build();
  }
}
