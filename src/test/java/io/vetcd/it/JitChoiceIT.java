package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code bin/vetcd} chooses the JIT compilers: C1 alone where a member has two CPUs or fewer, C1 then
 * C2 above that, either one by {@code VETCD_JIT}; the JVM's own flag table says what it got.
 */
class JitChoiceIT {

    private static final Pattern STOP_LEVEL = Pattern.compile("intx TieredStopAtLevel\\s+= (\\d)");

    @Test
    void c1AloneOrTieredAsAsked() throws Exception {
        assertEquals(1, stopLevel(Map.of("VETCD_JIT", "c1"), List.of()));
        assertEquals(4, stopLevel(Map.of("VETCD_JIT", "tiered"), List.of()));
    }

    @Test
    void byDefaultC1AloneOnOneCpu() throws Exception {
        // One CPU through the affinity mask, as a pinned process or a container's cpuset has; the
        // machines that run this have two, so "more than two" cannot be shown here.
        assertEquals(1, stopLevel(Map.of(), List.of("taskset", "-c", "0")));
    }

    @Test
    void anUnknownChoiceIsRefusedByName() throws Exception {
        BinVetcd.Exit exit = BinVetcd.run(Map.of("VETCD_JIT", "c2"), List.of(), "--version");
        assertEquals(2, exit.code(), exit.output());
        assertEquals("vetcd: VETCD_JIT must be auto, c1 or tiered, not 'c2'", exit.output().strip());
    }

    private static int stopLevel(Map<String, String> environment, List<String> prefix) throws Exception {
        Map<String, String> withFlags = new HashMap<>(environment);
        withFlags.put("VETCD_JAVA_OPTS", "-XX:+PrintFlagsFinal");
        BinVetcd.Exit exit = BinVetcd.run(withFlags, prefix, "--version");
        assertEquals(0, exit.code(), exit.output());
        assertTrue(exit.output().contains("vetcd Version: "), exit.output());
        Matcher level = STOP_LEVEL.matcher(exit.output());
        assertTrue(level.find(), exit.output());
        return Integer.parseInt(level.group(1));
    }
}
