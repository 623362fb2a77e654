package io.vetcd.compat;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Checks recorded watch streams against the store's history (etcd's watch guarantees, see
 * https://etcd.io/docs/v3.4/learning/api_guarantees/#watch-apis):
 * <ul>
 *   <li>ordered: revisions never go back; within a revision events keep the txn's order;</li>
 *   <li>unique: no event is delivered twice;</li>
 *   <li>atomic: all (matching) events of one revision arrive in one WatchResponse;</li>
 *   <li>reliable: no gaps: between a watcher's start revision and the last revision it has seen,
 *       every matching event of the history is there (for the last segment: up to the end);</li>
 *   <li>resumable: a watcher restarted at r+1 (r = last revision seen) continues exactly there.</li>
 * </ul>
 * The history is independent of the Watch service: the writers' own log (revision from each write
 * response, changes in op order), cross-checked against ranges at every revision.
 */
final class WatchGuaranteeChecker {

    /** One event; {@code prev} only when the watch asked for prev_kv and there was a previous pair. */
    record Ev(boolean put, String key, String value, long create, long mod, long version, long lease, Ev prev) {
        Ev withoutPrev() {
            return prev == null ? this : new Ev(put, key, value, create, mod, version, lease, null);
        }

        @Override
        public String toString() {
            String s = put ? "PUT " + key + "=" + value + "@" + mod + "(c" + create + ",v" + version
                    + (lease != 0 ? ",l" + lease : "") + ")" : "DELETE " + key + "@" + mod;
            return prev == null ? s : s + "[prev " + prev + "]";
        }
    }

    /** What a watcher asked for. {@code end} null: the single key {@code key}. */
    record Filter(String key, String end, boolean noPut, boolean noDelete, boolean prevKv) {
        boolean matches(Ev e) {
            if (e.put() ? noPut : noDelete) {
                return false;
            }
            if (end == null) {
                return e.key().equals(key);
            }
            // keys are ASCII: String order is byte order
            return e.key().compareTo(key) >= 0 && e.key().compareTo(end) < 0;
        }
    }

    /** Responses of one watch from its start revision until it was closed (or the end). */
    static final class Segment {
        final long start;
        final List<List<Ev>> responses = new ArrayList<>();

        Segment(long start) {
            this.start = start;
        }

        List<Ev> events() {
            return responses.stream().flatMap(List::stream).collect(Collectors.toList());
        }

        long lastRevision() {
            if (responses.isEmpty()) {
                return 0;
            }
            List<Ev> last = responses.get(responses.size() - 1);
            return last.get(last.size() - 1).mod();
        }
    }

    /** One logical watcher: its filter and its segments (several if it was restarted). */
    static final class Observed {
        final String name;
        final Filter filter;
        final List<Segment> segments = new ArrayList<>();
        final List<String> errors = new ArrayList<>();

        Observed(String name, Filter filter) {
            this.name = name;
            this.filter = filter;
        }
    }

    /** Revision → the changes of that revision in the order they were applied. */
    private final NavigableMap<Long, List<Ev>> history;
    private final long endRev;

    WatchGuaranteeChecker(NavigableMap<Long, List<Ev>> history, long endRev) {
        this.history = history;
        this.endRev = endRev;
    }

    /** Matching events of the history in [from, to], with prev_kv only if the watch asked for it. */
    List<Ev> expected(Filter f, long from, long to) {
        List<Ev> out = new ArrayList<>();
        if (from > to) {
            return out;
        }
        for (List<Ev> evs : history.subMap(from, true, to, true).values()) {
            for (Ev e : evs) {
                if (f.matches(e)) {
                    out.add(f.prevKv() ? e : e.withoutPrev());
                }
            }
        }
        return out;
    }

    /** Highest revision ≥ from with a matching event, 0 if none: how far the watcher must get. */
    long lastExpectedRevision(Filter f, long from) {
        List<Ev> evs = expected(f, from, endRev);
        return evs.isEmpty() ? 0 : evs.get(evs.size() - 1).mod();
    }

