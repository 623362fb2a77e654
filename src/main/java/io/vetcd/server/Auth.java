package io.vetcd.server;

import io.vetcd.auth.AuthStore;
import io.vetcd.auth.Caller;
import io.vetcd.auth.Passwords;
import io.vetcd.auth.SimpleTokens;
import io.vetcd.auth.TokenProvider;
import io.vetcd.mvcc.MvccStore;
import org.slf4j.LoggerFactory;

/**
 * The auth store as the apply thread last committed it, and what goes with it in memory: the tokens
 * (simple ones every member learned from the log, or the JWT key). The API reads it to find who calls
 * (a token, or a client certificate's common name) and to check reads and watches; the apply thread
 * checks writes against the store as of their entry (see {@link ApplyThread}).
 */
public final class Auth {

  /** Where the store lives in the keyspace's records. */
  static final String RECORD = "auth";

  private final TokenProvider tokens;
  private final int bcryptCost;
  private final boolean certificateNamesUser;
  private volatile AuthStore applied = AuthStore.EMPTY;

  /**
   * @param certificateNamesUser whether a verified client certificate's common name is the caller when
   *     no token came (etcd: with --client-cert-auth)
   */
  public Auth(TokenProvider tokens, int bcryptCost, boolean certificateNamesUser) {
    this.tokens = tokens;
    if (bcryptCost < Passwords.MIN_COST || bcryptCost > Passwords.MAX_COST) {
      // etcd's words and choice: a cost bcrypt cannot use is replaced by the default.
      LoggerFactory.getLogger(Auth.class).warn("use default bcrypt cost instead of the invalid given cost: given {}, "
          + "default {}", bcryptCost, Passwords.DEFAULT_COST);
      bcryptCost = Passwords.DEFAULT_COST;
    }
    this.bcryptCost = bcryptCost;
    this.certificateNamesUser = certificateNamesUser;
  }

  /** With simple tokens living {@code tokenTtlSeconds} past their last use. */
  public Auth(long tokenTtlSeconds, int bcryptCost, boolean certificateNamesUser) {
    this(new SimpleTokens(tokenTtlSeconds, System::nanoTime), bcryptCost, certificateNamesUser);
  }

  public boolean certificateNamesUser() {
    return certificateNamesUser;
  }

  public AuthStore store() {
    return applied;
  }

  public boolean enabled() {
    return applied.enabled();
  }

  public TokenProvider tokens() {
    return tokens;
  }

  public int bcryptCost() {
    return bcryptCost;
  }

  /**
   * etcd's AuthInfoFromCtx: the caller a token names (a simple token's with the store's revision now,
   * a JWT token's with the revision in it); with no token,
   * the common name of a verified client certificate ({@code commonName}, null if none or not
   * trusted for this), else {@link Caller#NOBODY}. A token that names nobody (unknown, expired, from
   * before a restart) is refused with etcd's "invalid auth token", whatever certificate came with it.
   */
  public Caller caller(String token, String commonName) {
    AuthStore store = applied;
    if (!store.enabled()) {
      return Caller.NOBODY;
    }
    if (token != null) {
      Caller caller = tokens.caller(token, store.revision());
      if (caller == null) {
        throw EtcdError.INVALID_AUTH_TOKEN.exception();
      }
      return caller;
    }
    if (commonName != null && !commonName.isEmpty()) {
      return new Caller(commonName, store.revision());
    }
    return Caller.NOBODY;
  }

  /** What the keyspace holds now: at start, and after a snapshot replaced it. */
  void reload(MvccStore store) {
    try (MvccStore.ReadView view = store.read()) {
      applied = AuthStore.fromRecord(view.record(RECORD));
    }
    if (!applied.enabled()) {
      tokens.clear();
    }
  }

  /** The store a committed batch left (apply thread). */
  void committed(AuthStore store) {
    applied = store;
  }
}
