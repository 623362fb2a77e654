package io.vetcd.auth;

/**
 * What {@code --auth-token} chooses: how a token is made for an Authenticate and how a token a client
 * sends is turned back into a caller. Simple tokens are remembered by every member from the log;
 * JWT tokens carry their user and auth revision, signed, and are checked with the key alone.
 */
public interface TokenProvider {

  /** What the member taking Authenticate puts in its log entry for the token ("" if nothing). */
  String newPrefix();

  /**
   * The token the client gets, from the one the applied entry made ({@code applied}), for {@code user}
   * whose password was checked against the store at {@code revision}; throws an exception with
   * etcd's words if this member cannot make one.
   */
  String issue(String applied, String user, long revision);

  /** An Authenticate applied (on every member): the token is good from now. */
  void assign(String token, String user);

  /**
   * The caller a token names, null if it names nobody (unknown, expired, forged); {@code storeRevision}
   * is the auth store's revision now (a simple token is as new as the store).
   */
  Caller caller(String token, long storeRevision);

  /**
   * The log index of the entry that granted {@code token}, if the token says (a simple token ends
   * with it), so a member that has not applied it yet can wait for it; 0 if not.
   */
  long grantedAt(String token);

  /** The user's tokens die (deleted, or a new password). */
  void invalidate(String user);

  /** Every token dies (auth disabled). */
  void clear();

  /** Drops expired tokens (called now and then). */
  void expire();
}
