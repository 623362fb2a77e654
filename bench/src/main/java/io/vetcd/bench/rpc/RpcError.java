package io.vetcd.bench.rpc;

import io.vertx.grpc.client.InvalidStatusException;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.common.GrpcErrorException;
import java.net.ConnectException;
import java.util.concurrent.TimeoutException;

/**
 * A failed request, worded like grpc-go's errors ({@code rpc error: code = Unavailable desc = ...}) so
 * that the error counts of this tool and of etcd's read the same.
 */
public final class RpcError extends RuntimeException {

  public RpcError(GrpcStatus status, String message) {
    super("rpc error: code = " + camel(status == null ? GrpcStatus.UNKNOWN : status) + " desc = " + (message == null ? "" : message), null, false, false);
  }

  /** The text under which a failure is counted: the same cause must always give the same text. */
  public static String describe(Throwable failure) {
    if (failure instanceof RpcError) {
      return failure.getMessage();
    }
    if (failure instanceof InvalidStatusException invalid) {
      return new RpcError(invalid.actualStatus(), null).getMessage();
    }
    if (failure instanceof GrpcErrorException reset) {
      return new RpcError(reset.status(), "stream reset (" + reset.error() + ")").getMessage();
    }
    if (failure instanceof TimeoutException) {
      return "request timed out";
    }
    if (failure instanceof ConnectException) {
      // Netty's subclass names are noise; the message has the cause and the address.
      return "connect: " + failure.getMessage();
    }
    String message = failure.getMessage();
    return failure.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }

  /** grpc-go prints codes as Go constants: UNAVAILABLE becomes Unavailable, DEADLINE_EXCEEDED DeadlineExceeded. */
  private static String camel(GrpcStatus status) {
    StringBuilder name = new StringBuilder();
    for (String part : status.name().split("_")) {
      name.append(part.charAt(0)).append(part.substring(1).toLowerCase());
    }
    return name.toString();
  }
}
