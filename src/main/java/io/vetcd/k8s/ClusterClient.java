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
  /** How long one call to one member may take. */
  private volatile Duration callTimeout = Duration.ofSeconds(10);
  /** When every call must be over (System.nanoTime()), if set: a stopping pod has a grace period. */
  private volatile long deadlineNanos;
  private volatile boolean deadlineSet;
  /** Whether the last list() reached a member at all (an answer, a refusal, a call that timed out). */
  private volatile boolean reached;

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

  /** Every call ends by {@code nanoTime} (System.nanoTime()), answered or not. */
  void deadline(long nanoTime) {
    this.deadlineNanos = nanoTime;
    this.deadlineSet = true;
  }

  /**
   * Whether the last {@link #list} found something listening: a member that accepted the connection
   * (and refused, or did not answer in time: e.g. one still waiting for a quorum), not only ones that
   * answered. False when every endpoint refused the connection or has no address.
   */
  boolean reachedAny() {
    return reached;
  }

  /** The member list, from the first member that answers; empty if none does. */
  Optional<MemberListResponse> list() {
    reached = false;
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
      if (deadlineSet) {
        timeoutMs = Math.min(timeoutMs, TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime()) - 1_000);
        if (timeoutMs < 200) {
          failures.add(endpoint + ": out of time");
          break;
        }
      }
      try {
        answer = http.request(new RequestOptions().setMethod(HttpMethod.POST)
                .setAbsoluteURI(endpoint + "/v3/" + path).setTimeout(timeoutMs))
            .compose(call -> call.send(Buffer.buffer(body)))
            .compose(r -> r.body().map(b -> new Answer(r.statusCode(), b.toString())))
            .await(timeoutMs + 1_000, TimeUnit.MILLISECONDS);
      } catch (Exception e) {
        failures.add(endpoint + ": " + e);
        reached |= !connectFailure(e);
        continue;
      }
      reached = true;
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

  /** Nothing listens there, or the name has no address: not a member that is up and silent. */
  private static boolean connectFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof java.net.ConnectException || t instanceof java.net.UnknownHostException
          || t instanceof java.net.NoRouteToHostException || t instanceof io.netty.channel.ConnectTimeoutException) {
        return true;
      }
    }
    return false;
  }

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
