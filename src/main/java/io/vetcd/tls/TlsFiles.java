package io.vetcd.tls;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.ServerSSLOptions;
import io.vetcd.server.Config;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import javax.net.ssl.SSLHandshakeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TLS from etcd's flags, for the client port and the peer port alike: PEM files for a certificate
 * (chain) and its key, the CA bundle the other side's certificate must chain to, and whether the
 * other side must show one. Certificates are read again when their files change (checked every
 * second; etcd re-reads them per handshake), and refused handshakes are explained in plain words —
 * no certificate, an unknown authority, expired, not TLS at all — where etcd logs Go's error text.
 */
public final class TlsFiles {

  private static final Logger LOG = LoggerFactory.getLogger(TlsFiles.class);
  private static final long RELOAD_CHECK_MILLIS = 1_000;

  private TlsFiles() {}

  /** Whether a URL is to be served or dialled over TLS. */
  public static boolean isTls(String url) {
    return url.regionMatches(true, 0, "https://", 0, 8) || url.regionMatches(true, 0, "unixs://", 0, 8);
  }

  /**
   * The JDK's name of a cipher suite named as Go names it (the same IANA name, but for ChaCha20,
   * which Go names without its hash).
   */
  static String jdkName(String goName) {
    return goName.endsWith("_CHACHA20_POLY1305") ? goName + "_SHA256" : goName;
  }

  /** TLS 1.3's suites, which Go does not let --cipher-suites restrict: kept so 1.3 stays possible. */
  private static final List<String> TLS13_SUITES = List.of("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256");

  private static List<String> enabledSuites(Config.Tls tls) {
    if (tls.cipherSuites().isEmpty()) {
      return List.of();
    }
    List<String> suites = new ArrayList<>(TLS13_SUITES);
    tls.cipherSuites().forEach(s -> suites.add(jdkName(s)));
    return suites;
  }

