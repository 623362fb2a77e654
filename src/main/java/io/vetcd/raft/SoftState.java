package io.vetcd.raft;

/**
 * State that needs no persistence and is only reported: the known leader (0: none) and our role. A
 * restarted member starts as a follower that knows no leader.
 */
public record SoftState(long leader, Role role) {}
