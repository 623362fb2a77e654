package io.vetcd.api;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.proto.etcdserverpb.AlarmRequest;
import io.vetcd.proto.etcdserverpb.AuthDisableRequest;
import io.vetcd.proto.etcdserverpb.AuthEnableRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleAddRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleDeleteRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleGetRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleGrantPermissionRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleListRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleRevokePermissionRequest;
import io.vetcd.proto.etcdserverpb.AuthUserAddRequest;
import io.vetcd.proto.etcdserverpb.AuthUserChangePasswordRequest;
import io.vetcd.proto.etcdserverpb.AuthUserDeleteRequest;
import io.vetcd.proto.etcdserverpb.AuthUserGetRequest;
import io.vetcd.proto.etcdserverpb.AuthUserGrantRoleRequest;
import io.vetcd.proto.etcdserverpb.AuthUserListRequest;
import io.vetcd.proto.etcdserverpb.AuthUserRevokeRoleRequest;
import io.vetcd.proto.etcdserverpb.AuthenticateRequest;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.DefragmentRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.HashKVRequest;
import io.vetcd.proto.etcdserverpb.HashRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveResponse;
import io.vetcd.proto.etcdserverpb.LeaseLeasesRequest;
import io.vetcd.proto.etcdserverpb.LeaseRevokeRequest;
import io.vetcd.proto.etcdserverpb.LeaseTimeToLiveRequest;
import io.vetcd.proto.etcdserverpb.MemberAddRequest;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.MemberPromoteRequest;
import io.vetcd.proto.etcdserverpb.MemberRemoveRequest;
import io.vetcd.proto.etcdserverpb.MemberUpdateRequest;
import io.vetcd.proto.etcdserverpb.MoveLeaderRequest;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.SnapshotRequest;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.server.EtcdError;
import io.vetcd.server.LocalMember;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * etcd's JSON gateway (grpc-gateway, as etcd 3.4 mounts it under {@code /v3/} and {@code /v3beta/}):
 * every KV, Lease, Cluster and Maintenance call as a {@code POST} of the request in protobuf's JSON
 * mapping, answered by the same code as the gRPC call, in the same mapping as etcd writes it (the
 * proto's field names, 64-bit integers as strings, bytes as base64, enums by name, fields at their
 * default value left out). Streams (lease keep-alive, snapshot) answer one {@code {"result": ...}}
 * line per message, as the gateway does; the watch has its own handler (WatchSocket).
 *
 * <p>Errors are the gateway's: {@code {"error": m, "message": m, "code": c}} with the HTTP status
 * grpc-gateway gives gRPC code {@code c}. Beyond etcd: {@code ?encoding=utf8} reads and writes every
 * bytes field (keys, values, range ends) as a plain string, as the watch endpoint does.
 */
final class JsonGateway {

  /** A unary call: its request type and the service method that answers it. */
  private record Unary(Message prototype, Function<Message, Future<? extends Message>> call, boolean learnerServes,
      io.vetcd.metrics.GrpcServerMetrics.Method metrics) {}

  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().preservingProtoFieldNames()
      .omittingInsignificantWhitespace();

  private final Vertx vertx;
  private final LocalMember member;
  private final MaintenanceGrpc maintenance;
  private final Map<String, Unary> unary = new LinkedHashMap<>();
  private final long maxBodyBytes;

