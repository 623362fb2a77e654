package io.vetcd.api;

import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
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
import javax.net.ssl.SSLHandshakeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TLS on an https client URL, from etcd's flags: {@code --cert-file}/{@code --key-file} (PEM), and with
 * {@code --client-cert-auth} a client certificate that chains to {@code --trusted-ca-file} is required.
 * HTTP/2 is negotiated by ALPN, so gRPC, the gateway, the WebSocket and /metrics are all behind it.
 *
 * <p>Certificates are read again when their files change (checked every second; etcd re-reads them
 * per handshake), so they rotate without a restart. Every refused handshake is logged in plain words
 * — no client certificate, an unknown authority, expired, not yet valid, not TLS at all — where etcd
 * logs Go's error text.
 */
final class ClientTls {

  private static final Logger LOG = LoggerFactory.getLogger(ClientTls.class);
  private static final long RELOAD_CHECK_MILLIS = 1_000;

  private ClientTls() {}

  /** Whether the client URL is to be served over TLS. */
  static boolean isTls(String url) {
    return url.regionMatches(true, 0, "https://", 0, 8) || url.regionMatches(true, 0, "unixs://", 0, 8);
  }

  /** The server options for TLS as {@code tls} says. */
  static HttpServerOptions apply(HttpServerOptions options, Config.Tls tls) {
    ServerSSLOptions ssl = sslOptions(tls);
    return options.setSsl(true).setUseAlpn(true)
        .setKeyCertOptions(ssl.getKeyCertOptions())
        .setTrustOptions(ssl.getTrustOptions())
        .setClientAuth(ssl.getClientAuth());
  }

  private static ServerSSLOptions sslOptions(Config.Tls tls) {
    ServerSSLOptions ssl = new ServerSSLOptions().setUseAlpn(true)
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certFile()).setKeyPath(tls.keyFile()))
        .setClientAuth(tls.clientCertAuth() ? ClientAuth.REQUIRED : ClientAuth.NONE);
    if (!tls.trustedCaFile().isEmpty()) {
      ssl.setTrustOptions(new PemTrustOptions().addCertPath(tls.trustedCaFile()));
    }
    return ssl;
  }

  /**
   * Logs {@code server}'s refused handshakes in plain words, and gives it the certificates again
   * whenever one of the files changes.
   */
  static void watch(Vertx vertx, HttpServer server, Config.Tls tls, String url) {
    server.exceptionHandler(e -> {
      String why = refusal(e);
      if (why != null) {
        LOG.warn("refused a TLS connection on {}: {}", url, why);
      }
    });
    List<Path> files = new ArrayList<>(List.of(Path.of(tls.certFile()), Path.of(tls.keyFile())));
    if (!tls.trustedCaFile().isEmpty()) {
      files.add(Path.of(tls.trustedCaFile()));
    }
    long[] stamps = {stamp(files)};
    vertx.setPeriodic(RELOAD_CHECK_MILLIS, id -> {
      long now = stamp(files);
      if (now != stamps[0]) {
        stamps[0] = now;
        server.updateSSLOptions(sslOptions(tls), true)
            .onSuccess(v -> LOG.info("reloaded the TLS certificates of {} (new connections use them)", url))
            .onFailure(e -> LOG.warn("the TLS files of {} changed but cannot be used (the old ones stay): {}",
                url, e.getMessage()));
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
   * Why a handshake failed, in words an operator acts on; null for failures that are not about TLS
   * (a client that went away).
   */
  static String refusal(Throwable e) {
    String all = chain(e);
    if (all.contains("not an SSL/TLS record") || all.contains("NotSslRecordException")) {
      return "the client does not speak TLS (plain HTTP or gRPC without TLS to an https URL)";
    }
    if (all.contains("Empty client certificate chain") || all.contains("null cert chain")
        || all.contains("peer not authenticated")) {
      return "the client sent no certificate, and --client-cert-auth requires one";
    }
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CertificateExpiredException) {
        return "the client's certificate has expired (" + t.getMessage() + ")";
      }
      if (t instanceof CertificateNotYetValidException) {
        return "the client's certificate is not valid yet (" + t.getMessage() + ")";
      }
    }
    if (all.contains("PKIX path building failed") || all.contains("unable to find valid certification path")) {
      return "the client's certificate is not signed by an authority in --trusted-ca-file";
    }
    if (all.contains("bad_certificate") || all.contains("certificate_unknown") || all.contains("unknown_ca")) {
      return "the client refused this member's certificate (it does not trust its authority, or the name or "
          + "address it dialled is not in the certificate)";
    }
    if (all.contains("no cipher suites in common") || all.contains("protocol_version")
        || all.contains("handshake_failure")) {
      return "the client and this member have no TLS version or cipher suite in common";
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
