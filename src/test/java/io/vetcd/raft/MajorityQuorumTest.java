package io.vetcd.raft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MajorityQuorumTest {

  private static final List<Long> FIVE = List.of(1L, 2L, 3L, 4L, 5L);

  /**
   * "A log entry is committed once the leader that created the entry has replicated it on a majority
   * of the servers". Reference: section 5.3
   */
  @Test
  void committedIndexIsWhatAMajorityHolds() {
    Map<Long, Long> match = Map.of(1L, 9L, 2L, 3L, 3L, 5L, 4L, 1L, 5L, 7L);
    assertEquals(5, MajorityQuorum.committedIndex(FIVE, match::get));
    assertEquals(5, MajorityQuorum.committedIndex(List.of(1L, 2L, 3L), Map.of(1L, 5L, 2L, 3L,
        3L, 9L)::get));
    assertEquals(4, MajorityQuorum.committedIndex(List.of(7L), id -> 4));
    assertEquals(3, MajorityQuorum.committedIndex(List.of(1L, 2L), Map.of(1L, 3L, 2L, 8L)::get),
        "two voters need both");
  }

  /**
   * "A candidate wins an election if it receives votes from a majority of the servers in the full
   * cluster for the same term." Reference: section 5.2
   */
  @Test
  void voteNeedsAMajorityOfTheFullCluster() {
    assertEquals(VoteResult.PENDING, MajorityQuorum.voteResult(FIVE, Map.of(1L, true, 2L, true)));
    assertEquals(VoteResult.WON,
        MajorityQuorum.voteResult(FIVE, Map.of(1L, true, 2L, true, 4L, true)));
    assertEquals(VoteResult.PENDING,
        MajorityQuorum.voteResult(FIVE, Map.of(1L, true, 2L, false, 3L, false)));
    assertEquals(VoteResult.LOST,
        MajorityQuorum.voteResult(FIVE, Map.of(1L, true, 2L, false, 3L, false, 4L, false)));
    assertEquals(VoteResult.PENDING,
        MajorityQuorum.voteResult(FIVE, Map.of(1L, true, 9L, true, 8L, true)),
        "answers from non-voters do not count");
  }

  @Test
  void isQuorumCountsVotersOnly() {
    assertTrue(MajorityQuorum.isQuorum(FIVE, List.of(1L, 3L, 5L)));
    assertFalse(MajorityQuorum.isQuorum(FIVE, List.of(1L, 3L, 6L, 7L)));
  }
}