  JsonGateway(Vertx vertx, LocalMember member, KvGrpc kv, LeaseGrpc lease, ClusterGrpc cluster,
      MaintenanceGrpc maintenance, AuthGrpc auth) {
    this.vertx = vertx;
    this.member = member;
    this.maintenance = maintenance;
    this.maxBodyBytes = 2 * (member.config().maxRequestBytes() + ClientServer.GRPC_OVERHEAD_BYTES);
    // The paths are etcd 3.4's (rpc.proto's google.api.http options).
    add("kv/range", "/etcdserverpb.KV/Range", RangeRequest.getDefaultInstance(), r -> kv.range((RangeRequest) r));
    add("kv/put", "/etcdserverpb.KV/Put", PutRequest.getDefaultInstance(), r -> kv.put((PutRequest) r));
    add("kv/deleterange", "/etcdserverpb.KV/DeleteRange", DeleteRangeRequest.getDefaultInstance(), r -> kv.deleteRange((DeleteRangeRequest) r));
    add("kv/txn", "/etcdserverpb.KV/Txn", TxnRequest.getDefaultInstance(), r -> kv.txn((TxnRequest) r));
    add("kv/compaction", "/etcdserverpb.KV/Compact", CompactionRequest.getDefaultInstance(), r -> kv.compact((CompactionRequest) r));
    add("lease/grant", "/etcdserverpb.Lease/LeaseGrant", LeaseGrantRequest.getDefaultInstance(), r -> lease.leaseGrant((LeaseGrantRequest) r));
    for (String path : new String[] {"lease/revoke", "kv/lease/revoke"}) {
      add(path, "/etcdserverpb.Lease/LeaseRevoke", LeaseRevokeRequest.getDefaultInstance(), r -> lease.leaseRevoke((LeaseRevokeRequest) r));
    }
    for (String path : new String[] {"lease/timetolive", "kv/lease/timetolive"}) {
      add(path, "/etcdserverpb.Lease/LeaseTimeToLive", LeaseTimeToLiveRequest.getDefaultInstance(),
          r -> lease.leaseTimeToLive((LeaseTimeToLiveRequest) r));
    }
    for (String path : new String[] {"lease/leases", "kv/lease/leases"}) {
      add(path, "/etcdserverpb.Lease/LeaseLeases", LeaseLeasesRequest.getDefaultInstance(), r -> lease.leaseLeases((LeaseLeasesRequest) r));
    }
    add("cluster/member/add", "/etcdserverpb.Cluster/MemberAdd", MemberAddRequest.getDefaultInstance(), r -> cluster.memberAdd((MemberAddRequest) r));
    add("cluster/member/remove", "/etcdserverpb.Cluster/MemberRemove", MemberRemoveRequest.getDefaultInstance(),
        r -> cluster.memberRemove((MemberRemoveRequest) r));
    add("cluster/member/update", "/etcdserverpb.Cluster/MemberUpdate", MemberUpdateRequest.getDefaultInstance(),
        r -> cluster.memberUpdate((MemberUpdateRequest) r));
    add("cluster/member/list", "/etcdserverpb.Cluster/MemberList", MemberListRequest.getDefaultInstance(), r -> cluster.memberList((MemberListRequest) r));
    add("cluster/member/promote", "/etcdserverpb.Cluster/MemberPromote", MemberPromoteRequest.getDefaultInstance(),
        r -> cluster.memberPromote((MemberPromoteRequest) r));
    add("maintenance/alarm", "/etcdserverpb.Maintenance/Alarm", AlarmRequest.getDefaultInstance(), r -> maintenance.alarm((AlarmRequest) r));
    add("maintenance/status", "/etcdserverpb.Maintenance/Status", StatusRequest.getDefaultInstance(), r -> maintenance.status((StatusRequest) r));
    add("maintenance/defragment", "/etcdserverpb.Maintenance/Defragment", DefragmentRequest.getDefaultInstance(),
        r -> maintenance.defragment((DefragmentRequest) r));
    add("maintenance/hash", "/etcdserverpb.Maintenance/Hash", HashRequest.getDefaultInstance(), r -> maintenance.hash((HashRequest) r));
    add("maintenance/hashkv", "/etcdserverpb.Maintenance/HashKV", HashKVRequest.getDefaultInstance(), r -> maintenance.hashKV((HashKVRequest) r));
    add("auth/enable", "/etcdserverpb.Auth/AuthEnable", AuthEnableRequest.getDefaultInstance(),
        r -> auth.authEnable((AuthEnableRequest) r));
    add("auth/disable", "/etcdserverpb.Auth/AuthDisable", AuthDisableRequest.getDefaultInstance(),
        r -> auth.authDisable((AuthDisableRequest) r));
    add("auth/authenticate", "/etcdserverpb.Auth/Authenticate", AuthenticateRequest.getDefaultInstance(),
        r -> auth.authenticate((AuthenticateRequest) r));
    add("auth/user/add", "/etcdserverpb.Auth/UserAdd", AuthUserAddRequest.getDefaultInstance(),
        r -> auth.userAdd((AuthUserAddRequest) r));
    add("auth/user/get", "/etcdserverpb.Auth/UserGet", AuthUserGetRequest.getDefaultInstance(),
        r -> auth.userGet((AuthUserGetRequest) r));
    add("auth/user/list", "/etcdserverpb.Auth/UserList", AuthUserListRequest.getDefaultInstance(),
        r -> auth.userList((AuthUserListRequest) r));
    add("auth/user/delete", "/etcdserverpb.Auth/UserDelete", AuthUserDeleteRequest.getDefaultInstance(),
        r -> auth.userDelete((AuthUserDeleteRequest) r));
    add("auth/user/changepw", "/etcdserverpb.Auth/UserChangePassword", AuthUserChangePasswordRequest.getDefaultInstance(),
        r -> auth.userChangePassword((AuthUserChangePasswordRequest) r));
    add("auth/user/grant", "/etcdserverpb.Auth/UserGrantRole", AuthUserGrantRoleRequest.getDefaultInstance(),
        r -> auth.userGrantRole((AuthUserGrantRoleRequest) r));
    add("auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole", AuthUserRevokeRoleRequest.getDefaultInstance(),
        r -> auth.userRevokeRole((AuthUserRevokeRoleRequest) r));
    add("auth/role/add", "/etcdserverpb.Auth/RoleAdd", AuthRoleAddRequest.getDefaultInstance(),
        r -> auth.roleAdd((AuthRoleAddRequest) r));
    add("auth/role/get", "/etcdserverpb.Auth/RoleGet", AuthRoleGetRequest.getDefaultInstance(),
        r -> auth.roleGet((AuthRoleGetRequest) r));
    add("auth/role/list", "/etcdserverpb.Auth/RoleList", AuthRoleListRequest.getDefaultInstance(),
        r -> auth.roleList((AuthRoleListRequest) r));
    add("auth/role/delete", "/etcdserverpb.Auth/RoleDelete", AuthRoleDeleteRequest.getDefaultInstance(),
        r -> auth.roleDelete((AuthRoleDeleteRequest) r));
    add("auth/role/grant", "/etcdserverpb.Auth/RoleGrantPermission", AuthRoleGrantPermissionRequest.getDefaultInstance(),
        r -> auth.roleGrantPermission((AuthRoleGrantPermissionRequest) r));
    add("auth/role/revoke", "/etcdserverpb.Auth/RoleRevokePermission", AuthRoleRevokePermissionRequest.getDefaultInstance(),
        r -> auth.roleRevokePermission((AuthRoleRevokePermissionRequest) r));
    add("maintenance/transfer-leadership", "/etcdserverpb.Maintenance/MoveLeader", MoveLeaderRequest.getDefaultInstance(),
        r -> maintenance.moveLeader((MoveLeaderRequest) r));
  }

