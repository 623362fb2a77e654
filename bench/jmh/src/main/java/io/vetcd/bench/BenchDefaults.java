package io.vetcd.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The run settings every benchmark here shares, in one place (JMH reads these annotations from the
 * superclass). Short on purpose: the whole suite must finish in a few minutes on a 2-core machine;
 * pass -wi/-i/-f on the command line for a longer, steadier run.
 *
 * <p>The forked JVM gets the same flags as bin/vetcd: Chronicle Queue and lmdbjava reach into the
 * JDK, and without the openings the log or the keyspace fails to open. A command-line -jvmArgsAppend
 * would replace this list, so add other JVM options with -jvmArgsPrepend.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "-Dchronicle.analytics.disable=true",
    // bin/vetcd runs the server on the serial collector; measure what it runs.
    "-XX:+UseSerialGC",
    // Chronicle announces itself at INFO on every queue it opens; keep JMH's output readable.
    "-Dorg.slf4j.simpleLogger.log.net.openhft=warn",
})
public abstract class BenchDefaults {
}
