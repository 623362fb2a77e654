package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.server.EtcdError;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Turns failures into the gRPC status etcd would answer with. */
public final class GrpcErrors {

  private static final Logger LOG = LoggerFactory.getLogger(GrpcErrors.class);

  private GrpcErrors() {}

  /** Runs a handler, so that a thrown error and a failed future are answered alike. */
  static <T> Future<T> call(Supplier<Future<T>> handler) {
    Future<T> result;
    try {
      result = handler.get();
    } catch (RuntimeException e) {
      result = Future.failedFuture(e);
    }
    return result.recover(e -> Future.failedFuture(toStatus(e)));
  }

  /**
   * An etcd error as a Go status error prints itself ("rpc error: code = PermissionDenied desc = ..."),
   * which is how etcd words some errors it sends inside a response (a watch's cancel reason).
   */
  static String goText(io.vetcd.server.EtcdError error) {
    return goText(error.status(), error.message());
  }

  /** A gRPC status as a Go status error prints itself. */
  public static String goText(GrpcStatus status, String message) {
    String code = switch (status) {
      case OK -> "OK";
      case CANCELLED -> "Canceled";
      case UNKNOWN -> "Unknown";
      case INVALID_ARGUMENT -> "InvalidArgument";
      case DEADLINE_EXCEEDED -> "DeadlineExceeded";
      case NOT_FOUND -> "NotFound";
      case ALREADY_EXISTS -> "AlreadyExists";
      case PERMISSION_DENIED -> "PermissionDenied";
      case RESOURCE_EXHAUSTED -> "ResourceExhausted";
      case FAILED_PRECONDITION -> "FailedPrecondition";
      case ABORTED -> "Aborted";
      case OUT_OF_RANGE -> "OutOfRange";
      case UNIMPLEMENTED -> "Unimplemented";
      case INTERNAL -> "Internal";
      case UNAVAILABLE -> "Unavailable";
      case DATA_LOSS -> "DataLoss";
      case UNAUTHENTICATED -> "Unauthenticated";
    };
    return "rpc error: code = " + code + " desc = " + message;
  }

  /**
   * Why a message did not parse, as Go's protobuf says it for the commonest case (a message cut short:
   * "unexpected EOF"); protobuf-java's own words otherwise.
   */
  static String goReason(com.google.protobuf.InvalidProtocolBufferException e) {
    return e.getMessage() != null && e.getMessage().contains("input ended unexpectedly")
        ? "unexpected EOF" : e.getMessage();
  }

  static StatusException toStatus(Throwable e) {
    if (e instanceof StatusException s) {
      return s;
    }
    if (e instanceof EtcdError.EtcdException etcd) {
      return new StatusException(etcd.error().status(), etcd.error().message());
    }
    LOG.error("request failed unexpectedly", e);
    return new StatusException(GrpcStatus.UNKNOWN, String.valueOf(e.getMessage()));
  }
}
