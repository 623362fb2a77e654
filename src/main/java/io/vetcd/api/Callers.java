package io.vetcd.api;

import io.vertx.core.Future;
import io.vetcd.auth.Caller;
import io.vetcd.server.Auth;
import io.vetcd.server.EtcdError;
import io.vetcd.server.LocalMember;
import java.util.function.Supplier;

/**
 * What a call brought to say who makes it (its "token" metadata, or "authorization" through the JSON
 * gateway, and the common name of a verified client certificate), from the transport that read it to
 * the service method it calls. Each transport ({@link KvHttp2}, {@link UnparsableRequests} for Vert.x
 * gRPC, the gateway) runs the service's synchronous part inside {@link #with}; the service resolves
 * the caller there ({@link #resolve}) or takes the credentials along to resolve later ({@link
 * #capture}), before anything asynchronous, so a call's credentials never leak into another's. A watch
 * stream takes them from its own metadata once, when it opens.
 */
final class Callers {

  /** What a call brought: a token (null: none) and its TLS session (null: a plain connection). */
  record Credentials(String token, Supplier<javax.net.ssl.SSLSession> tls) {
    static final Credentials NONE = new Credentials(null, null);

    /**
     * The caller these name, as the member's auth store knows them now: {@link Caller#NOBODY} while
     * auth is disabled or when nothing came; etcd's "invalid auth token" (thrown) for a token no
     * member gave or one expired.
     */
    Caller resolve(Auth auth) {
      if (!auth.enabled() || (token == null && tls == null)) {
        return Caller.NOBODY;
      }
      String commonName = token == null && tls != null && auth.certificateNamesUser() ? commonName(tls.get()) : null;
      return auth.caller(token, commonName);
    }

    /**
     * As {@link #resolve}, but a simple token granted by an entry this member has not applied yet (a
     * client authenticated on a member ahead of this one, maybe right after auth enable, which this one
     * has not applied either) is resolved once this member has caught up with the leader, as etcd
     * waits for the token's index; only then may it be "invalid auth token".
     */
    Future<Caller> resolveOnceKnown(LocalMember member) {
      if (token != null && member.auth().tokens().grantedAt(token) > member.appliedIndex()) {
        return member.readBarrier().map(v -> resolve(member.auth()));
      }
      try {
        return Future.succeededFuture(resolve(member.auth()));
      } catch (EtcdError.EtcdException e) {
        return Future.failedFuture(e);
      }
    }
  }

  /** The metadata a Go client puts its token in (etcd's TokenFieldNameGRPC). */
  static final String TOKEN_HEADER = "token";
  /** Where etcd looks next (the gateway's, and any client's that sends it so). */
  static final String AUTHORIZATION_HEADER = "authorization";

  /** A call's token from its metadata: "token", else "authorization"; null if neither. */
  static String token(io.vertx.core.MultiMap headers) {
    String token = headers.get(TOKEN_HEADER);
    return token != null ? token : headers.get(AUTHORIZATION_HEADER);
  }

  private static final ThreadLocal<Credentials> CURRENT = new ThreadLocal<>();

  private Callers() {}

  /**
   * Runs {@code call} with these credentials as the current call's: a token (may be null) and the
   * connection's TLS session (null for plain connections), where a client certificate may name the user.
   */
  static <T> T with(CharSequence token, Supplier<javax.net.ssl.SSLSession> tls, Supplier<T> call) {
    if (token == null && tls == null) {
      return call.get(); // the common case, no auth: nothing to set
    }
    Credentials outer = CURRENT.get();
    CURRENT.set(new Credentials(token == null ? null : token.toString(), tls));
    try {
      return call.get();
    } finally {
      if (outer == null) {
        CURRENT.remove();
      } else {
        CURRENT.set(outer);
      }
    }
  }

  /** The current call's caller now (see {@link Credentials#resolve}). */
  static Caller resolve(Auth auth) {
    return capture().resolve(auth);
  }

  /** The current call's caller (see {@link Credentials#resolveOnceKnown}). */
  static Future<Caller> resolveOnceKnown(LocalMember member) {
    return capture().resolveOnceKnown(member);
  }

  /** The current call's credentials, to resolve later (after a read barrier, as etcd does). */
  static Credentials capture() {
    Credentials c = CURRENT.get();
    return c == null ? Credentials.NONE : c;
  }

  /** The common name of the verified client certificate of a TLS session; null if it has none. */
  static String commonName(javax.net.ssl.SSLSession session) {
    if (session == null) {
      return null;
    }
    try {
      java.security.cert.Certificate[] chain = session.getPeerCertificates();
      if (chain.length == 0 || !(chain[0] instanceof java.security.cert.X509Certificate x509)) {
        return null;
      }
      javax.naming.ldap.LdapName name = new javax.naming.ldap.LdapName(
          x509.getSubjectX500Principal().getName(javax.security.auth.x500.X500Principal.RFC2253));
      for (javax.naming.ldap.Rdn rdn : name.getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return String.valueOf(rdn.getValue());
        }
      }
      return null;
    } catch (javax.net.ssl.SSLPeerUnverifiedException | javax.naming.InvalidNameException none) {
      return null;
    }
  }
}
