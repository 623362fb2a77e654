package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Power loss, not a process crash: members keep their data on {@link LazyFs}, a file system that holds
 * everything not yet synced in memory and, at a power off, loses it — except a random half of the
 * dirty pages, which reach the disk (the kernel may have written them back before the power went), so
 * records and pages are torn. Under a steady load of puts the power goes off at a random moment, many
 * times; after each restart every acknowledged put must be there, with its value and the revision it
 * was acknowledged with, the keyspace must read whole, and in a cluster the members must agree (no
 * committed entry lost or changed on any of them). A member that refused to start on a torn log, or
 * whose keyspace were corrupt, fails the test.
 *
 * <p>The seed is printed; {@code -Dpowerloss.seed=N} repeats a run. Needs FUSE (root and /dev/fuse;
 * {@code bin/test} installs fuse3 and sets {@code VETCD_REQUIRE_LAZYFS}, which turns a missing FUSE from
 * a skip into a failure).
 */
class PowerLossIT {

    private static final int VALUE_SIZE = 1500;
    private static final Pattern HASH = Pattern.compile("\"hash\":(\\d+)");

    private final List<LazyFs> disks = new ArrayList<>();
    private MemberProcess member;
    private ClusterProcess cluster;
    private long seed;
    private Random random;

    @BeforeEach
    void requireLazyFs() {
        LazyFs.Availability lazyfs = LazyFs.available();
        if (System.getenv("VETCD_REQUIRE_LAZYFS") != null) {
            assertTrue(lazyfs.available(), "FUSE is required here (VETCD_REQUIRE_LAZYFS): " + lazyfs.reason());
        }
        assumeTrue(lazyfs.available(), lazyfs.reason());
        seed = Long.getLong("powerloss.seed", System.nanoTime());
        random = new Random(seed);
        System.out.println("PowerLossIT: seed " + seed + " (-Dpowerloss.seed=" + seed + " repeats it)");
    }

    @AfterEach
    void cleanUp() throws Exception {
        try {
            if (member != null) {
                member.close();
            }
            if (cluster != null) {
                cluster.close();
            }
        } finally {
            disks.forEach(LazyFs::close);
        }
    }

    @Test
    void oneMemberPoweredOffUnderLoadKeepsEveryAcknowledgedPut() throws Exception {
        LazyFs disk = mount("powerloss-single");
        member = MemberProcess.start(MemberProcess.Kind.VETCD, "powerloss-single",
                MemberProcess.Options.defaults().withDataDir(disk.mountPoint().resolve("data")));
        Map<String, Long> acknowledged = new HashMap<>();
        int cycles = 8;
        for (int cycle = 0; cycle < cycles; cycle++) {
            KvLoad.Outcome outcome = loadUntilPowerOff(member.endpoint(), "c" + cycle + "-", () -> {
                disk.powerOff();
                member.kill9();
            });
            acknowledged.putAll(outcome.acknowledged());
            disk.remount();
            member.restart();
            try (KvLoad load = new KvLoad(member.endpoint())) {
                Map<String, ClusterProcess.Kv> stored = load.range("c");
                assertEquals(List.of(), KvLoad.missing(acknowledged, stored, VALUE_SIZE),
                        "after power loss " + (cycle + 1) + " (seed " + seed + ")\n" + member.logTail());
                assertWhole(stored, "after power loss " + (cycle + 1));
            }
            System.out.printf("PowerLossIT[single]: power loss %d: %d puts acknowledged so far, %d failed in this one%n",
                    cycle + 1, acknowledged.size(), outcome.failures().size());
        }
        assertTrue(acknowledged.size() >= cycles * 20, acknowledged.size() + " puts acknowledged in all");
        System.out.println("PowerLossIT[single]: a torn log tail was dropped at some restart: "
                + member.logContains("the log ends in a record cut short"));
    }

