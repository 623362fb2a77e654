package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.proto.etcdserverpb.Member;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.proto.internal.MemberChange;
import io.vetcd.raft.ConfChange;
import io.vetcd.raft.ConfState;
import io.vetcd.raft.Entry;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The cluster's member list as the log makes it: what a membership change does to the
 * {@link ClusterRecord}, decided the same way on every member (the record is applied in the same
 * transaction as the entries, so a restart finds it as of the applied index). Pure: no I/O.
 *
 * <p>A {@link Entry.Type#CONF_CHANGE} entry holds one of two payloads. The entries that found a cluster
 * (one per member, written identically by every member at bootstrap) hold the founding member's
 * {@link Member} message, whose first byte is field 1's tag (0x08); every later change holds a
 * {@link ConfChange} (first byte: its type's code, 1 to 3) whose context is a {@link MemberChange}.
 *
 * <p>etcd checks a change twice: before proposing it (on the member that took the request, against what
 * it has applied) and when applying it (against the state at its index, on every member alike). The
 * second check is what makes two racing requests safe; a change refused there changes nothing.
 */
final class ClusterMembers {

  /** etcd 3.4 allows one learner at a time (etcdserver's maxLearners). */
  static final int MAX_LEARNERS = 1;

  /** The tag of {@link Member}'s field 1 (ID, varint), how a founding entry's payload begins. */
  private static final byte FOUNDING_TAG = 0x08;

  private ClusterMembers() {}

  /** What applying one CONF_CHANGE entry did. */
  record Applied(ClusterRecord record, ConfChange change, long requestId, EtcdError refused) {
    /** Whether the change took effect (and the core must hear of it). */
    boolean took() {
      return refused == null && change != null;
    }
  }

  /** The core's view of a record: voters and learners. */
  static ConfState confState(ClusterRecord record) {
    List<Long> voters = new ArrayList<>();
    List<Long> learners = new ArrayList<>();
    for (Member m : record.getMembersList()) {
      (m.getIsLearner() ? learners : voters).add(m.getID());
    }
    return new ConfState(voters.stream().sorted().toList(), learners.stream().sorted().toList());
  }

  static Member find(ClusterRecord record, long id) {
    for (Member m : record.getMembersList()) {
      if (m.getID() == id) {
        return m;
      }
    }
    return null;
  }

  static boolean removed(ClusterRecord record, long id) {
    return record.getRemovedList().contains(id);
  }

  /** The entry payload of a change whose context carries the request id and the member. */
  static ConfChange change(ConfChange.Type type, long requestId, Member member) {
    return new ConfChange(type, member.getID(),
        MemberChange.newBuilder().setId(requestId).setMember(member).build().toByteArray());
  }

  /** The entry payload that promotes learner {@code id} to a voter. */
  static ConfChange promotion(long requestId, long id) {
    return new ConfChange(ConfChange.Type.ADD_VOTER, id, MemberChange.newBuilder().setId(requestId)
        .setMember(Member.newBuilder().setID(id)).setPromote(true).build().toByteArray());
  }

  /** Applies a CONF_CHANGE entry's payload to {@code record}. */
  static Applied apply(ClusterRecord record, byte[] payload) {
    if (payload.length > 0 && payload[0] == FOUNDING_TAG) {
      Member founding;
      try {
        founding = Member.parseFrom(payload);
      } catch (InvalidProtocolBufferException e) {
        throw new IllegalStateException("a founding membership entry does not decode", e);
      }
      if (find(record, founding.getID()) != null || removed(record, founding.getID())) {
        // Bootstrap wrote the record already, or it is a list fetched by a member that joined later
        // (a founder removed since must not come back).
        return new Applied(record, null, 0, null);
      }
      return new Applied(record.toBuilder().addMembers(founding).build(),
          new ConfChange(ConfChange.Type.ADD_VOTER, founding.getID(), null), 0, null);
    }
    ConfChange cc = ConfChange.decode(payload);
    MemberChange context;
    try {
      context = MemberChange.parseFrom(cc.context());
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("a membership change's context does not decode", e);
    }
    EtcdError refused = context.getPromote() ? checkPromotion(record, cc.member())
        : check(record, cc.type(), context.getMember());
    if (refused != null) {
      return new Applied(record, cc, context.getId(), refused);
    }
    return new Applied(changed(record, cc.type(), context.getMember()), cc, context.getId(), null);
  }

  /**
   * Why {@code record} refuses a change, or null (etcd's ValidateConfigurationChange, in its order): a
   * removed id never comes back, an added member must be new with peer URLs nobody has, a removed one
   * must be there; one learner at most. Promotions: {@link #checkPromotion}.
   */
  static EtcdError check(ClusterRecord record, ConfChange.Type type, Member member) {
    long id = member.getID();
    if (removed(record, id)) {
      return EtcdError.MEMBER_NOT_FOUND; // etcd maps "membership: ID removed" to "member not found"
    }
    Member existing = find(record, id);
    switch (type) {
      case ADD_LEARNER, ADD_VOTER -> {
        if (existing != null) {
          return EtcdError.MEMBER_EXISTS;
        }
        if (peerUrlTaken(record, member.getPeerURLsList(), 0)) {
          return EtcdError.PEER_URL_EXISTS;
        }
        if (type == ConfChange.Type.ADD_LEARNER && learners(record) >= MAX_LEARNERS) {
          return EtcdError.TOO_MANY_LEARNERS;
        }
        return null;
      }
      case REMOVE -> {
        if (existing == null) {
          return EtcdError.MEMBER_NOT_FOUND;
        }
        boolean lastVoter = !existing.getIsLearner()
            && record.getMembersList().stream().filter(m -> !m.getIsLearner()).count() == 1;
        // Nobody would be left to commit anything (the strict checks refuse it before; without them too).
        return lastVoter ? EtcdError.MEMBER_NOT_ENOUGH_STARTED : null;
      }
      default -> throw new IllegalArgumentException(String.valueOf(type));
    }
  }

  /** Why {@code record} refuses to promote {@code id}, or null: it must be a learner of the cluster. */
  static EtcdError checkPromotion(ClusterRecord record, long id) {
    Member existing = find(record, id);
    if (existing == null || removed(record, id)) {
      return EtcdError.MEMBER_NOT_FOUND;
    }
    return existing.getIsLearner() ? null : EtcdError.MEMBER_NOT_LEARNER;
  }

  /** Why {@code record} refuses new peer URLs for member {@code id} (etcd's MemberUpdate), or null. */
  static EtcdError checkUpdate(ClusterRecord record, long id, List<String> peerUrls) {
    if (find(record, id) == null) {
      return EtcdError.MEMBER_NOT_FOUND;
    }
    return peerUrlTaken(record, peerUrls, id) ? EtcdError.PEER_URL_EXISTS : null;
  }

  /** Whether any member but {@code except} has one of {@code urls} among its peer URLs. */
  static boolean peerUrlTaken(ClusterRecord record, List<String> urls, long except) {
    Set<String> wanted = new HashSet<>(urls);
    return record.getMembersList().stream()
        .filter(m -> m.getID() != except)
        .anyMatch(m -> m.getPeerURLsList().stream().anyMatch(wanted::contains));
  }

  static int learners(ClusterRecord record) {
    return (int) record.getMembersList().stream().filter(Member::getIsLearner).count();
  }

  private static ClusterRecord changed(ClusterRecord record, ConfChange.Type type, Member member) {
    ClusterRecord.Builder b = record.toBuilder();
    int at = indexOf(record, member.getID());
    switch (type) {
      case ADD_LEARNER -> b.addMembers(member.toBuilder().setIsLearner(true).clearName().clearClientURLs());
      case ADD_VOTER -> {
        if (at >= 0) {
          b.setMembers(at, record.getMembers(at).toBuilder().setIsLearner(false)); // a promotion
        } else {
          b.addMembers(member.toBuilder().setIsLearner(false).clearName().clearClientURLs());
        }
      }
      case REMOVE -> b.removeMembers(at).addRemoved(member.getID());
      default -> throw new IllegalArgumentException(String.valueOf(type));
    }
    return b.build();
  }

  /** etcd's MemberUpdate applied: the member's peer URLs replaced, if it is still there. */
  static ClusterRecord updatePeerUrls(ClusterRecord record, long id, List<String> peerUrls) {
    int at = indexOf(record, id);
    if (at < 0) {
      return record;
    }
    return record.toBuilder()
        .setMembers(at, record.getMembers(at).toBuilder().clearPeerURLs().addAllPeerURLs(peerUrls))
        .build();
  }

  private static int indexOf(ClusterRecord record, long id) {
    for (int i = 0; i < record.getMembersCount(); i++) {
      if (record.getMembers(i).getID() == id) {
        return i;
      }
    }
    return -1;
  }
}
