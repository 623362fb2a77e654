package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * {@code bin/vetcd} starts members from the class-data sharing archive {@code mvn package} trained
 * (target/vetcd.jsa): with {@code -Xshare:on} the JVM refuses to start unless the archive maps, and
 * its class-loading log says where the server's own classes came from.
 */
class StartArchiveIT {

    @Test
    void binVetcdLoadsTheServersClassesFromTheArchive() throws Exception {
        Assumptions.assumeFalse(Boolean.getBoolean("vetcd.skipArchive"), "built with -DskipArchive");
        Path home = Path.of("").toAbsolutePath();
        Path archive = home.resolve("target/vetcd.jsa");
        assertTrue(Files.isRegularFile(archive), "mvn package did not write " + archive);
        assertTrue(Files.getLastModifiedTime(archive).compareTo(Files.getLastModifiedTime(home.resolve("target/vetcd.jar"))) > 0,
                "the archive is older than the jar: bin/vetcd would not use it");

        Path log = Files.createTempFile("start-archive", ".log");
        ProcessBuilder builder = new ProcessBuilder(home.resolve("bin/vetcd").toString(), "--version")
                .redirectErrorStream(true)
                .redirectOutput(log.toFile());
        builder.environment().put("VETCD_JAVA_OPTS", "-Xshare:on -Xlog:class+load=info:stdout");
        Process process = builder.start();
        process.getOutputStream().close();
        boolean exited = process.waitFor(30, TimeUnit.SECONDS);
        if (!exited) {
            process.destroyForcibly();
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        Files.delete(log);
        assertTrue(exited, "bin/vetcd --version did not exit within 30 s:\n" + output);
        assertEquals(0, process.exitValue(), output);
        assertTrue(output.contains("vetcd Version: "), output);
        String main = output.lines().filter(line -> line.contains(" io.vetcd.Main ")).findFirst()
                .orElseThrow(() -> new AssertionError("io.vetcd.Main not in the class-loading log:\n" + output));
        assertTrue(main.contains("source: shared objects file (top)"), main);
    }
}
