package io.vetcd.raft;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One message between members; {@link MessageType} documents which fields each kind uses. {@code term}
 * is the sender's term (0 for the term-less requests PROP, READ_INDEX and TRANSFER_LEADER). Values are
 * immutable by convention: nobody writes into {@code entries}' or {@code context}'s arrays.
 */
public record RaftMessage(
    MessageType type,
    long from,
    long to,
    long term,
    long logTerm,
    long index,
    List<Entry> entries,
    long commit,
    boolean reject,
    long rejectHint,
    Snapshot snapshot,
    byte[] context) {

  public RaftMessage {
    Objects.requireNonNull(type, "type");
    entries = entries == null ? List.of() : List.copyOf(entries);
  }

  public static Builder builder(MessageType type) {
    return new Builder(type);
  }

  /** A builder preset with every field of this message, to derive a changed copy. */
  public Builder toBuilder() {
    return new Builder(type).from(from).to(to).term(term).logTerm(logTerm).index(index)
        .entries(entries).commit(commit).reject(reject).rejectHint(rejectHint).snapshot(snapshot)
        .context(context);
  }

  public RaftMessage withTo(long newTo) {
    return toBuilder().to(newTo).build();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RaftMessage m && type == m.type && from == m.from && to == m.to
        && term == m.term && logTerm == m.logTerm && index == m.index && entries.equals(m.entries)
        && commit == m.commit && reject == m.reject && rejectHint == m.rejectHint
        && Objects.equals(snapshot, m.snapshot) && Arrays.equals(context, m.context);
  }

  @Override
  public int hashCode() {
    return Objects.hash(type, from, to, term, index);
  }

  @Override
  public String toString() {
    StringBuilder b = new StringBuilder().append(type).append(' ').append(from).append("->")
        .append(to).append(" term=").append(term);
    if (logTerm != 0 || index != 0) {
      b.append(" log=").append(index).append('@').append(logTerm);
    }
    if (!entries.isEmpty()) {
      b.append(" entries=").append(entries);
    }
    if (commit != 0) {
      b.append(" commit=").append(commit);
    }
    if (reject) {
      b.append(" REJECT hint=").append(rejectHint);
    }
    if (snapshot != null) {
      b.append(' ').append(snapshot);
    }
    if (context != null) {
      b.append(" ctx=").append(Arrays.toString(context));
    }
    return b.toString();
  }

  /** Fills a message field by field; unset fields are zero, empty or null. */
  public static final class Builder {
    private final MessageType type;
    private long from;
    private long to;
    private long term;
    private long logTerm;
    private long index;
    private List<Entry> entries = List.of();
    private long commit;
    private boolean reject;
    private long rejectHint;
    private Snapshot snapshot;
    private byte[] context;

    private Builder(MessageType type) {
      this.type = type;
    }

    public Builder from(long v) {
      from = v;
      return this;
    }

    public Builder to(long v) {
      to = v;
      return this;
    }

    public Builder term(long v) {
      term = v;
      return this;
    }

    public Builder logTerm(long v) {
      logTerm = v;
      return this;
    }

    public Builder index(long v) {
      index = v;
      return this;
    }

    public Builder entries(List<Entry> v) {
      entries = v;
      return this;
    }

    public Builder commit(long v) {
      commit = v;
      return this;
    }

    public Builder reject(boolean v) {
      reject = v;
      return this;
    }

    public Builder rejectHint(long v) {
      rejectHint = v;
      return this;
    }

    public Builder snapshot(Snapshot v) {
      snapshot = v;
      return this;
    }

    public Builder context(byte[] v) {
      context = v;
      return this;
    }

    public RaftMessage build() {
      return new RaftMessage(type, from, to, term, logTerm, index, entries, commit, reject, rejectHint,
          snapshot, context);
    }
  }
}
