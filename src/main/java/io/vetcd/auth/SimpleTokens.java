package io.vetcd.auth;

import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * etcd's simple tokens: 16 random letters, a dot and the log index of the entry that granted them.
 * Every member learns each token from that entry, so a client may use it on any member; a token lives
 * {@code --auth-token-ttl} seconds past its last use (etcd's default 300), dies with its user's
 * deletion or password change and with auth disable, and with the member's process (as in etcd: a
 * client authenticates again after "invalid auth token").
 */
public final class SimpleTokens implements TokenProvider {

  private static final String LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  private static final int LENGTH = 16;

  private record Held(String user, long expiresAtNanos) {}

  private final SecureRandom random = new SecureRandom();
  private final Map<String, Held> tokens = new ConcurrentHashMap<>();
  private final long ttlNanos;
  private final LongSupplier clock;

  public SimpleTokens(long ttlSeconds, LongSupplier nanoClock) {
    this.ttlNanos = ttlSeconds * 1_000_000_000L;
    this.clock = nanoClock;
  }

  /** A new token's random part (the member that takes Authenticate makes it; the entry's index follows). */
  @Override
  public String newPrefix() {
    StringBuilder b = new StringBuilder(LENGTH);
    for (int i = 0; i < LENGTH; i++) {
      b.append(LETTERS.charAt(random.nextInt(LETTERS.length())));
    }
    return b.toString();
  }

  /** The token is the applied entry's: the random part and the index. */
  @Override
  public String issue(String applied, String user, long revision) {
    return applied;
  }

  @Override
  public void assign(String token, String user) {
    tokens.put(token, new Held(user, clock.getAsLong() + ttlNanos));
  }

  /** The token's user with the store's revision, its life renewed; null if it is unknown or expired. */
  @Override
  public Caller caller(String token, long storeRevision) {
    long now = clock.getAsLong();
    Held held = tokens.get(token);
    if (held == null) {
      return null;
    }
    if (now - held.expiresAtNanos() > 0) {
      tokens.remove(token, held);
      return null;
    }
    tokens.replace(token, held, new Held(held.user(), now + ttlNanos));
    return new Caller(held.user(), storeRevision);
  }

  @Override
  public long grantedAt(String token) {
    int dot = token.lastIndexOf('.');
    try {
      return dot < 0 ? 0 : Long.parseLong(token.substring(dot + 1));
    } catch (NumberFormatException notOurs) {
      return 0;
    }
  }

  @Override
  public void invalidate(String user) {
    tokens.values().removeIf(h -> h.user().equals(user));
  }

  @Override
  public void clear() {
    tokens.clear();
  }

  /** Drops expired tokens, so tokens nobody uses again do not pile up. */
  @Override
  public void expire() {
    long now = clock.getAsLong();
    tokens.values().removeIf(h -> now - h.expiresAtNanos() > 0);
  }
}