  /** {@code grpcMethod}: the gRPC call it is, counted in grpc_server_* as etcd's gateway calls are. */
  private void add(String path, String grpcMethod, Message prototype, Function<Message, Future<? extends Message>> call) {
    // A learner serves what its gRPC port serves: the same rule decides (ClientServer.servedByLearner).
    unary.put(path, new Unary(prototype, call, ClientServer.servedByLearner(grpcMethod),
        io.vetcd.metrics.GrpcServerMetrics.of(grpcMethod)));
  }

  /** Mounts the gateway on {@code router}, under each of etcd's prefixes. */
  void mount(Router router) {
    router.routeWithRegex("/v3(beta)?/(.+)").handler(this::handle);
  }

  private void handle(RoutingContext ctx) {
    String path = ctx.pathParam("param1");
    if ("watch".equals(path)) {
      ctx.next(); // the watch's own handler
      return;
    }
    boolean known = unary.containsKey(path) || "lease/keepalive".equals(path) || "maintenance/snapshot".equals(path);
    if (!known) {
      notFound(ctx);
      return;
    }
    if (ctx.request().method() == io.vertx.core.http.HttpMethod.OPTIONS) {
      ctx.response().end(); // grpc-gateway answers a preflight with an empty 200
      return;
    }
    if (ctx.request().method() != io.vertx.core.http.HttpMethod.POST) {
      methodNotAllowed(ctx);
      return;
    }
    boolean utf8 = "utf8".equals(ctx.request().getParam("encoding"));
    Unary call = unary.get(path);
    if (member.isLearner() && (call == null || !call.learnerServes())) {
      // etcd's interceptors refuse these on a learner before the call (KV and Status decide themselves).
      fail(ctx.response(), new StatusException(EtcdError.NOT_SUPPORTED_FOR_LEARNER.status(),
          EtcdError.NOT_SUPPORTED_FOR_LEARNER.message()));
      return;
    }
    readBody(ctx).onSuccess(body -> {
      if (call != null) {
        unary(ctx.response(), call, body, utf8, ctx.request().getHeader(AUTHORIZATION));
      } else if ("lease/keepalive".equals(path)) {
        keepAlive(ctx.response(), body, utf8);
      } else {
        snapshot(ctx.response(), body, utf8, ctx.request().getHeader(AUTHORIZATION));
      }
    });
  }

