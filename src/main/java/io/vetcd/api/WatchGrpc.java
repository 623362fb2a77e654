package io.vetcd.api;

import io.vertx.core.Vertx;
import io.vertx.core.streams.ReadStream;
import io.vertx.core.streams.WriteStream;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.etcdserverpb.WatchService;
import io.vetcd.server.LocalMember;
import io.vetcd.watch.WatchStream;
import java.util.function.Consumer;

/**
 * etcd's Watch service: one {@link WatchStream} per call, served from this member's applied state.
 * Plain gRPC calls over HTTP/2 are served by {@link WatchHttp2}; this serves the others (gRPC-Web).
 */
final class WatchGrpc extends WatchService {

  private final Vertx vertx;
  private final LocalMember member;

  WatchGrpc(Vertx vertx, LocalMember member) {
    this.vertx = vertx;
    this.member = member;
  }

  @Override
  protected void watch(ReadStream<WatchRequest> requests, WriteStream<WatchResponse> responses) {
    WatchStream stream = open(vertx, member, responses::write, responses);
    requests.handler(stream::handle);
    requests.exceptionHandler(e -> stream.close()); // the connection broke
    responses.exceptionHandler(e -> stream.close());
    if (requests instanceof GrpcServerRequest<?, ?> call) {
      // A client that cancels its stream (an HTTP/2 reset: what clients do when a watch is closed, and
      // when they shut down) is reported here, not to the exception handlers: without this the stream
      // and its watchers stayed registered forever, woken by every write.
      call.errorHandler(error -> stream.close());
    }
    // A client that closes its side of the stream still gets its events, as from etcd (which ends a
    // watch stream only when the client cancels it or goes away).
    requests.endHandler(v -> { });
  }

  /**
   * A watch stream as the member configures it, for gRPC, WebSocket and HTTP alike: responses go out
   * through {@code send}; {@code connection}, the stream {@code send} writes to, says when to pause.
   */
  static WatchStream open(Vertx vertx, LocalMember member, Consumer<WatchResponse> send, WriteStream<?> connection) {
    WatchStream.Sink sink = new WatchStream.Sink() {
      @Override
      public void send(WatchResponse response) {
        send.accept(response);
      }

      @Override
      public boolean writeQueueFull() {
        return connection.writeQueueFull();
      }

      @Override
      public void drainHandler(Runnable onDrain) {
        connection.drainHandler(v -> onDrain.run());
      }
    };
    return open(vertx, member, sink);
  }

  /** A watch stream as the member configures it, sending through {@code sink}. */
  static WatchStream open(Vertx vertx, LocalMember member, WatchStream.Sink sink) {
    return new WatchStream(vertx, member.watches(), sink, member::header, member::serializableBarrier,
        member.config().maxRequestBytes(), member.config().watchProgressNotifyIntervalMs());
  }
}
