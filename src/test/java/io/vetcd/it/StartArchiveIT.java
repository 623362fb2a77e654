package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
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
        Path home = BinVetcd.home();
        Path archive = home.resolve("target/vetcd.jsa");
        assertTrue(Files.isRegularFile(archive), "mvn package did not write " + archive);
        assertTrue(Files.getLastModifiedTime(archive).compareTo(Files.getLastModifiedTime(home.resolve("target/vetcd.jar"))) > 0,
                "the archive is older than the jar: bin/vetcd would not use it");

        BinVetcd.Exit exit = BinVetcd.run(Map.of("VETCD_JAVA_OPTS", "-Xshare:on -Xlog:class+load=info:stdout"), List.of(), "--version");
        String output = exit.output();
        assertEquals(0, exit.code(), output);
        assertTrue(output.contains("vetcd Version: "), output);
        String main = output.lines().filter(line -> line.contains(" io.vetcd.Main ")).findFirst()
                .orElseThrow(() -> new AssertionError("io.vetcd.Main not in the class-loading log:\n" + output));
        assertTrue(main.contains("source: shared objects file (top)"), main);
    }
}