  /**
   * The request body, up to the size a gRPC message may have here (twice --max-request-bytes and gRPC's
   * allowance, as the gRPC port reads): a bigger one is refused with grpc-go's ResourceExhausted
   * rather than buffered whole.
   */
  private Future<Buffer> readBody(RoutingContext ctx) {
    long limit = maxBodyBytes;
    io.vertx.core.Promise<Buffer> body = io.vertx.core.Promise.promise();
    Buffer received = Buffer.buffer();
    var request = ctx.request();
    request.handler(chunk -> {
      if (body.future().isComplete()) {
        return;
      }
      received.appendBuffer(chunk);
      if (received.length() > limit) {
        fail(ctx.response(), new StatusException(GrpcStatus.RESOURCE_EXHAUSTED,
            "grpc: received message larger than max (" + received.length() + "+ vs. " + limit + ")"));
        body.tryFail("too large");
        request.connection().close(); // what else it sends is not read
      }
    });
    request.endHandler(v -> body.tryComplete(received));
    request.exceptionHandler(body::tryFail);
    request.resume(); // the router holds a request's body until a handler takes it
    return body.future();
  }

  /**
   * The header that carries a token through etcd's gateway (its "authorization" metadata). A client
   * certificate never names the caller here: etcd ignores its common name on gateway calls.
   */
  private static final String AUTHORIZATION = "Authorization";

  private void unary(HttpServerResponse response, Unary call, Buffer body, boolean utf8, String token) {
    Message request;
    try {
      request = parse(call.prototype(), body, utf8);
    } catch (BadJson e) {
      fail(response, new StatusException(GrpcStatus.INVALID_ARGUMENT, e.getMessage()));
      return;
    }
    long start = call.metrics() == null ? 0 : call.metrics().started();
    GrpcErrors.call(() -> Callers.with(token, null, () -> call.call().apply(request))).onComplete(ar -> {
      if (call.metrics() != null) {
        call.metrics().handled(ar.succeeded() ? 0 : GrpcErrors.toStatus(ar.cause()).status().code, start);
      }
      if (ar.failed()) {
        fail(response, GrpcErrors.toStatus(ar.cause()));
        return;
      }
      String text;
      try {
        text = print(ar.result(), utf8);
      } catch (RuntimeException e) {
        fail(response, GrpcErrors.toStatus(e)); // answered, never left hanging
        return;
      }
      response.putHeader("content-type", "application/json")
          .putHeader("grpc-metadata-content-type", "application/grpc").end(text);
    });
  }

  /**
   * Lease keep-alive: each request object of the body (one after another, as grpc-gateway reads a
   * client stream) is answered in order, one {@code {"result": ...}} line each, then the stream ends.
   */
  private void keepAlive(HttpServerResponse response, Buffer body, boolean utf8) {
    java.util.List<Message> requests;
    try {
      requests = parseStream(LeaseKeepAliveRequest.getDefaultInstance(), body, utf8);
    } catch (BadJson e) {
      // A stream's malformed first message is the gateway's own failure: Unknown, not InvalidArgument.
      fail(response, new StatusException(GrpcStatus.UNKNOWN, e.getMessage()));
      return;
    }
    response.setChunked(true).putHeader("content-type", "application/json");
    Future<Void> done = Future.succeededFuture();
    for (Message m : requests) {
      long id = ((LeaseKeepAliveRequest) m).getID();
      done = done.compose(v -> member.renewLease(id).map(ttl -> {
        LeaseKeepAliveResponse reply = LeaseKeepAliveResponse.newBuilder()
            .setHeader(member.header(member.watches().revision())).setID(id).setTTL(Math.max(0, ttl)).build();
        response.write(result(reply, utf8));
        return null;
      }));
    }
    done.onSuccess(v -> response.end()).onFailure(e -> response.end(error(GrpcErrors.toStatus(e)) + "\n"));
  }

