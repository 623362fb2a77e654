package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A real full disk: one member with its data dir on a 160 MiB tmpfs, 512 KiB puts until the disk is
 * full. The member must never hang nor go on serving as if it could write: it exits non-zero (the
 * clean way, refusing to write once too little space is left, or — with that reserve switched off (negative), so
 * that a write lands in a mapped page with no space behind it — by the SIGBUS, which the JVM turns into
 * an InternalError or an abort). Then space returns (the tmpfs grows) and the restarted member serves
 * every put that was acknowledged, dropping what a cut-short write left at the log's tail.
 *
 * <p>Needs root to mount the tmpfs; {@code bin/test} (CI) runs as root.
 */
class FullDiskIT {

    private static final int VALUE_SIZE = 512 * 1024;

    private Path mountPoint;
    private MemberProcess member;

    @AfterEach
    void cleanUp() throws Exception {
        try {
            if (member != null) {
                member.close();
            }
        } finally {
            if (mountPoint != null) {
                run("umount", "-l", mountPoint.toString());
                Files.deleteIfExists(mountPoint);
            }
        }
    }

    @ParameterizedTest(name = "free-space reserve {0} bytes")
    @ValueSource(longs = {16L << 20, -(1L << 30)})
    void aFullDiskStopsTheMemberAndARestartWithSpaceKeepsEveryAcknowledgedPut(long reserve) throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mounting a tmpfs needs root");
        mountPoint = Files.createTempDirectory("vetcd-full-disk-");
        List<String> mounted = run("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", mountPoint.toString());
        if (!mounted.isEmpty()) {
            fail("could not mount a tmpfs as root: " + mounted);
        }
        member = MemberProcess.start(MemberProcess.Kind.VETCD, "full-disk-reserve-" + reserve,
                MemberProcess.Options.defaults()
                        .withDataDir(mountPoint.resolve("data"))
                        .withJvmArgs("-Dvetcd.wal.min-free-bytes=" + reserve, "-XX:ErrorFile=" + mountPoint.getParent()
                                .resolve("vetcd-full-disk-hs_err_%p.log")));
        KvLoad.Outcome outcome;
        try (KvLoad load = new KvLoad(member.endpoint())) {
            // Far more than fits: the load ends when the member is gone (or after a minute, a hang).
            outcome = load.put("big", 1000, 4, VALUE_SIZE, () -> !member.process().isAlive(), Duration.ofSeconds(90));
        }
        assertTrue(member.process().waitFor(30, TimeUnit.SECONDS),
                "the member still runs on a full disk (" + outcome.acknowledged().size() + " puts acknowledged, "
                        + outcome.failures().size() + " failed)\n" + member.logTail());
        int status = member.process().exitValue();
        assertNotEquals(0, status, "exit status on a full disk\n" + member.logTail());
        if (status == 1) {
            assertTrue(member.logContains("no space left") || member.logContains("No space left")
                            || member.logContains("the disk is full"),
                    "the member exited without saying the disk is full\n" + member.logTail());
        }
        System.out.printf("FullDiskIT[reserve %d]: %d puts acknowledged, exit status %d%n", reserve,
                outcome.acknowledged().size(), status);
        assertTrue(outcome.acknowledged().size() >= 50, outcome.acknowledged().size() + " puts acknowledged");

        List<String> grown = run("mount", "-o", "remount,size=1024m", mountPoint.toString());
        assertEquals(List.of(), grown, "growing the tmpfs");
        member.restart(member.options().withJvmArgs());
        try (KvLoad load = new KvLoad(member.endpoint())) {
            assertEquals(List.of(), KvLoad.missing(outcome.acknowledged(), load.range("big"), VALUE_SIZE),
                    "acknowledged puts after space came back\n" + member.logTail());
        }
    }

    /** Runs a command; returns its output lines if it failed, nothing if it succeeded. */
    private static List<String> run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        return p.waitFor() == 0 ? List.of() : new ArrayList<>(List.of(String.join(" ", command) + ": " + output));
    }
}
