package io.vetcd.k8s;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.vetcd.proto.etcdserverpb.Member;
import io.vetcd.proto.etcdserverpb.MemberAddRequest;
import io.vetcd.proto.etcdserverpb.MemberAddResponse;
import io.vetcd.proto.etcdserverpb.MemberListRequest;
import io.vetcd.proto.etcdserverpb.MemberListResponse;
import io.vetcd.proto.etcdserverpb.MemberRemoveRequest;
import io.vetcd.proto.etcdserverpb.MemberRemoveResponse;
import io.vetcd.proto.etcdserverpb.StatusRequest;
import io.vetcd.proto.etcdserverpb.StatusResponse;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vetcd.server.Config;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The Cluster API of a running cluster, called through its members' JSON gateway ({@code POST
 * /v3/cluster/member/...}, etcd's grpc-gateway paths and JSON), trying one member after another. A pod
 * of the StatefulSet uses it before its own member runs, so it cannot use the member's own client.
 */
final class ClusterClient {

  /** No member answered, or every one that did refused. */
  static final class Unavailable extends IOException {
    Unavailable(String message) {
      super(message);
    }
  }

  /** A member answered the call with an error (etcd's words in {@code message}). */
  static final class Refused extends IOException {
    Refused(String message) {
      super(message);
    }
  }

  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().omittingInsignificantWhitespace();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();

  private final HttpClient http;
  private final Set<String> endpoints = new LinkedHashSet<>();
  /** How long one call to one member may take; a stopping pod shortens it to fit its grace period. */
  private volatile Duration callTimeout = Duration.ofSeconds(10);

  /**
   * {@code endpoints}: client URLs of members ("http://host:2379", "https://..."), tried in this order;
   * {@code tls}: the member's client-port TLS (its certificate is shown, its CA trusted; with auto TLS
   * nobody's certificate is checked, as etcd's members do not check each other's then), or null. Its
   * calls block the calling thread, which must not be one of {@code vertx}'s event loops.
   */
  ClusterClient(Vertx vertx, List<String> endpoints, Config.Tls tls) {
    this.endpoints.addAll(endpoints);
    // HTTP/1.1 (the default) and no upgrade to HTTP/2: the gateway answers HTTP/1.1 as etcd's does.
    HttpClientOptions options = new HttpClientOptions().setConnectTimeout(2_000);
    if (tls != null && tls.selfSigned()) {
      // Made by the member at its start, which comes after this; an auto-TLS member asks for no client's.
      options.setTrustAll(true).setVerifyHost(false);
    } else if (tls != null) {
      io.vertx.core.net.ClientSSLOptions ssl = io.vetcd.tls.TlsFiles.client(tls);
      options.setKeyCertOptions(ssl.getKeyCertOptions()).setTrustOptions(ssl.getTrustOptions());
    }
    this.http = vertx.createHttpClient(options);
  }

  /** Lets go of the client's connections. */
  void close() {
    http.close();
  }

  List<String> endpoints() {
    return List.copyOf(endpoints);
  }

  void callTimeout(Duration timeout) {
    this.callTimeout = timeout;
  }

  /** The member list, from the first member that answers; empty if none does. */
  Optional<MemberListResponse> list() {
    try {
      MemberListResponse members = call("cluster/member/list", MemberListRequest.getDefaultInstance(),
          MemberListResponse.newBuilder());
      // Members added since the pod's spec was written are endpoints too.
      members.getMembersList().forEach(m -> endpoints.addAll(m.getClientURLsList()));
      return Optional.of(members);
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /**
   * Whether a member that answers knows a leader: its member list is then the cluster's as of recently,
   * not that of a member cut off from the others (a list is answered from the member's own state).
   */
  boolean leaderKnown() {
    try {
      StatusResponse status = call("maintenance/status", StatusRequest.getDefaultInstance(),
          StatusResponse.newBuilder());
      return status.getLeader() != 0;
    } catch (IOException e) {
      return false;
    }
  }

  MemberAddResponse addLearner(List<String> peerUrls) throws IOException {
    return call("cluster/member/add",
        MemberAddRequest.newBuilder().addAllPeerURLs(peerUrls).setIsLearner(true).build(),
        MemberAddResponse.newBuilder());
  }

  void remove(long id) throws IOException {
    call("cluster/member/remove", MemberRemoveRequest.newBuilder().setID(id).build(),
        MemberRemoveResponse.newBuilder());
  }

  /**
   * One call, to each member in turn until one answers it. A refusal in etcd's words is final (the
   * next member would refuse it the same way), except those of a member that cannot decide now.
   */
  @SuppressWarnings("unchecked")
  private <T extends Message> T call(String path, Message request, Message.Builder response) throws IOException {
    List<String> failures = new ArrayList<>();
    for (String endpoint : List.copyOf(endpoints)) {
      Answer answer;
      String body = PRINTER.print(request);
      long timeoutMs = callTimeout.toMillis();
      try {
        answer = http.request(new RequestOptions().setMethod(HttpMethod.POST)
                .setAbsoluteURI(endpoint + "/v3/" + path).setTimeout(timeoutMs))
            .compose(call -> call.send(Buffer.buffer(body)))
            .compose(r -> r.body().map(b -> new Answer(r.statusCode(), b.toString())))
            .await(timeoutMs + 1_000, TimeUnit.MILLISECONDS);
      } catch (Exception e) {
        failures.add(endpoint + ": " + e);
        continue;
      }
      if (answer.status() == 200) {
        try {
          PARSER.merge(answer.body(), response);
        } catch (InvalidProtocolBufferException e) {
          throw new IOException(endpoint + " answered " + path + " with " + answer.body(), e);
        }
        return (T) response.build();
      }
      String message = errorMessage(answer.body());
      if (!transientRefusal(message)) {
        throw new Refused(message);
      }
      failures.add(endpoint + ": " + message);
    }
    throw new Unavailable("no member answered " + path + " (" + String.join("; ", failures) + ")");
  }

  private record Answer(int status, String body) {}

  /** Refusals another member, or the same one a moment later, may not repeat. */
  private static boolean transientRefusal(String message) {
    return message.contains("rpc not supported for learner") || message.contains("unhealthy cluster")
        || message.contains("leader changed") || message.contains("no leader") || message.contains("not leader")
        || message.contains("not enough started members") || message.contains("timed out")
        || message.contains("server stopped") || message.contains("too many requests") || message.isEmpty()
        // Another pod's learner is still catching up (pods of a scale-up start together): one at a time.
        || message.contains("too many learner members");
  }

  /** The gateway's error body: {"error": "...", "code": N, "message": "..."}. */
  private static String errorMessage(String body) {
    try {
      io.vertx.core.json.JsonObject error = new io.vertx.core.json.JsonObject(body);
      return error.getString("message", error.getString("error", body));
    } catch (RuntimeException e) {
      return body;
    }
  }

  /** The member of {@code members} that has {@code name} or advertises one of {@code peerUrls}. */
  static Optional<Member> find(List<Member> members, String name, List<String> peerUrls) {
    return members.stream()
        .filter(m -> (!m.getName().isEmpty() && m.getName().equals(name))
            || m.getPeerURLsList().stream().anyMatch(peerUrls::contains))
        .findFirst();
  }
}
