package io.vetcd.api;

import com.google.protobuf.ByteString;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.WatchCancelRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchProgressRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import io.vetcd.proto.mvccpb.KeyValue;
import java.nio.charset.StandardCharsets;
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

  static WatchRequest request(String text, boolean utf8) {
    JsonObject json;
    try {
      json = new JsonObject(text);
    } catch (RuntimeException e) {
      String detail = String.valueOf(e.getMessage());
      throw new BadRequest("invalid JSON: " + detail.lines().findFirst().orElse(detail));
    }
    JsonObject create = object(json, "create_request", "createRequest");
    JsonObject cancel = object(json, "cancel_request", "cancelRequest");
    JsonObject progress = object(json, "progress_request", "progressRequest");
    if (create != null) {
      WatchCreateRequest.Builder c = WatchCreateRequest.newBuilder()
          .setKey(bytes(create, utf8, "key", "key"))
          .setRangeEnd(bytes(create, utf8, "range_end", "rangeEnd"))
          .setStartRevision(number(create, "start_revision", "startRevision"))
          .setProgressNotify(bool(create, "progress_notify", "progressNotify"))
          .setPrevKv(bool(create, "prev_kv", "prevKv"))
          .setWatchId(number(create, "watch_id", "watchId"))
          .setFragment(bool(create, "fragment", "fragment"));
      Object filters = value(create, "filters", "filters");
      if (filters instanceof JsonArray list) {
        for (Object f : list) {
          c.addFilters(filter(f));
        }
      } else if (filters != null) {
        throw new BadRequest("filters must be a list");
      }
      return WatchRequest.newBuilder().setCreateRequest(c).build();
    }
    if (cancel != null) {
      return WatchRequest.newBuilder()
          .setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(number(cancel, "watch_id", "watchId")))
          .build();
    }
    if (progress != null) {
      return WatchRequest.newBuilder().setProgressRequest(WatchProgressRequest.getDefaultInstance()).build();
    }
    throw new BadRequest("a watch request needs create_request, cancel_request or progress_request");
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

  /** A refused request as etcd's gateway reports it (code 3: InvalidArgument). */
  static String error(String message) {
    return new JsonObject().put("error", message).put("message", message).put("code", 3).encode();
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

  private static Object value(JsonObject json, String name, String camel) {
    return json.containsKey(name) ? json.getValue(name) : json.getValue(camel);
  }

  private static JsonObject object(JsonObject json, String name, String camel) {
    Object v = value(json, name, camel);
    if (v != null && !(v instanceof JsonObject)) {
      throw new BadRequest(name + " must be an object");
    }
    return (JsonObject) v;
  }

  private static ByteString bytes(JsonObject json, boolean utf8, String name, String camel) {
    Object v = value(json, name, camel);
    if (v == null) {
      return ByteString.EMPTY;
    }
    if (!(v instanceof String s)) {
      throw new BadRequest(name + " must be a string");
    }
    if (utf8) {
      return ByteString.copyFrom(s, StandardCharsets.UTF_8);
    }
    try {
      return ByteString.copyFrom(Base64.getDecoder().decode(s));
    } catch (IllegalArgumentException e) {
      throw new BadRequest(name + " is not base64: " + e.getMessage());
    }
  }

  private static long number(JsonObject json, String name, String camel) {
    Object v = value(json, name, camel);
    if (v == null) {
      return 0;
    }
    try {
      return v instanceof Number n ? n.longValue() : Long.parseLong(v.toString());
    } catch (NumberFormatException e) {
      throw new BadRequest(name + " is not a number: " + v);
    }
  }

  private static boolean bool(JsonObject json, String name, String camel) {
    Object v = value(json, name, camel);
    if (v == null) {
      return false;
    }
    if (v instanceof Boolean b) {
      return b;
    }
    throw new BadRequest(name + " must be true or false");
  }

  private static WatchCreateRequest.FilterType filter(Object f) {
    if (f instanceof Number n && n.intValue() >= 0 && n.intValue() <= 1) {
      return WatchCreateRequest.FilterType.forNumber(n.intValue());
    }
    if ("NOPUT".equals(f)) {
      return WatchCreateRequest.FilterType.NOPUT;
    }
    if ("NODELETE".equals(f)) {
      return WatchCreateRequest.FilterType.NODELETE;
    }
    throw new BadRequest("unknown filter " + f + " (NOPUT or NODELETE)");
  }
}
