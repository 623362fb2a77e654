package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Message;
import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.internal.LeaseForward;
import io.vetcd.raft.ReadState;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The Raft loop's collaborators, each on its own: requests, ReadIndex batches, lease forwarding. */
class RaftLoopPartsTest {

  private static final long FAR_FUTURE = Long.MAX_VALUE / 2;

  // ---------------------------------------------------------------- RequestRegistry

  @Test
  void requestIdsCarryTheMemberAndNeverRepeat() {
    RequestRegistry registry = new RequestRegistry(0xABCD_1234_5678L, 5000);
    long a = registry.nextId();
    long b = registry.nextId();
    assertEquals(0x5678L, a >>> 48, "etcd's scheme: the member id's low 16 bits on top");
    assertEquals(a + 1, b);
  }

  @Test
  void aWaiterHearsOnceWhoeverAnswersFirst() {
    RequestRegistry registry = new RequestRegistry(1, 5000);
    List<AsyncResult<Message>> heard = new ArrayList<>();
    registry.register(7, heard::add);
    PutResponse response = PutResponse.getDefaultInstance();
    registry.answer(List.of(new ApplyThread.Result(7, response, null)));
    registry.fail(7, EtcdError.TIMEOUT.exception());
    registry.expire(FAR_FUTURE);
    registry.failAll(EtcdError.STOPPED.exception());
    assertEquals(1, heard.size());
    assertTrue(heard.get(0).succeeded());
    assertEquals(response, heard.get(0).result());
  }

  @Test
  void aRequestNotAppliedInTimeIsAnsweredRequestTimedOut() {
    RequestRegistry registry = new RequestRegistry(1, 5000);
    List<AsyncResult<Message>> heard = new ArrayList<>();
    registry.register(7, heard::add);
    registry.expire(System.nanoTime());
    assertEquals(List.of(), heard, "not yet");
    registry.expire(System.nanoTime() + 6_000_000_000L);
    assertEquals(1, heard.size());
    assertEquals("etcdserver: request timed out", heard.get(0).cause().getMessage());
  }

  @Test
  void aRequestWhoseAnswerIsHeldAfterItAppliedNoLongerTimesOut() {
    RequestRegistry registry = new RequestRegistry(1, 5000);
    List<AsyncResult<Message>> heard = new ArrayList<>();
    registry.register(7, heard::add);
    registry.keepWaiting(7);
    registry.expire(System.nanoTime() + 6_000_000_000L);
    assertEquals(List.of(), heard, "a physical compaction's answer waits for its deletes, as long as they take");
    registry.answer(List.of(new ApplyThread.Result(7, PutResponse.getDefaultInstance(), null)));
    assertEquals(1, heard.size());
    assertTrue(heard.get(0).succeeded());
  }

  // ---------------------------------------------------------------- ProposalBounds

  @Test
  void proposalsAreRefusedPastTheApplyGapOrTheUncommittedBytes() {
    assertFalse(ProposalBounds.refuse(5000, 0, 0, 0, 100), "etcd's gap: more than 5000, not 5000");
    assertTrue(ProposalBounds.refuse(5001, 0, 0, 0, 100));
    long max = ProposalBounds.MAX_UNCOMMITTED_BYTES;
    assertFalse(ProposalBounds.refuse(10, 10, max - 200, 100, 100), "exactly at the bound");
    assertTrue(ProposalBounds.refuse(10, 10, max - 200, 100, 101), "one byte past it, queued ones counted");
    assertEquals("etcdserver: too many requests", EtcdError.TOO_MANY_REQUESTS.exception().getMessage());
  }

  // ---------------------------------------------------------------- HeldAcks

  private static io.vetcd.raft.RaftMessage ack(long to, long index, boolean reject) {
    return io.vetcd.raft.RaftMessage.builder(io.vetcd.raft.MessageType.APP_RESP).from(3).to(to).term(2).index(index)
        .reject(reject).build();
  }

  @Test
  void acksWaitWhileTheApplyIsBehindAndTheNewestGoesOnceItIsDownToHalf() {
    HeldAcks acks = new HeldAcks();
    long over = HeldAcks.HOLD_ABOVE_BYTES + 1;
    assertFalse(acks.hold(ack(1, 10, false), HeldAcks.HOLD_ABOVE_BYTES), "at the bound: sent");
    assertTrue(acks.hold(ack(1, 11, false), over));
    assertFalse(acks.hold(ack(1, 11, true), over), "a rejection is never held (the leader must back up)");
    assertFalse(acks.hold(io.vetcd.raft.RaftMessage.builder(io.vetcd.raft.MessageType.HEARTBEAT_RESP).from(3).to(1)
        .term(2).build(), over), "heartbeat responses keep the follower active at the leader");
    assertTrue(acks.hold(ack(1, 12, false), 0), "behind one already held: waits too, order kept");
    assertEquals(List.of(), acks.release(HeldAcks.HOLD_ABOVE_BYTES / 2 + 1), "not yet down to half");
    List<io.vetcd.raft.RaftMessage> released = acks.release(HeldAcks.HOLD_ABOVE_BYTES / 2);
    assertEquals(1, released.size(), "the newest stands for all: acks are cumulative");
    assertEquals(12, released.get(0).index());
    assertEquals(List.of(), acks.release(0), "nothing twice");
    assertFalse(acks.hold(ack(1, 13, false), 0));
  }

