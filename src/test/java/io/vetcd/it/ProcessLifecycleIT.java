package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The server as a process: how it stops on SIGTERM and SIGINT (promptly, keeping what it
 * acknowledged), what {@code --version}, {@code --help} and an unknown flag do, where its settings
 * can come from ({@code ETCD_*} variables, {@code --config-file}), and what makes it refuse to start.
 * Runs against the candidate ({@code -Dit.candidate}); the checks of vetcd-only behaviour are skipped
 * against real etcd.
 */
class ProcessLifecycleIT {

    /** How long a stop signal may take to end the process. */
    private static final long STOP_DEADLINE_SECONDS = 3;
    /** Backstop for a process expected to exit by itself (JVM start-up included). */
    private static final long EXIT_DEADLINE_SECONDS = 30;
    private static final String HOST = "127.0.0.1";

    private final MemberProcess.Kind kind = MemberProcess.candidateKind();
    private final List<MemberProcess> members = new ArrayList<>();
    private final List<Path> tempDirs = new ArrayList<>();

    /** What a server process that ended by itself printed. */
    private record Exited(int exitCode, String stdout, String stderr) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout ---\n" + stdout + "--- stderr ---\n" + stderr;
        }
    }

    @AfterEach
    void cleanUp() throws Exception {
        for (MemberProcess member : members) {
            member.close();
        }
        for (Path dir : tempDirs) {
            deleteTree(dir);
        }
    }

    @Test
    void sigtermStopsWithinDeadlineAndRestartServesEarlierWrites() throws Exception {
        MemberProcess member = start("lifecycle-sigterm", MemberProcess.Options.defaults());
        put(member, "before-sigterm", "kept");

        Process process = member.process();
        long signalled = System.nanoTime();
        process.destroy(); // SIGTERM
        assertTrue(process.waitFor(STOP_DEADLINE_SECONDS, TimeUnit.SECONDS),
                kind + " still running " + STOP_DEADLINE_SECONDS + " s after SIGTERM\n" + member.logTail());
        report("SIGTERM", signalled, process);

        member.restart();
        assertValue(member, "before-sigterm", "kept");
    }

    @Test
    void sigintStopsWithinDeadlineAndRestartServesEarlierWrites() throws Exception {
        MemberProcess member = start("lifecycle-sigint", MemberProcess.Options.defaults());
        put(member, "before-sigint", "kept");

        Process process = member.process();
        long signalled = System.nanoTime();
        Process kill = new ProcessBuilder("kill", "-INT", Long.toString(process.pid())).start();
        assertTrue(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -INT " + process.pid() + " failed");
        assertTrue(process.waitFor(STOP_DEADLINE_SECONDS, TimeUnit.SECONDS),
                kind + " still running " + STOP_DEADLINE_SECONDS + " s after SIGINT\n" + member.logTail());
        report("SIGINT", signalled, process);

        member.restart();
        assertValue(member, "before-sigint", "kept");
    }

    @Test
    void versionPrintsVersionLineAndExitsZero() throws Exception {
        Exited run = runToExit(List.of("--version"));
        assertEquals(0, run.exitCode(), "--version: " + run);
        String prefix = kind == MemberProcess.Kind.VETCD ? "vetcd Version:" : "etcd Version:";
        assertTrue(run.stdout().lines().anyMatch(line -> line.startsWith(prefix)),
                "--version printed no line starting \"" + prefix + "\": " + run);
    }

    @Test
    void helpPrintsUsageAndExitsZero() throws Exception {
        Exited run = runToExit(List.of("--help"));
        assertEquals(0, run.exitCode(), "--help: " + run);
        assertTrue(run.stdout().contains("--data-dir"), "--help usage doesn't mention --data-dir: " + run);
    }

    @Test
    void unknownFlagExitsTwoWithGoFlagMessage() throws Exception {
        Exited run = runToExit(List.of("--foo"));
        assertEquals(2, run.exitCode(), "--foo: " + run);
        assertTrue(run.stderr().contains("flag provided but not defined: -foo"),
                "--foo: stderr lacks Go's flag message: " + run);
    }

    @Test
    void etcdEnvironmentVariablesConfigureTheMember() throws Exception {
        MemberProcess member = start("lifecycle-env", MemberProcess.Options.defaults()
                .withName("envname").withFlagSource(MemberProcess.FlagSource.ENV));
        assertMemberConfigured(member);
    }

    @Test
    void configFileConfiguresTheMember() throws Exception {
        MemberProcess member = start("lifecycle-config-file", MemberProcess.Options.defaults()
                .withName("cfg").withFlagSource(MemberProcess.FlagSource.CONFIG_FILE));
        assertMemberConfigured(member);
    }

    @Test
    void initialClusterWithoutThisMembersNameIsRefused() throws Exception {
        int[] ports = MemberProcess.freePorts(3);
        String client = "http://" + HOST + ":" + ports[0];
        String peerA = "http://" + HOST + ":" + ports[1];
        String peerB = "http://" + HOST + ":" + ports[2];
        Exited run = runToExit(List.of(
                "--name", "c",
                "--data-dir", tempDir("not-a-member").resolve("data").toString(),
                "--listen-client-urls", client,
                "--advertise-client-urls", client,
                "--listen-peer-urls", peerA,
                "--initial-advertise-peer-urls", peerA,
                "--initial-cluster", "a=" + peerA + ",b=" + peerB));
        assertNotEquals(0, run.exitCode(), "a member missing from --initial-cluster was accepted: " + run);
        assertTrue((run.stdout() + run.stderr()).contains("couldn't find local name"),
                "the refusal doesn't say the name is missing (etcd's words): " + run);
    }

    @Test
    void secondServerOnAUsedClientPortFailsToStart() throws Exception {
        MemberProcess first = start("lifecycle-port-owner", MemberProcess.Options.defaults());
        put(first, "owner", "first");

        String peer = "http://" + HOST + ":" + MemberProcess.freePorts(1)[0];
        Exited second = runToExit(List.of(
                "--name", "default",
                "--data-dir", tempDir("port-in-use").resolve("data").toString(),
                "--listen-client-urls", first.endpoint(),
                "--advertise-client-urls", first.endpoint(),
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "default=" + peer));
        assertNotEquals(0, second.exitCode(), "a second server started on the used port " + first.endpoint()
                + ": " + second);

        // The port's owner is undisturbed: its data, answered on its port.
        assertValue(first, "owner", "first");
        assertTrue(first.process().isAlive(), "the first server died\n" + first.logTail());
    }

    private void report(String signal, long signalledNanos, Process process) {
        System.out.printf("ProcessLifecycleIT: %s exited %d ms after %s, exit code %d%n", kind,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalledNanos), signal, process.exitValue());
    }

    /** /health already answered on the configured port (start() waits for it); now the rest. */
    private void assertMemberConfigured(MemberProcess member) throws Exception {
        Etcdctl.Result list = Etcdctl.run(member.endpoint(), "member", "list");
        assertTrue(list.ok(), "member list: " + list);
        // e.g. "8e9e05c52164694d, started, envname, http://127.0.0.1:PEER, http://127.0.0.1:CLIENT, false"
        assertTrue(list.stdout().lines().anyMatch(line -> line.contains(", started, " + member.name() + ", ")
                        && line.contains(member.endpoint())),
                "member list doesn't show member " + member.name() + " at " + member.endpoint() + ": " + list);
        assertTrue(Files.isDirectory(member.dataDir().resolve("member")),
                "nothing stored in the configured data dir " + member.dataDir() + "\n" + member.logTail());
        put(member, "configured", "yes");
        assertValue(member, "configured", "yes");
    }

    private MemberProcess start(String logName, MemberProcess.Options options) throws Exception {
        MemberProcess member = MemberProcess.start(kind, logName + "-" + kind.name().toLowerCase(), options);
        members.add(member);
        return member;
    }

    private static void put(MemberProcess member, String key, String value) throws Exception {
        Etcdctl.Result put = Etcdctl.run(member.endpoint(), "put", key, value);
        assertTrue(put.ok(), "put " + key + ": " + put + "\n" + member.logTail());
    }

    private static void assertValue(MemberProcess member, String key, String expected) throws Exception {
        Etcdctl.Result get = Etcdctl.run(member.endpoint(), "get", key, "--print-value-only");
        assertTrue(get.ok(), "get " + key + ": " + get + "\n" + member.logTail());
        assertEquals(expected + "\n", get.stdout(), "get " + key + "\n" + member.logTail());
    }

    /** Runs the candidate server with {@code args} and no ETCD_* variables, and waits for it to exit. */
    private Exited runToExit(List<String> args) throws IOException, InterruptedException {
        List<String> command = MemberProcess.serverCommand(kind);
        command.addAll(args);
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCD_"));
        Path dir = tempDir("run");
        Path out = dir.resolve("stdout");
        Path err = dir.resolve("stderr");
        Process process = builder.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        process.getOutputStream().close();
        if (!process.waitFor(EXIT_DEADLINE_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            fail(String.join(" ", command) + "\nstill running after " + EXIT_DEADLINE_SECONDS + " s\n--- stdout ---\n"
                    + Files.readString(out, StandardCharsets.UTF_8) + "--- stderr ---\n"
                    + Files.readString(err, StandardCharsets.UTF_8));
        }
        return new Exited(process.exitValue(),
                Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }

    private Path tempDir(String what) throws IOException {
        Path dir = Files.createTempDirectory("vetcd-it-lifecycle-" + what + "-");
        tempDirs.add(dir);
        return dir;
    }

    private static void deleteTree(Path root) throws IOException {
        if (Files.exists(root)) {
            try (Stream<Path> paths = Files.walk(root)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
