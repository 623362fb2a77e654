package io.vetcd.api;

import com.google.protobuf.InvalidProtocolBufferException;
import io.netty.util.AsciiString;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import java.nio.charset.StandardCharsets;

/**
 * gRPC's wire as grpc-go (etcd's server) speaks it, for the calls vetcd frames itself ({@link KvHttp2}
 * on Netty's frames, {@link WatchHttp2} on Vert.x's HTTP/2): each message is a flag byte (compressed
 * or not), a 4-byte big-endian length and the protobuf; a call ends with trailers carrying grpc-status
 * and grpc-message. The refusals are grpc-go's words, which Go clients match.
 */
final class GrpcWire {

  /** A message's prefix: the compressed flag and the length. */
  static final int PREFIX = 5;
  static final AsciiString STATUS = AsciiString.of("grpc-status");
  static final AsciiString MESSAGE = AsciiString.of("grpc-message");
  static final AsciiString ENCODING = AsciiString.of("grpc-encoding");
  private static final AsciiString IDENTITY = AsciiString.of("identity");

  private GrpcWire() {}

  /**
   * Why a received message with this prefix is refused, or null if it is not: too large (checked
   * first, as grpc-go reads the prefix), or compressed (etcd's server installs no decompressor).
   */
  static StatusException refusal(byte compressedFlag, long length, CharSequence encoding, long maxMessageBytes) {
    if (length > maxMessageBytes) {
      return new StatusException(GrpcStatus.RESOURCE_EXHAUSTED,
          "grpc: received message larger than max (" + length + " vs. " + maxMessageBytes + ")");
    }
    if (compressedFlag != 0) {
      if (encoding == null || encoding.length() == 0 || IDENTITY.contentEquals(encoding)) {
        return new StatusException(GrpcStatus.INTERNAL, "grpc: compressed flag set with identity or empty encoding");
      }
      return new StatusException(GrpcStatus.UNIMPLEMENTED,
          "grpc: Decompressor is not installed for grpc-encoding \"" + encoding + "\"");
    }
    return null;
  }

  /** grpc-go's words for a unary request that does not parse. */
  static StatusException badUnaryRequest(InvalidProtocolBufferException e) {
    return new StatusException(GrpcStatus.INTERNAL, "grpc: error unmarshalling request: " + GrpcErrors.goReason(e));
  }

  /** grpc-go's words for a streamed message that does not parse. */
  static StatusException badStreamedMessage(InvalidProtocolBufferException e) {
    return new StatusException(GrpcStatus.INTERNAL,
        "grpc: failed to unmarshal the received message " + GrpcErrors.goReason(e));
  }

  /** grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself. */
  static String percentEncoded(String message) {
    StringBuilder out = new StringBuilder(message.length());
    for (byte b : message.getBytes(StandardCharsets.UTF_8)) {
      if (b >= 0x20 && b <= 0x7e && b != '%') {
        out.append((char) b);
      } else {
        out.append('%').append(String.format("%02X", b & 0xff));
      }
    }
    return out.toString();
  }
}
