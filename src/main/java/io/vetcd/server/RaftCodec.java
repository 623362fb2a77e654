package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import io.vetcd.proto.internal.RaftEntry;
import io.vetcd.proto.internal.PeerMessage;
import io.vetcd.proto.internal.RaftSnapshotMeta;
import io.vetcd.raft.Entry;
import io.vetcd.raft.RaftMessage;
import io.vetcd.raft.MessageType;
import io.vetcd.raft.Snapshot;
import java.util.ArrayList;
import java.util.List;

/**
 * Raft messages to and from the bytes the peer transport carries; beside them, on the same stream,
 * forwarded lease requests and answers ({@link #LEASE_FORWARD}): the transport carries bytes and knows
 * neither.
 */
final class RaftCodec {

  /** The type of a peer message that carries a {@code LeaseForward} in its context (past Raft's types). */
  static final int LEASE_FORWARD = 100;

  // values() copies its array on every call; decoding runs for every message.
  private static final MessageType[] MESSAGE_TYPES = MessageType.values();
  private static final Entry.Type[] ENTRY_TYPES = Entry.Type.values();

  private RaftCodec() {}

  /**
   * Entry data, snapshot data and contexts are wrapped, not copied: a message and its entries are
   * never written after they are made (see {@link RaftMessage}), and the leader encodes every entry once
   * per follower.
   */
  static byte[] encode(RaftMessage m) {
    PeerMessage.Builder b = PeerMessage.newBuilder()
        .setType(m.type().ordinal())
        .setFrom(m.from())
        .setTo(m.to())
        .setTerm(m.term())
        .setLogTerm(m.logTerm())
        .setIndex(m.index())
        .setCommit(m.commit())
        .setReject(m.reject())
        .setRejectHint(m.rejectHint());
    for (Entry e : m.entries()) {
      b.addEntries(RaftEntry.newBuilder()
          .setTerm(e.term())
          .setIndex(e.index())
          .setType(e.type().ordinal())
          .setData(UnsafeByteOperations.unsafeWrap(e.data())));
    }
    if (m.snapshot() != null) {
      b.setSnapshot(RaftSnapshotMeta.newBuilder()
          .setIndex(m.snapshot().index())
          .setTerm(m.snapshot().term())
          .addAllVoters(m.snapshot().voters())
          .addAllLearners(m.snapshot().learners())
          .setData(UnsafeByteOperations.unsafeWrap(m.snapshot().data())));
    }
    if (m.context() != null) {
      b.setContext(UnsafeByteOperations.unsafeWrap(m.context()));
    }
    return b.build().toByteArray();
  }

  /** A forwarded lease request or answer ({@code LeaseForward} bytes) from {@code from} to {@code to}. */
  static byte[] encodeLease(long from, long to, byte[] lease) {
    return PeerMessage.newBuilder().setType(LEASE_FORWARD).setFrom(from).setTo(to)
        .setContext(UnsafeByteOperations.unsafeWrap(lease)).build().toByteArray();
  }

  /** A peer message as it arrived: a Raft message ({@link #toRaft}) or a lease frame ({@link #LEASE_FORWARD}). */
  static PeerMessage parse(byte[] bytes) throws InvalidProtocolBufferException {
    // The parsed fields alias the payload (ours alone) instead of copying it; each entry's data is then
    // copied out once, into the array the entry keeps.
    return PeerMessage.parser().parseFrom(Aliasing.input(bytes));
  }

  static RaftMessage decode(byte[] bytes) throws InvalidProtocolBufferException {
    return toRaft(parse(bytes));
  }

  /** The Raft message a parsed peer message holds; refused if its type or an entry's is not one of Raft's. */
  static RaftMessage toRaft(PeerMessage p) throws InvalidProtocolBufferException {
    if (p.getType() < 0 || p.getType() >= MESSAGE_TYPES.length) {
      throw new InvalidProtocolBufferException("peer message of unknown type " + p.getType());
    }
    for (RaftEntry e : p.getEntriesList()) {
      if (e.getType() < 0 || e.getType() >= ENTRY_TYPES.length) {
        throw new InvalidProtocolBufferException("entry " + e.getIndex() + " of unknown type " + e.getType());
      }
    }
    List<Entry> entries = new ArrayList<>(p.getEntriesCount());
    for (RaftEntry e : p.getEntriesList()) {
      entries.add(new Entry(e.getTerm(), e.getIndex(), ENTRY_TYPES[e.getType()], e.getData().toByteArray()));
    }
    Snapshot snapshot = null;
    if (p.hasSnapshot()) {
      RaftSnapshotMeta s = p.getSnapshot();
      snapshot = new Snapshot(s.getIndex(), s.getTerm(), s.getVotersList(), s.getLearnersList(),
          s.getData().toByteArray());
    }
    return new RaftMessage(MESSAGE_TYPES[p.getType()], p.getFrom(), p.getTo(), p.getTerm(), p.getLogTerm(),
        p.getIndex(), entries, p.getCommit(), p.getReject(), p.getRejectHint(), snapshot,
        p.hasContext() ? p.getContext().toByteArray() : null);
  }
}
