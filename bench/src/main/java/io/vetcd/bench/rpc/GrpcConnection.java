package io.vetcd.bench.rpc;

import com.google.protobuf.MessageLite;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2ConnectionHandlerBuilder;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2EventAdapter;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2LocalFlowController;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.util.AsciiString;
import io.netty.util.collection.IntObjectHashMap;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One HTTP/2 connection to one endpoint carrying gRPC calls, written on Netty's HTTP/2 codec.
 *
 * <p>Why not Vert.x's gRPC client: the tool shares the machine's two cores with the servers it
 * measures, so what it spends per request is taken from them. Through Vert.x's gRPC and HTTP
 * clients a put cost the tool ~127 µs of CPU (C1-compiled; futures, per-stream message queues, header
 * maps, a timer per request) — more than half of what three vetcd members spent on it. Here a call is
 * a stream, its headers are built once per method, deadlines are checked by one sweep, and writes
 * are flushed once per event-loop turn.
 *
 * <p>Confined to one event loop (the conn's): calls must be opened there. Dials on first use and
 * again after the connection is lost; calls opened meanwhile wait for it.
 */
final class GrpcConnection {

  /** The server may send this much per stream before we read it: watch streams are busy. */
  private static final int STREAM_WINDOW = 1 << 20;
  private static final int CONNECTION_WINDOW = 16 << 20;
  private static final long SWEEP_MILLIS = 100;
  private static final AsciiString POST = AsciiString.cached("POST");
  private static final AsciiString HTTP = AsciiString.cached("http");
  private static final AsciiString CONTENT_TYPE = AsciiString.cached("content-type");
  private static final AsciiString GRPC = AsciiString.cached("application/grpc");
  private static final AsciiString TE = AsciiString.cached("te");
  private static final AsciiString TRAILERS = AsciiString.cached("trailers");

  private final InetSocketAddress address;
  private final AsciiString authority;
  private final EventLoop loop;
  private final ChannelFactory<? extends Channel> channels;
  private final int connectTimeoutMillis;
  private final Map<String, Http2Headers> requestHeaders = new HashMap<>();
  private final IntObjectHashMap<Call<?, ?>> calls = new IntObjectHashMap<>();
  /** Calls opened while dialling; they start when the connection is up. */
  private final List<Call<?, ?>> waiting = new ArrayList<>();
  private final Runnable flushTask = this::flush;

  private Channel channel;
  private Http2ConnectionHandler handler;
  private ChannelHandlerContext ctx;
  private boolean dialling;
  private boolean flushScheduled;
  private ScheduledFuture<?> sweep;

  GrpcConnection(InetSocketAddress address, EventLoop loop, ChannelFactory<? extends Channel> channels,
      int connectTimeoutMillis) {
    this.address = address;
    this.authority = AsciiString.of(address.getHostString() + ":" + address.getPort());
    this.loop = loop;
    this.channels = channels;
    this.connectTimeoutMillis = connectTimeoutMillis;
  }

  /** Opens a call; {@code timeoutMillis} 0 means no deadline (streams). */
  <Req extends MessageLite, Resp extends MessageLite> Call<Req, Resp> open(Method<Req, Resp> method,
      Call.Listener<Resp> listener, long timeoutMillis) {
    if (!loop.inEventLoop()) {
      throw new IllegalStateException("a call must be opened on its connection's event loop");
    }
    long deadline = timeoutMillis > 0 ? System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis) : 0;
    Call<Req, Resp> call = new Call<>(this, method, listener, deadline);
    if (ctx != null) {
      start(call);
    } else {
      waiting.add(call);
      dial();
    }
    return call;
  }

  ByteBufAllocator alloc() {
    return ctx.alloc();
  }

  private void dial() {
    if (dialling) {
      return;
    }
    dialling = true;
    Listener listener = new Listener();
    Http2ConnectionHandler h = new Http2ConnectionHandlerBuilder()
        .server(false)
        .frameListener(listener)
        .initialSettings(new Http2Settings().initialWindowSize(STREAM_WINDOW).pushEnabled(false))
        .build();
    h.connection().addListener(listener);
    ChannelFuture connecting = new Bootstrap()
        .group(loop)
        .channelFactory(channels)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMillis)
        .handler(new ChannelInitializer<>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast(h, new Lifecycle(h));
          }
        })
        .connect(address);
    connecting.addListener(done -> {
      // A connected channel goes on in Lifecycle.channelActive: the connect future completes before
      // the HTTP/2 handler has sent its preface, and no frame may precede that.
      if (!done.isSuccess()) {
        dialling = false;
        failWaiting(done.cause());
      }
    });
  }

  private void up(Channel ch, Http2ConnectionHandler h) {
    dialling = false;
    channel = ch;
    handler = h;
    ctx = ch.pipeline().context(h);
    try {
      // The connection's window starts at 64 KiB whatever the settings say; widen it at once.
      Http2LocalFlowController flow = h.connection().local().flowController();
      Http2Stream connectionStream = h.connection().connectionStream();
      flow.incrementWindowSize(connectionStream, CONNECTION_WINDOW - flow.windowSize(connectionStream));
    } catch (Http2Exception e) {
      ch.close();
      failWaiting(e);
      return;
    }
    sweep = loop.scheduleAtFixedRate(this::expire, SWEEP_MILLIS, SWEEP_MILLIS, TimeUnit.MILLISECONDS);
    List<Call<?, ?>> queued = new ArrayList<>(waiting);
    waiting.clear();
    for (Call<?, ?> call : queued) {
      if (!call.done()) {
        start(call);
      }
    }
    scheduleFlush();
  }

  private void failWaiting(Throwable cause) {
    List<Call<?, ?>> queued = new ArrayList<>(waiting);
    waiting.clear();
    for (Call<?, ?> call : queued) {
      call.fail(cause);
    }
  }

  private void start(Call<?, ?> call) {
    int id = handler.connection().local().incrementAndGetNextStreamId();
    call.streamId = id;
    calls.put(id, call);
    handler.encoder().writeHeaders(ctx, id, headersOf(call.method()), 0, false, ctx.newPromise())
        .addListener(written -> {
          if (!written.isSuccess()) {
            // No stream (the server sent GOAWAY, or the connection is going): grpc-go calls it so.
            call.fail(new RpcError(Code.UNAVAILABLE, "transport is closing"));
          }
        });
    call.started(id);
    scheduleFlush();
  }

  /** The same headers for every call of a method: built once, never changed. */
  private Http2Headers headersOf(Method<?, ?> method) {
    Http2Headers headers = requestHeaders.get(method.path());
    if (headers == null) {
      headers = new DefaultHttp2Headers(false)
          .method(POST)
          .scheme(HTTP)
          .path(AsciiString.of(method.path()))
          .authority(authority)
          .add(CONTENT_TYPE, GRPC)
          .add(TE, TRAILERS);
      requestHeaders.put(method.path(), headers);
    }
    return headers;
  }

  void writeData(Call<?, ?> call, ByteBuf message, boolean last) {
    if (ctx == null || calls.get(call.streamId) != call) {
      if (message != null) {
        message.release();
      }
      return;
    }
    handler.encoder().writeData(ctx, call.streamId, message == null ? Unpooled.EMPTY_BUFFER : message, 0, last,
        ctx.newPromise());
    scheduleFlush();
  }

  /** The call is over; resets its stream if it is still open on the wire. */
  void finished(Call<?, ?> call, boolean reset) {
    if (call.streamId == 0) {
      waiting.remove(call);
      return;
    }
    if (calls.get(call.streamId) == call) {
      calls.remove(call.streamId);
      if (reset && ctx != null) {
        Http2Stream stream = handler.connection().stream(call.streamId);
        if (stream != null && stream.state() != Http2Stream.State.CLOSED) {
          handler.resetStream(ctx, call.streamId, Http2Error.CANCEL.code(), ctx.newPromise());
          scheduleFlush();
        }
      }
    }
  }

  /** The client gave the call up. */
  void abandon(Call<?, ?> call) {
    finished(call, true);
  }

  /** Unary calls past their deadline fail as grpc-go's do, and their streams are reset. */
  private void expire() {
    long now = System.nanoTime();
    List<Call<?, ?>> late = null;
    for (Call<?, ?> call : calls.values()) {
      if (call.deadlineNanos != 0 && now - call.deadlineNanos >= 0) {
        if (late == null) {
          late = new ArrayList<>();
        }
        late.add(call);
      }
    }
    if (late != null) {
      for (Call<?, ?> call : late) {
        call.fail(new RpcError(Code.DEADLINE_EXCEEDED, "context deadline exceeded"));
      }
    }
  }

  private void scheduleFlush() {
    if (!flushScheduled) {
      flushScheduled = true;
      loop.execute(flushTask);
    }
  }

  private void flush() {
    flushScheduled = false;
    if (ctx != null) {
      // Through the handler: DATA frames wait in its flow controller until it is flushed.
      handler.flush(ctx);
    }
  }

  /** The connection is gone: its calls fail, and the next call dials again. */
  private void lost(Channel which) {
    if (which != channel) {
      return;
    }
    channel = null;
    handler = null;
    ctx = null;
    if (sweep != null) {
      sweep.cancel(false);
      sweep = null;
    }
    List<Call<?, ?>> open = new ArrayList<>(calls.values());
    calls.clear();
    for (Call<?, ?> call : open) {
      call.fail(new RpcError(Code.UNAVAILABLE, "transport is closing"));
    }
  }

  /** Closes the connection; calls still open fail. */
  ChannelFuture close() {
    Channel open = channel;
    return open == null ? null : open.close();
  }

  /** Frames and stream events from Netty's HTTP/2 codec. */
  private final class Listener extends Http2EventAdapter {

    @Override
    public void onHeadersRead(ChannelHandlerContext c, int streamId, Http2Headers headers, int padding,
        boolean endOfStream) {
      Call<?, ?> call = calls.get(streamId);
      if (call != null) {
        call.headers(headers, endOfStream);
      }
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext c, int streamId, Http2Headers headers, int streamDependency,
        short weight, boolean exclusive, int padding, boolean endOfStream) {
      onHeadersRead(c, streamId, headers, padding, endOfStream);
    }

    @Override
    public int onDataRead(ChannelHandlerContext c, int streamId, ByteBuf data, int padding, boolean endOfStream) {
      int processed = data.readableBytes() + padding;
      Call<?, ?> call = calls.get(streamId);
      if (call != null) {
        call.data(data, c.alloc());
        if (endOfStream && !call.done()) {
          call.fail(new RpcError(Code.INTERNAL, "server closed the stream without sending trailers"));
        }
      }
      // All of it is consumed: the codec gives the window back to the server.
      return processed;
    }

    @Override
    public void onRstStreamRead(ChannelHandlerContext c, int streamId, long errorCode) {
      Call<?, ?> call = calls.get(streamId);
      if (call != null) {
        Http2Error error = Http2Error.valueOf(errorCode);
        Code code = error == Http2Error.CANCEL ? Code.CANCELED
            : error == Http2Error.REFUSED_STREAM ? Code.UNAVAILABLE : Code.INTERNAL;
        call.fail(new RpcError(code, "stream terminated by RST_STREAM with error code: "
            + (error == null ? Long.toString(errorCode) : error.name())));
      }
    }

    @Override
    public void onGoAwayRead(ChannelHandlerContext c, int lastStreamId, long errorCode, ByteBuf debugData) {
      // The server is leaving: drop the connection, so that the next call dials a new one.
      c.close();
    }

    @Override
    public void onStreamClosed(Http2Stream stream) {
      Call<?, ?> call = calls.get(stream.id());
      if (call != null && !call.done()) {
        // Netty closes the streams of a connection going away before the channel reports it.
        call.fail(new RpcError(Code.UNAVAILABLE, "transport is closing"));
      }
    }
  }

  /** Notices the connection coming up (after the HTTP/2 preface) and going away. */
  private final class Lifecycle extends ChannelInboundHandlerAdapter {

    private final Http2ConnectionHandler http2;

    Lifecycle(Http2ConnectionHandler http2) {
      this.http2 = http2;
    }

    @Override
    public void channelActive(ChannelHandlerContext c) throws Exception {
      super.channelActive(c);
      up(c.channel(), http2);
    }

    @Override
    public void channelInactive(ChannelHandlerContext c) throws Exception {
      lost(c.channel());
      super.channelInactive(c);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
      c.close();
    }
  }
}
