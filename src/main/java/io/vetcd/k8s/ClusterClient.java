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
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
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

  /**
   * {@code endpoints}: client URLs of members ("http://host:2379", "https://..."), tried in this order;
   * {@code tls}: for https, this member's client certificate and the CA it trusts (null: the JDK's).
   */
  ClusterClient(List<String> endpoints, javax.net.ssl.SSLContext tls) {
    this.endpoints.addAll(endpoints);
    // HTTP/1.1 only: a plain-text HTTP/2 upgrade request is what Vert.x's client port can hang on
    // (README, "Not yet done"); the gateway answers HTTP/1.1 as etcd's does.
    HttpClient.Builder builder = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(2));
    if (tls != null) {
      builder.sslContext(tls);
    }
    this.http = builder.build();
  }

  List<String> endpoints() {
    return List.copyOf(endpoints);
  }

  /** The member list, from the first member that answers; empty if none does. */
  Optional<MemberListResponse> list() {
    try {
      MemberListResponse members = call("member/list", MemberListRequest.getDefaultInstance(),
          MemberListResponse.newBuilder());
      // Members added since the pod's spec was written are endpoints too.
      members.getMembersList().forEach(m -> endpoints.addAll(m.getClientURLsList()));
      return Optional.of(members);
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  MemberAddResponse addLearner(List<String> peerUrls) throws IOException {
    return call("member/add", MemberAddRequest.newBuilder().addAllPeerURLs(peerUrls).setIsLearner(true).build(),
        MemberAddResponse.newBuilder());
  }

  void remove(long id) throws IOException {
    call("member/remove", MemberRemoveRequest.newBuilder().setID(id).build(), MemberRemoveResponse.newBuilder());
  }

  /**
   * One call, to each member in turn until one answers it. A refusal in etcd's words is final (the
   * next member would refuse it the same way), except those of a member that cannot decide now.
   */
  @SuppressWarnings("unchecked")
  private <T extends Message> T call(String path, Message request, Message.Builder response) throws IOException {
    List<String> failures = new ArrayList<>();
    for (String endpoint : List.copyOf(endpoints)) {
      HttpResponse<String> answer;
      try {
        answer = http.send(HttpRequest.newBuilder(URI.create(endpoint + "/v3/cluster/" + path))
                .timeout(Duration.ofSeconds(10))
                .POST(HttpRequest.BodyPublishers.ofString(PRINTER.print(request)))
                .build(),
            HttpResponse.BodyHandlers.ofString());
      } catch (IOException e) {
        failures.add(endpoint + ": " + e);
        continue;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
      if (answer.statusCode() == 200) {
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

  /** Refusals another member, or the same one a moment later, may not repeat. */
  private static boolean transientRefusal(String message) {
    return message.contains("rpc not supported for learner") || message.contains("unhealthy cluster")
        || message.contains("leader changed") || message.contains("no leader") || message.contains("timed out")
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