  /** The snapshot stream, one {@code {"result": ...}} line per 32 KiB chunk (blob in base64). */
  private void snapshot(HttpServerResponse response, Buffer body, boolean utf8, String token) {
    try {
      parse(SnapshotRequest.getDefaultInstance(), body, utf8);
    } catch (BadJson e) {
      fail(response, new StatusException(GrpcStatus.INVALID_ARGUMENT, e.getMessage()));
      return;
    }
    try {
      Callers.with(token, null, maintenance::admin); // root's, with auth enabled: refused before the stream starts
    } catch (StatusException denied) {
      fail(response, denied);
      return;
    }
    response.setChunked(true).putHeader("content-type", "application/json");
    Callers.with(token, null, () -> {
      maintenance.snapshot(SnapshotRequest.getDefaultInstance(),
          new JsonLines<io.vetcd.proto.etcdserverpb.SnapshotResponse>(response, m -> result(m, false)));
      return null;
    });
  }

  // ---------------------------------------------------------------- JSON both ways

  /** The body is not a request of that type. */
  static final class BadJson extends Exception {
    BadJson(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * The request the body's first JSON value describes (grpc-gateway ignores what follows it); an empty
   * body or {@code null} is an empty request. Malformed and mistyped bodies are refused with the words
   * of Go's encoding/json and jsonpb, which etcd's gateway answers with.
   */
  static Message parse(Message prototype, Buffer body, boolean utf8) throws BadJson {
    Message.Builder b = prototype.newBuilderForType();
    Object tree = firstValue(body);
    if (tree == null) {
      return b.build();
    }
    if (!(tree instanceof JsonObject object)) {
      throw new BadJson("json: cannot unmarshal " + goKind(tree) + " into Go value of type map[string]json.RawMessage");
    }
    Descriptor type = prototype.getDescriptorForType();
    if (utf8) {
      bytesToBase64(object, type);
    }
    checkTypes(object, type);
    try {
      PARSER.merge(object.encode(), b);
      return b.build();
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      throw new BadJson(String.valueOf(e.getMessage()));
    }
  }

  /** The body's first JSON value (a JsonObject, JsonArray, String, Number, Boolean), or null if none. */
  private static Object firstValue(Buffer body) throws BadJson {
    byte[] bytes = body.getBytes();
    String literal = brokenLiteral(body.toString(StandardCharsets.UTF_8).strip());
    if (literal != null) {
      throw new BadJson(literal);
    }
    try (com.fasterxml.jackson.core.JsonParser p = new com.fasterxml.jackson.core.JsonFactory().createParser(bytes)) {
      com.fasterxml.jackson.core.JsonToken token = p.nextToken();
      if (token == null || token == com.fasterxml.jackson.core.JsonToken.VALUE_NULL) {
        return null;
      }
      if (token != com.fasterxml.jackson.core.JsonToken.START_OBJECT) {
        // Only the kind matters: anything but an object is refused.
        return switch (token) {
          case START_ARRAY -> new JsonArray();
          case VALUE_STRING -> "";
          case VALUE_TRUE, VALUE_FALSE -> Boolean.TRUE;
          default -> 0;
        };
      }
      int start = (int) p.currentTokenLocation().getByteOffset();
      p.skipChildren();
      int end = (int) p.currentLocation().getByteOffset();
      return new JsonObject(body.slice(start, end));
    } catch (java.io.IOException | io.vertx.core.json.DecodeException e) {
      throw new BadJson(goSyntaxError(e, bytes));
    }
  }

  /**
   * Go's words for a body that begins as {@code null}, {@code true} or {@code false} and is not: cut
   * short ("unexpected EOF") or misspelt ("invalid character 'o' in literal null (expecting 'u')");
   * null if it is not such a body.
   */
  private static String brokenLiteral(String text) {
    for (String literal : new String[] {"null", "true", "false"}) {
      if (text.isEmpty() || text.charAt(0) != literal.charAt(0) || text.startsWith(literal)) {
        continue;
      }
      for (int i = 1; i < literal.length(); i++) {
        if (i == text.length()) {
          return "unexpected EOF";
        }
        if (text.charAt(i) != literal.charAt(i)) {
          return "invalid character " + goChar((byte) text.charAt(i)) + " in literal " + literal
              + " (expecting '" + literal.charAt(i) + "')";
        }
      }
    }
    return null;
  }

  /** Go's words for a syntax error: a body cut short is "unexpected EOF", else the character it met. */
  private static final java.util.regex.Pattern UNRECOGNIZED_TOKEN =
      java.util.regex.Pattern.compile("^Unrecognized token '(.)");

  private static String goSyntaxError(Exception e, byte[] body) {
    String m = String.valueOf(e.getMessage());
    if (m.contains("end-of-input") || m.contains("End-of-input") || m.contains("EOF")) {
      return "unexpected EOF";
    }
    // Jackson reads a bad token to its end ("Unrecognized token 'junk'"); Go stops at its first byte.
    java.util.regex.Matcher token = UNRECOGNIZED_TOKEN.matcher(m);
    if (token.find() && token.group(1).charAt(0) < 0x80 && "tfn-0123456789".indexOf(token.group(1).charAt(0)) < 0) {
      return "invalid character " + goChar((byte) token.group(1).charAt(0)) + " looking for beginning of value";
    }
    if (e instanceof com.fasterxml.jackson.core.JsonProcessingException j && j.getLocation() != null) {
      long at = j.getLocation().getByteOffset();
      if (at >= 1 && at <= body.length) {
        return "invalid character " + goChar(body[(int) at - 1]) + " looking for beginning of value";
      }
    }
    return m.lines().findFirst().orElse(m);
  }

  private static String goChar(byte c) {
    return c >= 0x20 && c < 0x7f ? "'" + (char) c + "'" : String.format("'\\x%02x'", c & 0xff);
  }

  private static String goKind(Object v) {
    if (v instanceof JsonObject) {
      return "object";
    } else if (v instanceof JsonArray) {
      return "array";
    } else if (v instanceof String) {
      return "string";
    } else if (v instanceof Boolean) {
      return "bool";
    }
    return "number";
  }

  /** Refuses, in jsonpb's words, a value whose JSON type its field cannot take. */
  private static void checkTypes(JsonObject o, Descriptor type) throws BadJson {
    for (FieldDescriptor f : type.getFields()) {
      for (String name : names(f)) {
        Object v = o.getValue(name);
        if (v == null) {
          continue;
        }
        if (f.isRepeated()) {
          if (!(v instanceof JsonArray list)) {
            throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type []json.RawMessage");
          }
          for (Object e : list) {
            checkValue(f, e);
          }
        } else {
          checkValue(f, v);
        }
      }
    }
  }

  private static void checkValue(FieldDescriptor f, Object v) throws BadJson {
    switch (f.getJavaType()) {
      case BYTE_STRING -> {
        if (!(v instanceof String s)) {
          throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type []uint8");
        }
        int bad = badBase64(s);
        if (bad >= 0) {
          throw new BadJson("illegal base64 data at input byte " + bad);
        }
      }
      case BOOLEAN -> {
        if (!(v instanceof Boolean)) {
          throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type bool");
        }
      }
      case STRING -> {
        if (!(v instanceof String)) {
          throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type string");
        }
      }
      case LONG, INT -> {
        String goType = goIntType(f);
        String text;
        if (v instanceof Number n) {
          text = n.toString();
        } else if (v instanceof String s) {
          // jsonpb reads a quoted integer as the JSON text inside the quotes.
          if (s.isEmpty() || !(Character.isDigit(s.charAt(0)) || s.charAt(0) == '-')) {
            throw new BadJson(s.isEmpty() ? "unexpected end of JSON input"
                : "invalid character " + goChar((byte) s.charAt(0)) + " looking for beginning of value");
          }
          text = s;
        } else {
          throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type " + goType);
        }
        if (!fits(text, goType)) {
          throw new BadJson("json: cannot unmarshal number " + text + " into Go value of type " + goType);
        }
      }
      case ENUM -> {
        if (v instanceof String s) {
          if (f.getEnumType().findValueByName(s) == null) {
            String goName = f.getEnumType().getFile().getPackage() + "."
                + f.getEnumType().getFullName().substring(f.getEnumType().getFile().getPackage().length() + 1).replace('.', '_');
            throw new BadJson("unknown value \"" + s + "\" for enum " + goName);
          }
        } else if (!(v instanceof Number)) {
          throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type int32");
        }
      }
      case MESSAGE -> {
        if (!(v instanceof JsonObject child)) {
          throw new BadJson("json: cannot unmarshal " + goKind(v) + " into Go value of type map[string]json.RawMessage");
        }
        checkTypes(child, f.getMessageType());
      }
      default -> { }
    }
  }

  private static String goIntType(FieldDescriptor f) {
    return switch (f.getType()) {
      case UINT64, FIXED64 -> "uint64";
      case UINT32, FIXED32 -> "uint32";
      case INT32, SINT32, SFIXED32 -> "int32";
      default -> "int64";
    };
  }

  private static boolean fits(String text, String goType) {
    try {
      java.math.BigInteger n = new java.math.BigInteger(text);
      java.math.BigInteger min = switch (goType) {
        case "uint64", "uint32" -> java.math.BigInteger.ZERO;
        case "int32" -> java.math.BigInteger.valueOf(Integer.MIN_VALUE);
        default -> java.math.BigInteger.valueOf(Long.MIN_VALUE);
      };
      java.math.BigInteger max = switch (goType) {
        case "uint64" -> java.math.BigInteger.ONE.shiftLeft(64).subtract(java.math.BigInteger.ONE);
        case "uint32" -> java.math.BigInteger.valueOf(0xFFFFFFFFL);
        case "int32" -> java.math.BigInteger.valueOf(Integer.MAX_VALUE);
        default -> java.math.BigInteger.valueOf(Long.MAX_VALUE);
      };
      return n.compareTo(min) >= 0 && n.compareTo(max) <= 0;
    } catch (NumberFormatException e) {
      return false;
    }
  }

  /**
   * Where Go's strict, padded standard base64 decoder stops on {@code s}, or -1 if it decodes: the
   * first character outside the alphabet, or the start of an incomplete last group.
   */
  private static int badBase64(String s) {
    int n = s.length();
    for (int i = 0; i < n; i++) {
      char c = s.charAt(i);
      boolean alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
      boolean padding = c == '=' && i >= n - 2 && n % 4 == 0 && (i == n - 1 || s.charAt(n - 1) == '=');
      if (!alphabet && !padding) {
        return i;
      }
    }
    return n % 4 == 0 ? -1 : n - n % 4;
  }

  /** Several request objects one after another (a client stream's body). */
  private static java.util.List<Message> parseStream(Message prototype, Buffer body, boolean utf8) throws BadJson {
    java.util.List<Message> out = new java.util.ArrayList<>();
    com.fasterxml.jackson.core.JsonFactory factory = new com.fasterxml.jackson.core.JsonFactory();
    byte[] bytes = body.getBytes();
    try (com.fasterxml.jackson.core.JsonParser p = factory.createParser(bytes)) {
      while (p.nextToken() != null) {
        int start = (int) p.currentTokenLocation().getByteOffset();
        p.skipChildren();
        int end = (int) p.currentLocation().getByteOffset();
        out.add(parse(prototype, body.slice(start, end), utf8));
      }
    } catch (java.io.IOException e) {
      throw new BadJson(goSyntaxError(e, bytes));
    }
    return out;
  }

  static String print(Message m, boolean utf8) {
    try {
      String json = PRINTER.print(m);
      return utf8 ? base64ToText(new JsonObject(json), m.getDescriptorForType()).encode() : json;
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("a response does not print as JSON", e);
    }
  }

  private static String result(Message m, boolean utf8) {
    return "{\"result\":" + print(m, utf8) + "}\n";
  }

  /** The names a field may have in JSON: the proto's, and protobuf's lowerCamelCase one if it differs. */
  private static String[] names(FieldDescriptor f) {
    return f.getName().equals(f.getJsonName()) ? new String[] {f.getName()} : new String[] {f.getName(), f.getJsonName()};
  }

  /** In UTF-8 mode, every bytes field given as a plain string becomes base64 for the parser. */
  private static JsonObject bytesToBase64(JsonObject o, Descriptor type) {
    return convert(o, type, s -> Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8)));
  }

