package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * One single-member server process — real etcd or vetcd, launched with the same etcd flags — on
 * free loopback ports with its own temporary data dir. Ports and data dir survive {@link #kill9()}
 * / {@link #stop()} so {@link #restart()} brings back the same member. Output goes to
 * {@code target/it-logs/<logName>.log}.
 */
final class MemberProcess implements AutoCloseable {

    enum Kind { ETCD, VETCD }

    /** How the member's name, data dir and URLs reach the server. */
    enum FlagSource {
        /** Command-line flags ({@code --name ...}). */
        ARGS,
        /** {@code ETCD_*} environment variables ({@code ETCD_NAME=...}), no such flags at all. */
        ENV,
        /** A YAML file named by {@code --config-file}, keys spelled as the flags. */
        CONFIG_FILE
    }

    /**
     * What to launch beyond the defaults: the member's name, where its flags come from, and extra
     * command-line arguments (e.g. {@code --quota-backend-bytes}); extra arguments always go on the
     * command line, whatever the flag source. vetcd only: JVM arguments (a failpoint), and a data dir
     * of the test's choosing (null: one in the member's temp dir), e.g. on a small file system.
     */
    record Options(String name, FlagSource flagSource, List<String> extraArgs, List<String> jvmArgs, Path dataDir) {
        static Options defaults() {
            return new Options("default", FlagSource.ARGS, List.of(), List.of(), null);
        }

        Options withName(String newName) {
            return new Options(newName, flagSource, extraArgs, jvmArgs, dataDir);
        }

        Options withFlagSource(FlagSource source) {
            return new Options(name, source, extraArgs, jvmArgs, dataDir);
        }

        Options withExtraArgs(String... args) {
            return new Options(name, flagSource, List.of(args), jvmArgs, dataDir);
        }

        Options withJvmArgs(String... args) {
            return new Options(name, flagSource, extraArgs, List.of(args), dataDir);
        }

        Options withDataDir(Path dir) {
            return new Options(name, flagSource, extraArgs, jvmArgs, dir);
        }
    }

    static final Path LOG_DIR = Path.of(System.getProperty("it.logs.dir", "target/it-logs"));
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
    private static final long POLL_INTERVAL_MS = 50;
    private static final String HOST = "127.0.0.1";

    private final Kind kind;
    private final String name;
    private Options options;
    private final Path rootDir;
    private final Path logFile;
    private final int clientPort;
    private final int peerPort;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(1)).build();
    private Process process;
    /** Safety net for when the test JVM is stopped before @AfterAll/@AfterEach runs (e.g. fork timeout). */
    private final Thread killOnJvmExit = new Thread(() -> {
        try {
            close();
        } catch (Exception e) {
            // best effort: the JVM is going away
        }
    });

    /**
     * The implementation under test: vetcd, unless {@code -Dit.candidate=etcd}, which makes every
     * IT run against real etcd instead — that is how the tests themselves are validated.
     */
    static Kind candidateKind() {
        String value = System.getProperty("it.candidate", "vetcd");
        return switch (value) {
            case "vetcd" -> Kind.VETCD;
            case "etcd" -> Kind.ETCD;
            default -> throw new IllegalArgumentException("it.candidate must be vetcd or etcd, not " + value);
        };
    }

    /** Starts a fresh member and waits until /health reports true; fails with the log tail if it doesn't. */
    static MemberProcess start(Kind kind, String logName) throws IOException, InterruptedException {
        return start(kind, logName, Options.defaults());
    }

    /** As {@link #start(Kind, String)}, launched as {@code options} say. */
    static MemberProcess start(Kind kind, String logName, Options options) throws IOException, InterruptedException {
        MemberProcess member = new MemberProcess(kind, logName, options);
        try {
            member.launchAndAwaitReady();
        } catch (Throwable t) {
            member.close(); // never leak a half-started process or its temp dir
            throw t;
        }
        return member;
    }

    private MemberProcess(Kind kind, String logName, Options options) throws IOException {
        this.kind = kind;
        this.options = options;
        this.name = options.name();
        int[] ports = freePorts(2);
        this.clientPort = ports[0];
        this.peerPort = ports[1];
        this.rootDir = Files.createTempDirectory("vetcd-it-" + logName + "-");
        Files.createDirectories(LOG_DIR);
        this.logFile = LOG_DIR.resolve(logName + ".log");
        Files.deleteIfExists(logFile);
        Runtime.getRuntime().addShutdownHook(killOnJvmExit);
    }

    Kind kind() {
        return kind;
    }

    String endpoint() {
        return "http://" + HOST + ":" + clientPort;
    }

    String name() {
        return name;
    }

    /** The member's data dir (the server's --data-dir). */
    Path dataDir() {
        return options.dataDir() != null ? options.dataDir() : rootDir.resolve("data");
    }

    /** The running server process, for tests that signal it themselves. */
    Process process() {
        return process;
    }

    /** SIGKILL: no shutdown hooks, no flushing — simulates a crash. */
    void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    /** SIGTERM, then waits for a graceful exit (forcibly after 15 s so a hung shutdown can't hang the build). */
    void stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(15, TimeUnit.SECONDS)) {
            kill9();
        }
    }

    /** Starts again on the same data dir and ports, after {@link #kill9()} or {@link #stop()}. */
    void restart() throws IOException, InterruptedException {
        restart(options);
    }

    /** As {@link #restart()}, launched as {@code newOptions} say (e.g. without a failpoint). */
    void restart(Options newOptions) throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException(kind + " is still running");
        }
        options = newOptions;
        launchAndAwaitReady();
    }

    /**
     * Starts again without waiting for it to become ready: for a member expected to fail at start.
     * Returns the process.
     */
    Process launch(Options newOptions) throws IOException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException(kind + " is still running");
        }
        options = newOptions;
        launchProcess();
        return process;
    }

    /** The options the member was last launched with. */
    Options options() {
        return options;
    }

    /** Whether the member's log holds {@code text} (all of it, not only the tail). */
    boolean logContains(String text) {
        try {
            return new String(Files.readAllBytes(logFile), StandardCharsets.UTF_8).contains(text);
        } catch (IOException e) {
            return false;
        }
    }

    /** The last lines of this member's log, for failure messages. */
    String logTail() {
        try {
            // Decoding leniently: a stray non-UTF-8 byte must not hide the log.
            List<String> lines = new String(Files.readAllBytes(logFile), StandardCharsets.UTF_8).lines().toList();
            return "--- last lines of " + logFile.toAbsolutePath() + " ---\n"
                    + String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
        } catch (IOException e) {
            return "(no log at " + logFile.toAbsolutePath() + ": " + e + ")";
        }
    }

    /**
     * A test's teardown: its Vert.x instance first (its clients' connections to the members), then the
     * members. Nulls are skipped, for a test that failed before making them.
     */
    static void closeAll(Vertx vertx, MemberProcess... members) throws Exception {
        if (vertx != null) {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
        for (MemberProcess member : members) {
            if (member != null) {
                member.close();
            }
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            Runtime.getRuntime().removeShutdownHook(killOnJvmExit);
        } catch (IllegalStateException jvmAlreadyExiting) {
            // the hook is running or will run; nothing to undo
        }
        if (process != null && process.isAlive()) {
            kill9();
        }
        if (Files.exists(rootDir)) {
            try (Stream<Path> paths = Files.walk(rootDir)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private void launchAndAwaitReady() throws IOException, InterruptedException {
        launchProcess();
        awaitReady();
    }

    private void launchProcess() throws IOException {
        List<String> command = command();
        Map<String, String> env = new LinkedHashMap<>();
        if (options.flagSource() == FlagSource.ENV) {
            memberFlags().forEach((flag, value) ->
                    env.put("ETCD_" + flag.toUpperCase(Locale.ROOT).replace('-', '_'), value));
        } else if (options.flagSource() == FlagSource.CONFIG_FILE) {
            StringBuilder yaml = new StringBuilder();
            memberFlags().forEach((flag, value) -> yaml.append(flag).append(": ").append(value).append('\n'));
            Files.writeString(configFile(), yaml.toString(), StandardCharsets.UTF_8);
        }
        // Restarts append, so one file tells the member's whole story.
        Files.writeString(logFile, "=== starting: " + (env.isEmpty() ? "" : env + " ") + String.join(" ", command)
                + "\n", StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        // etcd reads ETCD_* variables as flags and complains when they shadow command-line ones.
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCD_"));
        builder.environment().putAll(env);
        process = builder.start();
        process.getOutputStream().close();
    }

    private List<String> command() {
        List<String> command = serverCommand(kind);
        if (kind == Kind.VETCD) {
            command.addAll(command.indexOf("-jar"), options.jvmArgs());
        }
        switch (options.flagSource()) {
            case ARGS -> memberFlags().forEach((flag, value) -> command.addAll(List.of("--" + flag, value)));
            case CONFIG_FILE -> command.addAll(List.of("--config-file", configFile().toString()));
            case ENV -> { } // set in the environment by launchAndAwaitReady
        }
        command.addAll(options.extraArgs());
        return command;
    }

    private Path configFile() {
        return rootDir.resolve("member.yml");
    }

    /** This member's name, data dir and URLs, as etcd flag name → value, in the order they are passed. */
    private Map<String, String> memberFlags() {
        String peerUrl = "http://" + HOST + ":" + peerPort;
        Map<String, String> flags = new LinkedHashMap<>();
        flags.put("name", name);
        flags.put("data-dir", dataDir().toString());
        flags.put("listen-client-urls", endpoint());
        flags.put("advertise-client-urls", endpoint());
        flags.put("listen-peer-urls", peerUrl);
        flags.put("initial-advertise-peer-urls", peerUrl);
        flags.put("initial-cluster", name + "=" + peerUrl);
        return flags;
    }

    /** The command that runs the server of this kind, before any flags: {@code etcd} or {@code java ... -jar vetcd.jar}. */
    static List<String> serverCommand(Kind kind) {
        List<String> command = new ArrayList<>();
        if (kind == Kind.ETCD) {
            command.add(System.getProperty("etcd.bin", "etcd"));
        } else {
            String jar = System.getProperty("vetcd.jar");
            if (jar == null || !Files.isRegularFile(Path.of(jar))) {
                fail("system property vetcd.jar must name the server jar (failsafe sets it after package), got: " + jar);
            }
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            // The openings Chronicle and lmdbjava need, then what bin/vetcd chooses on a machine of two CPUs
            // (C1 only, the serial collector): start-up costs a third less than with the JVM's defaults.
            Arrays.stream((System.getProperty("vetcd.jvm.flags", "") + " "
                    + System.getProperty("vetcd.member.jvm.flags", "")).trim().split("\\s+"))
                    .filter(flag -> !flag.isEmpty())
                    .forEach(command::add);
            command.add("-jar");
            command.add(jar);
        }
        return command;
    }

    private void awaitReady() throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (true) {
            if (!process.isAlive()) {
                fail(kind + " exited with code " + process.exitValue() + " before becoming ready\n" + logTail());
            }
            if (healthy()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                fail(kind + " not healthy at " + endpoint() + "/health within " + READY_TIMEOUT + "\n" + logTail());
            }
            Thread.sleep(POLL_INTERVAL_MS);
        }
    }

    private boolean healthy() throws InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(URI.create(endpoint() + "/health"))
                .timeout(Duration.ofSeconds(1))
                .GET()
                .build();
        try {
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            return response.statusCode() == 200 && response.body().contains("true");
        } catch (IOException notYetListening) {
            return false;
        }
    }

    /** Holds all sockets open while picking so the ports are distinct. */
    static int[] freePorts(int count) throws IOException {
        ServerSocket[] sockets = new ServerSocket[count];
        int[] ports = new int[count];
        try {
            for (int i = 0; i < count; i++) {
                sockets[i] = new ServerSocket(0, 1, InetAddress.getByName(HOST));
                ports[i] = sockets[i].getLocalPort();
            }
        } finally {
            for (ServerSocket socket : sockets) {
                if (socket != null) {
                    socket.close();
                }
            }
        }
        return ports;
    }
}
