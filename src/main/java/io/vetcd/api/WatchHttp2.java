package io.vetcd.api;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.server.LocalMember;
import io.vetcd.watch.WatchStream;

/**
 * etcd's Watch call served straight on its HTTP/2 stream, beside Vert.x gRPC rather than through it:
 * the responses a stream makes in one event-loop turn (a put wakes every watcher of the stream at once)
 * are framed into one buffer and written once. Through Vert.x gRPC each response was an HTTP/2 write of
 * its own, with its own buffers, promise and flow-control entry: most of the CPU of delivering an event
 * to 1,000 watchers, and so most of their latency on a busy machine.
 *
 * <p>gRPC's framing is small enough to own ({@link GrpcWire}, shared with the KV calls' {@link KvHttp2}).
 * Calls this does not take (gRPC-Web, anything not HTTP/2) go to {@link WatchGrpc} as before.
 */
final class WatchHttp2 {

  static final String PATH = "/etcdserverpb.Watch/Watch";
  /** A turn's responses are written at once, or as soon as this many bytes are waiting. */
  private static final int WRITE_AT_BYTES = 64 * 1024;

  private WatchHttp2() {}

  /** True for a plain gRPC Watch call over HTTP/2. */
  static boolean accepts(HttpServerRequest request) {
    String type = request.getHeader("content-type");
    return request.version() == HttpVersion.HTTP_2 && request.method() == HttpMethod.POST
        && PATH.equals(request.path())
        && ("application/grpc".equals(type) || "application/grpc+proto".equals(type));
  }

  static void serve(Vertx vertx, LocalMember member, HttpServerRequest request) {
    new Call(vertx, member, request);
  }

  /** One Watch call: the client's requests in, the stream's responses out. On the connection's context. */
  private static final class Call implements WatchStream.Sink {
    private final Vertx vertx;
    private final HttpServerRequest request;
    private final HttpServerResponse response;
    private final long maxMessageBytes;
    private final WatchStream stream;
    /** Bytes of the client's next message(s) received so far. */
    private Buffer received = Buffer.buffer();
    /** Responses framed in this turn, not yet written. */
    private Buffer pending;
    private boolean ended;

    Call(Vertx vertx, LocalMember member, HttpServerRequest request) {
      this.vertx = vertx;
      this.request = request;
      this.response = request.response();
      this.maxMessageBytes = member.config().maxRequestBytes() + ClientServer.GRPC_OVERHEAD_BYTES;
      response.putHeader("content-type", "application/grpc");
      // Headers go out now, as from etcd: clients see the call established before the first event.
      response.writeHead();
      this.stream = WatchGrpc.open(vertx, member, this, new Callers.Credentials(Callers.token(request.headers()),
          request.isSSL() ? request::sslSession : null));
      request.handler(this::received);
      // A reset by the client (what clients do to close a watch, and when they shut down) and a broken
      // connection both end up here; without it the stream and its watchers would stay registered.
      request.exceptionHandler(e -> close());
      response.exceptionHandler(e -> close());
      response.closeHandler(v -> close());
      // A client that closes its side still gets its events, as from etcd.
      request.endHandler(v -> { });
    }

    private void received(Buffer chunk) {
      if (ended) {
        return;
      }
      received.appendBuffer(chunk);
      int at = 0;
      while (received.length() - at >= GrpcWire.PREFIX) {
        long length = received.getUnsignedInt(at + 1);
        StatusException refusal = GrpcWire.refusal(received.getByte(at), length, request.getHeader(GrpcWire.ENCODING),
            maxMessageBytes);
        if (refusal != null) {
          fail(refusal);
          return;
        }
        if (received.length() - at - GrpcWire.PREFIX < length) {
          break;
        }
        WatchRequest watchRequest;
        try {
          watchRequest = WatchRequest.parseFrom(received.getBytes(at + GrpcWire.PREFIX,
              at + GrpcWire.PREFIX + (int) length));
        } catch (InvalidProtocolBufferException e) {
          fail(GrpcWire.badStreamedMessage(e));
          return;
        }
        at += GrpcWire.PREFIX + (int) length;
        stream.handle(watchRequest);
      }
      received = at == received.length() ? Buffer.buffer() : received.getBuffer(at, received.length());
    }

    @Override
    public void send(WatchResponse watchResponse) {
      if (ended) {
        return;
      }
      byte[] message = watchResponse.toByteArray();
      if (pending == null) {
        pending = Buffer.buffer(Math.max(256, GrpcWire.PREFIX + message.length));
        vertx.runOnContext(v -> write());
      }
      pending.appendByte((byte) 0).appendInt(message.length).appendBytes(message);
    }

    private void write() {
      Buffer out = pending;
      pending = null;
      if (out != null && !ended) {
        response.write(out);
      }
    }

    @Override
    public boolean writeQueueFull() {
      if (pending != null && pending.length() >= WRITE_AT_BYTES) {
        write(); // a long catch-up: hand over what is framed so that the connection's limit applies
      }
      return response.writeQueueFull();
    }

    @Override
    public void drainHandler(Runnable onDrain) {
      response.drainHandler(v -> onDrain.run());
    }

    /** Ends the call with a gRPC error, after the responses already framed. */
    private void fail(StatusException error) {
      GrpcStatus status = error.status();
      String message = error.message();
      write();
      close();
      response.putTrailer(GrpcWire.STATUS, String.valueOf(status.code));
      response.putTrailer(GrpcWire.MESSAGE, GrpcWire.percentEncoded(message));
      response.end();
    }

    private void close() {
      if (!ended) {
        ended = true;
        stream.close();
      }
    }
  }
}
