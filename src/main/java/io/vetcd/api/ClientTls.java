package io.vetcd.api;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.ServerSSLOptions;
import io.vetcd.server.Config;
import io.vetcd.tls.TlsFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TLS on an https client (or metrics) URL, from etcd's flags: {@code --cert-file}/{@code --key-file},
 * and with {@code --client-cert-auth} a client certificate that chains to {@code --trusted-ca-file}.
 * HTTP/2 is negotiated by ALPN, so gRPC, the gateway, the WebSocket and /metrics are all behind it.
 * Certificates are re-read when they change on disk; refused handshakes are logged in plain words
 * ({@link TlsFiles}).
 */
public final class ClientTls {

  private static final Logger LOG = LoggerFactory.getLogger(ClientTls.class);

  private ClientTls() {}

  static boolean isTls(String url) {
    return TlsFiles.isTls(url);
  }

  /** The server options for TLS as {@code tls} says. */
  public static HttpServerOptions apply(HttpServerOptions options, Config.Tls tls) {
    ServerSSLOptions ssl = TlsFiles.server(tls);
    ssl.getEnabledCipherSuites().forEach(options::addEnabledCipherSuite);
    return options.setSsl(true).setUseAlpn(true)
        .setKeyCertOptions(ssl.getKeyCertOptions())
        .setTrustOptions(ssl.getTrustOptions())
        .setClientAuth(ssl.getClientAuth());
  }

  /** Logs {@code server}'s refused handshakes, and gives it the certificates again when they change. */
  public static void watch(Vertx vertx, HttpServer server, Config.Tls tls, String url) {
    server.exceptionHandler(e -> {
      String why = TlsFiles.refusal(e, "--trusted-ca-file");
      if (why != null) {
        LOG.warn("refused a TLS connection on {}: {}", url, why);
      }
    });
    TlsFiles.reloadOnChange(vertx, tls, url, ssl -> server.updateSSLOptions(ssl.setUseAlpn(true), true));
  }
}
