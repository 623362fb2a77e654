package io.vetcd.bench.rpc;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.codec.http2.Http2Headers;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One gRPC call: one HTTP/2 stream of a {@link GrpcConnection}. Unary calls write one message and
 * end; streaming calls (Watch, LeaseKeepAlive) write as they go. Everything happens on the
 * connection's event loop.
 *
 * @param <Req> what the client writes
 * @param <Resp> what the server answers
 */
public final class Call<Req extends MessageLite, Resp extends MessageLite> {

  /** What a call reports; called on the connection's event loop. */
  public interface Listener<Resp> {
    void message(Resp message);

    /** The call is over: {@code error} is null when the server ended it with status OK. */
    void closed(Throwable error);
  }

  /** gRPC's message prefix: a compressed flag and a 32-bit length. */
  private static final int PREFIX = 5;

  private final GrpcConnection connection;
  private final Method<Req, Resp> method;
  private final Listener<Resp> listener;
  /** When a unary call fails with a deadline error, in System.nanoTime(); 0 for none. */
  final long deadlineNanos;
  /** The HTTP/2 stream, once the connection is up; 0 before. */
  int streamId;
  /** Messages written before the connection was up, sent when it is. */
  private List<Req> early;
  private boolean ended;
  private boolean headersReceived;
  private boolean done;
  /** Part of a message split across DATA frames. */
  private ByteBuf partial;

  Call(GrpcConnection connection, Method<Req, Resp> method, Listener<Resp> listener, long deadlineNanos) {
    this.connection = connection;
    this.method = method;
    this.listener = listener;
    this.deadlineNanos = deadlineNanos;
  }

  Method<Req, Resp> method() {
    return method;
  }

  /** Sends one message; dropped if the call is over. */
  public void write(Req message) {
    send(message, false);
  }

  /** Sends the last message and half-closes the stream, as a unary call does. */
  public void writeLast(Req message) {
    send(message, true);
  }

  /** Half-closes the stream: the client sends nothing more. */
  public void end() {
    send(null, true);
  }

  /** Abandons the call (RST_STREAM CANCEL); its listener hears nothing more. */
  public void cancel() {
    if (!done) {
      done = true;
      connection.abandon(this);
      release();
    }
  }

  private void send(Req message, boolean last) {
    if (done || ended) {
      return;
    }
    ended = last;
    if (streamId == 0) {
      if (message != null) {
        if (early == null) {
          early = new ArrayList<>(1);
        }
        early.add(message);
      }
      return;
    }
    connection.writeData(this, message == null ? null : frame(message), last);
  }

  /** The stream is open: sends what was written meanwhile. */
  void started(int id) {
    streamId = id;
    List<Req> queued = early;
    early = null;
    if (queued != null) {
      for (int i = 0; i < queued.size(); i++) {
        connection.writeData(this, frame(queued.get(i)), ended && i == queued.size() - 1);
      }
    } else if (ended) {
      connection.writeData(this, null, true);
    }
  }

  boolean localEnded() {
    return ended;
  }

  private ByteBuf frame(Req message) {
    int size = message.getSerializedSize();
    ByteBuf buf = connection.alloc().buffer(PREFIX + size);
    buf.writeByte(0).writeInt(size);
    try {
      CodedOutputStream out = CodedOutputStream.newInstance(buf.nioBuffer(PREFIX, size));
      message.writeTo(out);
      out.checkNoSpaceLeft();
    } catch (IOException e) {
      buf.release();
      throw new UncheckedIOException(e);
    }
    return buf.writerIndex(PREFIX + size);
  }

  void headers(Http2Headers headers, boolean endOfStream) {
    if (!headersReceived) {
      headersReceived = true;
      CharSequence status = headers.status();
      if (status == null || !"200".contentEquals(status)) {
        // grpc-go's words for a server that is not speaking gRPC on this path.
        fail(new RpcError(Code.UNKNOWN, "unexpected HTTP status code received from server: " + status));
        return;
      }
      if (!endOfStream) {
        return;
      }
    }
    // Trailers, or a response of trailers only: the status of the call.
    CharSequence code = headers.get("grpc-status");
    if (code == null) {
      fail(new RpcError(Code.INTERNAL, "server closed the stream without sending trailers"));
      return;
    }
    int number;
    try {
      number = Integer.parseInt(code.toString());
    } catch (NumberFormatException e) {
      number = Code.UNKNOWN.ordinal();
    }
    if (number == 0) {
      finish(null);
    } else {
      CharSequence message = headers.get("grpc-message");
      fail(new RpcError(Code.of(number), message == null ? "" : percentDecoded(message.toString())));
    }
  }

  /** Reads the gRPC messages in one DATA frame; a message may span frames. */
  void data(ByteBuf data, ByteBufAllocator alloc) {
    if (done) {
      return;
    }
    ByteBuf from = data;
    if (partial != null) {
      partial.writeBytes(data);
      from = partial;
    }
    while (!done && from.readableBytes() >= PREFIX) {
      int at = from.readerIndex();
      int size = from.getInt(at + 1);
      if (from.readableBytes() < PREFIX + size) {
        break;
      }
      if (from.getByte(at) != 0) {
        // This tool never offers compression (no grpc-accept-encoding), so a server must not use it.
        fail(new RpcError(Code.INTERNAL, "grpc: compressed message received, but no compression was negotiated"));
        break;
      }
      Resp message;
      try {
        message = method.responses().parseFrom(from.nioBuffer(at + PREFIX, size));
      } catch (InvalidProtocolBufferException e) {
        fail(new RpcError(Code.INTERNAL, "grpc: failed to unmarshal the received message " + e.getMessage()));
        break;
      }
      from.skipBytes(PREFIX + size);
      listener.message(message);
    }
    if (done) {
      release();
    } else if (from == partial) {
      if (!partial.isReadable()) {
        release();
      } else {
        partial.discardReadBytes();
      }
    } else if (from.isReadable()) {
      partial = alloc.heapBuffer(Math.max(256, from.readableBytes()));
      partial.writeBytes(from);
    }
  }

  /** Ends the call with an error (from the server, the connection or a deadline). */
  void fail(Throwable error) {
    finish(error);
  }

  private void finish(Throwable error) {
    if (done) {
      return;
    }
    done = true;
    release();
    connection.finished(this, error != null || !ended);
    listener.closed(error);
  }

  boolean done() {
    return done;
  }

  private void release() {
    if (partial != null) {
      partial.release();
      partial = null;
    }
  }

  /** grpc-message is percent-encoded (gRPC over HTTP/2); '+' is a plus there, not a space. */
  private static String percentDecoded(String message) {
    if (message.indexOf('%') < 0) {
      return message;
    }
    try {
      return URLDecoder.decode(message.replace("+", "%2B"), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return message;
    }
  }
}
