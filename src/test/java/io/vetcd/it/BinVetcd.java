package io.vetcd.it;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs the checkout's {@code bin/vetcd} to its exit, as a user would, for tests of the launcher itself. */
final class BinVetcd {

    record Exit(int code, String output) {}

    private BinVetcd() {}

    static Path home() {
        return Path.of("").toAbsolutePath();
    }

    /** {@code prefix} goes before bin/vetcd (e.g. {@code taskset -c 0}); stdout and stderr together. */
    static Exit run(Map<String, String> environment, List<String> prefix, String... args) throws Exception {
        List<String> command = new ArrayList<>(prefix);
        command.add(home().resolve("bin/vetcd").toString());
        command.addAll(List.of(args));
        Path log = Files.createTempFile("bin-vetcd", ".log");
        try {
            ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
            // What the test does not set is the launcher's default, whatever the developer exported.
            builder.environment().remove("VETCD_JIT");
            builder.environment().remove("VETCD_JAVA_OPTS");
            builder.environment().putAll(environment);
            Process process = builder.start();
            process.getOutputStream().close();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError(command + " did not exit within 30 s:\n" + Files.readString(log, StandardCharsets.UTF_8));
            }
            return new Exit(process.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.delete(log);
        }
    }
}
