package io.vetcd.compat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Launches the server under test (real etcd or vetcd) as an OS process on loopback with a
 * fresh data directory and free ports, and waits for it to report healthy.
 *
 * <p>System properties:
 * <ul>
 *   <li>{@code target}: {@code vetcd} (default) runs {@code <vetcd.home>/bin/vetcd};
 *       {@code etcd} runs {@code etcd} from the PATH.</li>
 *   <li>{@code vetcd.home}: defaults to {@code ../..} (relative to compat/jetcd).</li>
 * </ul>
 * Both commands get exactly the same etcd flags.
 */
public final class ServerProcess implements AutoCloseable {

    private static final String HOST = "127.0.0.1";
    private static final long START_DEADLINE_MS = 60_000;
    private static final long POLL_MS = 50;
    private static final int START_ATTEMPTS = 3;
    private static final AtomicInteger SEQ = new AtomicInteger();

    private final String label;
    /** --name of the member; "default" for a single member, as etcd's default. */
    private final String name;
    /** Flags beyond the ones every member gets (cluster membership, timing); empty for one member. */
    private List<String> extraFlags = List.of();
    /** --initial-cluster value; null means just this member. */
    private String initialCluster;
    private Process process;
    private Path dataDir;
    private Path logFile;
    private int clientPort;
    private int peerPort;
    private Thread shutdownHook;

    private ServerProcess(String label) {
        this(label, "default");
    }

    ServerProcess(String label, String name) {
        this.label = label;
        this.name = name;
    }

    public static String target() {
        return System.getProperty("target", "vetcd").trim();
    }

    /** Starts a fresh server; fails with the log tail if it does not become healthy. */
    public static ServerProcess start(String label) {
        ServerProcess s = new ServerProcess(label);
        s.installShutdownHook();
        s.startWithRetries();
        return s;
    }

    /** Safety net if the test JVM dies before @AfterAll runs. */
    void installShutdownHook() {
        Thread hook = new Thread(this::kill, "kill-" + label);
        Runtime.getRuntime().addShutdownHook(hook);
        shutdownHook = hook;
    }

    public String name() {
        return name;
    }

    public String clientUrl() {
        return "http://" + HOST + ":" + clientPort;
    }

    public String peerUrl() {
        return "http://" + HOST + ":" + peerPort;
    }

    public int clientPort() {
        return clientPort;
    }

    public int peerPort() {
        return peerPort;
    }

    public Path logFile() {
        return logFile;
    }

    private List<String> command() {
        String t = target();
        String exe;
        switch (t) {
            case "etcd":
                exe = System.getProperty("etcd.bin", "etcd");
                break;
            case "vetcd":
                Path home = Paths.get(System.getProperty("vetcd.home", "../..")).toAbsolutePath().normalize();
                exe = home.resolve("bin").resolve("vetcd").toString();
                break;
            default:
                throw new IllegalArgumentException("unknown -Dtarget=" + t + " (expected etcd or vetcd)");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(exe);
        cmd.add("--name");
        cmd.add(name);
        cmd.add("--data-dir");
        cmd.add(dataDir.toString());
        cmd.add("--listen-client-urls");
        cmd.add(clientUrl());
        cmd.add("--advertise-client-urls");
        cmd.add(clientUrl());
        cmd.add("--listen-peer-urls");
        cmd.add(peerUrl());
        cmd.add("--initial-advertise-peer-urls");
        cmd.add(peerUrl());
        cmd.add("--initial-cluster");
        cmd.add(initialCluster != null ? initialCluster : name + "=" + peerUrl());
        cmd.addAll(extraFlags);
        return cmd;
    }

    private void startWithRetries() {
        AssertionError last = null;
        for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
            try {
                startOnce();
                return;
            } catch (PortClash e) {
                // another process grabbed one of the "free" ports between probe and bind: retry
                last = new AssertionError(e.getMessage());
                kill();
            }
        }
        throw last;
    }

    static final class PortClash extends RuntimeException {
        PortClash(String msg) {
            super(msg);
        }
    }

