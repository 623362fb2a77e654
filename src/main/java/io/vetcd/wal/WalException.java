package io.vetcd.wal;

/**
 * The log cannot be trusted or written: a failed sync, a full disk, a damaged record before the tail.
 * The message says in plain words what happened and where; a member that meets one stops.
 */
public final class WalException extends RuntimeException {

  public WalException(String message) {
    super(message);
  }

  public WalException(String message, Throwable cause) {
    super(message, cause);
  }
}
