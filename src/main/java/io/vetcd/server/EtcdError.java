package io.vetcd.server;

import io.vertx.grpc.common.GrpcStatus;

/**
 * Every error vetcd answers clients with, as etcd 3.4 words it (api/v3rpc/rpctypes/error.go): the gRPC
 * status code and the message, word for word. Go clients match errors by their text, so a changed
 * word is a broken client.
 */
public enum EtcdError {
  EMPTY_KEY(GrpcStatus.INVALID_ARGUMENT, "etcdserver: key is not provided"),
  KEY_NOT_FOUND(GrpcStatus.INVALID_ARGUMENT, "etcdserver: key not found"),
  VALUE_PROVIDED(GrpcStatus.INVALID_ARGUMENT, "etcdserver: value is provided"),
  LEASE_PROVIDED(GrpcStatus.INVALID_ARGUMENT, "etcdserver: lease is provided"),
  TOO_MANY_OPS(GrpcStatus.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
  DUPLICATE_KEY(GrpcStatus.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"),
  COMPACTED(GrpcStatus.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"),
  FUTURE_REVISION(GrpcStatus.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"),
  NO_SPACE(GrpcStatus.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"),
  TOO_MANY_REQUESTS(GrpcStatus.RESOURCE_EXHAUSTED, "etcdserver: too many requests"),
  LEASE_NOT_FOUND(GrpcStatus.NOT_FOUND, "etcdserver: requested lease not found"),
  LEASE_EXISTS(GrpcStatus.FAILED_PRECONDITION, "etcdserver: lease already exists"),
  LEASE_TTL_TOO_LARGE(GrpcStatus.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
  REQUEST_TOO_LARGE(GrpcStatus.INVALID_ARGUMENT, "etcdserver: request is too large"),
  NO_LEADER(GrpcStatus.UNAVAILABLE, "etcdserver: no leader"),
  NOT_LEADER(GrpcStatus.FAILED_PRECONDITION, "etcdserver: not leader"),
  TIMEOUT(GrpcStatus.UNAVAILABLE, "etcdserver: request timed out"),
  STOPPED(GrpcStatus.UNAVAILABLE, "etcdserver: server stopped"),
  CORRUPT(GrpcStatus.DATA_LOSS, "etcdserver: corrupt cluster"),
  NOT_CAPABLE(GrpcStatus.UNAVAILABLE, "etcdserver: not capable"),
  MEMBER_NOT_FOUND(GrpcStatus.NOT_FOUND, "etcdserver: member not found"),
  MEMBER_EXISTS(GrpcStatus.FAILED_PRECONDITION, "etcdserver: member ID already exist"),
  PEER_URL_EXISTS(GrpcStatus.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"),
  MEMBER_BAD_URLS(GrpcStatus.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid"),
  // etcd answers this one with code Unknown: its gRPC mapping points at a client-side error type.
  MEMBER_NOT_ENOUGH_STARTED(GrpcStatus.UNKNOWN,
      "etcdserver: re-configuration failed due to not enough started members"),
  MEMBER_NOT_LEARNER(GrpcStatus.FAILED_PRECONDITION, "etcdserver: can only promote a learner member"),
  LEARNER_NOT_READY(GrpcStatus.FAILED_PRECONDITION,
      "etcdserver: can only promote a learner member which is in sync with leader"),
  TOO_MANY_LEARNERS(GrpcStatus.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster"),
  UNHEALTHY(GrpcStatus.UNAVAILABLE, "etcdserver: unhealthy cluster"),
  NOT_SUPPORTED_FOR_LEARNER(GrpcStatus.UNAVAILABLE, "etcdserver: rpc not supported for learner"),
  BAD_LEADER_TRANSFEREE(GrpcStatus.FAILED_PRECONDITION, "etcdserver: bad leader transferee"),
  LEADER_TRANSFER_TIMEOUT(GrpcStatus.UNAVAILABLE, "etcdserver: request timed out, leader transfer took too long"),
  // The auth store's (etcd's auth/store.go errors, as rpctypes maps them).
  ROOT_USER_NOT_EXIST(GrpcStatus.FAILED_PRECONDITION, "etcdserver: root user does not exist"),
  ROOT_ROLE_NOT_EXIST(GrpcStatus.FAILED_PRECONDITION, "etcdserver: root user does not have root role"),
  USER_ALREADY_EXIST(GrpcStatus.FAILED_PRECONDITION, "etcdserver: user name already exists"),
  USER_EMPTY(GrpcStatus.INVALID_ARGUMENT, "etcdserver: user name is empty"),
  USER_NOT_FOUND(GrpcStatus.FAILED_PRECONDITION, "etcdserver: user name not found"),
  ROLE_ALREADY_EXIST(GrpcStatus.FAILED_PRECONDITION, "etcdserver: role name already exists"),
  ROLE_NOT_FOUND(GrpcStatus.FAILED_PRECONDITION, "etcdserver: role name not found"),
  ROLE_EMPTY(GrpcStatus.INVALID_ARGUMENT, "etcdserver: role name is empty"),
  AUTH_FAILED(GrpcStatus.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password"),
  PERMISSION_DENIED(GrpcStatus.PERMISSION_DENIED, "etcdserver: permission denied"),
  ROLE_NOT_GRANTED(GrpcStatus.FAILED_PRECONDITION, "etcdserver: role is not granted to the user"),
  PERMISSION_NOT_GRANTED(GrpcStatus.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role"),
  AUTH_NOT_ENABLED(GrpcStatus.FAILED_PRECONDITION, "etcdserver: authentication is not enabled"),
  INVALID_AUTH_TOKEN(GrpcStatus.UNAUTHENTICATED, "etcdserver: invalid auth token"),
  INVALID_AUTH_MGMT(GrpcStatus.INVALID_ARGUMENT, "etcdserver: invalid auth management"),
  AUTH_OLD_REVISION(GrpcStatus.INVALID_ARGUMENT, "etcdserver: revision of auth store is old");

  private final GrpcStatus status;
  private final String message;

  EtcdError(GrpcStatus status, String message) {
    this.status = status;
    this.message = message;
  }

  public GrpcStatus status() {
    return status;
  }

  public String message() {
    return message;
  }

  /** The error as an exception to fail a request with. */
  public EtcdException exception() {
    return new EtcdException(this);
  }

  /** The error with this message, as a leader reports it to a follower; null if none has it. */
  public static EtcdError byMessage(String message) {
    for (EtcdError e : values()) {
      if (e.message.equals(message)) {
        return e;
      }
    }
    return null;
  }

  /** Thrown (or used to fail a future) to answer a request with one of etcd's errors. */
  public static final class EtcdException extends RuntimeException {
    private final EtcdError error;

    EtcdException(EtcdError error) {
      super(error.message, null, false, false);
      this.error = error;
    }

    public EtcdError error() {
      return error;
    }
  }
}