  /** In UTF-8 mode, every bytes field the printer wrote as base64 becomes its plain string. */
  private static JsonObject base64ToText(JsonObject o, Descriptor type) {
    return convert(o, type, s -> new String(Base64.getDecoder().decode(s), StandardCharsets.UTF_8));
  }

  private static JsonObject convert(JsonObject o, Descriptor type, Function<String, String> bytes) {
    for (FieldDescriptor f : type.getFields()) {
      for (String name : names(f)) {
        Object v = o.getValue(name);
        if (v == null) {
          continue;
        }
        if (f.getType() == FieldDescriptor.Type.BYTES) {
          if (v instanceof String s) {
            o.put(name, bytes.apply(s));
          } else if (v instanceof JsonArray list) {
            JsonArray converted = new JsonArray();
            list.forEach(e -> converted.add(e instanceof String s ? bytes.apply(s) : e));
            o.put(name, converted);
          }
        } else if (f.getType() == FieldDescriptor.Type.MESSAGE) {
          if (v instanceof JsonObject child) {
            convert(child, f.getMessageType(), bytes);
          } else if (v instanceof JsonArray list) {
            list.forEach(e -> {
              if (e instanceof JsonObject child) {
                convert(child, f.getMessageType(), bytes);
              }
            });
          }
        }
      }
    }
    return o;
  }

