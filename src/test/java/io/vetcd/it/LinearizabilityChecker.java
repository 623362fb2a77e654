package io.vetcd.it;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Decides whether the history of one register (one etcd key) is linearizable, by the search of
 * Wing and Gong as improved by Lowe (WGL): try to order the operations one after another so that
 * each takes effect at an instant between its invocation and its response, and every read returns
 * the value of the write ordered last before it.
 *
 * <p>The model: {@code write(v)} sets the register to {@code v}; {@code read} returns the current
 * value, {@code null} meaning "no such key". A write whose outcome is unknown (the client got an
 * error or a timeout: the server may have applied it anyway) is a <em>maybe-write</em>: it has no
 * response, i.e. its response time is +infinity, so it may take effect at any point after its
 * invocation, or never. Reads that failed tell nothing and are left out of the history.
 *
 * <p>In particular a read never sees a value older than a write acknowledged before the read
 * started: that write must be ordered before the read, and anything ordered in between would be
 * another write.
 *
 * <p>Reads of an absent key are reads of {@code null}: a key nobody wrote yet reads as absent, and a
 * read that finds nothing after the put of the key was acknowledged (a read that "misses" an
 * acknowledged write) is caught like any stale read.
 *
 * <p>{@code cas(expected, v)} is a transaction that compared the value with {@code expected} and,
 * as it matched, wrote {@code v}; it may only be ordered where the register holds {@code expected}.
 * A compare-and-set whose outcome is unknown is a <em>maybe-cas</em>: never, or at a point where the
 * register held {@code expected}. (A compare that did not match is a read of what it found.)
 *
 * <p>A store of many keys is checked key by key ({@link #checkKeys}): linearizability is local
 * (Herlihy and Wing), so a history is linearizable exactly when each key's sub-history is.
 *
 * <p>Times are {@link System#nanoTime()} readings taken by the client around the whole request (so
 * the real effect lies inside), and {@link #NEVER} marks a missing response.
 */
final class LinearizabilityChecker {

    /** The response time of an operation that never returned. */
    static final long NEVER = Long.MAX_VALUE;

    /** Gives up (with an exception, not a verdict) when the search has visited this many states. */
    private static final int MAX_STATES = 5_000_000;

    enum Type { READ, WRITE, CAS }

    /**
     * One operation on the register: {@code value} is what a write or cas wrote or what a read
     * returned; {@code expected} what a cas compared with (null otherwise, or: the key absent).
     */
    record Op(Type type, String expected, String value, long invoke, long response, String label) {
        Op(Type type, String value, long invoke, long response, String label) {
            this(type, null, value, invoke, response, label);
        }

        Op {
            if (response != NEVER && response < invoke) {
                throw new IllegalArgumentException("response before invocation: " + invoke + " > " + response);
            }
            if (type == Type.READ && response == NEVER) {
                throw new IllegalArgumentException("a read without response tells nothing; leave it out");
            }
        }

        static Op write(String value, long invoke, long response) {
            return new Op(Type.WRITE, value, invoke, response, "");
        }

        /** A write whose client saw an error or timeout: it may or may not have happened. */
        static Op maybeWrite(String value, long invoke) {
            return new Op(Type.WRITE, value, invoke, NEVER, "");
        }

        /** A read that returned {@code value} ({@code null}: the key did not exist). */
        static Op read(String value, long invoke, long response) {
            return new Op(Type.READ, value, invoke, response, "");
        }

        /** A compare-and-set that matched {@code expected} and wrote {@code value}. */
        static Op cas(String expected, String value, long invoke, long response) {
            return new Op(Type.CAS, expected, value, invoke, response, "");
        }

        /** A compare-and-set whose client saw an error or timeout. */
        static Op maybeCas(String expected, String value, long invoke) {
            return new Op(Type.CAS, expected, value, invoke, NEVER, "");
        }

        /** The same operation with a note for failure messages (e.g. which client and member). */
        Op labelled(String newLabel) {
            return new Op(type, expected, value, invoke, response, newLabel);
        }

        /** Whether the op may take effect on a register holding {@code current}. */
        boolean allowedOn(String current) {
            return switch (type) {
                case READ -> Objects.equals(value, current);
                case CAS -> Objects.equals(expected, current);
                case WRITE -> true;
            };
        }

        boolean completed() {
            return response != NEVER;
        }

        @Override
        public String toString() {
            String what = switch (type) {
                case READ -> "read->" + value;
                case WRITE -> (response == NEVER ? "maybe-write(" : "write(") + value + ")";
                case CAS -> (response == NEVER ? "maybe-cas(" : "cas(") + expected + "->" + value + ")";
            };
            return what + " [" + invoke + ", " + (response == NEVER ? "inf" : Long.toString(response)) + "]"
                    + (label.isEmpty() ? "" : " " + label);
        }
    }

    /**
     * The verdict: when linearizable, one order that shows it; otherwise the longest order the
     * search could build, to show where it got stuck. {@code history} is what was searched, by
     * invocation time (without the maybe-writes nobody observed).
     */
    record Result(boolean linearizable, List<Op> order, List<Op> history) {
        /** A human-readable account for assertion messages. */
        String explain() {
            StringBuilder text = new StringBuilder(linearizable ? "linearizable; one order:\n"
                    : "NOT linearizable; the longest order found (" + order.size() + " of " + history.size()
                            + " ops) is:\n");
            order.forEach(op -> text.append("  ").append(op).append('\n'));
            if (!linearizable) {
                text.append("and none of the remaining ops can come next:\n");
                history.stream().filter(op -> !order.contains(op))
                        .forEach(op -> text.append("  ").append(op).append('\n'));
            }
            return text.toString();
        }
    }

    /** The verdict over many keys: every key's, and the keys whose history is not linearizable. */
    record KeyedResult(Map<String, Result> byKey) {
        boolean linearizable() {
            return byKey.values().stream().allMatch(Result::linearizable);
        }

        List<String> failedKeys() {
            return byKey.entrySet().stream().filter(e -> !e.getValue().linearizable()).map(Map.Entry::getKey).toList();
        }

        /** The failures (the first few in full), for assertion messages. */
        String explain() {
            List<String> failed = failedKeys();
            if (failed.isEmpty()) {
                return "all " + byKey.size() + " keys linearizable";
            }
            StringBuilder text = new StringBuilder(failed.size() + " of " + byKey.size()
                    + " keys NOT linearizable: " + failed + "\n");
            failed.stream().limit(5).forEach(key -> text.append(key).append(": ").append(byKey.get(key).explain()));
            return text.toString();
        }
    }

    private final List<Op> ops;
    private final Set<Visited> visited = new HashSet<>();
    private final List<Op> path = new ArrayList<>();
    private List<Op> longestPath = List.of();

    /** A search state: which ops are ordered already, and the register value they leave. */
    private record Visited(BitSet done, String value) {
    }

    /**
     * Leaves out the maybe-writes (and maybe-cas) whose value no read returned and no cas compared
     * with: such an op can only set the register to a value nobody saw, so an order without it is as
     * good as any order with it — and each one left in would double the states to search. (Values are
     * unique per write, as the tests write them.)
     */
    private LinearizabilityChecker(List<Op> history) {
        Set<String> valuesSeen = new HashSet<>();
        history.stream().filter(op -> op.type() == Type.READ).forEach(op -> valuesSeen.add(op.value()));
        history.stream().filter(op -> op.type() == Type.CAS).forEach(op -> valuesSeen.add(op.expected()));
        this.ops = history.stream()
                .filter(op -> op.completed() || valuesSeen.contains(op.value()))
                .sorted(Comparator.comparingLong(Op::invoke))
                .toList();
    }

    /** Checks a register history that starts from {@code initialValue} ({@code null}: absent). */
    static Result check(List<Op> history, String initialValue) {
        LinearizabilityChecker checker = new LinearizabilityChecker(history);
        int completed = (int) checker.ops.stream().filter(Op::completed).count();
        boolean ok = checker.search(new BitSet(checker.ops.size()), initialValue, completed);
        return new Result(ok, ok ? List.copyOf(checker.path) : checker.longestPath, checker.ops);
    }

    /** Checks each key's history, every key starting absent. */
    static KeyedResult checkKeys(Map<String, List<Op>> historyByKey) {
        Map<String, Result> results = new java.util.LinkedHashMap<>();
        historyByKey.forEach((key, history) -> results.put(key, check(history, null)));
        return new KeyedResult(results);
    }

    /**
     * Depth-first: picks a next op among those that may come first (no op still unordered returned
     * before it was invoked), applies it to the model, recurses; backtracks on a read that does not
     * match. Succeeds when every completed op is ordered — maybe-writes left over never happened.
     */
    private boolean search(BitSet done, String value, int completedLeft) {
        if (completedLeft == 0) {
            return true;
        }
        if (!visited.add(new Visited((BitSet) done.clone(), value))) {
            return false; // been here by another order: same outcome
        }
        if (visited.size() > MAX_STATES) {
            throw new IllegalStateException("history too large to check: over " + MAX_STATES + " states");
        }
        long earliestResponse = NEVER;
        for (int i = done.nextClearBit(0); i < ops.size(); i = done.nextClearBit(i + 1)) {
            earliestResponse = Math.min(earliestResponse, ops.get(i).response());
        }
        for (int i = done.nextClearBit(0); i < ops.size(); i = done.nextClearBit(i + 1)) {
            Op op = ops.get(i);
            if (op.invoke() > earliestResponse) {
                break; // ops are sorted by invocation: this one and all later ones follow an unordered op
            }
            if (!op.allowedOn(value)) {
                continue;
            }
            String next = op.type() == Type.READ ? value : op.value();
            done.set(i);
            path.add(op);
            if (path.size() > longestPath.size()) {
                longestPath = List.copyOf(path);
            }
            if (search(done, next, completedLeft - (op.completed() ? 1 : 0))) {
                return true;
            }
            path.remove(path.size() - 1);
            done.clear(i);
        }
        return false;
    }
}
