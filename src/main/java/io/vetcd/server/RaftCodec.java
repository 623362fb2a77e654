package io.vetcd.server;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.internal.RaftEntry;
import io.vetcd.proto.internal.RaftMessage;
import io.vetcd.proto.internal.RaftSnapshotMeta;
import io.vetcd.raft.Entry;
import io.vetcd.raft.Message;
import io.vetcd.raft.MessageType;
import io.vetcd.raft.Snapshot;
import java.util.ArrayList;
import java.util.List;

/** Raft messages to and from the bytes the peer transport carries. */
final class RaftCodec {

  private RaftCodec() {}

  static byte[] encode(Message m) {
    RaftMessage.Builder b = RaftMessage.newBuilder()
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
          .setData(ByteString.copyFrom(e.data())));
    }
    if (m.snapshot() != null) {
      b.setSnapshot(RaftSnapshotMeta.newBuilder()
          .setIndex(m.snapshot().index())
          .setTerm(m.snapshot().term())
          .addAllVoters(m.snapshot().voters())
          .setData(ByteString.copyFrom(m.snapshot().data())));
    }
    if (m.context() != null) {
      b.setContext(ByteString.copyFrom(m.context()));
    }
    return b.build().toByteArray();
  }

  static Message decode(byte[] bytes) throws InvalidProtocolBufferException {
    RaftMessage p = RaftMessage.parseFrom(bytes);
    List<Entry> entries = new ArrayList<>(p.getEntriesCount());
    for (RaftEntry e : p.getEntriesList()) {
      entries.add(new Entry(e.getTerm(), e.getIndex(), Entry.Type.values()[e.getType()], e.getData().toByteArray()));
    }
    Snapshot snapshot = null;
    if (p.hasSnapshot()) {
      RaftSnapshotMeta s = p.getSnapshot();
      snapshot = new Snapshot(s.getIndex(), s.getTerm(), s.getVotersList(), s.getData().toByteArray());
    }
    return new Message(MessageType.values()[p.getType()], p.getFrom(), p.getTo(), p.getTerm(), p.getLogTerm(),
        p.getIndex(), entries, p.getCommit(), p.getReject(), p.getRejectHint(), snapshot,
        p.hasContext() ? p.getContext().toByteArray() : null);
  }
}
