package io.vetcd.raft;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.util.ArrayList;
import java.util.List;

/** Small builders shared by the Raft tests. */
final class Fixtures {

  private Fixtures() {}

  static final List<Long> THREE = List.of(1L, 2L, 3L);

  static Entry entry(long index, long term) {
    return new Entry(term, index, Entry.Type.NORMAL, bytes(index + "@" + term));
  }

  /** Entries 1..n whose terms are {@code terms[i-1]}, as in the figures of the paper. */
  static List<Entry> log(long... terms) {
    List<Entry> out = new ArrayList<>();
    for (int i = 0; i < terms.length; i++) {
      out.add(entry(i + 1, terms[i]));
    }
    return out;
  }

  static byte[] bytes(String s) {
    return s.getBytes(UTF_8);
  }

  /** A member of {1,2,3} with default settings except pre-vote, restored from the given state. */
  static RaftNode node(long id, boolean preVote, long term, List<Entry> entries) {
    RaftConfig config = RaftConfig.builder(id, THREE).preVote(preVote).randomSeed(7).build();
    return new RaftNode(config, new HardState(term, 0, 0), null, entries);
  }

  static RaftNode node(long id) {
    return node(id, true, 0, List.of());
  }

  /** Drains and advances every Ready, returning all messages (leader's first, then others). */
  static List<RaftMessage> drain(RaftNode n) {
    List<RaftMessage> out = new ArrayList<>();
    while (n.hasReady()) {
      Ready rd = n.ready();
      out.addAll(rd.leaderMessages());
      out.addAll(rd.messages());
      n.advance(rd);
    }
    return out;
  }

  static List<RaftMessage> ofType(List<RaftMessage> msgs, MessageType type) {
    return msgs.stream().filter(m -> m.type() == type).toList();
  }

  /** (index, term) pairs of a log, for comparing logs while ignoring payloads. */
  static List<String> positions(List<Entry> entries) {
    return entries.stream().map(e -> e.index() + "@" + e.term()).toList();
  }

  static RaftMessage.Builder msg(MessageType type, long from, long to, long term) {
    return RaftMessage.builder(type).from(from).to(to).term(term);
  }
}
