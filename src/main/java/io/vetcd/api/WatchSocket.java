package io.vetcd.api;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.ServerWebSocket;
import io.vetcd.server.LocalMember;
import io.vetcd.watch.WatchStream;

/**
 * Watch over a WebSocket ({@code /v3/watch}), as etcd serves it through its JSON gateway: each text
 * frame from the client is one JSON WatchRequest, each frame back one {@code {"result": WatchResponse}}.
 * With {@code ?encoding=utf8}, keys and values are plain strings rather than base64 (for browsers).
 * A frame that is not a watch request is answered with the gateway's error in etcd's words; unlike
 * etcd's gateway, which ends the stream there, the watchers already on the socket go on. A request
 * over the gRPC size limit gets etcd's ResourceExhausted answer; a frame too large to hold even that
 * (over {@link #MAX_MESSAGE_BYTES}) closes the socket with 1009 (message too big), where etcd's proxy
 * would read it all. Without a
 * WebSocket, a POST of one request gets the responses as a stream of JSON lines, as from etcd's
 * gateway ({@code curl -N -d '{"create_request":...}'}).
 */
final class WatchSocket {

  /**
   * The largest WebSocket message read: room for a request at the gRPC limit in base64 (4/3) with its
   * JSON around it; Vert.x's default (256 KiB) refused requests gRPC takes. Set on the server.
   */
  static int maxMessageBytes(long grpcLimitBytes) {
    return (int) Math.min(Integer.MAX_VALUE, grpcLimitBytes * 2);
  }

  private WatchSocket() {}

  static void serve(Vertx vertx, LocalMember member, ServerWebSocket socket, boolean utf8, long grpcLimitBytes) {
    // A token in the upgrade request's Authorization header, as the gateway's other calls take one.
    WatchStream stream = WatchGrpc.open(vertx, member,
        r -> socket.writeTextMessage(WatchJson.response(r, utf8)), socket,
        new Callers.Credentials(socket.headers().get("Authorization"), null));
    // etcd's proxy hands a binary frame's bytes to the same decoder as a text frame's.
    socket.textMessageHandler(text -> handle(socket, stream, text, utf8, grpcLimitBytes));
    socket.binaryMessageHandler(b -> handle(socket, stream, b.toString(java.nio.charset.StandardCharsets.UTF_8),
        utf8, grpcLimitBytes));
    socket.closeHandler(v -> stream.close());
    socket.exceptionHandler(e -> {
      stream.close();
      // Vert.x drops a message over the size it aggregates with an IllegalStateException and leaves
      // the socket open: say so (1009, message too big) rather than leave the client waiting for an
      // answer that will never come. Other failures end the connection by themselves.
      if (e instanceof IllegalStateException && !socket.isClosed()) {
        socket.close((short) 1009, "message too big");
      }
    });
  }

  private static void handle(ServerWebSocket socket, WatchStream stream, String text, boolean utf8,
      long grpcLimitBytes) {
    try {
      io.vetcd.proto.etcdserverpb.WatchRequest request = WatchJson.request(text, utf8);
      if (request.getSerializedSize() > grpcLimitBytes) {
        socket.writeTextMessage(WatchJson.tooLarge(request.getSerializedSize(), grpcLimitBytes));
        return;
      }
      stream.handle(request);
    } catch (WatchJson.BadRequest e) {
      socket.writeTextMessage(WatchJson.error(e.getMessage()));
    }
  }

  /** The gateway's plain HTTP form: one request in the body, responses as chunked JSON lines. */
  static void serveChunked(Vertx vertx, LocalMember member, HttpServerResponse response, String body, boolean utf8,
      String token) {
    io.vetcd.proto.etcdserverpb.WatchRequest request;
    try {
      request = WatchJson.request(body, utf8);
    } catch (WatchJson.BadRequest e) {
      // etcd's gateway answers a watch body it cannot decode with 500 (the stream's Unknown error).
      response.setStatusCode(500).putHeader("content-type", "application/json")
          .end(WatchJson.error(e.getMessage()) + "\n");
      return;
    }
    response.setChunked(true).putHeader("content-type", "application/json");
    WatchStream stream = WatchGrpc.open(vertx, member,
        r -> response.write(WatchJson.response(r, utf8) + "\n"), response, new Callers.Credentials(token, null));
    response.closeHandler(v -> stream.close());
    stream.handle(request);
  }
}
