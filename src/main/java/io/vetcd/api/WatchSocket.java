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
 * A frame that is not a watch request is answered with the gateway's error shape; unlike etcd's
 * gateway, which ends the stream there, the watchers already on the socket go on. Without a
 * WebSocket, a POST of one request gets the responses as a stream of JSON lines, as from etcd's
 * gateway ({@code curl -N -d '{"create_request":...}'}).
 */
final class WatchSocket {

  private WatchSocket() {}

  static void serve(Vertx vertx, LocalMember member, ServerWebSocket socket, boolean utf8) {
    WatchStream stream = WatchGrpc.open(vertx, member,
        r -> socket.writeTextMessage(WatchJson.response(r, utf8)), socket);
    socket.textMessageHandler(text -> {
      try {
        stream.handle(WatchJson.request(text, utf8));
      } catch (WatchJson.BadRequest e) {
        socket.writeTextMessage(WatchJson.error(e.getMessage()));
      }
    });
    socket.binaryMessageHandler(b -> socket.writeTextMessage(
        WatchJson.error("send watch requests as JSON text frames")));
    socket.closeHandler(v -> stream.close());
    socket.exceptionHandler(e -> stream.close());
  }

  /** The gateway's plain HTTP form: one request in the body, responses as chunked JSON lines. */
  static void serveChunked(Vertx vertx, LocalMember member, HttpServerResponse response, String body, boolean utf8) {
    io.vetcd.proto.etcdserverpb.WatchRequest request;
    try {
      request = WatchJson.request(body, utf8);
    } catch (WatchJson.BadRequest e) {
      response.setStatusCode(400).putHeader("content-type", "application/json")
          .end(WatchJson.error(e.getMessage()) + "\n");
      return;
    }
    response.setChunked(true).putHeader("content-type", "application/json");
    WatchStream stream = WatchGrpc.open(vertx, member,
        r -> response.write(WatchJson.response(r, utf8) + "\n"), response);
    response.closeHandler(v -> stream.close());
    stream.handle(request);
  }
}
