package io.vetcd.api;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2ConnectionEncoder;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameListener;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.util.AsciiString;
import io.netty.util.collection.IntObjectHashMap;
import io.vertx.core.Future;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.net.impl.ConnectionBase;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import java.io.IOException;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.BooleanSupplier;

/**
 * etcd's unary KV calls (Range, Put, DeleteRange, Txn, Compact) answered on Netty's HTTP/2 frames,
 * beneath Vert.x's HTTP server instead of through it and Vert.x gRPC. For every call those made a
 * stream object with message queues of its own (an array of ~1.6 KB alone, a tenth of all a member
 * allocated under puts), header maps, a gRPC request and response with their chain of futures, for
 * requests of ~300 bytes; and ~10 of the event loops' ~60 µs of CPU per put. Here a
 * call is its request's bytes, the decoded request, and the response written into a pooled buffer.
 * The request and the answer are the same {@link KvGrpc} calls either way.
 *
 * <p>It decorates the connection's HTTP/2 frame listener, as {@link AuthorityFix} does, and takes a
 * POST to a KV method with gRPC's protobuf content type; every other stream (watches, leases, gRPC-Web)
 * goes on to Vert.x untouched. Like etcd's server it decompresses nothing: a compressed message is
 * refused with grpc-go's words. Deadlines (grpc-timeout) are not enforced, as through Vert.x gRPC.
 */
final class KvHttp2 extends Http2FrameListenerDecorator {

  private record Method(Parser<? extends Message> parser, BiFunction<KvGrpc, Message, Future<? extends Message>> call) {}

  private static final Map<AsciiString, Method> METHODS = Map.of(
      AsciiString.of("/etcdserverpb.KV/Range"),
      new Method(RangeRequest.parser(), (kv, m) -> kv.range((RangeRequest) m)),
      AsciiString.of("/etcdserverpb.KV/Put"),
      new Method(PutRequest.parser(), (kv, m) -> kv.put((PutRequest) m)),
      AsciiString.of("/etcdserverpb.KV/DeleteRange"),
      new Method(DeleteRangeRequest.parser(), (kv, m) -> kv.deleteRange((DeleteRangeRequest) m)),
      AsciiString.of("/etcdserverpb.KV/Txn"),
      new Method(TxnRequest.parser(), (kv, m) -> kv.txn((TxnRequest) m)),
      AsciiString.of("/etcdserverpb.KV/Compact"),
      new Method(CompactionRequest.parser(), (kv, m) -> kv.compact((CompactionRequest) m)));

  private static final AsciiString POST = AsciiString.of("POST");
  private static final AsciiString TOKEN = AsciiString.of(Callers.TOKEN_HEADER);
  private static final AsciiString AUTHORIZATION = AsciiString.of(Callers.AUTHORIZATION_HEADER);
  private static final AsciiString CONTENT_TYPE = AsciiString.of("content-type");
  private static final AsciiString GRPC = AsciiString.of("application/grpc");
  private static final AsciiString GRPC_PROTO = AsciiString.of("application/grpc+proto");
  private static final int PREFIX = GrpcWire.PREFIX;
  /**
   * A request that ends inside its message: grpc-go answers Unknown with Go's io.ErrUnexpectedEOF. One
   * that ends before any: etcd's grpc-go never answers (the call hangs until the client gives up); this
   * answers as grpc-go would had it converted io.EOF the same way.
   */
  private static final String CUT_SHORT = "unexpected EOF";
  private static final String NO_MESSAGE = "EOF";

  private final ContextInternal context;
  /** The connection's TLS session, for a client certificate's name (see Callers); null on a plain one. */
  private final java.util.function.Supplier<javax.net.ssl.SSLSession> tls;
  private final ChannelHandlerContext http2;
  private final Http2ConnectionHandler handler;
  private final KvGrpc kv;
  private final long maxMessageBytes;
  /**
   * Whether the member is published. Calls that come before take Vert.x's path, where the client
   * server holds them until then (rare: only during a member's start).
   */
  private final BooleanSupplier answering;
  /** Calls whose request is still arriving (or being discarded), by stream. */
  private final IntObjectHashMap<Call> receiving = new IntObjectHashMap<>();

  private KvHttp2(Http2FrameListener next, ContextInternal context, ChannelHandlerContext http2,
      Http2ConnectionHandler handler, KvGrpc kv, long maxMessageBytes, BooleanSupplier answering) {
    super(next);
    this.answering = answering;
    this.context = context;
    this.http2 = http2;
    io.netty.handler.ssl.SslHandler ssl = http2.pipeline().get(io.netty.handler.ssl.SslHandler.class);
    this.tls = ssl == null ? null : () -> ssl.engine().getSession();
    this.handler = handler;
    this.kv = kv;
    this.maxMessageBytes = maxMessageBytes;
    // However a stream ends (the client's end, a reset, the connection closing), its call stops reading.
    handler.connection().addListener(new Http2ConnectionAdapter() {
      @Override
      public void onStreamClosed(Http2Stream stream) {
        Call call = receiving.remove(stream.id());
        if (call != null) {
          call.closedUnanswered();
        }
      }
    });
  }

