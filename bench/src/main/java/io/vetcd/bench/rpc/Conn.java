package io.vetcd.bench.rpc;

import com.google.protobuf.MessageLite;
import io.netty.channel.ChannelFuture;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.net.SocketAddress;
import java.net.InetSocketAddress;
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

  /** The answer to a unary call: the response, or the failure (an {@link RpcError} or the connection's). */
  @FunctionalInterface
  public interface Answer<Resp> {
    void answered(Resp response, Throwable failure);
  }

  private final SocketAddress address;
  private final Context context;
  private final long timeoutMillis;
  private final GrpcConnection connection;

  /**
   * @param context an event-loop context of {@code vertx}; the connection lives on its event loop
   * @param timeoutMillis the deadline of unary calls (0: none)
   */
  public Conn(VertxInternal vertx, SocketAddress address, Context context, long timeoutMillis) {
    this.address = address;
    this.context = context;
    this.timeoutMillis = timeoutMillis;
    int connectTimeout = (int) Math.min(Integer.MAX_VALUE, timeoutMillis > 0 ? timeoutMillis : 10_000);
    this.connection = new GrpcConnection(new InetSocketAddress(address.host(), address.port()),
        ((ContextInternal) context).nettyEventLoop(), vertx.transport().channelFactory(false), connectTimeout);
  }

  public SocketAddress address() {
    return address;
  }

  public Context context() {
    return context;
  }

  /**
   * Sends one unary request; call on this conn's context. A non-OK status fails it with an
   * {@link RpcError} carrying the server's message (etcd's "etcdserver: ..." texts), and a request
   * that takes longer than the timeout fails with a deadline error, as grpc-go words it.
   */
  public <Req extends MessageLite, Resp extends MessageLite> void unary(Method<Req, Resp> method, Req request,
      Answer<Resp> answer) {
    connection.open(method, new Call.Listener<Resp>() {
      private Resp response;

      @Override
      public void message(Resp message) {
        response = message;
      }

      @Override
      public void closed(Throwable error) {
        if (error == null && response == null) {
          error = new RpcError(Code.INTERNAL, "server ended a unary call without a response");
        }
        answer.answered(error == null ? response : null, error);
      }
    }, timeoutMillis).writeLast(request);
  }

  /** {@link #unary(Method, MessageLite, Answer)} as a future, for set-up steps. */
  public <Req extends MessageLite, Resp extends MessageLite> Future<Resp> unary(Method<Req, Resp> method, Req request) {
    Promise<Resp> promise = Promise.promise();
    unary(method, request, (response, failure) -> {
      if (failure == null) {
        promise.complete(response);
      } else {
        promise.fail(failure);
      }
    });
    return promise.future();
  }

  /**
   * Runs {@code action} on this conn's event loop, where calls must be made (the main thread's
   * set-up steps go through here).
   */
  public <T> Future<T> onContext(Supplier<Future<T>> action) {
    Promise<T> promise = Promise.promise();
    context.runOnContext(v -> action.get().onComplete(promise));
    return promise.future();
  }

  /** Opens a bidirectional stream (Watch, LeaseKeepAlive) on this conn's context; streams have no deadline. */
  public <Req extends MessageLite, Resp extends MessageLite> Call<Req, Resp> stream(Method<Req, Resp> method,
      Call.Listener<Resp> listener) {
    return connection.open(method, listener, 0);
  }

  public Future<Void> close() {
    Promise<Void> closed = Promise.promise();
    context.runOnContext(v -> {
      ChannelFuture closing = connection.close();
      if (closing == null) {
        closed.complete();
      } else {
        closing.addListener(done -> closed.complete());
      }
    });
    return closed.future();
  }
}
