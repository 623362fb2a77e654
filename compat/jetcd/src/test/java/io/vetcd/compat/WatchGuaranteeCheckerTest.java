package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.compat.WatchGuaranteeChecker.Ev;
import io.vetcd.compat.WatchGuaranteeChecker.Filter;
import io.vetcd.compat.WatchGuaranteeChecker.Observed;
import io.vetcd.compat.WatchGuaranteeChecker.Segment;
import java.util.ArrayList;
import java.util.List;
import java.util.NavigableMap;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The checker itself, without a server: a correct stream passes and each kind of broken stream is
 * reported under the property it breaks. Guards against a checker that silently accepts anything.
 */
class WatchGuaranteeCheckerTest {

    private static final Filter ALL = new Filter("/p/", "/p0", false, false, false);

    private static Ev put(String k, String v, long create, long mod, long version) {
        return new Ev(true, k, v, create, mod, version, 0, null);
    }

    private static Ev del(String k, long mod) {
        return new Ev(false, k, "", 0, mod, 0, 0, null);
    }

    /** r2: put a; r3: txn put b, put a; r4: put /q (outside); r5: delete a; r6: put c. */
    private static NavigableMap<Long, List<Ev>> history() {
        NavigableMap<Long, List<Ev>> h = new TreeMap<>();
        h.put(2L, List.of(put("/p/a", "1", 2, 2, 1)));
        h.put(3L, List.of(put("/p/b", "1", 3, 3, 1), put("/p/a", "2", 2, 3, 2)));
        h.put(4L, List.of(put("/q", "1", 4, 4, 1)));
        h.put(5L, List.of(del("/p/a", 5)));
        h.put(6L, List.of(put("/p/c", "1", 6, 6, 1)));
        return h;
    }

    private final WatchGuaranteeChecker checker = new WatchGuaranteeChecker(history(), 6);

    @SafeVarargs
    private static Observed stream(long start, List<Ev>... responses) {
        Observed o = new Observed("w", ALL);
        Segment s = new Segment(start);
        for (List<Ev> r : responses) {
            s.responses.add(new ArrayList<>(r));
        }
        o.segments.add(s);
        return o;
    }

    private static List<Ev> r2() {
        return List.of(put("/p/a", "1", 2, 2, 1));
    }

    private static List<Ev> r3() {
        return List.of(put("/p/b", "1", 3, 3, 1), put("/p/a", "2", 2, 3, 2));
    }

    private static List<Ev> r5() {
        return List.of(del("/p/a", 5));
    }

    private static List<Ev> r6() {
        return List.of(put("/p/c", "1", 6, 6, 1));
    }

    private void assertViolation(Observed o, String property) {
        List<String> v = checker.check(o);
        assertTrue(v.stream().anyMatch(s -> s.startsWith(property + ":")), () -> "expected " + property + " in " + v);
    }

    @Test
    void correctStreamsPass() {
        assertEquals(List.of(), checker.check(stream(2, r2(), r3(), r5(), r6())));
        // several revisions in one response (a replay batch) are fine
        List<Ev> batch = new ArrayList<>(r2());
        batch.addAll(r3());
        assertEquals(List.of(), checker.check(stream(2, batch, r5(), r6())));
        assertEquals(List.of(), checker.check(stream(4, r5(), r6())));
        // a restarted watcher: [2..3] then from 4
        Observed o = stream(2, r2(), r3());
        Segment s2 = new Segment(4);
        s2.responses.add(r5());
        s2.responses.add(r6());
        o.segments.add(s2);
        assertEquals(List.of(), checker.check(o));
    }

    @Test
    void gapsDuplicatesSplitsAndReordersAreCaught() {
        assertViolation(stream(2, r2(), r5(), r6()), "RELIABLE");
        assertViolation(stream(2, r2(), r3(), r5()), "RELIABLE");   // lost tail
        assertViolation(stream(2, r2(), r3(), r3(), r5(), r6()), "UNIQUE");
        assertViolation(stream(2, r2(), List.of(r3().get(0)), List.of(r3().get(1)), r5(), r6()), "ATOMIC");
        assertViolation(stream(2, r2(), List.of(r3().get(1), r3().get(0)), r5(), r6()), "CONTENT");
        assertViolation(stream(2, r3(), r2(), r5(), r6()), "ORDERED");
        assertViolation(stream(3, r2(), r3(), r5(), r6()), "ORDERED");  // before its start revision
        assertViolation(stream(2, r2(), r3(), List.of(put("/q", "1", 4, 4, 1)), r5(), r6()), "FILTER");
        assertViolation(stream(2, r2(), List.of(r3().get(0), put("/p/a", "2", 2, 3, 1)), r5(), r6()), "CONTENT");

        // resumed at the wrong revision: skips r5
        Observed o = stream(2, r2(), r3());
        Segment s2 = new Segment(6);
        s2.responses.add(r6());
        o.segments.add(s2);
        assertViolation(o, "RESUMABLE");
    }

    @Test
    void filtersAndPrevKv() {
        Filter noDelete = new Filter("/p/", "/p0", false, true, false);
        Observed o = new Observed("nd", noDelete);
        Segment s = new Segment(2);
        s.responses.add(r2());
        s.responses.add(r3());
        s.responses.add(r6());
        o.segments.add(s);
        assertEquals(List.of(), checker.check(o));

        // prev_kv delivered although not asked for
        Observed p = stream(2, r2(), List.of(r3().get(0), new Ev(true, "/p/a", "2", 2, 3, 2, 0, r2().get(0))), r5(),
                r6());
        assertViolation(p, "CONTENT");
    }
}