  /** What a server presents and asks of its clients. */
  public static ServerSSLOptions server(Config.Tls tls) {
    ServerSSLOptions ssl = new ServerSSLOptions()
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certFile()).setKeyPath(tls.keyFile()))
        // etcd 3.4 (pkg/transport ServerConfig): a trusted CA file alone also requires a client certificate.
        .setClientAuth(tls.clientCertAuth() || !tls.trustedCaFile().isEmpty() ? ClientAuth.REQUIRED : ClientAuth.NONE);
    if (!tls.trustedCaFile().isEmpty()) {
      ssl.setTrustOptions(new PemTrustOptions().addCertPath(tls.trustedCaFile()));
    }
    enabledSuites(tls).forEach(ssl::addEnabledCipherSuite);
    return ssl;
  }

  /**
   * What a member dialling a peer presents (its certificate, as etcd's peers do) and checks: the
   * peer's certificate chains to the CA and names the host or address dialled (not checked with a
   * self-signed certificate of --peer-auto-tls).
   */
  public static ClientSSLOptions client(Config.Tls tls) {
    ClientSSLOptions ssl = new ClientSSLOptions()
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certFile()).setKeyPath(tls.keyFile()))
        .setHostnameVerificationAlgorithm("HTTPS");
    enabledSuites(tls).forEach(ssl::addEnabledCipherSuite);
    if (tls.selfSigned()) {
      // --peer-auto-tls: every member's certificate is its own, so there is no authority to check it
      // against; the link is encrypted, not authenticated (etcd's InsecureSkipVerify, the same trade).
      return ssl.setTrustAll(true).setHostnameVerificationAlgorithm("");
    }
    if (!tls.trustedCaFile().isEmpty()) {
      ssl.setTrustOptions(new PemTrustOptions().addCertPath(tls.trustedCaFile()));
    }
    return ssl;
  }

  /**
   * The JDK's TLS context for what {@link #client} describes, for a blocking client outside Vert.x (a
   * joining member's member-list fetch): this
   * member's certificate, and trust in the CA file (anyone's certificate for a self-signed one; the
   * JDK's default authorities without a CA file). The caller checks host names itself unless
   * {@code tls.selfSigned()}.
   */
  public static javax.net.ssl.SSLContext jdkClientContext(Config.Tls tls) throws java.io.IOException {
    io.vertx.core.Vertx files = io.vertx.core.Vertx.vertx(); // reads the PEM files; used once per caller
    try {
      ClientSSLOptions ssl = client(tls);
      javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
      context.init(ssl.getKeyCertOptions().getKeyManagerFactory(files).getKeyManagers(),
          tls.selfSigned() ? trustingAnyone()
              : ssl.getTrustOptions() == null ? null
                  : ssl.getTrustOptions().getTrustManagerFactory(files).getTrustManagers(),
          null);
      return context;
    } catch (Exception e) {
      throw new java.io.IOException("cannot use the certificate " + tls.certFile() + ": " + e.getMessage(), e);
    } finally {
      files.close();
    }
  }

  /** A trust manager that takes any certificate: --peer-auto-tls's, for the blocking dial of a joining member. */
  public static javax.net.ssl.TrustManager[] trustingAnyone() {
    return new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
      @Override
      public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType) {
      }

      @Override
      public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType) {
      }

      @Override
      public java.security.cert.X509Certificate[] getAcceptedIssuers() {
        return new java.security.cert.X509Certificate[0];
      }
    }};
  }

  /**
   * Hands the server its options again whenever one of the files changes ({@code update}: the
   * server's updateSSLOptions, forced); {@code what} names the endpoint in the log.
   */
  public static long reloadOnChange(Vertx vertx, Config.Tls tls, String what,
      Function<ServerSSLOptions, Future<Boolean>> update) {
    List<Path> files = new ArrayList<>(List.of(Path.of(tls.certFile()), Path.of(tls.keyFile())));
    if (!tls.trustedCaFile().isEmpty()) {
      files.add(Path.of(tls.trustedCaFile()));
    }
    long[] stamps = {stamp(files)};
    return vertx.setPeriodic(RELOAD_CHECK_MILLIS, id -> {
      long now = stamp(files);
      if (now != stamps[0]) {
        stamps[0] = now;
        update.apply(server(tls))
            .onSuccess(v -> LOG.info("reloaded the TLS certificates of {} (new connections use them)", what))
            .onFailure(e -> LOG.warn("the TLS files of {} changed but cannot be used (the old ones stay): {}",
                what, e.getMessage()));
      }
    });
  }

  /** The files' modification times and sizes, folded into one number that changes when any file does. */
  private static long stamp(List<Path> files) {
    long stamp = 17;
    for (Path f : files) {
      try {
        stamp = stamp * 31 + Files.getLastModifiedTime(f).toMillis();
        stamp = stamp * 31 + Files.size(f);
      } catch (IOException missing) {
        stamp = stamp * 31;
      }
    }
    return stamp;
  }

  /**
   * Why a handshake failed, in words an operator acts on ({@code trustFlag}: the flag naming the CA
   * bundle, for the words); null for failures that are not about TLS (a client that went away).
   */
  public static String refusal(Throwable e, String trustFlag) {
    String all = chain(e);
    if (all.contains("not an SSL/TLS record") || all.contains("NotSslRecordException")) {
      return "the other side does not speak TLS (plain HTTP, gRPC or peer traffic without TLS to an https URL)";
    }
    if (all.contains("Empty client certificate chain") || all.contains("null cert chain")
        || all.contains("peer not authenticated")) {
      // (A Java client offers only a certificate from an authority the server lists: none, to a stranger.)
      return "the client sent no certificate signed by an authority in " + trustFlag + ", and "
          + (trustFlag.startsWith("--peer") ? "--peer-client-cert-auth" : "--client-cert-auth") + " requires one";
    }
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CertificateExpiredException) {
        return "the other side's certificate has expired (" + t.getMessage() + ")";
      }
      if (t instanceof CertificateNotYetValidException) {
        return "the other side's certificate is not valid yet (" + t.getMessage() + ")";
      }
    }
    if (all.contains("PKIX path building failed") || all.contains("unable to find valid certification path")) {
      return "the other side's certificate is not signed by an authority in " + trustFlag;
    }
    if (all.contains("No subject alternative") || all.contains("No name matching")) {
      return "the other side's certificate does not name the host or address dialled";
    }
    if (all.contains("bad_certificate") || all.contains("certificate_unknown") || all.contains("unknown_ca")) {
      return "the other side refused this member's certificate (it does not trust its authority, or the name or "
          + "address it dialled is not in the certificate)";
    }
    if (all.contains("no cipher suites in common") || all.contains("protocol_version")
        || all.contains("handshake_failure")) {
      return "the two sides have no TLS version or cipher suite in common";
    }
    return e instanceof SSLHandshakeException || all.contains("SSL") ? "TLS handshake failed: " + e.getMessage()
        : null;
  }

  private static String chain(Throwable e) {
    StringBuilder text = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      text.append(t.getClass().getName()).append(": ").append(t.getMessage()).append('\n');
    }
    return text.toString();
  }
}
