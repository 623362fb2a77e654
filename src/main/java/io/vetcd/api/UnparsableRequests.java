package io.vetcd.api;

import com.google.protobuf.Descriptors;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vertx.core.Handler;
import io.vertx.grpc.common.CodecException;
import io.vertx.grpc.common.GrpcMessage;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.ServiceName;
import io.vertx.grpc.common.WireFormat;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vertx.grpc.server.Service;
import io.vertx.grpc.server.StatusException;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;

/**
 * Vert.x's gRPC server answers a request message that does not parse by resetting the stream (a Go
 * client sees "stream terminated by RST_STREAM with error code: CANCEL"); etcd answers INTERNAL in
 * grpc-go's words ("grpc: error unmarshalling request: ..."). {@link #of} binds a generated service
 * so that it does the same: its methods decode through a decoder that remembers the failure instead
 * of throwing, and each handler answers that failure with the status before the service sees a
 * message. The KV calls' fast path ({@link KvHttp2}) words them the same way.
 */
final class UnparsableRequests {

  /** The failure of the decode that ran just before the handler, on the same event-loop thread. */
  private static final ThreadLocal<CodecException> FAILED = new ThreadLocal<>();

  private UnparsableRequests() {}

  /** {@code service}, bound with decoders and handlers that answer unparsable messages as etcd. */
  static Service of(Service service) {
    return new Service() {
      @Override
      public ServiceName name() {
        return service.name();
      }

      @Override
      public Descriptors.ServiceDescriptor descriptor() {
        return service.descriptor();
      }

      @Override
      public void bind(GrpcServer server) {
        service.bind(intercepting(server, service.descriptor()));
      }
    };
  }

  /** A view of {@code server} whose callHandler registers the tolerant method and handler instead. */
  private static GrpcServer intercepting(GrpcServer server, Descriptors.ServiceDescriptor descriptor) {
    InvocationHandler calls = (proxy, method, args) -> {
      if (method.getName().equals("callHandler") && args != null && args.length == 2
          && args[0] instanceof ServiceMethod<?, ?> serviceMethod) {
        Descriptors.MethodDescriptor rpc = descriptor.findMethodByName(serviceMethod.methodName());
        boolean streamed = rpc != null && rpc.isClientStreaming();
        @SuppressWarnings("unchecked")
        Handler<GrpcServerRequest<Object, Object>> handler = (Handler<GrpcServerRequest<Object, Object>>) args[1];
        @SuppressWarnings("unchecked")
        ServiceMethod<Object, Object> m = (ServiceMethod<Object, Object>) serviceMethod;
        server.callHandler(tolerant(m), request -> handler.handle(answeringFailures(request, streamed)));
        return proxy;
      }
      return invoke(server, method, args);
    };
    return (GrpcServer) Proxy.newProxyInstance(GrpcServer.class.getClassLoader(), new Class<?>[] {GrpcServer.class},
        calls);
  }

  private static <Req, Resp> ServiceMethod<Req, Resp> tolerant(ServiceMethod<Req, Resp> m) {
    GrpcMessageDecoder<Req> decoder = m.decoder();
    GrpcMessageDecoder<Req> remembering = new GrpcMessageDecoder<>() {
      @Override
      public Req decode(GrpcMessage msg) {
        try {
          FAILED.remove();
          return decoder.decode(msg);
        } catch (CodecException e) {
          FAILED.set(e);
          return null;
        }
      }

      @Override
      public boolean accepts(WireFormat format) {
        return decoder.accepts(format);
      }
    };
    return ServiceMethod.server(m.serviceName(), m.methodName(), m.encoder(), remembering);
  }

  /** The request, but a message that did not decode is answered with etcd's status rather than handled. */
  @SuppressWarnings("unchecked")
  private static GrpcServerRequest<Object, Object> answeringFailures(GrpcServerRequest<Object, Object> request,
      boolean streamed) {
    // Once the call is answered with the error, what follows on it (more messages of a stream, its
    // end) is not the service's: it would renew a lease on an ended call, or end it twice.
    java.util.concurrent.atomic.AtomicBoolean answered = new java.util.concurrent.atomic.AtomicBoolean();
    InvocationHandler calls = (proxy, method, args) -> {
      if ((method.getName().equals("endHandler") || method.getName().equals("exceptionHandler"))
          && args != null && args.length == 1 && args[0] != null) {
        Handler<Object> then = (Handler<Object>) args[0];
        Handler<Object> unlessAnswered = x -> {
          if (!answered.get()) {
            then.handle(x);
          }
        };
        return invoke(request, method, new Object[] {unlessAnswered});
      }
      if (method.getName().equals("handler") && args != null && args.length == 1 && args[0] != null) {
        Handler<Object> messages = (Handler<Object>) args[0];
        request.handler(msg -> {
          if (answered.get()) {
            return;
          }
          CodecException failed = FAILED.get();
          if (msg == null && failed != null) {
            FAILED.remove();
            answered.set(true);
            InvalidProtocolBufferException cause = failed.getCause() instanceof InvalidProtocolBufferException ipbe
                ? ipbe : new InvalidProtocolBufferException(String.valueOf(failed.getMessage()));
            StatusException status = streamed ? GrpcWire.badStreamedMessage(cause) : GrpcWire.badUnaryRequest(cause);
            request.response().status(status.status()).statusMessage(status.message()).end();
            return;
          }
          // Who calls, for the service (see Callers): each message of a stream is handled with them.
          Callers.with(Callers.token(request.headers()), tls(request), () -> {
            messages.handle(msg);
            return null;
          });
        });
        return proxy;
      }
      return invoke(request, method, args);
    };
    return (GrpcServerRequest<Object, Object>) Proxy.newProxyInstance(GrpcServerRequest.class.getClassLoader(),
        new Class<?>[] {GrpcServerRequest.class}, calls);
  }

  private static java.util.function.Supplier<javax.net.ssl.SSLSession> tls(GrpcServerRequest<?, ?> request) {
    return request.connection().isSsl() ? () -> request.connection().sslSession() : null;
  }

  private static Object invoke(Object target, java.lang.reflect.Method method, Object[] args) throws Throwable {
    try {
      return method.invoke(target, args);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    }
  }
}
