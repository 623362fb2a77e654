package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.raft.Entry;
import io.vetcd.raft.RaftMessage;
import io.vetcd.raft.MessageType;
import io.vetcd.raft.Snapshot;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The peer wire form of Raft messages. */
class RaftCodecTest {

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void everyFieldSurvivesARoundTrip() throws Exception {
    RaftMessage m = RaftMessage.builder(MessageType.APP)
        .from(1).to(2).term(7).logTerm(6).index(41).commit(40).reject(true).rejectHint(39)
        .entries(List.of(
            new Entry(7, 42, Entry.Type.NORMAL, bytes("put a=1")),
            new Entry(7, 43, Entry.Type.CONF_CHANGE, bytes("add member 3")),
            new Entry(7, 44, Entry.Type.NORMAL, new byte[0])))
        .snapshot(new Snapshot(30, 5, List.of(1L, 2L, 3L), List.of(4L), bytes("keyspace")))
        .context(bytes("read 9"))
        .build();

    RaftMessage back = RaftCodec.decode(RaftCodec.encode(m));

    assertEquals(m, back);
    assertArrayEquals(bytes("keyspace"), back.snapshot().data());
    assertEquals(List.of(1L, 2L, 3L), back.snapshot().voters());
    assertEquals(List.of(4L), back.snapshot().learners());
  }

  @Test
  void aMessageWithoutSnapshotOrContextDecodesWithout() throws Exception {
    RaftMessage back = RaftCodec.decode(RaftCodec.encode(RaftMessage.builder(MessageType.HEARTBEAT).from(2).to(1).term(3).build()));

    assertNull(back.snapshot());
    assertNull(back.context());
    assertEquals(List.of(), back.entries());
  }

  @Test
  void decodedEntriesOwnTheirData() throws Exception {
    // Decoding aliases the payload while it parses; what it returns must not: the transport's
    // buffers are reused, and an entry is kept in the log long after its message.
    RaftMessage m = RaftMessage.builder(MessageType.APP).from(1).to(2).term(1)
        .entries(List.of(new Entry(1, 1, Entry.Type.NORMAL, bytes("value one")), new Entry(1, 2, Entry.Type.NORMAL, bytes("value two"))))
        .context(bytes("ctx"))
        .build();
    byte[] payload = RaftCodec.encode(m);

    RaftMessage back = RaftCodec.decode(payload);
    Arrays.fill(payload, (byte) 0);

    assertArrayEquals(bytes("value one"), back.entries().get(0).data());
    assertArrayEquals(bytes("value two"), back.entries().get(1).data());
    assertArrayEquals(bytes("ctx"), back.context());
  }

  @Test
  void parsingAliasesThePayloadInsteadOfCopyingIt() throws Exception {
    // One copy of a large value fewer per message received (CodedInputStream.newInstance(byte[]) would
    // copy whatever enableAliasing says).
    byte[] payload = RaftCodec.encode(RaftMessage.builder(MessageType.APP).from(1).to(2).term(1)
        .entries(List.of(new Entry(1, 1, Entry.Type.NORMAL, bytes("value one")))).build());
    io.vetcd.proto.internal.PeerMessage parsed = RaftCodec.parse(payload);
    Arrays.fill(payload, (byte) '#');
    assertEquals("#########", parsed.getEntries(0).getData().toStringUtf8());
  }

  @Test
  void aliasingReachesTheValueOfAPutNestedInARequest() throws Exception {
    byte[] data = io.vetcd.proto.internal.InternalRequest.newBuilder().setId(7)
        .setPut(io.vetcd.proto.etcdserverpb.PutRequest.newBuilder().setKey(com.google.protobuf.ByteString.copyFromUtf8("k"))
            .setValue(com.google.protobuf.ByteString.copyFromUtf8("value")))
        .build().toByteArray();
    io.vetcd.proto.internal.InternalRequest parsed = io.vetcd.proto.internal.InternalRequest.parser().parseFrom(Aliasing.input(data));
    Arrays.fill(data, (byte) '#');
    assertEquals("#####", parsed.getPut().getValue().toStringUtf8());
  }

  @Test
  void encodingCopiesTheEntriesAtOnce() throws Exception {
    // Entries are wrapped, not copied, while encoding: the bytes that come out must still be a
    // snapshot of the message as it was.
    byte[] data = bytes("original");
    byte[] payload = RaftCodec.encode(RaftMessage.builder(MessageType.APP).from(1).to(2).term(1)
        .entries(List.of(new Entry(1, 1, Entry.Type.NORMAL, data))).build());
    Arrays.fill(data, (byte) 'x');

    assertArrayEquals(bytes("original"), RaftCodec.decode(payload).entries().get(0).data());
  }

  @Test
  void garbageIsRefused() {
    assertThrows(InvalidProtocolBufferException.class, () -> RaftCodec.decode(new byte[] {(byte) 0xff, (byte) 0xff, 0x01}));
  }

  @Test
  void aLeaseFrameRidesTheSameStreamAndIsToldApartByItsType() throws Exception {
    byte[] lease = bytes("a LeaseForward");
    io.vetcd.proto.internal.PeerMessage p = RaftCodec.parse(RaftCodec.encodeLease(1, 2, lease));
    assertEquals(RaftCodec.LEASE_FORWARD, p.getType());
    assertArrayEquals(lease, p.getContext().toByteArray());
    org.junit.jupiter.api.Assertions.assertThrows(com.google.protobuf.InvalidProtocolBufferException.class,
        () -> RaftCodec.toRaft(p), "a lease frame is not a Raft message");
  }

  @Test
  void aMessageOrEntryOfAnUnknownTypeIsRefusedNotACrash() {
    byte[] unknownMessage = io.vetcd.proto.internal.PeerMessage.newBuilder().setType(77).build().toByteArray();
    byte[] unknownEntry = io.vetcd.proto.internal.PeerMessage.newBuilder().setType(MessageType.APP.ordinal())
        .addEntries(io.vetcd.proto.internal.RaftEntry.newBuilder().setIndex(3).setType(9)).build().toByteArray();
    org.junit.jupiter.api.Assertions.assertThrows(com.google.protobuf.InvalidProtocolBufferException.class,
        () -> RaftCodec.decode(unknownMessage));
    org.junit.jupiter.api.Assertions.assertThrows(com.google.protobuf.InvalidProtocolBufferException.class,
        () -> RaftCodec.decode(unknownEntry));
  }
}
