package io.vetcd.api;

import io.vertx.core.Vertx;
import io.vertx.core.streams.ReadStream;
import io.vertx.core.streams.WriteStream;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.etcdserverpb.WatchService;
import io.vetcd.auth.AuthStore;
import io.vetcd.auth.Caller;
import io.vetcd.server.EtcdError;
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
    // Who watches: the stream's metadata, as etcd takes it from the stream's context for every create.
    Callers.Credentials who = requests instanceof GrpcServerRequest<?, ?> call
        ? new Callers.Credentials(Callers.token(call.headers()),
            call.connection().isSsl() ? () -> call.connection().sslSession() : null)
        : Callers.Credentials.NONE;
    WatchStream stream = open(vertx, member, responses::write, responses, who);
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
  static WatchStream open(Vertx vertx, LocalMember member, Consumer<WatchResponse> send, WriteStream<?> connection,
      Callers.Credentials who) {
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
    return open(vertx, member, sink, who);
  }

  /** A watch stream as the member configures it, sending through {@code sink}, for the caller {@code who} names. */
  static WatchStream open(Vertx vertx, LocalMember member, WatchStream.Sink sink, Callers.Credentials who) {
    WatchStream stream = new WatchStream(vertx, member.watches(), sink, member::header, member::serializableBarrier,
        member.config().maxRequestBytes(), member.config().watchProgressNotifyIntervalMs());
    stream.checkCreates(create -> admission(member, who, create));
    return stream;
  }

  /**
   * etcd's isWatchPermitted: with auth enabled, the caller needs read permission on the watched keys,
   * checked as etcd checks it (an empty key is "\0"; a range end of "\0" is checked as the key alone).
   * A refusal is worded as etcd's cancel reason: the gRPC error's whole text.
   */
  private static WatchStream.Admission admission(LocalMember member, Callers.Credentials who,
      io.vetcd.proto.etcdserverpb.WatchCreateRequest create) {
    byte[] key = create.getKey().isEmpty() ? new byte[] {0} : create.getKey().toByteArray();
    com.google.protobuf.ByteString end = create.getRangeEnd();
    byte[] rangeEnd = end.size() == 1 && end.byteAt(0) == 0 ? new byte[0] : end.toByteArray();
    Caller caller;
    try {
      caller = who.resolve(member.auth());
    } catch (EtcdError.EtcdException e) {
      return WatchStream.Admission.refused(GrpcErrors.goText(e.error()));
    }
    String refused = readRefusal(member.auth().store(), caller, key, rangeEnd);
    if (refused != null) {
      return WatchStream.Admission.refused(refused);
    }
    // Checked again at every change of the auth store, as the same user against the store then.
    return new WatchStream.Admission(null, () -> {
      AuthStore now = member.auth().store();
      return caller.user().isEmpty() ? null
          : readRefusal(now, new Caller(caller.user(), now.revision()), key, rangeEnd);
    });
  }

  private static String readRefusal(AuthStore store, Caller caller, byte[] key, byte[] rangeEnd) {
    try {
      store.checkKeys(caller, key, rangeEnd, io.vetcd.proto.authpb.Permission.Type.READ);
      return null;
    } catch (EtcdError.EtcdException e) {
      EtcdError error = switch (e.error()) {
        case INVALID_AUTH_TOKEN, AUTH_OLD_REVISION, USER_EMPTY -> e.error();
        default -> EtcdError.PERMISSION_DENIED;
      };
      return GrpcErrors.goText(error);
    }
  }
}
