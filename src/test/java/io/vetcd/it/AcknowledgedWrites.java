package io.vetcd.it;

import io.vetcd.it.ChaosClients.Kind;
import io.vetcd.it.ChaosClients.Op;
import io.vetcd.it.ChaosWatchers.Ev;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The clients' history against the store's: every change to the chaos keys, as a watch from the
 * first revision delivers it once the cluster healed (the reference history, the same on every
 * member). Violations:
 * <ul>
 *   <li>LOST: an acknowledged put or compare-and-set is not in the history at the revision its answer
 *       named, with its value; an acknowledged delete that deleted a key is not there as a delete;</li>
 *   <li>READ: a get returned a value at a revision where the history has something else;</li>
 *   <li>PHANTOM: the history holds a value no client wrote to that key, the same value twice, or a
 *       delete no client asked for there.</li>
 * </ul>
 */
final class AcknowledgedWrites {

    private AcknowledgedWrites() {
    }

    static List<String> check(List<Op> history, List<Ev> reference) {
        List<String> violations = new ArrayList<>();
        Map<String, Ev> byValue = new HashMap<>();
        Map<String, Ev> byRevisionAndKey = new HashMap<>();
        for (Ev e : reference) {
            byRevisionAndKey.put(e.mod() + " " + e.key(), e);
            if (e.put() && byValue.put(e.key() + "=" + e.value(), e) != null) {
                violations.add("PHANTOM: " + e.key() + "=" + e.value() + " is in the history twice: "
                        + byValue.get(e.key() + "=" + e.value()) + " and " + e);
            }
        }
        Set<String> written = new HashSet<>();
        Set<String> deletes = new HashSet<>();
        for (Op op : history) {
            switch (op.kind()) {
                case PUT, CAS -> {
                    written.add(op.key() + "=" + op.value());
                    Ev e = byValue.get(op.key() + "=" + op.value());
                    if (op.ok() && (e == null || e.mod() != op.revision())) {
                        violations.add("LOST: " + op + " is " + (e == null ? "not in the history" : "at " + e));
                    }
                }
                case DELETE -> {
                    if (!op.ok()) {
                        deletes.add(op.key() + " @?");
                    } else if (op.deleted() > 0) {
                        deletes.add(op.key() + " @" + op.revision());
                    }
                    Ev e = byRevisionAndKey.get(op.revision() + " " + op.key());
                    if (op.ok() && op.deleted() > 0 && (e == null || e.put())) {
                        violations.add("LOST: " + op + ": the history has " + (e == null ? "nothing" : e)
                                + " for that key at that revision");
                    }
                }
                case GET -> {
                    if (op.ok() && op.value() != null) {
                        Ev e = byRevisionAndKey.get(op.revision() + " " + op.key());
                        if (e == null || !e.put() || !e.value().equals(op.value())) {
                            violations.add("READ: " + op + ", but the history has " + (e == null ? "nothing" : e)
                                    + " for that key at that revision");
                        }
                    }
                }
                default -> throw new IllegalStateException(op.kind().toString());
            }
        }
        for (Ev e : reference) {
            if (e.put() && !written.contains(e.key() + "=" + e.value())) {
                violations.add("PHANTOM: " + e + ": no client wrote that value to that key");
            }
            if (!e.put() && !deletes.contains(e.key() + " @" + e.mod()) && !deletes.contains(e.key() + " @?")) {
                violations.add("PHANTOM: " + e + ": no client deleted that key then");
            }
        }
        return violations;
    }

    /** Acknowledged writes (puts, compare-and-sets that wrote, deletes), for the report. */
    static long acknowledged(List<Op> history) {
        return history.stream().filter(op -> op.ok() && op.kind() != Kind.GET).count();
    }
}
