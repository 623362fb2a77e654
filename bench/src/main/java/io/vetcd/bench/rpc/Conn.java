package io.vetcd.bench.rpc;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.common.ServiceMethod;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * One gRPC connection to one endpoint, what etcd's tool calls a conn: an HTTP/2 connection that the
 * clients assigned to it multiplex their requests over.
 *
 * <p>Each conn has its own event-loop context; the clients of a conn start their requests from it,
 * so their completions run on the same thread without hand-offs, and conns spread over the event
 * loops as etcd's spread over grpc-go transports.
 */
public final class Conn {

  private final GrpcClient client;
  private final SocketAddress address;
  private final Context context;
  private final long timeoutMillis;

  public Conn(GrpcClient client, SocketAddress address, Context context, long timeoutMillis) {
    this.client = client;
    this.address = address;
    this.context = context;
    this.timeoutMillis = timeoutMillis;
  }

  public SocketAddress address() {
    return address;
  }

  public Context context() {
    return context;
  }

  /**
   * Sends one unary request. A non-OK status fails the future with an {@link RpcError} carrying the
   * server's message (etcd's "etcdserver: ..." texts), and a request that takes longer than the
   * timeout fails with a deadline error.
   */
  public <Req, Resp> Future<Resp> unary(ServiceMethod<Resp, Req> method, Req request) {
    long start = System.nanoTime();
    return client.request(address, method).compose(req -> {
      if (timeoutMillis > 0) {
        req.timeout(timeoutMillis, TimeUnit.MILLISECONDS);
      }
      req.end(request);
      return req.response().compose(resp -> resp.last().recover(failure -> {
        GrpcStatus status = resp.status();
        return Future.failedFuture(status != null && status != GrpcStatus.OK
            ? new RpcError(status, resp.statusMessage()) : failure);
      }));
    }).recover(failure -> {
      // Vert.x cancels a request past its deadline and reports a CANCELLED reset; say what it is,
      // in grpc-go's words.
      boolean late = timeoutMillis > 0 && System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
      return Future.failedFuture(late && !(failure instanceof RpcError)
          ? new RpcError(GrpcStatus.DEADLINE_EXCEEDED, "context deadline exceeded") : failure);
    });
  }

  /**
   * Runs {@code action} on this conn's event loop. The HTTP/2 connection is bound to the event loop
   * of the request that opens it, so requests made from elsewhere (the main thread) go through here.
   */
  public <T> Future<T> onContext(Supplier<Future<T>> action) {
    Promise<T> promise = Promise.promise();
    context.runOnContext(v -> action.get().onComplete(promise));
    return promise.future();
  }

  /** Opens a bidirectional stream (Watch, LeaseKeepAlive); streams have no deadline. */
  public <Req, Resp> Future<GrpcClientRequest<Req, Resp>> stream(ServiceMethod<Resp, Req> method) {
    return client.request(address, method);
  }

  public Future<Void> close() {
    return client.close();
  }
}
