package io.vetcd.auth;

import java.nio.charset.StandardCharsets;
import org.mindrot.jbcrypt.BCrypt;

/**
 * Passwords as etcd keeps them: bcrypt hashes ($2a$, etcd's default cost 10, {@code --bcrypt-cost}
 * between 4 and 31), never the password. Checking one costs what hashing it did (about 70 ms at cost 10
 * on one core): that is what makes guessing slow, and why it never runs on an event loop.
 */
public final class Passwords {

  public static final int DEFAULT_COST = 10;
  public static final int MIN_COST = 4;
  public static final int MAX_COST = 31;

  private Passwords() {}

  public static byte[] hash(String password, int cost) {
    return BCrypt.hashpw(password, BCrypt.gensalt(cost)).getBytes(StandardCharsets.US_ASCII);
  }

  /** Whether {@code password} is the one {@code hash} was made from; false for a hash that is not bcrypt's. */
  public static boolean matches(String password, byte[] hash) {
    if (hash == null || hash.length == 0) {
      return false;
    }
    try {
      return BCrypt.checkpw(password, new String(hash, StandardCharsets.US_ASCII));
    } catch (IllegalArgumentException notBcrypt) {
      return false;
    }
  }
}
