package io.vetcd.raft;

import java.util.List;

/**
 * The work a {@link RaftNode} hands to the server in one batch. Handle it in this order:
 *
 * <ol>
 *   <li>{@code leaderMessages} may be sent at once, before anything is on disk: the leader's APP,
 *       HEARTBEAT, SNAP and TIMEOUT_NOW to followers (thesis §10.2.1: the leader writes its log in
 *       parallel with replicating it; it counts its own copy only after {@link RaftNode#advance}).
 *   <li>Persist, in one durable write: {@code snapshot} (if non-null, first: it comes from the
 *       leader and replaces the whole stored log, so every stored entry is discarded, including any
 *       with an index above the snapshot's), then {@code entries} (in order; the first may have an
 *       index at or below entries already stored: "index i supersedes every stored record with index
 *       ≥ i"), then {@code hardState} (if non-null).
 *   <li>Only after that write is durable: send {@code messages} (votes, append responses, forwarded
 *       proposals… anything that may depend on the persisted state) and call {@link
 *       RaftNode#advance(Ready)}.
 *   <li>Apply {@code committedEntries} in order (they are already durable locally; a snapshot, when
 *       present, is installed into the state machine first) and answer {@code readStates} once the
 *       applied index reaches each read's index. This may run asynchronously after advance.
 * </ol>
 *
 * Every field is non-null except {@code softState}, {@code hardState} and {@code snapshot}, which are
 * null when unchanged.
 */
public record Ready(
    SoftState softState,
    HardState hardState,
    List<Entry> entries,
    Snapshot snapshot,
    List<Entry> committedEntries,
    List<RaftMessage> messages,
    List<RaftMessage> leaderMessages,
    List<ReadState> readStates) {

  public Ready {
    entries = List.copyOf(entries);
    committedEntries = List.copyOf(committedEntries);
    messages = List.copyOf(messages);
    leaderMessages = List.copyOf(leaderMessages);
    readStates = List.copyOf(readStates);
  }

  /** Whether step 2 has anything to write; if not, {@code messages} may be sent at once. */
  public boolean needsPersist() {
    return hardState != null || snapshot != null || !entries.isEmpty();
  }

  /** Whether this Ready carries nothing at all. It must still be advanced. */
  public boolean isEmpty() {
    return softState == null && !needsPersist() && committedEntries.isEmpty() && messages.isEmpty()
        && leaderMessages.isEmpty() && readStates.isEmpty();
  }
}
