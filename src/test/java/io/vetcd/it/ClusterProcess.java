package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * A 3-member cluster of real processes — etcd or vetcd, launched with the same flags — on free
 * loopback ports, with etcd's Procfile scheme of flags (members {@code infra1..3}, one token, a
 * static {@code --initial-cluster}, {@code --initial-cluster-state new}) plus
 * {@code --heartbeat-interval 100 --election-timeout 1000}.
 *
 * <p>Members are numbered 1..3 as their names are ({@code infra1} is member 1). Ports and data dirs
 * survive {@link #kill9(int)} and {@link #stop(int)}, so {@link #restart(int...)} brings a member
 * back with the very same command line: it rejoins from its data dir, the initial-cluster flags
 * being ignored then, as etcd does. Each member logs to
 * {@code target/it-logs/cluster-<test>-infraN.log}; restarts append to the same file.
 */
final class ClusterProcess implements AutoCloseable {

    static final int SIZE = 3;
    /**
     * Member numbers go up to this: member 4 is not started with the others but joins later
     * ({@link #launchExisting}), as {@code Procfile.learner}'s infra4 does.
     */
    static final int SLOTS = SIZE + 1;
    static final int HEARTBEAT_MS = 100;
    static final int ELECTION_TIMEOUT_MS = 1000;

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration LEADER_TIMEOUT = Duration.ofSeconds(15);
    private static final long POLL_INTERVAL_MS = 50;
    private static final String HOST = "127.0.0.1";
    private static final Pattern MEMBER_ID = Pattern.compile("\"member_id\":(\\d+)");
    private static final Pattern LEADER = Pattern.compile("\"leader\":(\\d+)");
    private static final Pattern KV_OBJECT = Pattern.compile("\\{(\"key\":[^{}]*)\\}");
    private static final Pattern KV_FIELD = Pattern.compile("\"(\\w+)\":(?:\"([^\"]*)\"|(\\d+))");
    private static final Pattern HEADER_REVISION = Pattern.compile("\"header\":\\{[^}]*\"revision\":(\\d+)");

    private final MemberProcess.Kind kind;
    private final String testName;
    private final String token;
    private final List<String> extraArgs;
    /** Where each member keeps its data (null: under the cluster's temp dir). */
    private final java.util.function.IntFunction<Path> dataDirs;
    private final Path rootDir;
    /** The founding members: 1..size; member size + 1 is the slot for one that joins later. */
    private final int size;
    private final int slots;
    private final int[] clientPorts;
    private final int[] peerPorts;
    /** Where each member listens for peers: its advertised peer port, unless a {@link PeerRelay} is in front. */
    private final int[] listenPeerPorts;
    private final Process[] processes;
    /** Member ids as the members report them in response headers (unsigned decimal, as etcdctl's JSON prints them). */
    private final String[] memberIds;
    /** The highest member number launched so far. */
    private int highest;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(1)).build();
    /** Safety net for when the test JVM is stopped before @AfterEach runs (e.g. fork timeout). */
    private final Thread killOnJvmExit = new Thread(() -> {
        try {
            close();
        } catch (Exception e) {
            // best effort: the JVM is going away
        }
    });

    /**
     * What ClusterIT and LinearizabilityIT start: {@code -Dit.cluster.candidate=etcd} for real etcd
     * (how these tests are validated), {@code vetcd} (the default) or {@code vetcd-cluster} for vetcd.
     * A property of its own, not {@code it.candidate}: the single-member ITs already pass against
     * vetcd, while the cluster ITs wait for replication.
     */
    static MemberProcess.Kind candidateKind() {
        String value = System.getProperty("it.cluster.candidate", "vetcd");
        return switch (value) {
            case "vetcd", "vetcd-cluster" -> MemberProcess.Kind.VETCD;
            case "etcd" -> MemberProcess.Kind.ETCD;
            default -> throw new IllegalArgumentException(
                    "it.cluster.candidate must be etcd, vetcd or vetcd-cluster, not " + value);
        };
    }

    /**
     * Starts the three members at once and waits until each answers /health with {@code true} (which
     * etcd only does once there is a leader); {@code extraArgs} go to every member, e.g.
     * {@code --snapshot-count 50}.
     */
    static ClusterProcess start(MemberProcess.Kind kind, String testName, String... extraArgs)
            throws IOException, InterruptedException {
        return start(kind, testName, null, null, extraArgs);
    }

    /** As {@link #start(MemberProcess.Kind, String, String...)}, member N's data dir at {@code dataDirs(N)}. */
    static ClusterProcess start(MemberProcess.Kind kind, String testName, java.util.function.IntFunction<Path> dataDirs,
            String... extraArgs) throws IOException, InterruptedException {
        return start(kind, testName, null, dataDirs, extraArgs);
    }

    /**
     * As above, with each member's peer traffic through {@code relay} (null: none): members advertise
     * the relay's URLs and listen behind it, and the relay tells diallers apart by these processes.
     */
    static ClusterProcess start(MemberProcess.Kind kind, String testName, PeerRelay relay, String... extraArgs)
            throws IOException, InterruptedException {
        return start(kind, testName, relay, null, extraArgs);
    }

    /** Something to do once the ports and data dirs are chosen, before any member starts. */
    interface Preparation {
        void prepare(ClusterProcess cluster) throws IOException, InterruptedException;
    }

    /**
     * As {@link #start(MemberProcess.Kind, String, String...)}, running {@code prepare} first (e.g. a
     * snapshot restore into each member's data dir, which needs the cluster's peer URLs).
     */
    static ClusterProcess startPrepared(MemberProcess.Kind kind, String testName, Preparation prepare,
            String... extraArgs) throws IOException, InterruptedException {
        return start(kind, testName, null, null, prepare, extraArgs);
    }

    private static ClusterProcess start(MemberProcess.Kind kind, String testName, PeerRelay relay,
            java.util.function.IntFunction<Path> dataDirs, String... extraArgs) throws IOException, InterruptedException {
        return start(kind, testName, relay, dataDirs, c -> { }, extraArgs);
    }

    private static ClusterProcess start(MemberProcess.Kind kind, String testName, PeerRelay relay,
            java.util.function.IntFunction<Path> dataDirs, Preparation prepare, String... extraArgs)
            throws IOException, InterruptedException {
        return start(kind, testName, SIZE, relay, dataDirs, prepare, extraArgs);
    }

    /** As {@link #start(MemberProcess.Kind, String, PeerRelay, String...)} with {@code size} founding members. */
    static ClusterProcess start(MemberProcess.Kind kind, String testName, int size, PeerRelay relay,
            String... extraArgs) throws IOException, InterruptedException {
        return start(kind, testName, size, relay, null, c -> { }, extraArgs);
    }

    private static ClusterProcess start(MemberProcess.Kind kind, String testName, int size, PeerRelay relay,
            java.util.function.IntFunction<Path> dataDirs, Preparation prepare, String... extraArgs)
            throws IOException, InterruptedException {
        ClusterProcess cluster = new ClusterProcess(kind, testName, size, relay, List.of(extraArgs), dataDirs);
        try {
            prepare.prepare(cluster);
            for (int i = 1; i <= size; i++) {
                cluster.launch(i);
            }
            long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
            for (int i = 1; i <= size; i++) {
                cluster.awaitHealthy(i, deadline);
            }
            for (int i = 1; i <= size; i++) {
                cluster.memberIds[i] = cluster.ownMemberId(i);
            }
        } catch (Throwable t) {
            cluster.close(); // never leak half-started processes or temp dirs
            throw t;
        }
        return cluster;
    }

    private ClusterProcess(MemberProcess.Kind kind, String testName, int size, PeerRelay relay,
            List<String> extraArgs, java.util.function.IntFunction<Path> dataDirs) throws IOException {
        this.kind = kind;
        this.size = size;
        this.slots = size + 1;
        this.highest = size;
        this.clientPorts = new int[slots + 1];
        this.peerPorts = new int[slots + 1];
        this.listenPeerPorts = new int[slots + 1];
        this.processes = new Process[slots + 1];
        this.memberIds = new String[slots + 1];
        this.dataDirs = dataDirs;
        this.testName = testName;
        this.extraArgs = extraArgs;
        this.token = "it-" + testName + "-" + UUID.randomUUID().toString().substring(0, 8);
        int[] ports = MemberProcess.freePorts(2 * slots);
        clientPorts[slots] = ports[2 * size];
        peerPorts[slots] = ports[2 * size + 1]; // a joining member is not behind the relay
        listenPeerPorts[slots] = peerPorts[slots];
        for (int i = 1; i <= size; i++) {
            clientPorts[i] = ports[2 * (i - 1)];
            peerPorts[i] = relay == null ? ports[2 * (i - 1) + 1] : relay.advertisedPort(i);
            listenPeerPorts[i] = relay == null ? peerPorts[i] : relay.memberPort(i);
        }
        if (relay != null) {
            relay.identifyBy(this::pid);
        }
        this.rootDir = Files.createTempDirectory("vetcd-cluster-" + testName + "-");
        Files.createDirectories(MemberProcess.LOG_DIR);
        for (int i = 1; i <= slots; i++) {
            Files.deleteIfExists(logFile(i));
        }
        Runtime.getRuntime().addShutdownHook(killOnJvmExit);
    }

    MemberProcess.Kind kind() {
        return kind;
    }

    /** How many members the cluster was founded with (1..size). */
    int size() {
        return size;
    }

    String name(int member) {
        return "infra" + checkIndex(member);
    }

    String endpoint(int member) {
        return "http://" + HOST + ":" + clientPorts[checkIndex(member)];
    }

    String peerUrl(int member) {
        return "http://" + HOST + ":" + peerPorts[checkIndex(member)];
    }

    /** The process id of a running member, 0 if it is not running. */
    long pid(int member) {
        Process process = processes[checkIndex(member)];
        return process != null && process.isAlive() ? process.pid() : 0;
    }

    /** All client URLs, comma separated, for {@code etcdctl --endpoints=}. */
    String endpoints() {
        return IntStream.rangeClosed(1, size).mapToObj(this::endpoint).collect(Collectors.joining(","));
    }

    /** The member's id in hex, as {@code etcdctl member list} prints it. */
    String memberIdHex(int member) {
        return Long.toHexString(Long.parseUnsignedLong(memberIds[checkIndex(member)]));
    }

    Path dataDir(int member) {
        return dataDirs != null ? dataDirs.apply(checkIndex(member)) : rootDir.resolve(name(member));
    }

    Path logFile(int member) {
        return MemberProcess.LOG_DIR.resolve("cluster-" + testName + "-" + name(member) + ".log");
    }

    boolean isRunning(int member) {
        Process process = processes[checkIndex(member)];
        return process != null && process.isAlive();
    }

    /** The members that are running now, in order. */
    List<Integer> running() {
        return IntStream.rangeClosed(1, highest).filter(this::isRunning).boxed().toList();
    }

    /** SIGKILL: no shutdown hooks, no flushing — simulates a crash. Returns once the process is gone. */
    void kill9(int member) throws InterruptedException {
        Process process = processes[checkIndex(member)];
        process.destroyForcibly();
        process.waitFor();
    }

    /** SIGTERM, then waits for a graceful exit (forcibly after 15 s so a hung shutdown can't hang the build). */
    void stop(int member) throws InterruptedException {
        Process process = processes[checkIndex(member)];
        process.destroy();
        if (!process.waitFor(15, TimeUnit.SECONDS)) {
            kill9(member);
        }
    }

    /** Starts a stopped member again with extra JVM arguments (vetcd) and waits until it reports /health true. */
    void restartWith(int member, List<String> jvmArgs) throws IOException, InterruptedException {
        launchWith(member, jvmArgs);
        awaitHealthy(member, System.nanoTime() + READY_TIMEOUT.toNanos());
    }

    /**
     * Starts the given stopped members again, all at once, on their data dirs and ports with the
     * same flags, and waits until each reports /health true.
     */
    void restart(int... members) throws IOException, InterruptedException {
        for (int member : members) {
            if (isRunning(member)) {
                throw new IllegalStateException(name(member) + " is still running");
            }
        }
        for (int member : members) {
            launch(member);
        }
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        for (int member : members) {
            awaitHealthy(member, deadline);
        }
    }

    /**
     * The member (1..3) that every running member names as leader in {@code etcdctl endpoint status};
     * waits up to 15 s for the running members to agree on a running leader.
     */
    int leaderIndex() throws IOException, InterruptedException {
        long deadline = System.nanoTime() + LEADER_TIMEOUT.toNanos();
        String lastSeen = "";
        while (true) {
            List<String> leaders = new ArrayList<>();
            for (int member : running()) {
                Etcdctl.Result status = Etcdctl.run(endpoint(member), "endpoint", "status", "-w", "json");
                Matcher leader = LEADER.matcher(status.stdout());
                leaders.add(status.ok() && leader.find() ? leader.group(1) : "?");
            }
            lastSeen = "running members " + running() + " name leaders " + leaders;
            if (!leaders.isEmpty() && leaders.stream().distinct().count() == 1) {
                int leader = indexOfMemberId(leaders.get(0));
                if (leader > 0 && isRunning(leader)) {
                    return leader;
                }
            }
            if (System.nanoTime() > deadline) {
                fail("no agreed leader within " + LEADER_TIMEOUT + ": " + lastSeen + "\n" + logTails());
            }
            Thread.sleep(POLL_INTERVAL_MS);
        }
    }

    /** A running member other than those given (the lowest-numbered one). */
    int anyRunningExcept(int... excluded) {
        for (int member : running()) {
            if (IntStream.of(excluded).noneMatch(e -> e == member)) {
                return member;
            }
        }
        throw new IllegalStateException("no running member outside " + Arrays.toString(excluded));
    }

    /** Whether the member answers /health with 200 and {@code true} right now. */
    boolean healthy(int member) throws InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(URI.create(endpoint(member) + "/health"))
                .timeout(Duration.ofSeconds(2))
                .GET()
                .build();
        try {
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            return response.statusCode() == 200 && response.body().contains("true");
        } catch (IOException notListeningOrTimedOut) {
            return false;
        }
    }

    /** The last lines of one member's log, for failure messages. */
    String logTail(int member) {
        Path file = logFile(member);
        try {
            List<String> lines = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
            return "--- last lines of " + file.toAbsolutePath() + " ---\n"
                    + String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log at " + file.toAbsolutePath() + ": " + e + ")";
        }
    }

    /** The last lines of every member's log. */
    String logTails() {
        return IntStream.rangeClosed(1, highest).mapToObj(this::logTail).collect(Collectors.joining("\n"));
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            Runtime.getRuntime().removeShutdownHook(killOnJvmExit);
        } catch (IllegalStateException jvmAlreadyExiting) {
            // the hook is running or will run; nothing to undo
        }
        for (int i = 1; i <= slots; i++) {
            if (isRunning(i)) {
                kill9(i);
            }
        }
        if (Files.exists(rootDir)) {
            try (Stream<Path> paths = Files.walk(rootDir)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private void launch(int member) throws IOException {
        launchWith(member, List.of());
    }

    /**
     * Starts member {@code member} (a stopped one, or {@code size + 1} for one more) with
     * {@code --initial-cluster-state existing} and {@code initialCluster}, as {@code etcdctl member add}
     * prints it (ETCD_INITIAL_CLUSTER), without waiting for it; its data dir is used as it is.
     */
    Process launchExisting(int member, String initialCluster) throws IOException {
        highest = Math.max(highest, checkIndex(member));
        List<String> command = command(member);
        command.set(command.indexOf("--initial-cluster") + 1, initialCluster);
        command.set(command.indexOf("--initial-cluster-state") + 1, "existing");
        return start(member, command);
    }

    /** Removes a stopped member's data dir, as an operator replacing a disk does. */
    void wipeDataDir(int member) throws IOException {
        if (isRunning(member)) {
            throw new IllegalStateException(name(member) + " is still running");
        }
        Path dir = dataDir(member);
        if (Files.exists(dir)) {
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    /** Waits until a member started with {@link #launchExisting} answers /health, and learns its id. */
    void awaitJoined(int member) throws IOException, InterruptedException {
        awaitHealthy(member, System.nanoTime() + READY_TIMEOUT.toNanos());
        memberIds[member] = ownMemberId(member);
    }

    /** The process of a member (null: never started), e.g. to wait for the exit of a removed one. */
    Process process(int member) {
        return processes[checkIndex(member)];
    }

    /**
     * Starts a stopped member with extra JVM arguments (vetcd: a failpoint), without waiting for it:
     * for a member expected to fail. Returns its process.
     */
    Process launchWith(int member, List<String> jvmArgs) throws IOException {
        if (isRunning(member)) {
            throw new IllegalStateException(name(member) + " is still running");
        }
        List<String> command = command(member);
        if (kind == MemberProcess.Kind.VETCD) {
            command.addAll(command.indexOf("-jar"), jvmArgs);
        }
        return start(member, command);
    }

    private Process start(int member, List<String> command) throws IOException {
        if (isRunning(member)) {
            throw new IllegalStateException(name(member) + " is still running");
        }
        Files.writeString(logFile(member), "=== starting: " + String.join(" ", command) + "\n",
                StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile(member).toFile()));
        // etcd reads ETCD_* variables as flags and complains when they shadow command-line ones.
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCD_"));
        processes[member] = builder.start();
        processes[member].getOutputStream().close();
        return processes[member];
    }

    /** The founding members' {@code --initial-cluster}. */
    String initialCluster() {
        return IntStream.rangeClosed(1, size)
                .mapToObj(i -> name(i) + "=" + peerUrl(i))
                .collect(Collectors.joining(","));
    }

    /** The cluster's {@code --initial-cluster-token}. */
    String token() {
        return token;
    }

    /** etcd's Procfile line for infraN, on this cluster's ports, data dir and token. */
    private List<String> command(int member) {
        String initialCluster = initialCluster();
        List<String> command = MemberProcess.serverCommand(kind);
        command.addAll(List.of(
                "--name", name(member),
                "--listen-client-urls", endpoint(member),
                "--advertise-client-urls", endpoint(member),
                "--listen-peer-urls", "http://" + HOST + ":" + listenPeerPorts[member],
                "--initial-advertise-peer-urls", peerUrl(member),
                "--initial-cluster-token", token,
                "--initial-cluster", initialCluster,
                "--initial-cluster-state", "new",
                "--data-dir", dataDir(member).toString(),
                "--heartbeat-interval", Integer.toString(HEARTBEAT_MS),
                "--election-timeout", Integer.toString(ELECTION_TIMEOUT_MS)));
        command.addAll(extraArgs);
        return command;
    }

    private void awaitHealthy(int member, long deadlineNanos) throws InterruptedException {
        while (true) {
            Process process = processes[member];
            if (!process.isAlive()) {
                fail(name(member) + " (" + kind + ") exited with code " + process.exitValue()
                        + " before becoming healthy\n" + logTails());
            }
            if (healthy(member)) {
                return;
            }
            if (System.nanoTime() > deadlineNanos) {
                fail(name(member) + " (" + kind + ") not healthy at " + endpoint(member) + "/health within "
                        + READY_TIMEOUT + "\n" + logTails());
            }
            Thread.sleep(POLL_INTERVAL_MS);
        }
    }

    /**
     * Restarts stopped members and waits until each reports a leader in its status: for when /health
     * is false on purpose (a raised alarm).
     */
    void restartUntilLed(int... members) throws IOException, InterruptedException {
        for (int member : members) {
            launch(member);
        }
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        for (int member : members) {
            while (true) {
                if (!processes[member].isAlive()) {
                    fail(name(member) + " exited with code " + processes[member].exitValue() + "\n" + logTails());
                }
                Etcdctl.Result status = Etcdctl.run(endpoint(member), "endpoint", "status", "-w", "json");
                Matcher leader = LEADER.matcher(status.stdout());
                if (status.ok() && leader.find() && !leader.group(1).equals("0")) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    fail(name(member) + " reports no leader within " + READY_TIMEOUT + "\n" + logTails());
                }
                Thread.sleep(POLL_INTERVAL_MS);
            }
        }
    }

    private String ownMemberId(int member) throws IOException, InterruptedException {
        Etcdctl.Result status = Etcdctl.run(endpoint(member), "endpoint", "status", "-w", "json");
        Matcher id = MEMBER_ID.matcher(status.stdout());
        if (!status.ok() || !id.find()) {
            fail("no member_id in endpoint status of " + name(member) + ": " + status);
        }
        return id.group(1);
    }

    private int indexOfMemberId(String id) {
        for (int i = 1; i <= slots; i++) {
            if (id.equals(memberIds[i])) {
                return i;
            }
        }
        return 0;
    }

    /** One key-value as {@code etcdctl get -w json} prints it, key and value decoded from base64. */
    record Kv(String key, String value, long createRevision, long modRevision, long version) {
    }

    /** The kvs of a {@code get -w json} answer, in the order printed (by key). */
    static List<Kv> kvs(String json) {
        List<Kv> kvs = new ArrayList<>();
        Matcher object = KV_OBJECT.matcher(json);
        while (object.find()) {
            Map<String, String> fields = new HashMap<>();
            Matcher field = KV_FIELD.matcher(object.group(1));
            while (field.find()) {
                fields.put(field.group(1), field.group(2) != null ? field.group(2) : field.group(3));
            }
            kvs.add(new Kv(base64(fields.get("key")), base64(fields.getOrDefault("value", "")),
                    Long.parseLong(fields.getOrDefault("create_revision", "0")),
                    Long.parseLong(fields.getOrDefault("mod_revision", "0")),
                    Long.parseLong(fields.getOrDefault("version", "0"))));
        }
        return kvs;
    }

    /** The header revision of a {@code -w json} answer: for a put, the revision it created. */
    static long headerRevision(String json) {
        Matcher revision = HEADER_REVISION.matcher(json);
        if (!revision.find()) {
            throw new AssertionError("no header revision in: " + json);
        }
        return Long.parseLong(revision.group(1));
    }

    private static String base64(String encoded) {
        return new String(Base64.getDecoder().decode(encoded), StandardCharsets.UTF_8);
    }

    private int checkIndex(int member) {
        if (member < 1 || member > slots) {
            throw new IllegalArgumentException("members are numbered 1.." + slots + ", not " + member);
        }
        return member;
    }
}
