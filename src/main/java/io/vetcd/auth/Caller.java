package io.vetcd.auth;

/**
 * Who made a request, as etcd's AuthInfo: the user a token or a client certificate named, and the auth
 * revision the member had when it resolved them (a permission checked later against a newer store is
 * refused as old, see {@link AuthStore#checkKeys}). {@link #NOBODY}: no token and no certificate.
 */
public record Caller(String user, long revision) {

  public static final Caller NOBODY = new Caller("", 0);
}
