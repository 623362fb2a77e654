package io.vetcd.k8s;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Map;
import java.util.OptionalInt;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * What a pod reads of its StatefulSet from the Kubernetes API server: the number of replicas asked
 * for, with the pod's service account (its token and the cluster's CA, mounted where Kubernetes
 * mounts them). k8s/rbac.yaml lets the account get this one StatefulSet and nothing else.
 */
final class KubernetesApi {

  /** Where Kubernetes mounts a pod's service account. */
  static final Path SERVICE_ACCOUNT = Path.of("/var/run/secrets/kubernetes.io/serviceaccount");

  private final URI base;
  private final Path serviceAccount;

  private KubernetesApi(URI base, Path serviceAccount) {
    this.base = base;
    this.serviceAccount = serviceAccount;
  }

  /**
   * The API server of the pod's environment: {@code VETCD_KUBERNETES_API} if set (a URL, e.g. a
   * {@code kubectl proxy} sidecar's http://127.0.0.1:8001), else https on the KUBERNETES_SERVICE_HOST
   * and _PORT that Kubernetes puts in every container's environment; null outside Kubernetes.
   */
  static KubernetesApi of(Map<String, String> env) {
    String url = env.get("VETCD_KUBERNETES_API");
    if (url == null || url.isBlank()) {
      String host = env.get("KUBERNETES_SERVICE_HOST");
      if (host == null || host.isBlank()) {
        return null;
      }
      String port = env.getOrDefault("KUBERNETES_SERVICE_PORT", "443");
      url = "https://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
    return new KubernetesApi(URI.create(url.endsWith("/") ? url.substring(0, url.length() - 1) : url),
        SERVICE_ACCOUNT);
  }

  @Override
  public String toString() {
    return base.toString();
  }

  /** spec.replicas of StatefulSet {@code name} in {@code namespace}; empty if it cannot be read. */
  OptionalInt replicas(String namespace, String name) throws IOException {
    HttpRequest.Builder request = HttpRequest.newBuilder(
            URI.create(base + "/apis/apps/v1/namespaces/" + namespace + "/statefulsets/" + name))
        .timeout(Duration.ofSeconds(5))
        .header("Accept", "application/json");
    Path token = serviceAccount.resolve("token");
    if (Files.isReadable(token)) {
      request.header("Authorization", "Bearer " + Files.readString(token).trim());
    }
    HttpResponse<String> answer;
    try {
      answer = client().send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    if (answer.statusCode() != 200) {
      throw new IOException("GET statefulsets/" + name + ": HTTP " + answer.statusCode() + " " + answer.body());
    }
    io.vertx.core.json.JsonObject spec = new io.vertx.core.json.JsonObject(answer.body()).getJsonObject("spec");
    // A StatefulSet without spec.replicas has 1 (the API's default).
    return spec == null ? OptionalInt.empty() : OptionalInt.of(spec.getInteger("replicas", 1));
  }

  private HttpClient client() throws IOException {
    HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3));
    Path ca = serviceAccount.resolve("ca.crt");
    if (base.getScheme().equals("https") && Files.isReadable(ca)) {
      builder.sslContext(trusting(ca));
    }
    return builder.build();
  }

  /** TLS that trusts the cluster's CA (the service account's ca.crt) and nothing else. */
  private static SSLContext trusting(Path caFile) throws IOException {
    try (InputStream in = Files.newInputStream(caFile)) {
      KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
      trust.load(null, null);
      int i = 0;
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        trust.setCertificateEntry("ca" + i++, c);
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, tmf.getTrustManagers(), null);
      return context;
    } catch (java.security.GeneralSecurityException e) {
      throw new IOException("the service account's CA " + caFile + " cannot be used: " + e.getMessage(), e);
    }
  }
}
