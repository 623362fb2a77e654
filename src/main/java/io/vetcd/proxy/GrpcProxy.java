package io.vetcd.proxy;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import io.vetcd.api.ClientTls;
import io.vetcd.server.Config;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
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
 * Every call (KV, Lease, Cluster, Maintenance, Auth, unary or streaming) goes to one member of
 * {@code --endpoints}, its messages, metadata (the caller's token) and deadline passed on, and the
 * member's answers, status and trailers passed back. Watches are shared ({@link WatchCoalescer}):
 * identical ones cost the cluster one. Serializable reads are answered from {@link RangeCache} when
 * it holds them.
 *
 * <p>The proxy keeps using one member while it answers, and moves to the next when a call cannot
 * connect or the member stops answering its status probe. A call cut off with its member ends with
 * Unavailable: etcd's clients open a broken watch again at its next revision and retry reads; a write
 * cut off may or may not have been applied, as with any member that goes away mid-call.
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
  private final WatchCoalescer watches;
  private final ProxyMetrics metrics;
  private final RangeCache cache = new RangeCache();
  private final Vertx vertx;
  private final Config.Tls listenTls;
  private final long probes;
  private final AtomicBoolean probing = new AtomicBoolean();
  private volatile boolean closed;
  /** How often the member in use is asked whether it answers. */
  static final long PROBE_INTERVAL_MS = 1_000;
  /** How long a member has to open a connection, or to answer a probe. */
  static final long ANSWER_TIMEOUT_MS = 3_000;

  /**
   * TLS towards the members (etcd's --cacert, --cert, --key, --insecure-skip-tls-verify): every member
   * is dialled with it. Empty paths: none given (no client certificate; the JDK's authorities).
   */
  public record MemberTls(String caFile, String certFile, String keyFile, boolean insecureSkipVerify) {}

  private GrpcProxy(Vertx vertx, List<SocketAddress> endpoints, MemberTls tls, Config.Tls listenTls) {
    this.endpoints = endpoints;
    this.vertx = vertx;
    HttpClientOptions http = new HttpClientOptions()
        .setProtocolVersion(HttpVersion.HTTP_2)
        .setHttp2ClearTextUpgrade(false)
        .setConnectTimeout(2_000);
    if (tls != null) {
      http.setSsl(true).setUseAlpn(true);
      if (!tls.certFile().isEmpty()) {
        http.setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certFile()).setKeyPath(tls.keyFile()));
      }
      if (tls.insecureSkipVerify()) {
        http.setTrustAll(true).setVerifyHost(false);
      } else if (!tls.caFile().isEmpty()) {
        http.setTrustOptions(new PemTrustOptions().addCertPath(tls.caFile()));
      }
    }
    // Messages of any size the members take or send (etcd's proxy: --max-recv-bytes and --max-send-bytes
    // default to 2^31 - 1); Vert.x's own limit is 256 KiB.
    // Deadlines are enforced here too (a member that takes a call and never answers it), not only sent.
    this.client = GrpcClient.client(vertx, new io.vertx.grpc.client.GrpcClientOptions()
        .setMaxMessageSize(Integer.MAX_VALUE).setScheduleDeadlineAutomatically(true), http);
    this.watches = new WatchCoalescer(vertx, method -> open(method, 0));
    this.probes = vertx.setPeriodic(PROBE_INTERVAL_MS, t -> probe());
    this.metrics = new ProxyMetrics(watches, cache);
    GrpcServer grpc = GrpcServer.server(vertx, new io.vertx.grpc.server.GrpcServerOptions()
        .setMaxMessageSize(Integer.MAX_VALUE));
    grpc.callHandler(this::forward);
    HttpServerOptions options = new HttpServerOptions().setHttp2ClearTextEnabled(true)
        .setInitialSettings(new io.vertx.core.http.Http2Settings().setMaxConcurrentStreams(0xFFFFFFFFL));
    this.listenTls = listenTls;
    this.server = vertx.createHttpServer(listenTls == null ? options : ClientTls.apply(options, listenTls))
        .requestHandler(request -> {
          // etcd's proxy serves /metrics and /health on its gRPC address too (HTTP/1.1).
          if (!isGrpc(request) && (request.path().equals("/metrics") || request.path().equals("/health"))) {
            serveHttp(request);
          } else {
            grpc.handle(request);
          }
        });
  }

  /** /metrics (the proxy's series) and /health (whether the cluster answers a read through it). */
  private void serveHttp(HttpServerRequest request) {
    if (request.path().equals("/metrics")) {
      request.response().putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8").end(metrics.scrape());
    } else if (request.path().equals("/health")) {
      clusterAnswers().onComplete(healthy -> request.response().setStatusCode(healthy.result() ? 200 : 503)
          .putHeader("Content-Type", "text/plain; charset=utf-8")
          .end(new JsonObject().put("health", String.valueOf(healthy.result())).encode()));
    } else {
      request.response().setStatusCode(404).end("404 page not found\n");
    }
  }

  /**
   * etcd's proxy health: a linearizable read of key "a" through the proxy is answered, or refused for
   * want of permission (the cluster answered), within {@value #ANSWER_TIMEOUT_MS} ms.
   */
  private Future<Boolean> clusterAnswers() {
    Buffer read = Buffer.buffer(RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8("a")).build().toByteArray());
    return open("etcdserverpb.KV/Range", 0).compose(call -> {
      call.timeout(ANSWER_TIMEOUT_MS, TimeUnit.MILLISECONDS);
      call.end(read);
      return call.response();
    }).compose(response -> {
      Promise<Boolean> answered = Promise.promise();
      response.handler(message -> { });
      response.exceptionHandler(e -> answered.tryComplete(false));
      response.endHandler(v -> answered.tryComplete(response.status() == GrpcStatus.OK
          || "etcdserver: permission denied".equals(statusMessage(response))));
      return answered.future();
    }).otherwise(false);
  }

  /**
   * Also serves /metrics and /health on {@code host:port} (etcd's --metrics-addr): with the proxy's own
   * TLS if {@code tls}, as an https URL asks, else in the clear.
   */
  public Future<HttpServer> serveMetrics(String host, int port, boolean tls) {
    HttpServerOptions options = new HttpServerOptions();
    return vertx.createHttpServer(tls ? ClientTls.apply(options, listenTls) : options)
        .requestHandler(this::serveHttp).listen(port, host);
  }

  private static boolean isGrpc(HttpServerRequest request) {
    String type = request.getHeader("content-type");
    return type != null && type.startsWith("application/grpc");
  }

  /**
   * Starts a proxy listening on {@code host:port} in front of {@code endpoints}, dialled with {@code
   * tls} or in the clear; it serves its clients with {@code listenTls} (etcd's --cert-file, --key-file,
   * --trusted-ca-file, --auto-tls), or in the clear for null.
   */
  public static Future<GrpcProxy> start(Vertx vertx, List<SocketAddress> endpoints, MemberTls tls,
      Config.Tls listenTls, String host, int port) {
    GrpcProxy proxy = new GrpcProxy(vertx, endpoints, tls, listenTls);
    if (listenTls != null) {
      ClientTls.watch(vertx, proxy.server, listenTls, "https://" + host + ":" + port);
    }
    return proxy.server.listen(port, host).map(s -> proxy);
  }

  /** The port it listens on (for a port 0 given). */
  public int port() {
    return server.actualPort();
  }

  /** One call: opened on a member that can be reached, then passed through both ways until it ends. */
  private void forward(GrpcServerRequest<Buffer, Buffer> down) {
    String method = down.fullMethodName();
    if (method.equals(WatchCoalescer.METHOD)) {
      watches.serve(down, callerHeaders(down));
    } else if (KV_CACHED.contains(method)) {
      kv(down, method);
    } else {
      new Call(down, null, null).start();
    }
  }

  /** The caller's metadata passed on to the member (its token): all but what the proxy's client sets itself. */
  private static MultiMap callerHeaders(GrpcServerRequest<Buffer, Buffer> down) {
    MultiMap passed = MultiMap.caseInsensitiveMultiMap();
    for (var header : down.headers()) {
      if (!OWN_HEADERS.contains(header.getKey().toLowerCase(Locale.ROOT)) && !header.getKey().startsWith(":")) {
        passed.add(header.getKey(), header.getValue());
      }
    }
    return passed;
  }

  private static final String KV = "etcdserverpb.KV/";
  /** The KV calls the cache of serializable reads answers or learns from. */
  private static final Set<String> KV_CACHED = Set.of(KV + "Range", KV + "Put", KV + "DeleteRange", KV + "Txn",
      KV + "Compact");

  /**
   * A KV call (unary): a serializable read the cache holds is answered by the proxy; any other goes to
   * the member, and what it answers fills or invalidates the cache as etcd's proxy does.
   */
  private void kv(GrpcServerRequest<Buffer, Buffer> down, String method) {
    Buffer[] body = {Buffer.buffer()};
    down.handler(message -> body[0] = message);
    down.exceptionHandler(e -> { });
    down.endHandler(v -> {
      String token = down.headers().get("token") + "|" + down.headers().get("authorization");
      java.util.function.Consumer<Buffer> learn;
      try {
        switch (method.substring(KV.length())) {
          case "Range" -> {
            RangeRequest range = RangeRequest.parseFrom(body[0].getBytes());
            if (range.getSerializable()) {
              byte[] cached = cache.get(token, range);
              if (cached != null) {
                down.response().end(Buffer.buffer(cached));
                return;
              }
            }
            // Kept only if no write passed through meanwhile: the answer may have been read before it.
            long generation = cache.generation();
            learn = answer -> {
              if (answer != null && cache.generation() == generation) {
                cache.add(token, range, answer.getBytes());
              }
            };
          }
          case "Put" -> {
            // Cleared before (a write that fails may still be applied) and after (a read meanwhile).
            PutRequest put = PutRequest.parseFrom(body[0].getBytes());
            cache.invalidate(put.getKey(), ByteString.EMPTY);
            learn = answer -> cache.invalidate(put.getKey(), ByteString.EMPTY);
          }
          case "DeleteRange" -> {
            DeleteRangeRequest delete = DeleteRangeRequest.parseFrom(body[0].getBytes());
            cache.invalidate(delete.getKey(), delete.getRangeEnd());
            learn = answer -> cache.invalidate(delete.getKey(), delete.getRangeEnd());
          }
          case "Txn" -> {
            TxnRequest txn = TxnRequest.parseFrom(body[0].getBytes());
            invalidateTxn(txn);
            long generation = cache.generation();
            learn = answer -> learnTxn(token, txn, answer, generation);
          }
          default -> {
            CompactionRequest compaction = CompactionRequest.parseFrom(body[0].getBytes());
            learn = answer -> {
              if (answer != null) {
                cache.compact(compaction.getRevision());
              }
            };
          }
        }
      } catch (RangeCache.Compacted e) {
        down.response().status(GrpcStatus.OUT_OF_RANGE).statusMessage(e.getMessage()).end();
        return;
      } catch (com.google.protobuf.InvalidProtocolBufferException e) {
        learn = answer -> { }; // the member answers it, in its words
      }
      new Call(down, body[0], learn).start();
    });
  }

  /** Everything a transaction may write or compare, either way it goes (nested transactions too). */
  private void invalidateTxn(TxnRequest txn) {
    txn.getCompareList().forEach(c -> cache.invalidate(c.getKey(), c.getRangeEnd()));
    for (List<RequestOp> ops : List.of(txn.getSuccessList(), txn.getFailureList())) {
      for (RequestOp op : ops) {
        switch (op.getRequestCase()) {
          case REQUEST_PUT -> cache.invalidate(op.getRequestPut().getKey(), ByteString.EMPTY);
          case REQUEST_DELETE_RANGE -> cache.invalidate(op.getRequestDeleteRange().getKey(),
              op.getRequestDeleteRange().getRangeEnd());
          case REQUEST_TXN -> invalidateTxn(op.getRequestTxn());
          default -> {
            // a read writes nothing
          }
        }
      }
    }
  }

  /**
   * etcd's proxy after a transaction: what it wrote or compared cleared again, and its reads kept (if
   * no other write passed through since it was sent).
   */
  private void learnTxn(String token, TxnRequest txn, Buffer answer, long generation) {
    TxnResponse response = null;
    try {
      response = answer == null ? null : TxnResponse.parseFrom(answer.getBytes());
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      // cleared below, learned from nothing
    }
    boolean keepReads = response != null && cache.generation() == generation;
    invalidateTxn(txn);
    if (keepReads) {
      replay(token, txn, response);
    }
  }

  /**
   * The branch a transaction took, op by op as the member ran it (as etcd's proxy walks it): a read's
   * answer kept, a write clearing what it touches, so a read followed by a write of its key leaves
   * nothing stale.
   */
  private void replay(String token, TxnRequest txn, TxnResponse response) {
    List<RequestOp> ops = response.getSucceeded() ? txn.getSuccessList() : txn.getFailureList();
    for (int i = 0; i < ops.size() && i < response.getResponsesCount(); i++) {
      RequestOp op = ops.get(i);
      switch (op.getRequestCase()) {
        case REQUEST_RANGE -> {
          if (response.getResponses(i).hasResponseRange()) {
            cache.add(token, op.getRequestRange(), response.getResponses(i).getResponseRange().toByteArray());
          }
        }
        case REQUEST_PUT -> cache.invalidate(op.getRequestPut().getKey(), ByteString.EMPTY);
        case REQUEST_DELETE_RANGE -> cache.invalidate(op.getRequestDeleteRange().getKey(),
            op.getRequestDeleteRange().getRangeEnd());
        case REQUEST_TXN -> {
          if (response.getResponses(i).hasResponseTxn()) {
            replay(token, op.getRequestTxn(), response.getResponses(i).getResponseTxn());
          }
        }
        default -> {
          // nothing to learn
        }
      }
    }
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
    /** A unary call's request, already read (by the KV path); null: messages are passed as they come. */
    private final Buffer request;
    /**
     * Told a unary call's answer when it ends: the member's answer if OK, null for any other end (a
     * refusal, a deadline, the member or the caller gone: a write may still have been applied). Or null.
     */
    private final java.util.function.Consumer<Buffer> answered;
    private Buffer lastAnswer;
    private final AtomicBoolean told = new AtomicBoolean();
    /** When the caller's deadline passes (System.nanoTime), or 0 for none. */
    private volatile long deadline;

    Call(GrpcServerRequest<Buffer, Buffer> down, Buffer request, java.util.function.Consumer<Buffer> answered) {
      this.down = down;
      this.request = request;
      this.answered = answered;
    }

    void start() {
      if (request == null) {
        down.pause();
      }
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
        up.headers().addAll(callerHeaders(down));
        if (down.timeout() > 0) {
          up.timeout(down.timeout(), TimeUnit.MILLISECONDS); // the caller's deadline, as gRPC passes it on
          deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(down.timeout());
        }
        up.exceptionHandler(e -> memberLeft(e.getMessage()));
        if (request != null) {
          up.end(request);
        } else {
          passRequests();
        }
        up.response().onComplete(answer -> {
          if (answer.failed()) {
            memberLeft(answer.cause().getMessage());
            return;
          }
          GrpcClientResponse<Buffer, Buffer> response = answer.result();
          response.errorHandler(e -> memberLeft("reset"));
          response.exceptionHandler(e -> memberLeft(e.getMessage()));
          response.handler(message -> {
            lastAnswer = message;
            if (!finished.get()) {
              down.response().write(message);
              if (down.response().writeQueueFull()) {
                response.pause();
                down.response().drainHandler(v -> response.resume());
              }
            }
          });
          response.endHandler(v -> {
            tell(response.status() == GrpcStatus.OK ? lastAnswer : null);
            finish(response.status(), statusMessage(response), response.trailers());
          });
        });
        if (request == null) {
          down.resume();
        }
      });
    }

    /** A streaming call: the caller's messages passed to the member as they come, paused while it is behind. */
    private void passRequests() {
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
    }

    private void callerLeft() {
      if (finished.compareAndSet(false, true)) {
        tell(null);
        if (up != null) {
          up.cancel();
        }
      }
    }

    /** The unary call's end, to whoever learns from it (once). */
    private void tell(Buffer answer) {
      java.util.function.Consumer<Buffer> listener = answered;
      if (listener != null && told.compareAndSet(false, true)) {
        listener.accept(answer);
      }
    }

    /** The member went away mid-call: the caller hears Unavailable. */
    private void memberLeft(String why) {
      tell(null);
      if (deadline != 0 && System.nanoTime() - deadline >= 0) {
        // The caller's deadline, which the proxy enforces too: the member did not answer in time.
        finish(GrpcStatus.DEADLINE_EXCEEDED, "context deadline exceeded", null);
        return;
      }
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

  /**
   * An ended call's status message, or null: a stream's status comes in its trailers, and Vert.x reads
   * the message from the headers only.
   */
  static String statusMessage(GrpcClientResponse<Buffer, Buffer> response) {
    if (response.statusMessage() != null) {
      return response.statusMessage();
    }
    String encoded = response.trailers() == null ? null : response.trailers().get("grpc-message");
    return encoded == null ? null : percentDecoded(encoded);
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
   * A call to the member in use, or, if it cannot be reached within {@value #ANSWER_TIMEOUT_MS} ms, to
   * the next one (each member once at most): nothing of the call has left the proxy until then, so
   * moving on repeats nothing.
   */
  private Future<GrpcClientRequest<Buffer, Buffer>> open(String method, int tried) {
    int index = current.get();
    SocketAddress member = endpoints.get(Math.floorMod(index, endpoints.size()));
    Promise<GrpcClientRequest<Buffer, Buffer>> reached = Promise.promise();
    // A stopped member's kernel still accepts connections: a connection that never opens counts as refused.
    long timer = vertx.setTimer(ANSWER_TIMEOUT_MS, t -> reached.tryFail("no connection within "
        + ANSWER_TIMEOUT_MS + " ms"));
    client.request(member).onComplete(request -> {
      vertx.cancelTimer(timer);
      if (request.failed()) {
        reached.tryFail(request.cause());
      } else if (!reached.tryComplete(request.result().fullMethodName(method))) {
        request.result().cancel(); // too late: the call went on without it
      }
    });
    Promise<GrpcClientRequest<Buffer, Buffer>> opened = Promise.promise();
    reached.future().onComplete(request -> {
      if (request.succeeded()) {
        opened.complete(request.result());
        return;
      }
      if (tried + 1 >= endpoints.size()) {
        opened.fail(request.cause());
        return;
      }
      moveOn(index, "cannot be reached (" + request.cause().getMessage() + ")");
      open(method, tried + 1).onComplete(opened);
    });
    return opened.future();
  }

  /** Calls go to the member after the one at {@code index}, unless another call moved on already. */
  private void moveOn(int index, String why) {
    if (current.compareAndSet(index, index + 1)) {
      LOG.warn("grpc-proxy: {} {}; calls go to {} now", endpoints.get(Math.floorMod(index, endpoints.size())), why,
          endpoints.get(Math.floorMod(index + 1, endpoints.size())));
    }
  }

  /**
   * Asks the member in use for its status every {@value #PROBE_INTERVAL_MS} ms. One that does not
   * answer within {@value #ANSWER_TIMEOUT_MS} ms (stopped, hung, cut off while its connection looks open)
   * is left: calls go to the next member, and the connection is closed, so the calls and shared watches
   * still on it end (Unavailable: clients retry) or move on, instead of waiting for it forever.
   */
  private void probe() {
    if (closed || !probing.compareAndSet(false, true)) {
      return;
    }
    int index = current.get();
    SocketAddress member = endpoints.get(Math.floorMod(index, endpoints.size()));
    Promise<Void> answered = Promise.promise();
    long timer = vertx.setTimer(ANSWER_TIMEOUT_MS, t -> answered.tryFail("no answer within " + ANSWER_TIMEOUT_MS
        + " ms"));
    HttpConnection[] connection = {null};
    client.request(member).onComplete(opened -> {
      if (opened.failed()) {
        answered.tryFail(opened.cause());
        return;
      }
      GrpcClientRequest<Buffer, Buffer> status = opened.result().fullMethodName("etcdserverpb.Maintenance/Status");
      connection[0] = status.connection();
      status.end(Buffer.buffer());
      status.response().onComplete(response -> {
        if (response.failed()) {
          answered.tryFail(response.cause());
          return;
        }
        response.result().handler(message -> { });
        response.result().exceptionHandler(answered::tryFail);
        // Any status is an answer (with auth on, a call without a token is refused, and that is alive).
        response.result().endHandler(v -> answered.tryComplete());
      });
    });
    answered.future().onComplete(result -> {
      vertx.cancelTimer(timer);
      probing.set(false);
      if (result.succeeded() || closed) {
        return;
      }
      moveOn(index, "does not answer (" + result.cause().getMessage() + ")");
      if (connection[0] != null) {
        connection[0].close();
      }
    });
  }

  public Future<Void> close() {
    closed = true;
    vertx.cancelTimer(probes);
    watches.close();
    return server.close().compose(v -> client.close());
  }
}
