package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.Vertx;
import io.vertx.core.http.ClientWebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Headless Chromium driven over the Chrome DevTools Protocol, with nothing but Vert.x's WebSocket
 * client: {@link #launch} starts {@code chromium} on a fresh profile with a DevTools port of its own
 * choosing, {@link #newPage()} opens a tab to navigate and evaluate JavaScript in. Chromium's
 * stderr goes to {@code target/it-logs/<logName>.log}; what pages log to their console, and their
 * uncaught exceptions, are kept for failure messages ({@link Page#consoleLog()}).
 */
final class Chromium implements AutoCloseable {

    private static final Duration LAUNCH_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(15);
    private static final String DEVTOOLS_LINE = "DevTools listening on ";

    private final Process process;
    private final Path profileDir;
    private final Path logFile;
    private final Vertx vertx = Vertx.vertx();
    private final AtomicLong nextId = new AtomicLong(1);
    private final Map<Long, CompletableFuture<JsonObject>> inFlight = new ConcurrentHashMap<>();
    private final Map<String, Page> pages = new ConcurrentHashMap<>();
    private ClientWebSocket browser;
    private volatile String closedBecause;
    /** Safety net for when the test JVM is stopped before @AfterAll runs. */
    private final Thread killOnJvmExit = new Thread(this::killAndForget);

    /**
     * Starts {@code chromium} ({@code -Dchromium.bin}, default {@code /usr/bin/chromium}) and connects
     * to its browser target. Fails — never skips — when Chromium isn't installed.
     */
    static Chromium launch(String logName) throws IOException, InterruptedException {
        Path binary = Path.of(System.getProperty("chromium.bin", "/usr/bin/chromium"));
        if (!Files.isExecutable(binary)) {
            fail("Chromium is needed for this test but " + binary + " is missing or not executable;"
                    + " install it (Debian: apt-get install -y chromium) or name another with -Dchromium.bin=...");
        }
        Path profile = Files.createTempDirectory("vetcd-it-chromium-");
        Files.createDirectories(MemberProcess.LOG_DIR);
        Path log = MemberProcess.LOG_DIR.resolve(logName + ".log");
        List<String> command = List.of(binary.toString(),
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile, "--remote-debugging-port=0", "about:blank");
        Process process;
        try {
            process = new ProcessBuilder(command)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
        } catch (IOException e) {
            deleteTree(profile);
            throw e;
        }
        process.getOutputStream().close();
        Chromium chromium = new Chromium(process, profile, log);
        try {
            chromium.connect(chromium.awaitDevToolsUrl(command));
        } catch (Throwable t) {
            chromium.close(); // never leak the browser or its profile
            throw t;
        }
        return chromium;
    }

    private Chromium(Process process, Path profileDir, Path logFile) {
        this.process = process;
        this.profileDir = profileDir;
        this.logFile = logFile;
        Runtime.getRuntime().addShutdownHook(killOnJvmExit);
    }

    /** Copies stderr to the log on a thread of its own, and hands over the DevTools URL once printed. */
    private String awaitDevToolsUrl(List<String> command) throws IOException, InterruptedException {
        CompletableFuture<String> url = new CompletableFuture<>();
        Writer log = Files.newBufferedWriter(logFile, StandardCharsets.UTF_8);
        log.write("=== starting: " + String.join(" ", command) + "\n");
        log.flush();
        Thread pump = new Thread(() -> {
            try (log; BufferedReader err = new BufferedReader(
                    new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = err.readLine()) != null; ) {
                    log.write(line);
                    log.write('\n');
                    log.flush();
                    int at = line.indexOf(DEVTOOLS_LINE);
                    if (at >= 0) {
                        url.complete(line.substring(at + DEVTOOLS_LINE.length()).trim());
                    }
                }
            } catch (IOException e) {
                // the process is gone; the exit check below reports it
            } finally {
                url.complete(null);
            }
        }, "chromium-stderr");
        pump.setDaemon(true);
        pump.start();
        long deadline = System.nanoTime() + LAUNCH_TIMEOUT.toNanos();
        while (true) {
            try {
                String found = url.get(50, TimeUnit.MILLISECONDS);
                if (found == null) {
                    process.waitFor(5, TimeUnit.SECONDS);
                    fail("Chromium exited (" + exitDescription() + ") without printing its DevTools URL\n" + logTail());
                }
                if (!found.startsWith("ws://127.0.0.1:")) {
                    fail("Chromium's DevTools URL is not on 127.0.0.1: " + found + "\n" + logTail());
                }
                return found;
            } catch (TimeoutException notYet) {
                if (System.nanoTime() > deadline) {
                    fail("Chromium printed no '" + DEVTOOLS_LINE + "...' line within " + LAUNCH_TIMEOUT + "\n" + logTail());
                }
            } catch (ExecutionException impossible) {
                throw new IllegalStateException(impossible);
            }
        }
    }

    private String exitDescription() {
        return process.isAlive() ? "still running" : "exit code " + process.exitValue();
    }

    private void connect(String devToolsUrl) throws InterruptedException {
        // DevTools messages (a page's whole DOM, say) can be far bigger than Vert.x's defaults.
        WebSocketClient client = vertx.createWebSocketClient(new WebSocketClientOptions()
                .setMaxFrameSize(16 * 1024 * 1024)
                .setMaxMessageSize(64 * 1024 * 1024));
        ClientWebSocket ws = client.webSocket();
        ws.textMessageHandler(this::onMessage);
        ws.closeHandler(v -> failAll("the DevTools connection closed"));
        ws.exceptionHandler(e -> failAll("the DevTools connection failed: " + e));
        // Chromium refuses DevTools connections that carry an Origin header (unless allow-listed).
        await(ws.connect(new WebSocketConnectOptions().setAbsoluteURI(devToolsUrl).setAllowOriginHeader(false))
                .toCompletionStage().toCompletableFuture(), "connecting to " + devToolsUrl);
        browser = ws;
    }

    private void onMessage(String text) {
        JsonObject message = new JsonObject(text);
        Long id = message.getLong("id");
        if (id != null) {
            CompletableFuture<JsonObject> reply = inFlight.remove(id);
            if (reply != null) {
                reply.complete(message);
            }
            return;
        }
        String sessionId = message.getString("sessionId");
        Page page = sessionId == null ? null : pages.get(sessionId);
        if (page != null) {
            page.onEvent(message.getString("method"), message.getJsonObject("params", new JsonObject()));
        }
    }

    private void failAll(String reason) {
        closedBecause = reason;
        inFlight.values().forEach(f -> f.completeExceptionally(new IllegalStateException(reason)));
        inFlight.clear();
    }

    /**
     * Sends one DevTools command (to the browser when {@code sessionId} is null, else to that
     * session's target) and returns its {@code result}; a protocol error becomes a {@link CdpException}.
     */
    JsonObject send(String sessionId, String method, JsonObject params) throws InterruptedException {
        long id = nextId.getAndIncrement();
        JsonObject message = new JsonObject().put("id", id).put("method", method).put("params", params);
        if (sessionId != null) {
            message.put("sessionId", sessionId);
        }
        CompletableFuture<JsonObject> reply = new CompletableFuture<>();
        inFlight.put(id, reply);
        if (closedBecause != null) {
            failAll(closedBecause);
        }
        browser.writeTextMessage(message.encode());
        JsonObject response = await(reply, method);
        JsonObject error = response.getJsonObject("error");
        if (error != null) {
            throw new CdpException(method + " failed: " + error.encode());
        }
        return response.getJsonObject("result", new JsonObject());
    }

    private <T> T await(CompletableFuture<T> future, String what) throws InterruptedException {
        try {
            return future.get(COMMAND_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            future.cancel(false);
            fail("no answer from Chromium to " + what + " within " + COMMAND_TIMEOUT
                    + " (Chromium " + exitDescription() + ")\n" + logTail());
        } catch (ExecutionException e) {
            fail("DevTools: " + what + ": " + e.getCause().getMessage()
                    + " (Chromium " + exitDescription() + ")\n" + logTail(), e.getCause());
        }
        throw new AssertionError("unreachable");
    }

    /** A new tab on about:blank, attached with a flat session, with Runtime events enabled. */
    Page newPage() throws InterruptedException {
        String targetId = send(null, "Target.createTarget", new JsonObject().put("url", "about:blank"))
                .getString("targetId");
        String sessionId = send(null, "Target.attachToTarget",
                new JsonObject().put("targetId", targetId).put("flatten", true)).getString("sessionId");
        Page page = new Page(targetId, sessionId);
        pages.put(sessionId, page);
        send(sessionId, "Page.enable", new JsonObject());
        send(sessionId, "Runtime.enable", new JsonObject());
        return page;
    }

    /** The last lines of Chromium's stderr, for failure messages. */
    String logTail() {
        try {
            List<String> lines = new String(Files.readAllBytes(logFile), StandardCharsets.UTF_8).lines()
                    .filter(line -> !line.contains("dbus")) // no system bus in containers: noise
                    .toList();
            return "--- last lines of " + logFile.toAbsolutePath() + " (dbus lines left out) ---\n"
                    + String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
        } catch (IOException e) {
            return "(no log at " + logFile.toAbsolutePath() + ": " + e + ")";
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            Runtime.getRuntime().removeShutdownHook(killOnJvmExit);
        } catch (IllegalStateException jvmAlreadyExiting) {
            // the hook is running or will run; nothing to undo
        }
        // Listed now: once Chromium is gone its children are re-parented and no longer its descendants.
        List<ProcessHandle> family = new ArrayList<>(process.descendants().toList());
        if (browser != null && closedBecause == null && process.isAlive()) {
            // Asked to quit, Chromium ends its own helper processes; no answer awaited, the socket just closes.
            browser.writeTextMessage(new JsonObject().put("id", nextId.getAndIncrement())
                    .put("method", "Browser.close").put("params", new JsonObject()).encode());
            process.waitFor(5, TimeUnit.SECONDS);
        }
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            // nothing of it outlives this JVM anyway
        }
        family.forEach(ProcessHandle::destroyForcibly);
        killProcesses();
        deleteTree(profileDir);
    }

    private void killAndForget() {
        killProcesses();
        try {
            deleteTree(profileDir);
        } catch (IOException | InterruptedException e) {
            // best effort: the JVM is going away
        }
    }

    /** SIGKILL to Chromium and every process it started (zygotes, renderers, GPU and network services). */
    private void killProcesses() {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        try {
            process.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Deletes the profile; retried, since a helper process killed a moment ago may still have been writing. */
    private static void deleteTree(Path root) throws IOException, InterruptedException {
        for (int attempt = 1; Files.exists(root); attempt++) {
            try (Stream<Path> paths = Files.walk(root)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            } catch (IOException | UncheckedIOException e) {
                if (attempt == 5) {
                    throw e instanceof UncheckedIOException u ? u.getCause() : (IOException) e;
                }
                Thread.sleep(100L * attempt);
            }
        }
    }

    /** An error answer from DevTools, e.g. evaluating in a page that is navigating away. */
    static final class CdpException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CdpException(String message) {
            super(message);
        }
    }

    /** One tab. */
    final class Page {
        private final String targetId;
        private final String sessionId;
        private final List<String> console = new CopyOnWriteArrayList<>();

        private Page(String targetId, String sessionId) {
            this.targetId = targetId;
            this.sessionId = sessionId;
        }

        /** Starts loading {@code url}; fails if Chromium can't (DNS, refused connection...). */
        void navigate(String url) throws InterruptedException {
            JsonObject result = send(sessionId, "Page.navigate", new JsonObject().put("url", url));
            String error = result.getString("errorText");
            if (error != null && !error.isEmpty()) {
                fail("Chromium could not load " + url + ": " + error);
            }
        }

        /**
         * The value of a JavaScript expression in the page, as JSON turns it into Java (String, Number,
         * Boolean, JsonObject, JsonArray, null). An exception thrown by the expression, or an
         * evaluation the page can't run (it is between documents), is a {@link CdpException}.
         */
        Object evaluate(String expression) throws InterruptedException {
            JsonObject result = send(sessionId, "Runtime.evaluate", new JsonObject()
                    .put("expression", expression)
                    .put("returnByValue", true));
            JsonObject exception = result.getJsonObject("exceptionDetails");
            if (exception != null) {
                JsonObject thrown = exception.getJsonObject("exception", new JsonObject());
                throw new CdpException("`" + expression + "` threw: "
                        + thrown.getString("description", exception.getString("text")));
            }
            return result.getJsonObject("result", new JsonObject()).getValue("value");
        }

        /** Closes the tab. */
        void close() throws InterruptedException {
            pages.remove(sessionId);
            send(null, "Target.closeTarget", new JsonObject().put("targetId", targetId));
        }

        /** What the page wrote to its console and the exceptions it didn't catch, oldest first. */
        List<String> consoleLog() {
            return List.copyOf(console);
        }

        private void onEvent(String method, JsonObject params) {
            if ("Runtime.consoleAPICalled".equals(method)) {
                StringBuilder line = new StringBuilder("console." + params.getString("type") + ":");
                params.getJsonArray("args", new JsonArray()).forEach(arg -> {
                    JsonObject a = (JsonObject) arg;
                    line.append(' ').append(a.containsKey("value") ? a.getValue("value") : a.getString("description"));
                });
                console.add(line.toString());
            } else if ("Runtime.exceptionThrown".equals(method)) {
                JsonObject details = params.getJsonObject("exceptionDetails", new JsonObject());
                JsonObject thrown = details.getJsonObject("exception", new JsonObject());
                console.add("uncaught: " + thrown.getString("description", details.getString("text")));
            }
        }
    }
}
