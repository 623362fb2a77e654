package io.vetcd.raft;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.LongUnaryOperator;

/**
 * Majority arithmetic over the voter set (etcd-io/raft quorum/majority.go): a quorum is any ⌊n/2⌋+1
 * voters, so any two quorums share a member — the overlap every Raft safety argument rests on.
 */
final class MajorityQuorum {

  private MajorityQuorum() {}

  static int size(int voters) {
    return voters / 2 + 1;
  }

  /**
   * The highest index that a quorum of voters has reached: sort the match indexes and take the one a
   * quorum is at or above. With matches {5, 3, 9} among three voters that is 5.
   */
  static long committedIndex(List<Long> voters, LongUnaryOperator matchOf) {
    long[] matches = new long[voters.size()];
    for (int i = 0; i < matches.length; i++) {
      matches[i] = matchOf.applyAsLong(voters.get(i));
    }
    java.util.Arrays.sort(matches);
    return matches[matches.length - size(matches.length)];
  }

  /** Counts the answers recorded so far ({@code true}: granted); members not in the map are pending. */
  static VoteResult voteResult(List<Long> voters, Map<Long, Boolean> votes) {
    int granted = 0;
    int refused = 0;
    for (long id : voters) {
      Boolean v = votes.get(id);
      if (v == null) {
        continue;
      }
      if (v) {
        granted++;
      } else {
        refused++;
      }
    }
    int q = size(voters.size());
    if (granted >= q) {
      return VoteResult.WON;
    }
    return voters.size() - refused < q ? VoteResult.LOST : VoteResult.PENDING;
  }

  /** Whether {@code members} include a quorum of {@code voters}. */
  static boolean isQuorum(List<Long> voters, Collection<Long> members) {
    int n = 0;
    for (long id : voters) {
      if (members.contains(id)) {
        n++;
      }
    }
    return n >= size(voters.size());
  }
}
