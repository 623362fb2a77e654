package io.vetcd.it;

import io.vetcd.it.ChaosWatchers.Ev;
import io.vetcd.it.ChaosWatchers.Response;
import io.vetcd.it.ChaosWatchers.Segment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;

/**
 * etcd's watch guarantees (https://etcd.io/docs/v3.4/learning/api_guarantees/#watch-apis), checked
 * on what one watcher's streams delivered against the reference history of the watched keys (every
 * change, by revision):
 * <ul>
 *   <li>ORDERED: revisions never go back, within a response or from one response to the next;</li>
 *   <li>UNIQUE: no change is delivered twice, also across a resumption;</li>
 *   <li>ATOMIC: all changes of one revision arrive in one response, none missing;</li>
 *   <li>RELIABLE: no gaps: from a stream's start revision to where it ended (the last stream: to the
 *       end of the history) it delivered exactly the history's changes, with their values;</li>
 *   <li>RESUMABLE: a stream re-created at revision r delivers nothing before r;</li>
 *   <li>PROGRESS: a progress notification at revision p comes after every change up to p and before
 *       any change after p;</li>
 *   <li>and the stream reported no error (e.g. it was canceled).</li>
 * </ul>
 */
final class WatchValidator {

    private final NavigableMap<Long, List<Ev>> history = new TreeMap<>();
    private final long endRevision;

    /** {@code reference}: every change to the watched keys, in order; {@code endRevision}: where it ends. */
    WatchValidator(List<Ev> reference, long endRevision) {
        reference.forEach(e -> history.computeIfAbsent(e.mod(), r -> new ArrayList<>()).add(e));
        this.endRevision = endRevision;
    }

    /** Every violation by one watcher, each starting with the guarantee it breaks; empty: none. */
    List<String> check(String watcher, List<Segment> segments) {
        List<String> violations = new ArrayList<>();
        Set<String> delivered = new HashSet<>();
        for (int i = 0; i < segments.size(); i++) {
            Segment segment = segments.get(i);
            String where = watcher + " stream " + (i + 1) + " (from revision " + segment.start() + ")";
            segment.errors().forEach(e -> violations.add("ERROR: " + where + ": " + e));
            long last = segment.start() - 1; // the highest revision delivered on this stream, or before its start
            long highest = 0; // the highest revision delivered on this stream
            long progress = 0;
            Map<Long, Integer> responseOf = new HashMap<>();
            List<Ev> events = new ArrayList<>();
            for (int j = 0; j < segment.responses().size(); j++) {
                Response response = segment.responses().get(j);
                if (response.progress()) {
                    // (A stream started at a revision the member has not reached may hear progress below it.)
                    if (response.headerRevision() < highest) {
                        violations.add("PROGRESS: " + where + " notified progress at " + response.headerRevision()
                                + " after delivering revision " + highest);
                    }
                    progress = Math.max(progress, response.headerRevision());
                    continue;
                }
                long previous = last;
                for (Ev e : response.events()) {
                    if (e.mod() < segment.start()) {
                        violations.add("RESUMABLE: " + where + " delivered " + e + ", before its start revision");
                    }
                    if (e.mod() < previous) {
                        violations.add("ORDERED: " + where + " delivered " + e + " after revision " + previous);
                    }
                    if (e.mod() <= progress) {
                        violations.add("PROGRESS: " + where + " delivered " + e + " after a progress notification at "
                                + progress);
                    }
                    Integer earlier = responseOf.putIfAbsent(e.mod(), j);
                    if (earlier != null && earlier != j) {
                        violations.add("ATOMIC: " + where + ": the changes of revision " + e.mod()
                                + " are split over responses " + (earlier + 1) + " and " + (j + 1));
                    }
                    if (!delivered.add(e.mod() + " " + e.key() + " " + e.put())) {
                        violations.add("UNIQUE: " + where + " delivered " + e + " again");
                    }
                    previous = Math.max(previous, e.mod());
                    highest = Math.max(highest, e.mod());
                    events.add(e);
                }
                last = previous;
            }
            long until = i + 1 < segments.size() ? segments.get(i + 1).start() - 1 : endRevision;
            if (i + 1 < segments.size() && until < last) {
                violations.add("RESUMABLE: " + watcher + " stream " + (i + 2) + " starts at " + (until + 1)
                        + " though stream " + (i + 1) + " delivered revision " + last);
            }
            // A stream that broke before it delivered anything, resumed at the same revision, covers nothing;
            // so does a last stream opened past the end of the history.
            long to = Math.max(until, last);
            compare(where, to < segment.start() ? new TreeMap<>() : history.subMap(segment.start(), true, to, true),
                    events, violations);
        }
        return violations;
    }

    /** RELIABLE and ATOMIC against the history: the same changes, revision by revision. */
    private static void compare(String where, NavigableMap<Long, List<Ev>> expected, List<Ev> events,
            List<String> violations) {
        NavigableMap<Long, List<Ev>> got = new TreeMap<>();
        events.forEach(e -> got.computeIfAbsent(e.mod(), r -> new ArrayList<>()).add(e));
        List<Long> missing = new ArrayList<>();
        for (Map.Entry<Long, List<Ev>> revision : expected.entrySet()) {
            List<Ev> delivered = got.get(revision.getKey());
            if (delivered == null) {
                missing.add(revision.getKey());
            } else if (!delivered.equals(revision.getValue())) {
                violations.add((delivered.size() < revision.getValue().size() ? "ATOMIC: " : "RELIABLE: ") + where
                        + " delivered " + delivered + " at revision " + revision.getKey() + ", the history has "
                        + revision.getValue());
            }
        }
        if (!missing.isEmpty()) {
            violations.add("RELIABLE: " + where + " never delivered " + missing.size() + " revisions, the first "
                    + missing.subList(0, Math.min(5, missing.size())) + ": "
                    + expected.get(missing.get(0)));
        }
        got.keySet().stream().filter(r -> !expected.containsKey(r)).findFirst().ifPresent(r -> violations.add(
                "RELIABLE: " + where + " delivered " + got.get(r) + ", which the history does not have"));
    }
}