    private void startOnce() {
        pickPorts(Set.of());
        launch(null, List.of());
        waitHealthy();
    }

    /** Chooses free client and peer ports, avoiding the ones already taken by other members. */
    void pickPorts(Set<Integer> taken) {
        try {
            do {
                clientPort = freePort();
            } while (taken.contains(clientPort));
            do {
                peerPort = freePort();
            } while (peerPort == clientPort || taken.contains(peerPort));
        } catch (IOException e) {
            throw new AssertionError("no free port: " + e, e);
        }
    }

    /**
     * Starts the process without waiting for it (members of a cluster only become healthy once a
     * quorum runs). {@code initialCluster} null means a single-member cluster.
     */
    void launch(String initialCluster, List<String> extraFlags) {
        this.initialCluster = initialCluster;
        this.extraFlags = List.copyOf(extraFlags);
        try {
            dataDir = Files.createTempDirectory("vetcd-compat-data-");
            Path targetDir = Paths.get("target");
            Files.createDirectories(targetDir);
            logFile = targetDir.resolve("server-" + target() + "-" + label + "-" + SEQ.incrementAndGet() + ".log")
                    .toAbsolutePath();
            List<String> cmd = command();
            Files.writeString(logFile, "# " + String.join(" ", cmd) + System.lineSeparator());
            ProcessBuilder pb = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
            process = pb.start();
        } catch (IOException e) {
            kill();
            throw new AssertionError("could not launch " + target() + " server: " + e, e);
        }
    }

    void waitHealthy() {
        long deadline = System.currentTimeMillis() + START_DEADLINE_MS;
        String lastProblem = "no answer yet";
        while (System.currentTimeMillis() < deadline) {
            if (!process.isAlive()) {
                String tail = logTail();
                if (tail.contains("address already in use")) {
                    throw new PortClash("port clash: " + tail);
                }
                String msg = target() + " server exited with code " + process.exitValue()
                        + " before becoming healthy; log " + logFile + " tail:\n" + tail;
                kill();
                throw new AssertionError(msg);
            }
            try {
                HttpURLConnection c = (HttpURLConnection) URI.create(clientUrl() + "/health").toURL().openConnection();
                c.setConnectTimeout(1000);
                c.setReadTimeout(1000);
                int code = c.getResponseCode();
                c.disconnect();
                if (code == 200) {
                    return;
                }
                lastProblem = "HTTP " + code;
            } catch (IOException e) {
                lastProblem = e.toString();
            }
            try {
                Thread.sleep(POLL_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        String msg = target() + " server did not become healthy within " + START_DEADLINE_MS + " ms (last: "
                + lastProblem + "); log " + logFile + " tail:\n" + logTail();
        kill();
        throw new AssertionError(msg);
    }

    /** Last ~60 lines of the server log. */
    public String logTail() {
        if (logFile == null || !Files.exists(logFile)) {
            return "(no log)";
        }
        try {
            List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(could not read log: " + e + ")";
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 0, InetAddress.getByName(HOST))) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    @Override
    public synchronized void close() {
        kill();
        Thread hook = shutdownHook;
        shutdownHook = null;
        if (hook != null && Thread.currentThread() != hook) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // JVM is already shutting down
            }
        }
    }

    /** Kills the process tree and removes the data directory. */
    private synchronized void kill() {
        Process p = process;
        process = null;
        if (p != null) {
            // bin/vetcd may be a wrapper script: kill the whole tree, children first
            List<ProcessHandle> kids = p.descendants().toList();
            kids.forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            try {
                p.waitFor(10, TimeUnit.SECONDS);
                for (ProcessHandle k : kids) {
                    k.onExit().get(10, TimeUnit.SECONDS);
                }
            } catch (Exception ignored) {
                // best effort
            }
        }
        Path d = dataDir;
        dataDir = null;
        if (d != null) {
            try (Stream<Path> walk = Files.walk(d)) {
                walk.sorted(Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
            } catch (IOException ignored) {
                // best effort
            }
        }
    }
}
