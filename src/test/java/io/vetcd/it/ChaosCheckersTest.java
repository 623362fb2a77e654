package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.it.ChaosClients.Kind;
import io.vetcd.it.ChaosClients.Op;
import io.vetcd.it.ChaosWatchers.Ev;
import io.vetcd.it.ChaosWatchers.Response;
import io.vetcd.it.ChaosWatchers.Segment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The chaos run's checkers catch what they exist for: each is given a good history (no violation)
 * and the same history broken in the one way it must notice.
 */
class ChaosCheckersTest {

    private static final List<Ev> HISTORY = List.of(
            new Ev(true, "k", "a", 2),
            new Ev(true, "j", "b", 3),
            new Ev(true, "k", "c", 4), new Ev(true, "j", "d", 4), // one txn: two changes at revision 4
            new Ev(false, "k", "", 5),
            new Ev(true, "k", "e", 6));

    private static Segment segment(long start, Response... responses) {
        return new Segment(start, List.of(responses), List.of());
    }

    private static Response events(Ev... events) {
        return new Response(events[events.length - 1].mod(), List.of(events));
    }

    private static Response progress(long revision) {
        return new Response(revision, List.of());
    }

    private static List<String> watch(Segment... segments) {
        return new WatchValidator(HISTORY, 6).check("w", List.of(segments));
    }

    private static void assertViolation(String guarantee, List<String> violations) {
        assertTrue(violations.stream().anyMatch(v -> v.startsWith(guarantee + ":")), guarantee + " not reported in "
                + violations);
    }