    /** All violations of one watcher, each prefixed with the property it breaks. */
    List<String> check(Observed o) {
        List<String> v = new ArrayList<>();
        for (String e : o.errors) {
            v.add("ERROR: the watch reported " + e);
        }
        for (int i = 0; i < o.segments.size(); i++) {
            Segment seg = o.segments.get(i);
            boolean lastSeg = i == o.segments.size() - 1;
            String where = o.segments.size() > 1 ? " (segment " + (i + 1) + " from revision " + seg.start + ")" : "";

            // ordered / atomic / unique, looking at the stream alone
            long prevMax = seg.start - 1;
            Set<String> seen = new HashSet<>();
            Map<Long, Integer> responseOfRev = new TreeMap<>();
            for (int j = 0; j < seg.responses.size(); j++) {
                List<Ev> r = seg.responses.get(j);
                if (r.isEmpty()) {
                    v.add("EMPTY: response " + j + where + " has no events");
                    continue;
                }
                long first = r.get(0).mod();
                if (first < seg.start) {
                    v.add("ORDERED: event at revision " + first + " before the start revision " + seg.start + where);
                }
                long within = first;
                for (Ev e : r) {
                    if (e.mod() < within) {
                        v.add("ORDERED: revision goes back from " + within + " to " + e.mod() + " inside response " + j
                                + where + ": " + r);
                    }
                    within = Math.max(within, e.mod());
                    if (!seen.add(e.mod() + "|" + e.key() + "|" + e.put())) {
                        v.add("UNIQUE: " + e + " delivered twice" + where);
                    }
                    Integer before = responseOfRev.put(e.mod(), j);
                    if (before != null && before != j) {
                        v.add("ATOMIC: events of revision " + e.mod() + " split over responses " + before + " and " + j
                                + where);
                    }
                }
                // first == prevMax is a revision split over two responses, reported as ATOMIC above
                if (first < prevMax && first >= seg.start) {
                    v.add("ORDERED: response " + j + " starts at revision " + first + " after revision " + prevMax
                            + " was delivered" + where);
                }
                prevMax = Math.max(prevMax, within);
            }

            // reliable / resumable / content, against the history
            List<Ev> got = seg.events();
            long segEnd;
            if (lastSeg) {
                segEnd = endRev;
            } else {
                long next = o.segments.get(i + 1).start;
                long resumeAt = got.isEmpty() ? seg.start : seg.lastRevision() + 1;
                if (next != resumeAt) {
                    v.add("RESUMABLE: segment " + (i + 2) + " starts at " + next + " but the previous one ended at "
                            + (resumeAt - 1));
                }
                segEnd = next - 1;
            }
            List<Ev> want = expected(o.filter, seg.start, segEnd);
            compare(want, got, where, v);
        }
        return v;
    }

    private static void compare(List<Ev> want, List<Ev> got, String where, List<String> v) {
        Set<Long> gotRevs = got.stream().map(Ev::mod).collect(Collectors.toSet());
        Set<Long> wantRevs = want.stream().map(Ev::mod).collect(Collectors.toSet());
        List<Long> missing = wantRevs.stream().filter(r -> !gotRevs.contains(r)).sorted().collect(Collectors.toList());
        if (!missing.isEmpty()) {
            v.add("RELIABLE: " + missing.size() + " revisions with matching events never delivered" + where + ", first "
                    + missing.subList(0, Math.min(10, missing.size())) + "; e.g. expected "
                    + eventsAt(want, missing.get(0)));
        }
        List<Long> extra = gotRevs.stream().filter(r -> !wantRevs.contains(r)).sorted().collect(Collectors.toList());
        if (!extra.isEmpty()) {
            v.add("FILTER: events at revisions with nothing matching in the history" + where + ": "
                    + extra.subList(0, Math.min(10, extra.size())) + ", e.g. " + eventsAt(got, extra.get(0)));
        }
        // same revisions: compare event by event (content, and order inside a txn)
        int n = 0;
        for (long rev : wantRevs.stream().filter(gotRevs::contains).sorted().collect(Collectors.toList())) {
            List<Ev> w = eventsAt(want, rev);
            List<Ev> g = eventsAt(got, rev);
            if (!w.equals(g)) {
                if (n++ < 5) {
                    v.add("CONTENT: revision " + rev + where + " expected " + w + " but got " + g);
                }
            }
        }
        if (n > 5) {
            v.add("CONTENT: ... " + (n - 5) + " more revisions differ");
        }
    }

    private static List<Ev> eventsAt(List<Ev> evs, long rev) {
        return evs.stream().filter(e -> e.mod() == rev).collect(Collectors.toList());
    }
}