  /** Takes over the KV calls of a new HTTP/2 connection; HTTP/1.x connections are left alone. */
  static void install(HttpConnection connection, KvGrpc kv, long maxMessageBytes, BooleanSupplier answering) {
    if (!(connection instanceof ConnectionBase base)) {
      return;
    }
    ChannelHandlerContext http2 = base.channelHandlerContext().pipeline().context(Http2ConnectionHandler.class);
    if (http2 == null) {
      return;
    }
    Http2ConnectionHandler handler = (Http2ConnectionHandler) http2.handler();
    Http2FrameListener next = handler.decoder().frameListener();
    if (next instanceof KvHttp2) {
      return;
    }
    handler.decoder().frameListener(new KvHttp2(next, base.context(), http2, handler, kv, maxMessageBytes, answering));
  }

  @Override
  public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int padding,
      boolean endOfStream) throws Http2Exception {
    if (!take(streamId, headers, endOfStream)) {
      super.onHeadersRead(ctx, streamId, headers, padding, endOfStream);
    }
  }

  @Override
  public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int streamDependency,
      short weight, boolean exclusive, int padding, boolean endOfStream) throws Http2Exception {
    if (!take(streamId, headers, endOfStream)) {
      super.onHeadersRead(ctx, streamId, headers, streamDependency, weight, exclusive, padding, endOfStream);
    }
  }

  @Override
  public int onDataRead(ChannelHandlerContext ctx, int streamId, ByteBuf data, int padding, boolean endOfStream)
      throws Http2Exception {
    Call call = receiving.get(streamId);
    if (call == null) {
      return super.onDataRead(ctx, streamId, data, padding, endOfStream);
    }
    int consumed = data.readableBytes() + padding; // read at once: flow control gets it all back now
    call.received(data);
    if (endOfStream) {
      receiving.remove(streamId);
      call.requestEnded();
    }
    return consumed;
  }

  /** The call's token: "token" metadata, else "authorization" (etcd looks for both, in that order). */
  private static CharSequence token(Http2Headers headers) {
    CharSequence token = headers.get(TOKEN);
    return token != null ? token : headers.get(AUTHORIZATION);
  }

  /** Claims a new stream if it is a call this serves; false leaves it to Vert.x. */
  private boolean take(int streamId, Http2Headers headers, boolean endOfStream) {
    if (!answering.getAsBoolean()) {
      return false;
    }
    CharSequence path = headers.path();
    CharSequence verb = headers.method();
    Method method = path == null ? null : METHODS.get(AsciiString.of(path));
    if (method == null || verb == null || !POST.contentEquals(verb)) {
      return false;
    }
    CharSequence type = headers.get(CONTENT_TYPE);
    if (type == null || !(GRPC.contentEquals(type) || GRPC_PROTO.contentEquals(type))) {
      return false;
    }
    Call call = new Call(streamId, method, headers.get(GrpcWire.ENCODING), io.vetcd.metrics.GrpcServerMetrics.of(path),
        token(headers));
    if (endOfStream) {
      call.requestEnded();
    } else {
      receiving.put(streamId, call);
    }
    return true;
  }

  /** One unary call on its stream. Runs on the connection's event loop. */
  private final class Call {
    private final int streamId;
    private final Method method;
    /** The grpc-encoding the client named (null: none). */
    private final CharSequence encoding;
    private final byte[] prefix = new byte[PREFIX];
    private int prefixRead;
    private byte[] message;
    private int messageRead;
    /** Its message is in (or it was refused): what else the client sends is read and dropped. */
    private boolean answering;
    private final io.vetcd.metrics.GrpcServerMetrics.Method metrics;
    private final long startNanos;
    /** The "token" metadata (null: none), for the service to know who calls (see Callers). */
    private final CharSequence token;

    Call(int streamId, Method method, CharSequence encoding, io.vetcd.metrics.GrpcServerMetrics.Method metrics,
        CharSequence token) {
      this.streamId = streamId;
      this.token = token;
      this.method = method;
      this.encoding = encoding;
      this.metrics = metrics;
      this.startNanos = metrics == null ? 0 : metrics.started();
    }

    private void countHandled(GrpcStatus status) {
      if (metrics != null) {
        metrics.handled(status.code, startNanos);
      }
    }

    /** The client reset the stream before its request was in: nothing was served. */
    void closedUnanswered() {
      if (!answering) {
        answering = true;
        countHandled(GrpcStatus.CANCELLED);
      }
    }

    void received(ByteBuf data) {
      while (!answering && data.isReadable()) {
        if (prefixRead < PREFIX) {
          int n = Math.min(PREFIX - prefixRead, data.readableBytes());
          data.readBytes(prefix, prefixRead, n);
          prefixRead += n;
          if (prefixRead == PREFIX && !startMessage()) {
            return;
          }
        } else {
          int n = Math.min(message.length - messageRead, data.readableBytes());
          data.readBytes(message, messageRead, n);
          messageRead += n;
        }
        if (prefixRead == PREFIX && messageRead == message.length) {
          // Served at once, as grpc-go serves a unary call: what the client sends after its one
          // message (even a second message) is read and dropped.
          answering = true;
          serve();
        }
      }
    }

    /** Reads a message's prefix; false if the call was refused. */
    private boolean startMessage() {
      long length = ((prefix[1] & 0xffL) << 24) | ((prefix[2] & 0xff) << 16) | ((prefix[3] & 0xff) << 8)
          | (prefix[4] & 0xff);
      StatusException refusal = GrpcWire.refusal(prefix[0], length, encoding, maxMessageBytes);
      if (refusal != null) {
        fail(refusal);
        return false;
      }
      message = new byte[(int) length];
      messageRead = 0;
      io.vetcd.metrics.EtcdMetrics.CLIENT_GRPC_RECEIVED.increment(PREFIX + length);
      return true;
    }

    void requestEnded() {
      if (!answering) {
        fail(GrpcStatus.UNKNOWN, prefixRead == 0 ? NO_MESSAGE : CUT_SHORT);
      }
    }

    private void serve() {
      Message request;
      try {
        request = method.parser().parseFrom(message);
      } catch (InvalidProtocolBufferException e) {
        fail(GrpcWire.badUnaryRequest(e));
        return;
      }
      message = null;
      // On the connection's context, as a Vert.x handler would run: the call's futures (a proposal, a
      // read barrier, a worker's range) complete back on it, on this event loop.
      context.dispatch(request, this::invoke);
    }

    private void invoke(Message request) {
      Future<? extends Message> answer;
      try {
        answer = Callers.with(token, tls, () -> method.call().apply(kv, request));
      } catch (RuntimeException e) {
        answer = Future.failedFuture(e);
      }
      answer.onComplete(ar -> {
        if (http2.executor().inEventLoop()) {
          answered(ar.succeeded() ? ar.result() : null, ar.cause());
        } else {
          http2.executor().execute(() -> answered(ar.succeeded() ? ar.result() : null, ar.cause()));
        }
      });
    }

    private void answered(Message response, Throwable failure) {
      if (failure != null) {
        fail(GrpcErrors.toStatus(failure));
        return;
      }
      if (!open()) {
        countHandled(GrpcStatus.CANCELLED); // the client reset the stream
        return;
      }
      int size = response.getSerializedSize();
      ByteBuf data = http2.alloc().buffer(PREFIX + size); // pooled: released once written
      data.writeByte(0).writeInt(size);
      try {
        CodedOutputStream out = CodedOutputStream.newInstance(data.nioBuffer(PREFIX, size));
        response.writeTo(out);
        out.flush();
        data.writerIndex(PREFIX + size);
      } catch (IOException e) {
        data.release();
        fail(GrpcStatus.INTERNAL, "grpc: error while marshaling: " + e.getMessage());
        return;
      }
      Http2ConnectionEncoder encoder = handler.encoder();
      encoder.writeHeaders(http2, streamId, responseHeaders(), 0, false, http2.newPromise());
      encoder.writeData(http2, streamId, data, 0, false, http2.newPromise());
      // grpc-message empty, as etcd's server sends it.
      encoder.writeHeaders(http2, streamId, new DefaultHttp2Headers(false, 2).add(GrpcWire.STATUS, "0")
          .add(GrpcWire.MESSAGE, ""), 0, true, http2.newPromise());
      flush();
      io.vetcd.metrics.EtcdMetrics.CLIENT_GRPC_SENT.increment(PREFIX + size);
      countHandled(GrpcStatus.OK);
    }

    private void fail(StatusException refusal) {
      fail(refusal.status(), refusal.message());
    }

    /** Ends the call with a gRPC error: one HEADERS frame carrying the status ("trailers only"). */
    private void fail(GrpcStatus status, String text) {
      answering = true;
      countHandled(status);
      if (!open()) {
        return;
      }
      Http2Headers trailers = responseHeaders()
          .add(GrpcWire.STATUS, String.valueOf(status.code))
          .add(GrpcWire.MESSAGE, GrpcWire.percentEncoded(text));
      handler.encoder().writeHeaders(http2, streamId, trailers, 0, true, http2.newPromise());
      flush();
    }

    /** False once the client reset the stream or the connection closed: nobody is left to answer. */
    private boolean open() {
      var stream = handler.connection().stream(streamId);
      return stream != null && stream.state().localSideOpen();
    }

    private void flush() {
      try {
        // The connection handler's flush writes what flow control allows, then flushes the socket
        // (coalesced with the turn's other flushes by FlushCoalescing).
        handler.flush(http2);
      } catch (Exception e) {
        http2.fireExceptionCaught(e);
      }
    }
  }

  private static Http2Headers responseHeaders() {
    return new DefaultHttp2Headers(false, 4).status("200").add(CONTENT_TYPE, GRPC);
  }
}