    @Test
    void aWatcherThatKeptEveryGuaranteePasses() {
        assertEquals(List.of(), watch(segment(2, events(HISTORY.get(0)), progress(2), events(HISTORY.get(1)),
                events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)), progress(6))));
        // Resumed at 4 on a member still at 3 (a replaced one catching up): progress at 3 is not a violation.
        assertEquals(List.of(), watch(segment(2, events(HISTORY.get(0), HISTORY.get(1))),
                segment(4, progress(3), events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)))));
        // A stream that broke before delivering anything, resumed at the same revision; and a last stream
        // opened after the end of the history (found by the second 30-minute run: the checker threw).
        assertEquals(List.of(), watch(segment(2), segment(2, events(HISTORY.get(0), HISTORY.get(1)),
                events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5))), segment(7)));
        // Broken after revision 3, resumed at 4.
        assertEquals(List.of(), watch(segment(2, events(HISTORY.get(0), HISTORY.get(1))),
                segment(4, events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4)), events(HISTORY.get(5)))));
    }

    @Test
    void eachBrokenGuaranteeIsReported() {
        assertViolation("ORDERED", watch(segment(2, events(HISTORY.get(0)), events(HISTORY.get(2), HISTORY.get(3)),
                events(HISTORY.get(1)), events(HISTORY.get(4), HISTORY.get(5)))));
        assertViolation("UNIQUE", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1))),
                segment(3, events(HISTORY.get(1), HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)))));
        assertViolation("ATOMIC", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1), HISTORY.get(2)),
                events(HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)))));
        assertViolation("ATOMIC", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1), HISTORY.get(2)),
                events(HISTORY.get(4), HISTORY.get(5)))));
        // Revision 3 never delivered; and the end of the history never reached.
        assertViolation("RELIABLE", watch(segment(2, events(HISTORY.get(0)), events(HISTORY.get(2), HISTORY.get(3)),
                events(HISTORY.get(4), HISTORY.get(5)))));
        assertViolation("RELIABLE", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1)))));
        // A value that is not the history's.
        assertViolation("RELIABLE", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1), HISTORY.get(2),
                HISTORY.get(3)), events(HISTORY.get(4), new Ev(true, "k", "x", 6)))));
        // Resumed at 4, but got revision 3 again first; resumed past what it had seen.
        assertViolation("RESUMABLE", watch(segment(2, events(HISTORY.get(0))),
                segment(4, events(HISTORY.get(1)), events(HISTORY.get(2), HISTORY.get(3)),
                        events(HISTORY.get(4), HISTORY.get(5)))));
        assertViolation("RELIABLE", watch(segment(2, events(HISTORY.get(0))),
                segment(4, events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)))));
        // Progress at 4 before the changes of 4 were delivered (etcd-io/etcd#15220).
        assertViolation("PROGRESS", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1)), progress(4),
                events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)))));
        // Progress that goes back behind what was delivered.
        assertViolation("PROGRESS", watch(segment(2, events(HISTORY.get(0), HISTORY.get(1)), progress(2),
                events(HISTORY.get(2), HISTORY.get(3)), events(HISTORY.get(4), HISTORY.get(5)))));
        assertViolation("ERROR", new WatchValidator(HISTORY, 6).check("w", List.of(new Segment(2,
                List.of(events(HISTORY.get(0), HISTORY.get(1)), events(HISTORY.get(2), HISTORY.get(3)),
                        events(HISTORY.get(4), HISTORY.get(5))), List.of("canceled: compact revision 3")))));
    }

    private static Op put(String key, String value, long revision) {
        return new Op(0, 1, Kind.PUT, key, null, value, 0, 1, true, revision, 0, "");
    }

    private static Op maybePut(String key, String value) {
        return new Op(0, 1, Kind.PUT, key, null, value, 0, LinearizabilityChecker.NEVER, false, 0, 0, "timeout");
    }

    private static final List<Op> CLIENTS = List.of(
            put("k", "a", 2), put("j", "b", 3),
            new Op(1, 2, Kind.CAS, "k", "a", "c", 2, 3, true, 4, 0, ""), maybePut("j", "d"),
            new Op(1, 2, Kind.DELETE, "k", null, null, 4, 5, true, 5, 1, ""), maybePut("k", "e"),
            new Op(2, 3, Kind.GET, "k", null, "e", 6, 7, true, 6, 0, ""));

    @Test
    void acknowledgedWritesMatchingTheHistoryPass() {
        assertEquals(List.of(), AcknowledgedWrites.check(CLIENTS, HISTORY));
    }

    @Test
    void lostWritesPhantomsAndWrongReadsAreReported() {
        List<Ev> lostPut = new ArrayList<>(HISTORY);
        lostPut.remove(1);
        assertViolation("LOST", AcknowledgedWrites.check(CLIENTS, lostPut));
        List<Ev> moved = new ArrayList<>(HISTORY);
        moved.set(0, new Ev(true, "k", "a", 1));
        assertViolation("LOST", AcknowledgedWrites.check(CLIENTS, moved));
        List<Ev> lostDelete = new ArrayList<>(HISTORY);
        lostDelete.remove(4);
        assertViolation("LOST", AcknowledgedWrites.check(CLIENTS, lostDelete));
        List<Ev> phantom = new ArrayList<>(HISTORY);
        phantom.add(new Ev(true, "k", "zz", 7));
        assertViolation("PHANTOM", AcknowledgedWrites.check(CLIENTS, phantom));
        List<Ev> twice = new ArrayList<>(HISTORY);
        twice.add(new Ev(true, "k", "e", 7));
        assertViolation("PHANTOM", AcknowledgedWrites.check(CLIENTS, twice));
        List<Ev> unaskedDelete = new ArrayList<>(HISTORY);
        unaskedDelete.add(new Ev(false, "j", "", 7));
        assertViolation("PHANTOM", AcknowledgedWrites.check(CLIENTS, unaskedDelete));
        List<Op> wrongRead = new ArrayList<>(CLIENTS);
        wrongRead.add(new Op(2, 3, Kind.GET, "k", null, "a", 8, 9, true, 4, 0, ""));
        assertViolation("READ", AcknowledgedWrites.check(wrongRead, HISTORY));
    }

    private static long s(double seconds) {
        return (long) (seconds * TimeUnit.SECONDS.toNanos(1));
    }

    @Test
    void aLeaseGoneOnlyAfterItsTtlPasses() {
        assertEquals(List.of(), ChaosLeases.check(List.of(
                new ChaosLeases.Event(1, ChaosLeases.Type.GRANTED, s(0), s(0.1), 5, ""),
                new ChaosLeases.Event(1, ChaosLeases.Type.KEPT, s(1), s(1.1), 5, ""),
                new ChaosLeases.Event(1, ChaosLeases.Type.GONE, s(6), s(6.1), 0, "key gone"))));
        // Kept alive at 1 s for 5 s, gone at 4 s: early.
        assertViolation("EARLY", ChaosLeases.check(List.of(
                new ChaosLeases.Event(1, ChaosLeases.Type.GRANTED, s(0), s(0.1), 5, ""),
                new ChaosLeases.Event(1, ChaosLeases.Type.KEPT, s(1), s(1.1), 5, ""),
                new ChaosLeases.Event(1, ChaosLeases.Type.GONE, s(3.9), s(4), 0, "key gone"))));
        // Another lease's keep-alives do not count.
        assertEquals(List.of(), ChaosLeases.check(List.of(
                new ChaosLeases.Event(1, ChaosLeases.Type.GRANTED, s(0), s(0.1), 5, ""),
                new ChaosLeases.Event(2, ChaosLeases.Type.KEPT, s(3), s(3.1), 5, ""),
                new ChaosLeases.Event(1, ChaosLeases.Type.GONE, s(5.5), s(5.6), 0, "key gone"))));
    }

    @Test
    void membersWithDifferentHistoriesAreReported() {
        java.util.Map<Integer, List<Ev>> same = new java.util.TreeMap<>(java.util.Map.of(1, HISTORY, 2, HISTORY, 3,
                List.copyOf(HISTORY)));
        assertEquals(List.of(), ChaosRun.historiesDiffer(same));
        List<Ev> diverged = new ArrayList<>(HISTORY);
        diverged.set(2, new Ev(true, "k", "x", 4));
        List<String> violations = ChaosRun.historiesDiffer(new java.util.TreeMap<>(java.util.Map.of(1, HISTORY, 2,
                diverged, 3, HISTORY.subList(0, 5))));
        assertEquals(2, violations.size(), violations.toString());
        assertTrue(violations.get(0).startsWith("infra2's history") && violations.get(0).contains("at change 2"),
                violations.toString());
        assertTrue(violations.get(1).startsWith("infra3's history") && violations.get(1).contains("at change 5"),
                violations.toString());
    }

    /** A cluster for the recovery checker: member m is healthy from its {@code healthyFrom[m - 1]}-th poll on. */
    private static ChaosNemesis.Members members(int[] healthyFrom, String[] exitStatus) {
        int[] polls = new int[healthyFrom.length];
        return new ChaosNemesis.Members() {
            @Override
            public int size() {
                return healthyFrom.length;
            }

            @Override
            public String exitStatus(int member) {
                return exitStatus[member - 1];
            }

            @Override
            public boolean healthy(int member) {
                return ++polls[member - 1] >= healthyFrom[member - 1];
            }
        };
    }

    @Test
    void aClusterThatRecoversPassesAndOneThatDoesNotIsReported() throws Exception {
        // Member 2 needs three polls: recovered, as soon as it is healthy.
        assertEquals(null, ChaosNemesis.awaitRecovered(members(new int[] {1, 3, 1}, new String[3]), 10_000, 1));
        // Member 3 is never healthy: reported once the time is up, by name.
        assertEquals("members [3] not healthy 200 ms after the heal", ChaosNemesis.awaitRecovered(
                members(new int[] {1, 1, Integer.MAX_VALUE}, new String[3]), 200, 1));
        // Member 1 exited by itself: reported at once, with its status, even though it would be healthy.
        assertEquals("infra1 exited by itself (status 1)", ChaosNemesis.awaitRecovered(
                members(new int[] {1, 1, 1}, new String[] {"1", null, null}), 10_000, 1));
    }
}