  // ---------------------------------------------------------------- errors

  /** grpc-gateway's HTTP status for a gRPC code (runtime.HTTPStatusFromCode). */
  static int httpStatus(GrpcStatus status) {
    return switch (status) {
      case OK -> 200;
      case CANCELLED -> 408;
      case INVALID_ARGUMENT, OUT_OF_RANGE -> 400;
      case FAILED_PRECONDITION -> 412; // etcd's grpc-gateway (v1.9) still maps it so
      case DEADLINE_EXCEEDED -> 504;
      case NOT_FOUND -> 404;
      case ALREADY_EXISTS, ABORTED -> 409;
      case PERMISSION_DENIED -> 403;
      case UNAUTHENTICATED -> 401;
      case RESOURCE_EXHAUSTED -> 429;
      case UNIMPLEMENTED -> 501;
      case UNAVAILABLE -> 503;
      default -> 500; // UNKNOWN, INTERNAL, DATA_LOSS
    };
  }

  static String error(StatusException e) {
    String message = e.message() == null ? "" : e.message();
    return new JsonObject().put("error", message).put("message", message).put("code", e.status().code).encode();
  }

  static void fail(HttpServerResponse response, StatusException e) {
    if (response.headWritten()) {
      response.end(error(e) + "\n");
      return;
    }
    response.setStatusCode(httpStatus(e.status())).putHeader("content-type", "application/json").end(error(e));
  }

