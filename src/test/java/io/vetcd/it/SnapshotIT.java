package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backup and restore with the real {@code etcdctl} (issue 14): {@code etcdctl snapshot save} against a
 * running 3-member cluster, {@code snapshot status} of the file by etcdctl and by {@code vetcd snapshot
 * status} (the same output in every format), and a new 3-member cluster restored from it (each member
 * with {@code vetcd snapshot restore}) that serves every key with the same values, revisions and
 * history, and the lease. Files that are cut short or damaged are refused and nothing is written.
 *
 * <p>Against etcd ({@code -Dit.cluster.candidate=etcd}) the same test takes etcd's snapshot and
 * restores it with {@code etcdctl snapshot restore}: the behaviour vetcd must match; vetcd's status
 * output is compared on etcd's file too.
 */
class SnapshotIT {

    private static final Pattern REVISION = Pattern.compile("\"revision\":(\\d+)");
    private static final Pattern KVS = Pattern.compile("\"kvs\":(\\[.*\\])");

    @TempDir
    Path tmp;
    private final List<ClusterProcess> clusters = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        for (ClusterProcess c : clusters) {
            c.close();
        }
    }

    @Test
    void aSavedSnapshotRestoresIntoANewClusterWithEveryKeyAndRevision() throws Exception {
        MemberProcess.Kind kind = ClusterProcess.candidateKind();
        ClusterProcess source = ClusterProcess.start(kind, "snapshot-source");
        clusters.add(source);
        String e = source.endpoint(1);
        for (int i = 0; i < 20; i++) {
            assertTrue(Etcdctl.run(e, "put", "k" + i, "v" + i).ok());
        }
        assertTrue(Etcdctl.run(e, "put", "k3", "again").ok());
        assertTrue(Etcdctl.run(e, "del", "k4").ok());
        assertTrue(Etcdctl.runWithStdin(e, "\nput k5 txn\nput t1 x\n\n\n", "txn").ok());
        Etcdctl.Result grant = Etcdctl.run(e, "lease", "grant", "600");
        String lease = grant.stdout().split(" ")[1];
        assertTrue(Etcdctl.run(e, "put", "leased", "yes", "--lease=" + lease).ok());
        assertTrue(Etcdctl.run(e, "compaction", "3").ok());
        assertTrue(Etcdctl.run(e, "put", "last", "one").ok());
        String before = Etcdctl.run(e, "get", "", "--prefix", "-w", "json").stdout();
        String history = Etcdctl.run(e, "get", "k3", "--rev=5", "-w", "json").stdout();

        Path file = tmp.resolve("backup.db");
        Etcdctl.Result save = Etcdctl.run(e, "snapshot", "save", file.toString());
        assertTrue(save.ok(), save.toString());
        assertTrue(save.stdout().contains("Snapshot saved at " + file), save.toString());
        Etcdctl.Result status = Etcdctl.run(e, "snapshot", "status", file.toString(), "-w", "json");
        assertTrue(status.ok(), "etcdctl reads the file: " + status);
        assertEquals(revision(before), revision(status.stdout()), status.stdout());
        for (String format : List.of("simple", "table", "json", "fields")) {
            Etcdctl.Result etcdctl = Etcdctl.run(e, "snapshot", "status", file.toString(), "-w", format);
            Run vetcd = vetcd("snapshot", "status", file.toString(), "-w", format);
            assertEquals(0, vetcd.exit(), vetcd.toString());
            assertEquals(etcdctl.stdout(), vetcd.stdout(), "vetcd snapshot status -w " + format);
        }

        source.close(); // six members at once are more than two cores carry well
        // A new cluster (new ports, token, ids), each member restored from the same file.
        ClusterProcess restored = ClusterProcess.startPrepared(kind, "snapshot-restored", c -> {
            for (int i = 1; i <= ClusterProcess.SIZE; i++) {
                List<String> flags = List.of("--name", c.name(i), "--data-dir", c.dataDir(i).toString(),
                        "--initial-cluster", c.initialCluster(), "--initial-cluster-token", c.token(),
                        "--initial-advertise-peer-urls", c.peerUrl(i));
                if (kind == MemberProcess.Kind.ETCD) {
                    List<String> args = new ArrayList<>(List.of("snapshot", "restore", file.toString()));
                    args.addAll(flags);
                    Etcdctl.Result r = Etcdctl.run(c.endpoint(i), args.toArray(String[]::new));
                    assertTrue(r.ok(), r.toString());
                } else {
                    List<String> args = new ArrayList<>(List.of("snapshot", "restore", file.toString()));
                    args.addAll(flags);
                    Run r = vetcd(args.toArray(String[]::new));
                    assertEquals(0, r.exit(), r.toString());
                }
            }
        });
        clusters.add(restored);
        for (int i = 1; i <= ClusterProcess.SIZE; i++) {
            String after = Etcdctl.run(restored.endpoint(i), "get", "", "--prefix", "-w", "json").stdout();
            assertEquals(kvs(before), kvs(after), "member " + i + " serves every key as it was");
            assertEquals(revision(before), revision(after));
            assertEquals(kvs(history), kvs(Etcdctl.run(restored.endpoint(i), "get", "k3", "--rev=5", "-w", "json").stdout()),
                    "the history after the compaction is there");
        }
        Etcdctl.Result compacted = Etcdctl.run(restored.endpoint(1), "get", "k3", "--rev=2");
        assertTrue(compacted.stderr().contains("etcdserver: mvcc: required revision has been compacted"), compacted.toString());
        Etcdctl.Result leases = Etcdctl.run(restored.endpoint(1), "lease", "list");
        assertTrue(leases.stdout().contains(lease), leases.toString());
        Etcdctl.Result put = Etcdctl.run(restored.endpoint(2), "put", "new", "write", "-w", "json");
        assertTrue(put.ok(), put.toString());
        assertEquals(revision(before) + 1, revision(put.stdout()), "revisions go on from the snapshot's");
    }

    @Test
    void aDamagedOrShortFileIsRefusedAndNothingIsWritten() throws Exception {
        ClusterProcess source = ClusterProcess.start(MemberProcess.Kind.VETCD, "snapshot-bad");
        clusters.add(source);
        for (int i = 0; i < 50; i++) {
            assertTrue(Etcdctl.run(source.endpoint(1), "put", "k" + i, "v".repeat(100)).ok());
        }
        Path file = tmp.resolve("good.db");
        assertTrue(Etcdctl.run(source.endpoint(1), "snapshot", "save", file.toString()).ok());
        byte[] good = Files.readAllBytes(file);

        byte[] flipped = good.clone();
        flipped[3 * 4096 + 40] ^= 0x55; // inside the first leaf page of the key bucket
        Path damaged = tmp.resolve("damaged.db");
        Files.write(damaged, flipped);
        assertRefused(damaged, "Error: expected sha256 [");

        Path shortFile = tmp.resolve("short.db");
        Files.write(shortFile, java.util.Arrays.copyOf(good, 5000));
        assertRefused(shortFile, "Error: snapshot missing hash but --skip-hash-check=false");
        Run skipped = vetcd("snapshot", "restore", shortFile.toString(), "--data-dir", tmp.resolve("r").toString(),
                "--skip-hash-check");
        assertEquals(1, skipped.exit(), skipped.toString());
        assertTrue(skipped.stderr().contains("Error: the file is truncated"), skipped.toString());
        assertFalse(Files.exists(tmp.resolve("r")), "nothing written");

        Run status = vetcd("snapshot", "status", damaged.toString());
        assertEquals(0, status.exit(), "status does not check the hash, as etcdctl's: " + status);
        Path empty = tmp.resolve("existing");
        Files.createDirectories(empty);
        Run exists = vetcd("snapshot", "restore", file.toString(), "--data-dir", empty.toString());
        assertEquals(1, exists.exit(), exists.toString());
        assertTrue(exists.stderr().contains("Error: data-dir \"" + empty + "\" exists"), exists.toString());
        try (var left = Files.list(tmp)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().contains("restoring")), "no half-built directory");
        }
    }

    private void assertRefused(Path file, String error) throws Exception {
        Path dir = tmp.resolve("restored-" + file.getFileName());
        Run r = vetcd("snapshot", "restore", file.toString(), "--data-dir", dir.toString());
        assertEquals(1, r.exit(), r.toString());
        assertTrue(r.stderr().contains(error), r.toString());
        assertFalse(Files.exists(dir), "nothing written for " + file);
    }

    private static long revision(String json) {
        Matcher m = REVISION.matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }

    private static String kvs(String json) {
        Matcher m = KVS.matcher(json);
        assertTrue(m.find(), json);
        return m.group(1);
    }

    record Run(int exit, String stdout, String stderr) {}

    private static Run vetcd(String... args) throws IOException, InterruptedException {
        List<String> command = MemberProcess.serverCommand(MemberProcess.Kind.VETCD);
        command.addAll(List.of(args));
        Path out = Files.createTempFile("vetcd-snapshot-", ".out");
        Path err = Files.createTempFile("vetcd-snapshot-", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            p.getOutputStream().close();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "vetcd " + String.join(" ", args) + " did not finish");
            return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