  // ---------------------------------------------------------------- ReadIndexBatcher

  @Test
  void theReadsOfOneTurnShareOneReadIndexRequestAndWaitForTheAppliedIndex() {
    ReadIndexBatcher reads = new ReadIndexBatcher(5000);
    Promise<Void> first = Promise.promise();
    Promise<Void> second = Promise.promise();
    assertTrue(reads.add(first), "the first read of a turn schedules the flush");
    assertFalse(reads.add(second));
    List<byte[]> asked = new ArrayList<>();
    assertTrue(reads.flush(context -> asked.add(context)));
    assertEquals(1, asked.size(), "one ReadIndex request for both");
    assertFalse(reads.flush(context -> asked.add(context)), "nothing left to ask");

    reads.readIndexes(List.of(new ReadState(10, asked.get(0))));
    reads.applied(9);
    assertFalse(first.future().isComplete());
    reads.applied(10);
    assertTrue(first.future().succeeded());
    assertTrue(second.future().succeeded());
  }

  @Test
  void aReadIndexAnswerForAnotherContextCompletesNothing() {
    ReadIndexBatcher reads = new ReadIndexBatcher(5000);
    Promise<Void> read = Promise.promise();
    reads.add(read);
    reads.flush(context -> true);
    reads.readIndexes(List.of(new ReadState(1, ByteBuffer.allocate(8).putLong(99).array())));
    reads.applied(100);
    assertFalse(read.future().isComplete());
  }

  @Test
  void withoutALeaderReadsFailAtOnceAndUnansweredOnesTimeOut() {
    ReadIndexBatcher reads = new ReadIndexBatcher(5000);
    Promise<Void> refused = Promise.promise();
    reads.add(refused);
    assertFalse(reads.flush(context -> false));
    assertEquals("etcdserver: no leader", refused.future().cause().getMessage());

    Promise<Void> unanswered = Promise.promise();
    reads.add(unanswered);
    reads.flush(context -> true);
    reads.expire(System.nanoTime() + 6_000_000_000L);
    assertEquals("etcdserver: request timed out", unanswered.future().cause().getMessage());
  }

  @Test
  void aBarrierOnTheAppliedIndexCompletesAtOnceIfReachedAndEveryWaiterFailsWhenStopped() {
    ReadIndexBatcher reads = new ReadIndexBatcher(5000);
    Promise<Void> reached = Promise.promise();
    reads.waitForApplied(5, 5, reached);
    assertTrue(reached.future().succeeded());
    Promise<Void> waiting = Promise.promise();
    reads.waitForApplied(6, 5, waiting);
    Promise<Void> batched = Promise.promise();
    reads.add(batched);
    reads.failAll(EtcdError.STOPPED.exception());
    assertEquals("etcdserver: server stopped", waiting.future().cause().getMessage());
    assertEquals("etcdserver: server stopped", batched.future().cause().getMessage());
  }

  // ---------------------------------------------------------------- LeaseForwarder

  @Test
  void aForwardedRequestIsAnsweredBySequenceNumber() throws Exception {
    List<long[]> sentTo = new ArrayList<>();
    List<LeaseForward> sent = new ArrayList<>();
    LeaseForwarder follower = new LeaseForwarder((to, frame) -> {
      sentTo.add(new long[] {to});
      sent.add(parse(frame));
    });
    Future<LeaseForward> first = follower.forward(3, LeaseForward.newBuilder().setRenew(42));
    Future<LeaseForward> second = follower.forward(3, LeaseForward.newBuilder().setRenew(43));
    assertEquals(2, sent.size());
    assertEquals(3, sentTo.get(0)[0]);

    // The leader answers the second first.
    LeaseForwarder leader = new LeaseForwarder((to, frame) -> follower.received(3, frame));
    leader.answerer(request -> Future.succeededFuture(LeaseForward.newBuilder().setTtl(request.getRenew()).build()));
    leader.received(1, sent.get(1).toByteArray());
    assertTrue(second.succeeded());
    assertEquals(43, second.result().getTtl());
    assertFalse(first.isComplete());
    leader.received(1, sent.get(0).toByteArray());
    assertEquals(42, first.result().getTtl());
  }

  @Test
  void theLeadersRefusalTravelsAsEtcdsWordsAndSilenceTimesOut() throws Exception {
    List<byte[]> toLeader = new ArrayList<>();
    LeaseForwarder follower = new LeaseForwarder((to, frame) -> toLeader.add(frame));
    Future<LeaseForward> refused = follower.forward(3, LeaseForward.newBuilder().setRenew(1));
    LeaseForwarder leader = new LeaseForwarder((to, frame) -> follower.received(3, frame));
    leader.answerer(request -> Future.failedFuture(EtcdError.NOT_LEADER.exception()));
    leader.received(1, toLeader.get(0));
    assertEquals(EtcdError.NOT_LEADER.message(), refused.result().getError());

    Future<LeaseForward> unanswered = follower.forward(3, LeaseForward.newBuilder().setRenew(2));
    follower.expire(System.nanoTime() + 2_000_000_000L);
    assertEquals("etcdserver: request timed out", unanswered.cause().getMessage());
  }

  private static LeaseForward parse(byte[] frame) {
    try {
      return LeaseForward.parseFrom(frame);
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new AssertionError(e);
    }
  }
}
