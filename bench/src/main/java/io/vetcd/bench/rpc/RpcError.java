package io.vetcd.bench.rpc;

import java.net.ConnectException;
import java.util.concurrent.TimeoutException;

/**
 * A failed request, worded like grpc-go's errors ({@code rpc error: code = Unavailable desc = ...}) so
 * that the error counts of this tool and of etcd's read the same.
 */
public final class RpcError extends RuntimeException {

  public RpcError(Code code, String message) {
    super("rpc error: code = " + code.goName() + " desc = " + (message == null ? "" : message), null, false, false);
  }

  /** The text under which a failure is counted: the same cause must always give the same text. */
  public static String describe(Throwable failure) {
    if (failure instanceof RpcError) {
      return failure.getMessage();
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
}
