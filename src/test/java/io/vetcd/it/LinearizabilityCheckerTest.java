package io.vetcd.it;

import static io.vetcd.it.LinearizabilityChecker.Op.cas;
import static io.vetcd.it.LinearizabilityChecker.Op.maybeCas;
import static io.vetcd.it.LinearizabilityChecker.Op.maybeWrite;
import static io.vetcd.it.LinearizabilityChecker.Op.read;
import static io.vetcd.it.LinearizabilityChecker.Op.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vetcd.it.LinearizabilityChecker.Op;
import io.vetcd.it.LinearizabilityChecker.Result;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The register checker on small hand-made histories; times are abstract ticks. */
class LinearizabilityCheckerTest {

    private static Result check(Op... history) {
        return LinearizabilityChecker.check(List.of(history), null);
    }

    private static void assertLinearizable(Op... history) {
        Result result = check(history);
        assertTrue(result.linearizable(), result::explain);
    }

    private static void assertNotLinearizable(Op... history) {
        Result result = check(history);
        assertFalse(result.linearizable(), result::explain);
    }

    @Test
    void sequentialHistoryPasses() {
        assertLinearizable(
                read(null, 0, 1),
                write("a", 2, 3),
                read("a", 4, 5),
                write("b", 6, 7),
                read("b", 8, 9),
                read("b", 10, 11));
    }

    @Test
    void theOrderFoundRespectsRealTime() {
        Result result = check(write("a", 0, 1), read("a", 2, 3), write("b", 4, 5), read("b", 6, 7));
        assertTrue(result.linearizable(), result::explain);
        assertEquals(List.of("a", "a", "b", "b"), result.order().stream().map(Op::value).toList());
    }

    @Test
    void staleReadAfterAcknowledgedWriteFails() {
        // b was acknowledged (at 3) before the read started (at 4), yet the read returned a.
        assertNotLinearizable(
                write("a", 0, 1),
                write("b", 2, 3),
                read("a", 4, 5));
    }

    @Test
    void readOfTheInitialValueAfterAnAcknowledgedWriteFails() {
        assertNotLinearizable(write("a", 0, 1), read(null, 2, 3));
    }

    @Test
    void readSeeingAWriteNotYetInvokedFails() {
        assertNotLinearizable(read("b", 0, 1), write("b", 2, 3));
    }

    @Test
    void readOfAValueNeverWrittenFails() {
        assertNotLinearizable(write("a", 0, 1), read("zzz", 2, 3));
    }

    @Test
    void concurrentWritesMayTakeEffectInEitherOrder() {
        // a and b overlap, so a later read may see either one — but all later reads agree.
        assertLinearizable(write("a", 0, 10), write("b", 1, 9), read("a", 11, 12), read("a", 13, 14));
        assertLinearizable(write("a", 0, 10), write("b", 1, 9), read("b", 11, 12), read("b", 13, 14));
        assertNotLinearizable(write("a", 0, 10), write("b", 1, 9), read("b", 11, 12), read("a", 13, 14));
    }

    @Test
    void readConcurrentWithAWriteMaySeeTheOldOrTheNewValue() {
        assertLinearizable(write("a", 0, 1), write("b", 2, 10), read("a", 3, 4), read("b", 5, 6));
        assertLinearizable(write("a", 0, 1), write("b", 2, 10), read("b", 3, 4));
        // Once a read saw b, a later read must not go back to a, even while b's write is still pending.
        assertNotLinearizable(write("a", 0, 1), write("b", 2, 10), read("b", 3, 4), read("a", 5, 6));
    }

    @Test
    void overlappingReadsMayBeOrderedEitherWay() {
        // The read that returned a started after the one that returned b, but they overlap.
        assertLinearizable(write("a", 0, 1), write("b", 2, 20), read("b", 3, 10), read("a", 4, 9));
    }

    @Test
    void maybeWriteThatIsObservedPasses() {
        assertLinearizable(write("a", 0, 1), maybeWrite("x", 2), read("x", 30, 31), read("x", 32, 33));
    }

    @Test
    void maybeWriteThatIsNeverObservedPasses() {
        assertLinearizable(write("a", 0, 1), maybeWrite("x", 2), read("a", 30, 31), read("a", 32, 33));
    }

    @Test
    void maybeWriteMayTakeEffectLongAfterItsInvocation() {
        // x timed out at the client, then became visible after a later acknowledged write.
        assertLinearizable(maybeWrite("x", 0), write("a", 10, 11), read("a", 12, 13), read("x", 14, 15));
    }

    @Test
    void maybeWriteObservedThenOlderValueFails() {
        // After x was seen, a can come back only through another write of a, and there is none.
        assertNotLinearizable(write("a", 0, 1), maybeWrite("x", 2), read("x", 3, 4), read("a", 5, 6));
    }

    @Test
    void maybeWriteCannotTakeEffectBeforeItsInvocation() {
        assertNotLinearizable(read("x", 0, 1), maybeWrite("x", 2));
    }

    @Test
    void failureExplainsWhereTheSearchGotStuck() {
        Result result = check(write("a", 0, 1), write("b", 2, 3), read("a", 4, 5));
        assertFalse(result.linearizable());
        String explanation = result.explain();
        assertTrue(explanation.contains("NOT linearizable") && explanation.contains("read->a [4, 5]"), explanation);
    }