    @Test
    void aClusterThatLosesPowerAllAtOnceLosesNoCommittedEntry() throws Exception {
        LazyFs[] memberDisks = new LazyFs[ClusterProcess.SIZE + 1];
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            memberDisks[m] = mount("powerloss-infra" + m);
        }
        cluster = ClusterProcess.start(MemberProcess.Kind.VETCD, "powerloss-cluster",
                m -> memberDisks[m].mountPoint().resolve("data"));
        Map<String, Long> acknowledged = new HashMap<>();
        int cycles = 3;
        for (int cycle = 0; cycle < cycles; cycle++) {
            int through = 1 + random.nextInt(ClusterProcess.SIZE);
            KvLoad.Outcome outcome = loadUntilPowerOff(cluster.endpoint(through), "c" + cycle + "-", () -> {
                for (int m = 1; m <= ClusterProcess.SIZE; m++) {
                    memberDisks[m].powerOff(); // the whole rack, within milliseconds
                }
                for (int m = 1; m <= ClusterProcess.SIZE; m++) {
                    cluster.kill9(m);
                }
            });
            acknowledged.putAll(outcome.acknowledged());
            for (int m = 1; m <= ClusterProcess.SIZE; m++) {
                memberDisks[m].remount();
            }
            cluster.restart(1, 2, 3);
            for (int m = 1; m <= ClusterProcess.SIZE; m++) {
                try (KvLoad load = new KvLoad(cluster.endpoint(m))) {
                    Map<String, ClusterProcess.Kv> stored = load.range("c");
                    assertEquals(List.of(), KvLoad.missing(acknowledged, stored, VALUE_SIZE),
                            "read through " + cluster.name(m) + " after power loss " + (cycle + 1) + " (seed " + seed
                                    + ")\n" + cluster.logTails());
                    assertWhole(stored, "through " + cluster.name(m));
                }
            }
            assertSameHashes();
            System.out.printf("PowerLossIT[cluster]: power loss %d (load through %s): %d puts acknowledged so far%n",
                    cycle + 1, cluster.name(through), acknowledged.size());
        }
        assertTrue(acknowledged.size() >= cycles * 20, acknowledged.size() + " puts acknowledged in all");
    }

    private LazyFs mount(String name) throws Exception {
        LazyFs disk = LazyFs.mount(name, LazyFs.Options.defaults().withTornWrites(0.5, random.nextLong()));
        disks.add(disk);
        return disk;
    }

    interface PowerOff {
        void run() throws Exception;
    }

    /**
     * Puts under {@code prefix} through {@code endpoint} (16 in flight) and, at a random moment 0.3 to
     * 2.5 s in, cuts the power; returns what was acknowledged before.
     */
    private KvLoad.Outcome loadUntilPowerOff(String endpoint, String prefix, PowerOff powerOff) throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        try (KvLoad load = new KvLoad(endpoint)) {
            CompletableFuture<KvLoad.Outcome> running = CompletableFuture.supplyAsync(() -> {
                try {
                    return load.put(prefix, 1_000_000, 16, VALUE_SIZE, stop::get, Duration.ofSeconds(60));
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            Thread.sleep(300 + random.nextInt(2200)); // where the power goes: a random point of the load
            powerOff.run();
            stop.set(true);
            return running.get(90, TimeUnit.SECONDS);
        }
    }

    /** Every key read back carries the value written under it: nothing half-written, nothing foreign. */
    private static void assertWhole(Map<String, ClusterProcess.Kv> stored, String when) {
        List<String> wrong = stored.values().stream()
                .filter(kv -> !kv.value().equals(KvLoad.valueOf(kv.key(), VALUE_SIZE)))
                .map(ClusterProcess.Kv::key)
                .toList();
        assertEquals(List.of(), wrong, "keys read back with a value never written, " + when);
    }

    /** Every member hashes its keyspace to the same value at the same revision. */
    private void assertSameHashes() throws Exception {
        long revision = Long.MAX_VALUE;
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            Etcdctl.Result get = Etcdctl.run(cluster.endpoint(m), "get", "c", "--prefix", "--limit=1", "-w", "json");
            assertTrue(get.ok(), "get through " + cluster.name(m) + ": " + get);
            revision = Math.min(revision, ClusterProcess.headerRevision(get.stdout()));
        }
        List<String> hashes = new ArrayList<>();
        for (int m = 1; m <= ClusterProcess.SIZE; m++) {
            Etcdctl.Result hash = Etcdctl.run(cluster.endpoint(m), "endpoint", "hashkv", "--rev=" + revision, "-w", "json");
            Matcher h = HASH.matcher(hash.stdout());
            assertTrue(hash.ok() && h.find(), "hashkv through " + cluster.name(m) + ": " + hash);
            hashes.add(h.group(1));
        }
        assertEquals(1, hashes.stream().distinct().count(), "members hash their keyspaces differently at revision "
                + revision + ": " + hashes + "\n" + cluster.logTails());
    }
}
