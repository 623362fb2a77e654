/**
 * The Raft core: pure, deterministic, single-threaded (ARCHITECTURE §1). No threads, clock, I/O or
 * Vert.x; time is {@link io.vetcd.raft.RaftNode#tick()}, and everything that leaves the core is data
 * in a {@link io.vetcd.raft.Ready}. Modelled on etcd-io/raft; file names follow its subjects
 * ({@code RaftLog} = log.go + log_unstable.go, {@code Progress}/{@code Inflights} = tracker,
 * {@code MajorityQuorum} = quorum/majority.go, {@code PendingReads} = read_only.go, {@code Raft} =
 * raft.go, {@code RaftNode} = rawnode.go).
 *
 * <h2>Who calls what</h2>
 * The server's consensus loop (one event loop) owns a {@link io.vetcd.raft.RaftNode} and is its only
 * caller:
 * <ul>
 *   <li>At start: {@code new RaftNode(config, hardState, snapshot, entries)} with what the log replay
 *       found (entries after the snapshot, superseded records already dropped).
 *   <li>Every heartbeat interval: {@code tick()}.
 *   <li>For each message from a peer: {@code step(message)}.
 *   <li>For clients: {@code propose(data)} / {@code readIndex(context)} / {@code
 *       transferLeadership(target)}; {@code false} means no known leader — fail fast with
 *       "etcdserver: no leader".
 *   <li>From the transport: {@code reportUnreachable(member)}; {@code reportSnapshot(member, ok)} for
 *       every SNAP message it handled.
 *   <li>After taking a snapshot of applied state: {@code compact(createSnapshot(index, data))}.
 *   <li>Whenever {@code hasReady()}: {@code ready()}, then handle the Ready as below.
 * </ul>
 *
 * <h2>What must be durable before what is sent</h2>
 * For each Ready, in the order handed out:
 * <ol>
 *   <li>{@code leaderMessages} may be sent immediately.
 *   <li>Persist {@code snapshot} (a leader's snapshot: it replaces the whole stored log), {@code
 *       entries} (index i supersedes stored records ≥ i), {@code hardState} — durably (fsync).
 *   <li>Then send {@code messages} and call {@code advance(ready)}. Votes, acknowledgements and term
 *       changes are therefore never visible to a peer before they are on disk.
 *   <li>Apply {@code committedEntries} (after installing {@code snapshot} if present), and serve each
 *       {@code readStates} entry once applied ≥ its index.
 * </ol>
 * {@code ready()} may be called again before {@code advance} (the next Ready holds only newer work),
 * but Readies must be persisted and advanced strictly in order, and every one must be advanced. A
 * leader's own entries count toward the commit quorum only once advanced; committed entries are
 * handed out only once advanced locally.
 *
 * <h2>Scope and limits</h2>
 * Fixed membership (the voters in {@link io.vetcd.raft.RaftConfig}); no learners, no joint consensus.
 * ReadIndex is the safe (heartbeat-confirmed) variant only, not lease-based reads.
 */
package io.vetcd.raft;