    @Test
    void aLongerInterleavedHistoryIsCheckedQuickly() {
        // 4 clients, 200 ops, every op overlapping its neighbours: a linearizable history by construction
        // (each op's effect is at its midpoint), which the search has to find among many orders.
        List<Op> history = new ArrayList<>();
        String value = null;
        for (int i = 0; i < 200; i++) {
            long invoke = i * 10L;
            long response = invoke + 35; // overlaps the next three ops
            if (i % 3 == 0) {
                value = "v" + i;
                history.add(i % 9 == 0 ? maybeWrite(value, invoke) : write(value, invoke, response));
            } else {
                history.add(read(value, invoke, response));
            }
        }
        Result result = LinearizabilityChecker.check(history, null);
        assertTrue(result.linearizable(), result::explain);
    }

    @Test
    void manyUnobservedMaybeWritesDoNotSlowTheSearch() {
        // Failed puts to a dead member: 60 maybe-writes nobody saw, amid reads that all see a.
        List<Op> history = new ArrayList<>(List.of(write("a", 0, 1)));
        for (int i = 0; i < 60; i++) {
            history.add(maybeWrite("lost" + i, 2 + i));
            history.add(read("a", 100 + 2L * i, 101 + 2L * i));
        }
        history.add(read("b", 300, 301)); // b was never written: still caught
        Result result = LinearizabilityChecker.check(history, null);
        assertFalse(result.linearizable(), result::explain);
        history.remove(history.size() - 1);
        assertTrue(LinearizabilityChecker.check(history, null).linearizable());
    }

    // ---- reads of absent keys, many keys (issue 22)

    @Test
    void readThatMissesAnAcknowledgedPutFails() {
        // The put of k was acknowledged at 3; a linearizable read invoked at 10 found no such key.
        assertNotLinearizable(read(null, 0, 1), write("v", 2, 3), read("v", 4, 5), read(null, 10, 11));
        assertNotLinearizable(write("v", 2, 3), read(null, 10, 11));
    }

    @Test
    void readOfAnAbsentKeyBeforeOrDuringItsPutPasses() {
        assertLinearizable(read(null, 0, 1), write("v", 2, 3), read("v", 4, 5));
        // Overlapping the put, a read may miss it...
        assertLinearizable(write("v", 2, 10), read(null, 3, 4), read("v", 11, 12));
        // ...but not once another read has seen it.
        assertNotLinearizable(write("v", 2, 10), read("v", 3, 4), read(null, 5, 6));
    }

    @Test
    void readOfAKeyWhosePutFailedMayFindItOrNot() {
        assertLinearizable(maybeWrite("v", 0), read(null, 5, 6), read("v", 7, 8));
        assertLinearizable(maybeWrite("v", 0), read(null, 5, 6), read(null, 7, 8));
        // Once seen, it stays.
        assertNotLinearizable(maybeWrite("v", 0), read("v", 5, 6), read(null, 7, 8));
    }

    @Test
    void manyKeysAreCheckedOneByOneAndTheMissedKeyIsNamed() {
        // 300 keys, each put once then read back through some member; one read misses its key.
        Map<String, List<Op>> history = new LinkedHashMap<>();
        for (int k = 0; k < 300; k++) {
            long t = k * 10L;
            history.put("w-" + k, new ArrayList<>(List.of(
                    read(null, t, t + 2), write("v" + k, t + 1, t + 5), read("v" + k, t + 6, t + 8))));
        }
        assertTrue(LinearizabilityChecker.checkKeys(history).linearizable());
        history.get("w-123").add(read(null, 100_000, 100_001)); // the final read: "count 0"
        LinearizabilityChecker.KeyedResult result = LinearizabilityChecker.checkKeys(history);
        assertFalse(result.linearizable());
        assertEquals(List.of("w-123"), result.failedKeys());
        assertTrue(result.explain().contains("w-123") && result.explain().contains("read->null [100000, 100001]"),
                result.explain());
    }

    @Test
    void readsWithoutResponseAreRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> new Op(LinearizabilityChecker.Type.READ, "a", 0, LinearizabilityChecker.NEVER, ""));
    }

    @Test
    void compareAndSetTakesEffectOnlyOnTheValueItCompared() {
        assertLinearizable(write("a", 0, 1), cas("a", "b", 2, 3), read("b", 4, 5));
        // Two clients both won a cas from a: one of them must have compared with a value no longer there.
        assertNotLinearizable(write("a", 0, 1), cas("a", "b", 2, 5), cas("a", "c", 3, 6));
        // A cas from a that succeeded although b was acknowledged before it started.
        assertNotLinearizable(write("a", 0, 1), write("b", 2, 3), cas("a", "c", 4, 5));
        // cas from "absent" on a key that holds a value.
        assertNotLinearizable(write("a", 0, 1), cas(null, "b", 2, 3));
        assertLinearizable(write(null, 0, 1), cas(null, "b", 2, 3), read("b", 4, 5));
    }

    @Test
    void aMaybeCasHappensOnlyWhereItsCompareHolds() {
        // The maybe-cas from a is seen (c is read) after b replaced a: it must have happened before b.
        assertLinearizable(write("a", 0, 1), maybeCas("a", "c", 2), write("b", 3, 6), read("c", 4, 5));
        assertNotLinearizable(write("a", 0, 1), write("b", 2, 3), maybeCas("a", "c", 4), read("c", 5, 6));
        // Nobody saw c: the maybe-cas may never have happened.
        assertLinearizable(write("a", 0, 1), maybeCas("x", "c", 2), read("a", 3, 4));
        // A maybe-write only a cas compared with is kept: the cas shows it happened.
        assertLinearizable(maybeWrite("m", 0), cas("m", "n", 1, 2), read("n", 3, 4));
    }
}
