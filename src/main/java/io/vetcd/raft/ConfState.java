package io.vetcd.raft;

import java.util.List;

/** The membership as the core sees it: voters and learners, each sorted, disjoint. */
public record ConfState(List<Long> voters, List<Long> learners) {

  public ConfState {
    voters = List.copyOf(voters);
    learners = List.copyOf(learners);
  }
}