  /** An unknown path under the gateway's prefixes: grpc-gateway's plain "Not Found". */
  private static void notFound(RoutingContext ctx) {
    ctx.response().setStatusCode(404).putHeader("content-type", "text/plain; charset=utf-8").end("Not Found\n");
  }

  private static void methodNotAllowed(RoutingContext ctx) {
    ctx.response().setStatusCode(405).putHeader("content-type", "text/plain; charset=utf-8")
        .end("Method Not Allowed\n");
  }

  /** A server stream's messages as JSON lines on an HTTP response. */
  private static final class JsonLines<T extends Message> implements io.vertx.core.streams.WriteStream<T> {
    private final HttpServerResponse response;
    private final Function<T, String> line;

    JsonLines(HttpServerResponse response, Function<T, String> line) {
      this.response = response;
      this.line = line;
    }

    @Override
    public JsonLines<T> exceptionHandler(io.vertx.core.Handler<Throwable> handler) {
      response.exceptionHandler(handler);
      response.closeHandler(v -> {
        if (handler != null) {
          handler.handle(new java.io.IOException("the client went away"));
        }
      });
      return this;
    }

    @Override
    public Future<Void> write(T data) {
      return response.write(line.apply(data));
    }

    @Override
    public Future<Void> end() {
      return response.end();
    }

    @Override
    public JsonLines<T> setWriteQueueMaxSize(int maxSize) {
      response.setWriteQueueMaxSize(maxSize);
      return this;
    }

    @Override
    public boolean writeQueueFull() {
      return response.writeQueueFull();
    }

    @Override
    public JsonLines<T> drainHandler(io.vertx.core.Handler<Void> handler) {
      response.drainHandler(handler);
      return this;
    }
  }
}
