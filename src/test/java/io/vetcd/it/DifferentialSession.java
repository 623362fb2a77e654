package io.vetcd.it;

import io.vetcd.it.EtcdctlDifferentialIT.Step;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;

/**
 * What the etcdctl differential ITs share: a fresh real etcd 3.4.23 and a fresh candidate, started
 * with the same options, and the transcripts of one scripted etcdctl session against each
 * ({@code target/it-logs/etcdctl-<name>-reference-etcd.txt} and
 * {@code etcdctl-<name>-candidate-<kind>.txt}), compared command by command by
 * {@link EtcdctlDifferentialIT#compare}.
 */
final class DifferentialSession implements AutoCloseable {

    private final MemberProcess etcd;
    private final MemberProcess candidate;
    private final Path etcdTranscript;
    private final Path candidateTranscript;

    private DifferentialSession(MemberProcess etcd, MemberProcess candidate, Path etcdTranscript,
            Path candidateTranscript) {
        this.etcd = etcd;
        this.candidate = candidate;
        this.etcdTranscript = etcdTranscript;
        this.candidateTranscript = candidateTranscript;
    }

    /** Starts both servers (the candidate as {@link MemberProcess#candidateKind()} says); logs named after {@code name}. */
    static DifferentialSession start(String name, MemberProcess.Options options) throws Exception {
        MemberProcess.Kind kind = MemberProcess.candidateKind();
        String reference = name + "-reference-etcd";
        String candidateName = name + "-candidate-" + kind.name().toLowerCase();
        MemberProcess etcd = MemberProcess.start(MemberProcess.Kind.ETCD, reference, options);
        MemberProcess candidate;
        try {
            candidate = MemberProcess.start(kind, candidateName, options);
        } catch (Throwable t) {
            etcd.close(); // never leak the reference server of a session that did not start
            throw t;
        }
        return new DifferentialSession(etcd, candidate, freshFile("etcdctl-" + reference + ".txt"),
                freshFile("etcdctl-" + candidateName + ".txt"));
    }

    static DifferentialSession start(String name) throws Exception {
        return start(name, MemberProcess.Options.defaults());
    }

    /** One dynamic test per step of {@code script}, run against both servers in order. */
    Stream<DynamicTest> compare(List<Step> script) {
        return EtcdctlDifferentialIT.compare(etcd, candidate, etcdTranscript, candidateTranscript, script);
    }

    @Override
    public void close() throws Exception {
        try {
            etcd.close();
        } finally {
            candidate.close();
        }
    }

    private static Path freshFile(String name) throws IOException {
        Path file = MemberProcess.LOG_DIR.resolve(name);
        Files.createDirectories(file.getParent());
        Files.writeString(file, "", StandardCharsets.UTF_8);
        return file;
    }
}
