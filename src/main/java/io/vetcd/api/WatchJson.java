package io.vetcd.api;

import com.google.protobuf.ByteString;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import io.vetcd.proto.mvccpb.KeyValue;
import java.util.Base64;

/**
 * Watch messages as JSON, shaped as etcd's JSON gateway shapes them (protobuf's JSON mapping with the
 * proto's own field names): 64-bit integers as strings, bytes as base64, fields at their default
 * value left out, each response wrapped as {@code {"result": ...}}. Requests are read leniently, as
 * the gateway reads them: snake_case or lowerCamelCase names, numbers as strings or numbers.
 *
 * <p>In UTF-8 mode (vetcd's own, for browsers) keys, range ends and values are plain strings instead
 * of base64.
 */
final class WatchJson {

  private WatchJson() {}

  /** A request the JSON does not describe. */
  static final class BadRequest extends RuntimeException {
    BadRequest(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * The watch request a JSON text describes, decoded as the gateway decodes every request (Go's words
   * for what is malformed or mistyped, which etcd's WebSocket and POST answer with, code 2); unlike
   * etcd, which leaves a request with none of create_request, cancel_request and progress_request
   * unanswered, vetcd says what is missing.
   */
  static WatchRequest request(String text, boolean utf8) {
    WatchRequest request;
    try {
      request = (WatchRequest) JsonGateway.parse(WatchRequest.getDefaultInstance(),
          io.vertx.core.buffer.Buffer.buffer(text), utf8);
    } catch (JsonGateway.BadJson e) {
      throw new BadRequest(e.getMessage());
    }
    if (request.getRequestUnionCase() == WatchRequest.RequestUnionCase.REQUESTUNION_NOT_SET) {
      throw new BadRequest("a watch request needs create_request, cancel_request or progress_request");
    }
    return request;
  }

  static String response(WatchResponse r, boolean utf8) {
    JsonObject out = new JsonObject();
    if (r.hasHeader()) {
      out.put("header", header(r.getHeader()));
    }
    putNumber(out, "watch_id", r.getWatchId());
    putTrue(out, "created", r.getCreated());
    putTrue(out, "canceled", r.getCanceled());
    putNumber(out, "compact_revision", r.getCompactRevision());
    if (!r.getCancelReason().isEmpty()) {
      out.put("cancel_reason", r.getCancelReason());
    }
    putTrue(out, "fragment", r.getFragment());
    if (r.getEventsCount() > 0) {
      JsonArray events = new JsonArray();
      for (Event e : r.getEventsList()) {
        JsonObject event = new JsonObject();
        if (e.getType() != Event.EventType.PUT) {
          event.put("type", e.getType().name());
        }
        if (e.hasKv()) {
          event.put("kv", kv(e.getKv(), utf8));
        }
        if (e.hasPrevKv()) {
          event.put("prev_kv", kv(e.getPrevKv(), utf8));
        }
        events.add(event);
      }
      out.put("events", events);
    }
    return new JsonObject().put("result", out).encode();
  }

  /** A refused watch request as etcd's gateway reports it on a watch (code 2: Unknown). */
  static String error(String message) {
    return new JsonObject().put("error", message).put("message", message).put("code", 2).encode();
  }

  /**
   * A watch request over the size limit, in the words and shape etcd's WebSocket proxy uses for an
   * error from the gRPC side (ResourceExhausted, HTTP 429).
   */
  static String tooLarge(long size, long limit) {
    return new JsonObject().put("error", new JsonObject()
        .put("grpc_code", 8)
        .put("http_code", 429)
        .put("message", "grpc: received message larger than max (" + size + " vs. " + limit + ")")
        .put("http_status", "Too Many Requests")).encode();
  }

  private static JsonObject header(ResponseHeader h) {
    JsonObject out = new JsonObject();
    putUnsigned(out, "cluster_id", h.getClusterId());
    putUnsigned(out, "member_id", h.getMemberId());
    putNumber(out, "revision", h.getRevision());
    putUnsigned(out, "raft_term", h.getRaftTerm());
    return out;
  }

  private static JsonObject kv(KeyValue kv, boolean utf8) {
    JsonObject out = new JsonObject();
    putBytes(out, "key", kv.getKey(), utf8);
    putNumber(out, "create_revision", kv.getCreateRevision());
    putNumber(out, "mod_revision", kv.getModRevision());
    putNumber(out, "version", kv.getVersion());
    putBytes(out, "value", kv.getValue(), utf8);
    putNumber(out, "lease", kv.getLease());
    return out;
  }

  private static void putBytes(JsonObject out, String name, ByteString b, boolean utf8) {
    if (!b.isEmpty()) {
      out.put(name, utf8 ? b.toStringUtf8() : Base64.getEncoder().encodeToString(b.toByteArray()));
    }
  }

  private static void putNumber(JsonObject out, String name, long n) {
    if (n != 0) {
      out.put(name, Long.toString(n));
    }
  }

  private static void putUnsigned(JsonObject out, String name, long n) {
    if (n != 0) {
      out.put(name, Long.toUnsignedString(n));
    }
  }

  private static void putTrue(JsonObject out, String name, boolean b) {
    if (b) {
      out.put(name, true);
    }
  }

}
