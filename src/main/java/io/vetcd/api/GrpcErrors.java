package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.server.EtcdError;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Turns failures into the gRPC status etcd would answer with. */
final class GrpcErrors {

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
