package io.vetcd.bench.cmd;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vetcd.bench.rpc.Call;
import io.vetcd.bench.rpc.Code;
import io.vetcd.bench.rpc.Conn;
import io.vetcd.bench.rpc.Methods;
import io.vetcd.bench.rpc.RpcError;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One Watch stream of {@code watch-latency} carrying {@code watchers} watchers of the same key. Each
 * event's value starts with the number of the put that wrote it (see {@link WatchLatencyCommand}),
 * which tells {@link Deliveries} which put a watcher has just seen.
 *
 * <p>Runs on its conn's event loop; the counters are read from the main thread at the end.
 */
final class WatchStream {

  private final Conn conn;
  private final ByteString key;
  private final int watchers;
  private final Deliveries deliveries;
  private final AtomicLong events;
  private final AtomicLong streamErrors;
  /** Completes when the server has confirmed every watcher of this stream. */
  private final Promise<Void> allCreated = Promise.promise();
  private int created;
  private volatile Call<WatchRequest, WatchResponse> stream;
  private volatile boolean closing;

  WatchStream(Conn conn, ByteString key, int watchers, Deliveries deliveries, AtomicLong events, AtomicLong streamErrors) {
    this.conn = conn;
    this.key = key;
    this.watchers = watchers;
    this.deliveries = deliveries;
    this.events = events;
    this.streamErrors = streamErrors;
  }

  /** Opens the stream and creates its watchers; call on the conn's context. */
  Future<Void> open() {
    Call<WatchRequest, WatchResponse> opened = conn.stream(Methods.WATCH, new Call.Listener<>() {
      @Override
      public void message(WatchResponse response) {
        received(response);
      }

      @Override
      public void closed(Throwable error) {
        broken(error != null ? error : new RpcError(Code.OK, "watch stream ended by the server"));
      }
    });
    stream = opened;
    WatchRequest create = WatchRequest.newBuilder()
        .setCreateRequest(WatchCreateRequest.newBuilder().setKey(key))
        .build();
    for (int w = 0; w < watchers; w++) {
      opened.write(create);
    }
    return allCreated.future();
  }

  private void received(WatchResponse response) {
    if (response.getCreated()) {
      if (response.getCanceled()) {
        allCreated.tryFail(new IllegalStateException("watch refused: " + response.getCancelReason()));
      } else if (++created == watchers) {
        allCreated.tryComplete();
      }
      return;
    }
    if (response.getCanceled()) {
      // The server ended one watcher (compaction, or an error): its events will be missing.
      streamErrors.incrementAndGet();
      System.err.println("watcher " + response.getWatchId() + " canceled by the server: " + response.getCancelReason());
      return;
    }
    for (Event event : response.getEventsList()) {
      events.incrementAndGet();
      ByteString value = event.getKv().getValue();
      if (event.getType() == Event.EventType.PUT && value.size() >= Long.BYTES) {
        deliveries.delivered((int) value.substring(0, Long.BYTES).asReadOnlyByteBuffer().getLong());
      }
    }
  }

  private void broken(Throwable cause) {
    if (closing) {
      return;
    }
    streamErrors.incrementAndGet();
    allCreated.tryFail(cause);
    System.err.println("watch stream to " + conn.address() + " broke: " + RpcError.describe(cause));
  }

  /** Ends the stream from our side; what the server does then is of no interest. */
  void close() {
    closing = true;
    Call<WatchRequest, WatchResponse> open = stream;
    if (open != null) {
      conn.context().runOnContext(v -> open.cancel());
    }
  }
}
