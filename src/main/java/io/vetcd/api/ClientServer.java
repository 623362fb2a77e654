package io.vetcd.api;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerOptions;
import io.vetcd.proto.etcdserverpb.ClusterGrpcService;
import io.vetcd.proto.etcdserverpb.KVGrpcService;
import io.vetcd.proto.etcdserverpb.LeaseGrpcService;
import io.vetcd.proto.etcdserverpb.MaintenanceGrpcService;
import io.vetcd.proto.etcdserverpb.WatchGrpcService;
import io.vetcd.server.EtcdError;
import io.vetcd.server.LocalMember;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The client port, one per listen URL, as etcd has it (ARCHITECTURE §2): gRPC (HTTP/2, cleartext h2c)
 * and HTTP/1.1 on the same port. Requests whose content type is {@code application/grpc*} go to the
 * gRPC server; everything else to the HTTP router (health, version, WebSocket watch, the watch page).
 */
public final class ClientServer extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(ClientServer.class);
  /** etcd lets gRPC messages exceed the request limit by this much, then answers "request is too large". */
  static final long GRPC_OVERHEAD_BYTES = 512 * 1024;
  /**
   * Vert.x's own cap on a gRPC message, above gRPC's limit: a message between the two is read so that
   * it can be refused with grpc-go's words (see KvGrpc), a bigger one is refused without them.
   */
  private static final long GRPC_READ_CAP_BYTES = 64L * 1024 * 1024;

  private final LocalMember member;
  /** Completes once the member is published: requests that come before wait for it. */
  private final Future<Void> published;
  /**
   * Whether {@link #published} has completed, read on every request: a Vert.x future's own
   * {@code isComplete} takes its monitor, one lock shared by every event loop.
   */
  private volatile boolean answering;
  private final List<HttpServer> servers = new ArrayList<>();

  public ClientServer(LocalMember member, Future<Void> published) {
    this.member = member;
    this.published = published;
  }

  @Override
  public Future<?> start() {
    GrpcServer grpc = GrpcServer.server(vertx, new GrpcServerOptions()
        .setMaxMessageSize(Math.max(GRPC_READ_CAP_BYTES, 2 * (member.config().maxRequestBytes() + GRPC_OVERHEAD_BYTES))));
    published.onComplete(v -> answering = true);
    KvGrpc kv = new KvGrpc(vertx, member);
    MaintenanceGrpc maintenance = new MaintenanceGrpc(vertx, member);
    ClusterGrpc cluster = new ClusterGrpc(member);
    LeaseGrpc lease = new LeaseGrpc(member);
    grpc.addService(UnparsableRequests.of(KVGrpcService.of(kv)));
    grpc.addService(UnparsableRequests.of(MaintenanceGrpcService.of(maintenance)));
    grpc.addService(UnparsableRequests.of(ClusterGrpcService.of(cluster)));
    grpc.addService(UnparsableRequests.of(WatchGrpcService.of(new WatchGrpc(vertx, member))));
    grpc.addService(UnparsableRequests.of(LeaseGrpcService.of(lease)));
    AuthGrpc auth = new AuthGrpc(vertx, member);
    grpc.addService(UnparsableRequests.of(io.vetcd.proto.etcdserverpb.AuthGrpcService.of(auth)));
    io.vetcd.metrics.GrpcServerMetrics.start("extensive".equals(member.config().metricsLevel()));
    Health health = new Health(vertx, member, kv, io.vetcd.metrics.EtcdMetrics::healthChecked);
    grpc.addService(UnparsableRequests.of(io.vetcd.proto.health.HealthGrpcService.of(health)));
    Router router = httpRoutes(new JsonGateway(vertx, member, kv, lease, cluster, maintenance, auth), health);
    List<Future<HttpServer>> listening = new ArrayList<>();
    for (String url : member.config().listenClientUrls()) {
      URI uri = URI.create(url);
      // etcd lets a client open as many concurrent streams as it likes (math.MaxUint32); Vert.x's
      // default of 100 would stall the 101st watch or in-flight request on one connection.
      // 100-continue at once: curl asks before sending a body over 1 KiB, and would wait a second.
      HttpServerOptions options = new HttpServerOptions().setHttp2ClearTextEnabled(true)
          .setHandle100ContinueAutomatically(true)
          .setMaxWebSocketMessageSize(WatchSocket.maxMessageBytes(member.config().maxRequestBytes() + GRPC_OVERHEAD_BYTES))
          .setMaxWebSocketFrameSize(WatchSocket.maxMessageBytes(member.config().maxRequestBytes() + GRPC_OVERHEAD_BYTES))
          .setInitialSettings(new io.vertx.core.http.Http2Settings().setMaxConcurrentStreams(0xFFFFFFFFL));
      boolean tls = ClientTls.isTls(url);
      if (tls) {
        ClientTls.apply(options, member.config().clientTls());
      }
      HttpServer server = vertx.createHttpServer(options)
          .connectionHandler(connection -> {
            AuthorityFix.install(connection);
            KvHttp2.install(connection, kv, member.config().maxRequestBytes() + GRPC_OVERHEAD_BYTES, () -> answering);
            FlushCoalescing.install(connection);
          })
          .requestHandler(req -> {
            if (answering) {
              dispatch(req, grpc, router);
              return;
            }
            // Held, body and all, until the member is published; then handled on this connection's loop,
            // unless its client has gone (reset the stream, closed the connection) meanwhile: a put whose
            // caller gave up is not applied late, and a watch nobody reads is not opened.
            req.pause();
            io.vertx.core.Context loop = vertx.getOrCreateContext();
            published.onComplete(ar -> loop.runOnContext(v -> {
              if (req.response().closed()) {
                return;
              }
              dispatch(req, grpc, router);
              req.resume();
            }));
          });
      if (tls) {
        ClientTls.watch(vertx, server, member.config().clientTls(), url);
      }
      servers.add(server);
      listening.add(server.listen(uri.getPort(), uri.getHost())
          .onSuccess(s -> LOG.info("listening for client requests on {}", url))
          .recover(e -> Future.failedFuture(
              new IllegalStateException("cannot listen for client traffic on " + url + ": " + e.getMessage(), e))));
    }
    // --listen-metrics-urls: a port with /metrics and the health endpoints only (plain HTTP/1.1).
    Router metricsOnly = Router.router(vertx);
    health.mount(metricsOnly);
    mountMetrics(metricsOnly);
    metricsOnly.route().last().handler(ctx -> ctx.response().setStatusCode(404)
        .putHeader("content-type", "text/plain; charset=utf-8").end("404 page not found\n"));
    for (String url : member.config().listenMetricsUrls()) {
      URI uri = URI.create(url);
      // An https metrics URL uses the client port's certificate, as etcd's does.
      boolean tls = ClientTls.isTls(url); // with a certificate: Flags refuses https URLs without one
      // Plain HTTP/1.1 on http URLs: a client's "Upgrade: h2c" is ignored, as etcd's Go server does. Vert.x
      // would upgrade, and some answers of 16 KiB or more (a /metrics) to Java's HttpClient after the
      // upgrade never arrive (see README, Not yet done); the client port still upgrades.
      HttpServer server = vertx.createHttpServer(tls
          ? ClientTls.apply(new HttpServerOptions(), member.config().clientTls())
          : new HttpServerOptions().setHttp2ClearTextEnabled(false))
          .requestHandler(metricsOnly);
      if (tls) {
        ClientTls.watch(vertx, server, member.config().clientTls(), url);
      }
      servers.add(server);
      listening.add(server.listen(uri.getPort(), uri.getHost())
          .onSuccess(s -> LOG.info("listening for metrics on {}", url))
          .recover(e -> Future.failedFuture(
              new IllegalStateException("cannot listen for metrics on " + url + ": " + e.getMessage(), e))));
    }
    return Future.all(listening);
  }

  /** Prometheus' text format, as etcd serves it on both ports. */
  private static void mountMetrics(Router router) {
    router.get("/metrics").handler(ctx -> ctx.response()
        .putHeader("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .end(io.vetcd.metrics.EtcdMetrics.scrape()));
  }

  private void dispatch(HttpServerRequest req, GrpcServer grpc, Router router) {
    String type = req.getHeader("content-type");
    boolean grpcCall = type != null && type.startsWith("application/grpc");
    if (grpcCall) {
      observe(req);
    }
    if (grpcCall && member.isLearner() && !servedByLearner(req.path())) {
      refuseForLearner(req);
    } else if (WatchHttp2.accepts(req)) {
      WatchHttp2.serve(vertx, member, req);
    } else if (grpcCall) {
      grpc.handle(req);
    } else if (gatewayCallWithNamedCertificate(req)) {
      // etcd's words: its gateway would call with its own certificate, never the client's name.
      req.response().setStatusCode(400).putHeader("content-type", "text/plain; charset=utf-8")
          .putHeader("x-content-type-options", "nosniff")
          .end("CommonName of client sending a request against gateway will be ignored and not used as expected\n");
    } else {
      router.handle(req);
    }
  }

  /**
   * etcd refuses a gateway call (a /v3/ path) whose client certificate has a common name while auth
   * and --client-cert-auth are on: the name would not be the caller there, and a client relying on it
   * would be surprised.
   */
  private boolean gatewayCallWithNamedCertificate(HttpServerRequest req) {
    return req.isSSL() && member.auth().certificateNamesUser() && member.auth().enabled()
        && req.path().startsWith("/v3/") && Callers.commonName(req.sslSession()) != null
        && !Callers.commonName(req.sslSession()).isEmpty();
  }

  /**
   * Counts a gRPC call Vert.x serves (KvHttp2 counts its own): started now, handled with the status
   * its trailers carry when the response ends (Canceled if the client reset it first), and its bytes.
   */
  private static void observe(HttpServerRequest req) {
    io.vetcd.metrics.GrpcServerMetrics.Method metrics = io.vetcd.metrics.GrpcServerMetrics.of(req.path());
    if (metrics == null) {
      return;
    }
    long start = metrics.started();
    boolean[] counted = {false};
    Runnable done = () -> {
      if (counted[0]) {
        return;
      }
      counted[0] = true;
      var response = req.response();
      String status = response.trailers().get("grpc-status");
      if (status == null) {
        status = response.headers().get("grpc-status"); // a trailers-only answer
      }
      int code = GrpcStatus.CANCELLED.code;
      if (status != null && response.ended()) {
        try {
          code = Integer.parseInt(status);
        } catch (NumberFormatException e) {
          code = GrpcStatus.UNKNOWN.code;
        }
      }
      metrics.handled(code, start);
      io.vetcd.metrics.EtcdMetrics.CLIENT_GRPC_RECEIVED.increment(req.bytesRead());
      io.vetcd.metrics.EtcdMetrics.CLIENT_GRPC_SENT.increment(response.bytesWritten());
    };
    req.response().endHandler(v -> done.run());
    req.response().closeHandler(v -> done.run());
  }

  /**
   * What a learner serves, as etcd 3.4's interceptors allow: Status, and the KV calls, whose
   * serializable ranges KvGrpc lets through (and refuses the rest); and the health service, which
   * probes ask every member. No stream: no watch, no keep-alive.
   */
  static boolean servedByLearner(String path) {
    return "/etcdserverpb.Maintenance/Status".equals(path)
        || (path != null && (path.startsWith("/etcdserverpb.KV/") || path.startsWith("/grpc.health.v1.Health/")));
  }

  /** etcd's "rpc not supported for learner", as a trailers-only gRPC answer. */
  private static void refuseForLearner(HttpServerRequest req) {
    EtcdError error = EtcdError.NOT_SUPPORTED_FOR_LEARNER;
    req.response()
        .putHeader("content-type", "application/grpc")
        .putHeader("grpc-status", Integer.toString(error.status().code))
        .putHeader("grpc-message", error.message())
        .end();
  }

  private Router httpRoutes(JsonGateway gateway, Health health) {
    Router router = Router.router(vertx);
    health.mount(router);
    mountMetrics(router);
    router.get("/version").handler(ctx -> ctx.json(new JsonObject()
        .put("etcdserver", LocalMember.API_VERSION)
        .put("etcdcluster", "3.4.0")));
    gateway.mount(router);
    // etcd 3.4 serves its gateway under /v3beta too.
    router.routeWithRegex("/v3(beta)?/watch").handler(ctx -> {
      if (member.isLearner()) {
        // etcd's gateway goes through the gRPC stream interceptor, which refuses every stream on a learner.
        EtcdError error = EtcdError.NOT_SUPPORTED_FOR_LEARNER;
        ctx.response().setStatusCode(503).putHeader("content-type", "application/json")
            .end(new JsonObject().put("error", error.message()).put("message", error.message())
                .put("code", error.status().code).encode());
        return;
      }
      boolean utf8 = "utf8".equals(ctx.request().getParam("encoding"));
      if ("websocket".equalsIgnoreCase(ctx.request().getHeader("upgrade"))) {
        ctx.request().toWebSocket()
            .onSuccess(ws -> WatchSocket.serve(vertx, member, ws, utf8,
                member.config().maxRequestBytes() + GRPC_OVERHEAD_BYTES))
            .onFailure(e -> LOG.debug("WebSocket upgrade on /v3/watch failed: {}", e.getMessage()));
      } else if (ctx.request().method() == io.vertx.core.http.HttpMethod.POST) {
        String token = ctx.request().getHeader("Authorization");
        ctx.request().body().onSuccess(body -> WatchSocket.serveChunked(vertx, member, ctx.response(),
            body.toString(), utf8, token));
      } else {
        ctx.response().setStatusCode(405).end("POST a watch request, or open a WebSocket\n");
      }
    });
    byte[] page = watchPage();
    router.get("/ui/watch").handler(ctx -> ctx.response()
        .putHeader("content-type", "text/html; charset=utf-8")
        .end(io.vertx.core.buffer.Buffer.buffer(page)));
    // Go's net/http words for what nothing serves (a known path with the wrong method included), never
    // Vert.x's HTML page.
    router.route().last().handler(ctx -> {
      boolean known = List.of("/health", "/livez", "/readyz", "/version", "/metrics").contains(ctx.request().path());
      if (known) {
        ctx.response().setStatusCode(405).putHeader("allow", "GET")
            .putHeader("content-type", "text/plain; charset=utf-8").end("Method Not Allowed\n");
      } else {
        ctx.response().setStatusCode(404).putHeader("content-type", "text/plain; charset=utf-8")
            .end("404 page not found\n");
      }
    });
    return router;
  }

  /** The example page that watches a prefix live over the WebSocket (src/main/resources/ui). */
  private static byte[] watchPage() {
    try (var in = ClientServer.class.getResourceAsStream("/ui/watch.html")) {
      if (in == null) {
        throw new IllegalStateException("ui/watch.html is missing from the jar");
      }
      return in.readAllBytes();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
