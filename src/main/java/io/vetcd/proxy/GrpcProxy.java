package io.vetcd.proxy;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * etcd's gRPC proxy ({@code etcd grpc-proxy start}): a stateless gRPC endpoint in front of a cluster.
 * Every call (KV, Lease, Cluster, Maintenance, Auth, Watch, unary or streaming) goes to one member of
 * {@code --endpoints}, its messages, metadata (the caller's token) and deadline passed on, and the
 * member's answers, status and trailers passed back; the proxy keeps using that member while calls
 * reach it and moves to the next one when a call cannot connect. A call cut off with its member ends
 * with Unavailable: etcd's clients open a broken watch again at its next revision and retry reads; a
 * write cut off may or may not have been applied, as with any member that goes away mid-call.
 *
 * <p>Not yet: etcd's proxy coalesces identical watches into one watch on the cluster and can cache
 * serializable reads; here each watch and read goes to the member as it came. A member that accepts
 * connections and never answers keeps the calls: the proxy moves on when one cannot connect only.
 */
public final class GrpcProxy {

  private static final Logger LOG = LoggerFactory.getLogger(GrpcProxy.class);
  /** Headers the proxy's own client sets; the rest of the caller's metadata (its token) goes along. */
  private static final Set<String> OWN_HEADERS = Set.of("content-type", "te", "grpc-encoding",
      "grpc-accept-encoding", "grpc-timeout", "user-agent", "content-length", "host");

  private final List<SocketAddress> endpoints;
  private final GrpcClient client;
  /** The member in use: calls go there until one cannot reach it. */
  private final AtomicInteger current = new AtomicInteger();
  private final HttpServer server;

  private GrpcProxy(Vertx vertx, List<SocketAddress> endpoints) {
    this.endpoints = endpoints;
    // Messages of any size the members take or send (etcd's proxy: --max-recv-bytes and --max-send-bytes
    // default to 2^31 - 1); Vert.x's own limit is 256 KiB.
    this.client = GrpcClient.client(vertx, new io.vertx.grpc.client.GrpcClientOptions()
            .setMaxMessageSize(Integer.MAX_VALUE),
        new HttpClientOptions()
            .setProtocolVersion(HttpVersion.HTTP_2)
            .setHttp2ClearTextUpgrade(false)
            .setConnectTimeout(2_000));
    GrpcServer grpc = GrpcServer.server(vertx, new io.vertx.grpc.server.GrpcServerOptions()
        .setMaxMessageSize(Integer.MAX_VALUE));
    grpc.callHandler(this::forward);
    this.server = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true)
        .setInitialSettings(new io.vertx.core.http.Http2Settings().setMaxConcurrentStreams(0xFFFFFFFFL)))
        .requestHandler(grpc);
  }

  /** Starts a proxy listening on {@code host:port} in front of {@code endpoints}. */
  public static Future<GrpcProxy> start(Vertx vertx, List<SocketAddress> endpoints, String host, int port) {
    GrpcProxy proxy = new GrpcProxy(vertx, endpoints);
    return proxy.server.listen(port, host).map(s -> proxy);
  }

  /** The port it listens on (for a port 0 given). */
  public int port() {
    return server.actualPort();
  }

  /** One call: opened on a member that can be reached, then passed through both ways until it ends. */
  private void forward(GrpcServerRequest<Buffer, Buffer> down) {
    new Call(down).start();
  }

  /**
   * One call passed through. Either side may end it: the member with its status (passed on as it
   * came, message and trailers too), the caller by cancelling or going away (the member's call is
   * cancelled), the member by going away (the caller hears Unavailable). Each direction is paused
   * while the other side's write queue is full, so a slow watcher does not fill the proxy's heap.
   */
  private final class Call {
    private final GrpcServerRequest<Buffer, Buffer> down;
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile GrpcClientRequest<Buffer, Buffer> up;

    Call(GrpcServerRequest<Buffer, Buffer> down) {
      this.down = down;
    }

    void start() {
      down.pause();
      // A reset (a cancel, a deadline) comes as an error; a closed connection as an exception.
      down.errorHandler(e -> callerLeft());
      down.exceptionHandler(e -> callerLeft());
      open(down.fullMethodName(), 0).onComplete(opened -> {
        if (opened.failed()) {
          finish(GrpcStatus.UNAVAILABLE, "grpc-proxy: no endpoint is available: " + opened.cause().getMessage(), null);
          return;
        }
        up = opened.result();
        if (finished.get()) {
          up.cancel(); // the caller left while the member was being reached
          return;
        }
        for (var header : down.headers()) {
          if (!OWN_HEADERS.contains(header.getKey().toLowerCase(Locale.ROOT)) && !header.getKey().startsWith(":")) {
            up.headers().add(header.getKey(), header.getValue());
          }
        }
        if (down.timeout() > 0) {
          up.timeout(down.timeout(), TimeUnit.MILLISECONDS); // the caller's deadline, as gRPC passes it on
        }
        up.exceptionHandler(e -> memberLeft(e.getMessage()));
        down.handler(message -> {
          if (!finished.get()) {
            up.write(message);
            if (up.writeQueueFull()) {
              down.pause();
              up.drainHandler(v -> down.resume());
            }
          }
        });
        down.endHandler(v -> {
          if (!finished.get()) {
            up.end();
          }
        });
        up.response().onComplete(answered -> {
          if (answered.failed()) {
            memberLeft(answered.cause().getMessage());
            return;
          }
          GrpcClientResponse<Buffer, Buffer> response = answered.result();
          response.errorHandler(e -> memberLeft("reset"));
          response.exceptionHandler(e -> memberLeft(e.getMessage()));
          response.handler(message -> {
            if (!finished.get()) {
              down.response().write(message);
              if (down.response().writeQueueFull()) {
                response.pause();
                down.response().drainHandler(v -> response.resume());
              }
            }
          });
          response.endHandler(v -> {
            // A stream's status comes in its trailers; Vert.x reads the message from headers only.
            String message = response.statusMessage();
            if (message == null && response.trailers().get("grpc-message") != null) {
              message = percentDecoded(response.trailers().get("grpc-message"));
            }
            finish(response.status(), message, response.trailers());
          });
        });
        down.resume();
      });
    }

    private void callerLeft() {
      if (finished.compareAndSet(false, true) && up != null) {
        up.cancel();
      }
    }

    /** The member went away mid-call: the caller hears Unavailable. */
    private void memberLeft(String why) {
      finish(GrpcStatus.UNAVAILABLE, "grpc-proxy: the member broke off the call (" + why + ")", null);
    }

    private void finish(GrpcStatus status, String message, MultiMap trailers) {
      if (!finished.compareAndSet(false, true)) {
        return;
      }
      if (trailers != null) {
        trailers.forEach((k, value) -> {
          if (!k.equals("grpc-status") && !k.equals("grpc-message")) {
            down.response().trailers().add(k, value); // grpc-status-details-bin and the like
          }
        });
      }
      down.response().status(status);
      if (message != null) {
        down.response().statusMessage(message);
      }
      down.response().end();
    }
  }

  /** gRPC's percent-encoding of grpc-message (%XX bytes of UTF-8; '+' is itself). */
  static String percentDecoded(String encoded) {
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < encoded.length(); i++) {
      char c = encoded.charAt(i);
      if (c == '%' && i + 2 < encoded.length()) {
        try {
          bytes.write(Integer.parseInt(encoded.substring(i + 1, i + 3), 16));
          i += 2;
          continue;
        } catch (NumberFormatException e) {
          // not an escape: taken as it is
        }
      }
      byte[] plain = String.valueOf(c).getBytes(java.nio.charset.StandardCharsets.UTF_8);
      bytes.write(plain, 0, plain.length);
    }
    return bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
  }

  /**
   * A call to the member in use, or, if it cannot be reached, to the next one (each member once at
   * most): nothing of the call has left the proxy until then, so moving on repeats nothing.
   */
  private Future<GrpcClientRequest<Buffer, Buffer>> open(String method, int tried) {
    int index = current.get();
    SocketAddress member = endpoints.get(Math.floorMod(index, endpoints.size()));
    Promise<GrpcClientRequest<Buffer, Buffer>> opened = Promise.promise();
    client.request(member).onComplete(request -> {
      if (request.succeeded()) {
        opened.complete(request.result().fullMethodName(method));
        return;
      }
      if (tried + 1 >= endpoints.size()) {
        opened.fail(request.cause());
        return;
      }
      if (current.compareAndSet(index, index + 1)) {
        LOG.warn("grpc-proxy: {} cannot be reached ({}); calls go to {} now", member, request.cause().getMessage(),
            endpoints.get(Math.floorMod(index + 1, endpoints.size())));
      }
      open(method, tried + 1).onComplete(opened);
    });
    return opened.future();
  }

  public Future<Void> close() {
    return server.close().compose(v -> client.close());
  }
}
