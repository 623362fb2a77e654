package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.proto.etcdserverpb.Member;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.raft.ConfChange;
import io.vetcd.raft.ConfState;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What a membership entry does to the member list, decided alike on every member (etcd's rules). */
class ClusterMembersTest {

  private static final ClusterRecord THREE = ClusterRecord.newBuilder().setClusterId(9)
      .addMembers(voter(1, "http://a:2380"))
      .addMembers(voter(2, "http://b:2380"))
      .addMembers(voter(3, "http://c:2380"))
      .build();

  private static Member voter(long id, String url) {
    return Member.newBuilder().setID(id).setName("m" + id).addPeerURLs(url).build();
  }

  private static Member added(long id, String url) {
    return Member.newBuilder().setID(id).addPeerURLs(url).build();
  }

  private static ClusterMembers.Applied apply(ClusterRecord record, ConfChange cc) {
    return ClusterMembers.apply(record, cc.encode());
  }

  @Test
  void foundingEntriesBuildTheListOnAMemberThatJoinedAndChangeNothingOnTheFounders() {
    ClusterRecord empty = ClusterRecord.newBuilder().setClusterId(9).build();
    ClusterMembers.Applied first = ClusterMembers.apply(empty, voter(1, "http://a:2380").toByteArray());
    assertTrue(first.took());
    assertEquals(new ConfChange(ConfChange.Type.ADD_VOTER, 1, null), first.change());
    assertEquals(List.of(1L), ClusterMembers.confState(first.record()).voters());

    ClusterMembers.Applied again = ClusterMembers.apply(THREE, voter(2, "http://b:2380").toByteArray());
    assertFalse(again.took(), "bootstrap wrote the founders already");
    assertSame(THREE, again.record());
  }

  @Test
  void aLearnerIsAddedPromotedAndRemovedForGood() {
    ClusterMembers.Applied learner = apply(THREE,
        ClusterMembers.change(ConfChange.Type.ADD_LEARNER, 77, added(4, "http://d:2380")));
    assertTrue(learner.took());
    assertEquals(77, learner.requestId());
    assertEquals(new ConfState(List.of(1L, 2L, 3L), List.of(4L)), ClusterMembers.confState(learner.record()));

    ClusterMembers.Applied promoted = apply(learner.record(), ClusterMembers.promotion(78, 4));
    assertTrue(promoted.took());
    assertEquals(new ConfState(List.of(1L, 2L, 3L, 4L), List.of()), ClusterMembers.confState(promoted.record()));
    assertEquals(List.of("http://d:2380"), ClusterMembers.find(promoted.record(), 4).getPeerURLsList());

    ClusterMembers.Applied removed = apply(promoted.record(),
        ClusterMembers.change(ConfChange.Type.REMOVE, 79, Member.newBuilder().setID(2).build()));
    assertTrue(removed.took());
    assertNull(ClusterMembers.find(removed.record(), 2));
    assertTrue(ClusterMembers.removed(removed.record(), 2));
    // etcd: a removed id is "not found" for good, even added again with its old URL.
    assertEquals(EtcdError.MEMBER_NOT_FOUND, apply(removed.record(),
        ClusterMembers.change(ConfChange.Type.ADD_VOTER, 80, added(2, "http://b:2380"))).refused());
  }

  @Test
  void refusalsChangeNothingAndSayWhyInEtcdsWords() {
    assertRefused(EtcdError.MEMBER_EXISTS, ClusterMembers.change(ConfChange.Type.ADD_LEARNER, 1, added(3, "http://x:1")));
    assertRefused(EtcdError.PEER_URL_EXISTS, ClusterMembers.change(ConfChange.Type.ADD_VOTER, 1, added(5, "http://b:2380")));
    assertRefused(EtcdError.MEMBER_NOT_FOUND,
        ClusterMembers.change(ConfChange.Type.REMOVE, 1, Member.newBuilder().setID(42).build()));
    assertRefused(EtcdError.MEMBER_NOT_FOUND, ClusterMembers.promotion(1, 42));
    assertRefused(EtcdError.MEMBER_NOT_LEARNER, ClusterMembers.promotion(1, 2));
    ClusterRecord withLearner = apply(THREE,
        ClusterMembers.change(ConfChange.Type.ADD_LEARNER, 1, added(4, "http://d:2380"))).record();
    ClusterMembers.Applied second = apply(withLearner,
        ClusterMembers.change(ConfChange.Type.ADD_LEARNER, 2, added(5, "http://e:2380")));
    assertEquals(EtcdError.TOO_MANY_LEARNERS, second.refused());
    assertSame(withLearner, second.record());
  }

  @Test
  void aPromotionOfAMemberRemovedMeanwhileNeverAddsItBack() {
    ClusterRecord withLearner = apply(THREE,
        ClusterMembers.change(ConfChange.Type.ADD_LEARNER, 1, added(4, "http://d:2380"))).record();
    ClusterRecord gone = apply(withLearner,
        ClusterMembers.change(ConfChange.Type.REMOVE, 2, Member.newBuilder().setID(4).build())).record();
    ClusterMembers.Applied late = apply(gone, ClusterMembers.promotion(3, 4));
    assertEquals(EtcdError.MEMBER_NOT_FOUND, late.refused());
    assertNull(ClusterMembers.find(late.record(), 4));
  }

  @Test
  void aFoundingEntryNeverBringsBackAFounderRemovedSince() {
    // A member that joined later fetched a list without founder 2, then applies the log from index 1.
    ClusterRecord fetchedLater = apply(THREE,
        ClusterMembers.change(ConfChange.Type.REMOVE, 1, Member.newBuilder().setID(2).build())).record();
    ClusterMembers.Applied founding = ClusterMembers.apply(fetchedLater, voter(2, "http://b:2380").toByteArray());
    assertFalse(founding.took());
    assertNull(ClusterMembers.find(founding.record(), 2));
  }

  @Test
  void theLastVoterIsNeverRemoved() {
    ClusterRecord one = ClusterRecord.newBuilder().setClusterId(9).addMembers(voter(1, "http://a:2380"))
        .addMembers(added(4, "http://d:2380").toBuilder().setIsLearner(true)).build();
    ClusterMembers.Applied last = apply(one,
        ClusterMembers.change(ConfChange.Type.REMOVE, 1, Member.newBuilder().setID(1).build()));
    assertEquals(EtcdError.MEMBER_NOT_ENOUGH_STARTED, last.refused());
    assertSame(one, last.record());
  }

  @Test
  void anUpdateNeedsTheMemberAndUrlsNobodyElseHas() {
    assertNull(ClusterMembers.checkUpdate(THREE, 2, List.of("http://b:2380", "http://b2:2380")));
    assertEquals(EtcdError.PEER_URL_EXISTS, ClusterMembers.checkUpdate(THREE, 2, List.of("http://c:2380")));
    assertEquals(EtcdError.MEMBER_NOT_FOUND, ClusterMembers.checkUpdate(THREE, 9, List.of("http://z:1")));
    assertEquals(List.of("http://b2:2380"),
        ClusterMembers.find(ClusterMembers.updatePeerUrls(THREE, 2, List.of("http://b2:2380")), 2).getPeerURLsList());
  }

  private static void assertRefused(EtcdError expected, ConfChange cc) {
    ClusterMembers.Applied applied = apply(THREE, cc);
    assertEquals(expected, applied.refused(), cc.toString());
    assertFalse(applied.took());
    assertSame(THREE, applied.record(), "a refused change changes nothing");
  }
}
