package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the real etcdctl (v3 API) against one endpoint and captures what it printed. */
final class Etcdctl {

    /** etcdctl gives up after --command-timeout plus its 2 s dial timeout; this is only a backstop. */
    private static final long DEADLINE_SECONDS = 30;

    record Result(int exitCode, String stdout, String stderr) {
        boolean ok() {
            return exitCode == 0;
        }

        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout ---\n" + stdout + "--- stderr ---\n" + stderr;
        }
    }

    private Etcdctl() {
    }

    static Result run(String endpoint, String... args) throws IOException, InterruptedException {
        return runWithStdin(endpoint, null, args);
    }

    /** {@code stdin} feeds commands that read it, e.g. {@code txn}; null means empty input. */
    static Result runWithStdin(String endpoint, String stdin, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(
                System.getProperty("etcdctl.bin", "etcdctl"), "--endpoints=" + endpoint, "--command-timeout=5s"));
        command.addAll(Arrays.asList(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        // Inherited ETCDCTL_* variables would change behaviour or add "shadowed by flag" warnings to stderr.
        builder.environment().keySet().removeIf(k -> k.startsWith("ETCDCTL_"));
        builder.environment().put("ETCDCTL_API", "3");
        // Files rather than pipes: nothing can block on a full pipe buffer.
        Path out = Files.createTempFile("etcdctl-", ".out");
        Path err = Files.createTempFile("etcdctl-", ".err");
        try {
            Process process = builder.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            try (OutputStream in = process.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (!process.waitFor(DEADLINE_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
                fail("etcdctl " + String.join(" ", args) + " still running after " + DEADLINE_SECONDS + " s");
            }
            return new Result(process.exitValue(),
                    Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
