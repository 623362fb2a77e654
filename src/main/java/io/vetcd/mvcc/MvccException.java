package io.vetcd.mvcc;

/** A request the keyspace refuses: the client-facing layer turns each kind into etcd's error. */
public final class MvccException extends RuntimeException {

  public enum Kind {
    /** The revision asked for is below the compaction point: its history is gone. */
    COMPACTED,
    /** The revision asked for is above the current revision. */
    FUTURE_REVISION,
  }

  private final Kind kind;

  public MvccException(Kind kind) {
    super(kind == Kind.COMPACTED
        ? "mvcc: required revision has been compacted"
        : "mvcc: required revision is a future revision", null, false, false);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
