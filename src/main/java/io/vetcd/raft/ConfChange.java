package io.vetcd.raft;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * A change of membership by one member (Raft thesis §4.1, single-server changes; etcd-io/raft's
 * ConfChange): the payload of a {@link Entry.Type#CONF_CHANGE} entry. It takes effect on a member when
 * the server applies that entry and hands it to {@link RaftNode#applyConfChange}, not when appended:
 * etcd's rule, safe because the leader lets only one change be pending (unapplied) at a time, so any
 * two consecutive configurations differ by one member and their majorities overlap.
 *
 * <p>{@code context} is the server's (etcd puts the member's name and URLs there); the core ignores it.
 */
public record ConfChange(Type type, long member, byte[] context) {

  /** Each with the fixed code it has in the log (never an enum's ordinal: the log outlives the code). */
  public enum Type {
    /** Adds a voter, or promotes a learner to one. */
    ADD_VOTER(1),
    /** Adds a learner: it receives the log, neither votes nor counts for a quorum. */
    ADD_LEARNER(2),
    /** Removes a voter or a learner. */
    REMOVE(3);

    final byte code;

    Type(int code) {
      this.code = (byte) code;
    }

    static Type of(byte code) {
      for (Type t : values()) {
        if (t.code == code) {
          return t;
        }
      }
      return null;
    }
  }

  public ConfChange {
    if (member == 0) {
      throw new IllegalArgumentException("member must be non-zero");
    }
    context = context == null ? new byte[0] : context;
  }

  /** The entry payload: the type's code, the member id, the context. */
  public byte[] encode() {
    return ByteBuffer.allocate(1 + 8 + context.length).put(type.code).putLong(member).put(context).array();
  }

  public static ConfChange decode(byte[] data) {
    Type type = data.length < 9 ? null : Type.of(data[0]);
    if (type == null) {
      throw new IllegalArgumentException("not a membership change: " + data.length + " bytes");
    }
    ByteBuffer b = ByteBuffer.wrap(data, 1, data.length - 1);
    long member = b.getLong();
    return new ConfChange(type, member, Arrays.copyOfRange(data, 9, data.length));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ConfChange c && type == c.type && member == c.member && Arrays.equals(context, c.context);
  }

  @Override
  public int hashCode() {
    return type.hashCode() * 31 + Long.hashCode(member);
  }

  @Override
  public String toString() {
    return type + " " + Long.toHexString(member);
  }
}
