package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Runs one scripted etcdctl session against a fresh real etcd and a fresh candidate (vetcd) and
 * requires identical exit codes, stdout and stderr, command by command. Both stores start empty and
 * see the same writes in the same order, so revisions must match exactly.
 *
 * <p>Only what legitimately differs is normalized: ports, cluster/member IDs (derived from the peer
 * URL, whose port differs), and the timestamp and client UUID in etcdctl's retry warnings. Both full
 * transcripts are written to {@code target/it-logs/etcdctl-differential-*.txt} for diffing.
 */
class EtcdctlDifferentialIT {

    private static DifferentialSession session;

    @BeforeAll
    static void startServers() throws Exception {
        session = DifferentialSession.start("differential");
    }

    @AfterAll
    static void stopServers() throws Exception {
        if (session != null) {
            session.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> candidatePrintsWhatEtcdPrints() {
        return session.compare(script());
    }

    /**
     * One test per step of {@code script}, run against both servers in order: same exit code, stdout
     * and stderr after {@link Normalizer}. Steps share one store per side, so a failure doesn't stop the
     * rest: every differing command gets reported, not just the first.
     */
    static Stream<DynamicTest> compare(MemberProcess etcd, MemberProcess candidate, Path etcdTranscript,
            Path candidateTranscript, List<Step> script) {
        Normalizer etcdNormalizer = new Normalizer();
        Normalizer candidateNormalizer = new Normalizer();
        return script.stream().map(step -> dynamicTest(step.toString(), () -> {
            String expected = etcdNormalizer.normalize(step.runAgainst(etcd));
            String actual = candidateNormalizer.normalize(step.runAgainst(candidate));
            append(etcdTranscript, step, expected);
            append(candidateTranscript, step, actual);
            assertEquals(expected, actual, () -> "`" + step + "` printed something different from etcd"
                    + " (expected = etcd, actual = " + candidate.kind() + ")\n" + OutputDiff.firstDifference(expected, actual));
        }));
    }

    /**
     * The session. Comments give the revision after each write on a fresh store (which starts at
     * revision 1), so expectations can be read off without running etcd; the recorded etcd output
     * is in the reference transcript.
     */
    private static List<Step> script() {
        List<Step> s = new ArrayList<>();
        // put: plain, overwrite, --prev-kv, json
        s.add(cmd("put", "foo", "bar", "-w", "json"));                  // rev 2
        s.add(cmd("put", "foo", "bar2", "--prev-kv"));                  // rev 3, prints old kv
        s.add(cmd("put", "foo1", "v1"));                                // rev 4
        s.add(cmd("put", "foo2", "v2", "-w", "json"));                  // rev 5
        s.add(cmd("put", "foo3", "v3"));                                // rev 6
        s.add(cmd("put", "zoo", "z"));                                  // rev 7
        s.add(cmd("put", "foo1", "v1b", "--prev-kv", "-w", "json"));    // rev 8
        s.add(cmd("put", "foo", "--ignore-value", "-w", "json"));       // rev 9, value kept

        // get: output formats
        s.add(cmd("get", "foo"));
        s.add(cmd("get", "foo", "--print-value-only"));
        s.add(cmd("get", "foo", "-w", "json"));
        s.add(cmd("get", "foo", "-w", "fields"));
        s.add(cmd("get", "foo", "--hex"));
        s.add(cmd("get", "missing"));
        s.add(cmd("get", "missing", "-w", "json"));
        // get: ranges
        s.add(cmd("get", "foo", "foo3"));
        s.add(cmd("get", "foo", "--prefix"));
        s.add(cmd("get", "foo", "--prefix", "-w", "json"));
        s.add(cmd("get", "foo", "--prefix", "--limit=1"));
        s.add(cmd("get", "foo", "--prefix", "--limit=1", "-w", "json"));   // more=true, count=4
        s.add(cmd("get", "foo1", "--from-key"));
        s.add(cmd("get", "", "--from-key", "--keys-only"));
        s.add(cmd("get", "foo", "--prefix", "--keys-only"));
        s.add(cmd("get", "foo", "--prefix", "--keys-only", "-w", "json"));
        s.add(cmd("get", "foo", "--prefix", "-w", "fields"));
        // get: sorting (versions tie, so tie order is compared too), and limit applied after sorting
        for (String target : List.of("KEY", "VERSION", "CREATE", "MODIFY", "VALUE")) {
            s.add(cmd("get", "foo", "--prefix", "--order=DESCEND", "--sort-by=" + target));
            s.add(cmd("get", "foo", "--prefix", "--order=ASCEND", "--sort-by=" + target));
        }
        s.add(cmd("get", "foo", "--prefix", "--order=DESCEND"));
        s.add(cmd("get", "foo", "--prefix", "--sort-by=VALUE", "--order=DESCEND", "--limit=2", "-w", "json"));
        // get: history
        for (int rev : new int[] {1, 2, 3, 5, 8, 9}) {
            s.add(cmd("get", "foo", "--prefix", "--rev=" + rev));
        }
        s.add(cmd("get", "foo", "--rev=3", "-w", "json"));
        s.add(cmd("get", "foo", "--rev=10"));                           // future revision

        // del: missing, single, range, prefix, from-key, prev-kv, json
        s.add(cmd("del", "missing"));                                   // 0, no new revision
        s.add(cmd("del", "missing", "-w", "json"));
        s.add(cmd("del", "foo3", "--prev-kv"));                         // rev 10
        s.add(cmd("del", "foo", "foo2", "-w", "json"));                 // rev 11: foo, foo1
        s.add(cmd("del", "foo", "--prefix"));                           // rev 12: foo2
        s.add(cmd("put", "a", "1"));                                    // rev 13
        s.add(cmd("put", "b", "2"));                                    // rev 14
        s.add(cmd("put", "c", "3"));                                    // rev 15
        s.add(cmd("del", "b", "--from-key", "--prev-kv", "-w", "json")); // rev 16: b, c, zoo
        s.add(cmd("del", "a", "--prefix", "--prev-kv"));                // rev 17
        s.add(cmd("get", "", "--from-key"));                            // empty store
        s.add(cmd("get", "foo", "--rev=9", "-w", "json"));              // deleted keys still visible in history
        s.add(cmd("put", "foo", "bar", "-w", "json"));                  // rev 18, re-created: version 1

        // txn: compares/success ops/failure ops from stdin, separated by blank lines
        s.add(txn("value(\"foo\") = \"bar\"\n\nput foo bar-txn\nput tk1 t1\nget foo\n\nput failed yes\n\n")); // rev 19
        s.add(txn("value(\"foo\") = \"nope\"\n\nput never x\n\nput tfail 1\nget foo\n\n"));                   // rev 20, FAILURE
        s.add(txn("mod(\"foo\") > \"100\"\n\nput never x\n\nput tk2 t2\nget tk\n\n", "-w", "json"));       // rev 21, FAILURE
        s.add(txn("create(\"foo\") = \"18\"\nversion(\"foo\") = \"2\"\nmod(\"foo\") < \"20\"\n\n"
                + "del tk1 --prev-kv\nget foo --prefix\n\n\n", "-w", "json"));                                    // rev 22, SUCCESS
        s.add(txn("version(\"nokey\") = \"0\"\ncreate(\"nokey\") = \"0\"\nvalue(\"foo\") != \"x\"\n\n"
                + "get tk --prefix --limit=1\n\n\n", "-w", "fields"));                                            // read-only
        s.add(txn("version(\"foo\") = \"2\"\nversion(\"foo\") = \"3\"\n\nput never x\n\n\n"));                 // FAILURE, no ops
        s.add(txn("\nput tk3 t3\n\n\n"));                                                                       // rev 23, no compares: SUCCESS
        s.add(txn("\n\nput tk4 t4\n\n"));                                                                       // no compares, no success ops
        s.add(txn("bogus\n\n\n\n"));                                                                            // client-side parse error

        // compaction: errors for compacted and future revisions, then reads on both sides of it
        s.add(cmd("compaction", "5"));
        s.add(cmd("get", "foo", "--rev=4"));                            // compacted
        s.add(cmd("get", "foo", "--prefix", "--rev=5", "-w", "json"));  // still readable
        s.add(cmd("get", "foo", "--rev=1000"));                         // future
        s.add(cmd("compaction", "5"));                                  // already compacted
        s.add(cmd("compaction", "3"));
        s.add(cmd("compaction", "1000"));                               // future
        s.add(cmd("compaction", "11"));
        s.add(cmd("get", "foo", "--rev=10"));
        s.add(cmd("get", "foo", "--rev=11", "-w", "json"));
        s.add(cmd("get", "", "--from-key", "-w", "json"));              // compaction doesn't add a revision
        s.add(cmd("put", "foo", "after-compaction", "--prev-kv", "-w", "json")); // rev 24
        s.add(cmd("get", "foo", "-w", "fields"));

        // The other output formats. The table printer (which etcdctl 3.4 lacks for get) must fail the
        // same way. -w protobuf is left out: its raw bytes carry the member and cluster ids, which
        // differ here because the two servers need different peer ports.
        s.add(cmd("get", "foo", "-w", "simple"));
        s.add(cmd("get", "foo", "-w", "table"));
        s.add(cmd("put", "fmt", "p", "-w", "json"));                     // rev 25
        s.add(cmd("put", "fmt", "q", "-w", "fields"));                   // rev 26
        s.add(cmd("del", "fmt", "-w", "fields"));                        // rev 27
        s.add(txn("value(\"foo\") = \"after-compaction\"\n\nput fmt r\nget foo\n\n\n", "-w", "fields")); // rev 28
        s.add(txn("\nget foo\n\n\n", "-w", "fields"));                     // read-only txn
        s.add(cmd("compaction", "--physical", "26"));
        s.add(cmd("get", "fmt", "--rev=25"));                            // compacted
        // (member list -w table is left out: the ids differ, so their hex widths, and with them the
        // table's column widths, may differ; ClusterIT checks the table row by row.)
        s.add(cmd("member", "list", "-w", "json"));

        // Writes etcd rejects come last: a candidate that wrongly accepts one gains a revision, and
        // everything after it would then differ too, hiding the real differences.
        s.add(cmd("put", "", "empty-key"));                             // etcdserver: key is not provided
        s.add(cmd("put", "newkey", "--ignore-value"));                  // etcdserver: key not found
        s.add(cmd("put", "leased", "v", "--lease=1234"));               // etcdserver: requested lease not found
        s.add(txn("value(\"foo\") = \"after-compaction\"\n\nput foo a\ndel foo\n\n\n")); // duplicate key given in txn request
        s.add(cmd("get", "", "--from-key", "-w", "json"));              // still at rev 28
        return s;
    }

    static Step cmd(String... args) {
        return new Step(null, args);
    }

    /** A txn read from stdin, with the global flags {@code before} the command (e.g. --user). */
    static Step txnAs(String stdin, String... before) {
        String[] args = new String[before.length + 1];
        System.arraycopy(before, 0, args, 0, before.length);
        args[before.length] = "txn";
        return new Step(stdin, args);
    }

    private static Step txn(String stdin, String... flags) {
        String[] args = new String[flags.length + 1];
        args[0] = "txn";
        System.arraycopy(flags, 0, args, 1, flags.length);
        return new Step(stdin, args);
    }

    record Step(String stdin, String[] args) {
        String runAgainst(MemberProcess member) throws Exception {
            return Etcdctl.runWithStdin(member.endpoint(), stdin, args).toString();
        }

        @Override
        public String toString() {
            String command = "etcdctl " + Stream.of(args)
                    .map(a -> a.isEmpty() ? "''" : a)
                    .collect(Collectors.joining(" "));
            return stdin == null ? command : command + " <<< " + stdin.replace("\n", "\\n");
        }
    }

    /**
     * Replaces what legitimately differs between two servers. IDs are learnt from the first output
     * that carries them and then replaced everywhere, in decimal and hex, so a server that reports
     * inconsistent or zero IDs still shows up as a difference.
     */
    static final class Normalizer {
        private static final Pattern CLUSTER_ID = Pattern.compile("(?:\"cluster_id\":|\"ClusterID\" : )([1-9]\\d*)");
        private static final Pattern MEMBER_ID = Pattern.compile("(?:\"member_id\":|\"MemberID\" : )([1-9]\\d*)");
        private String clusterId;
        private String memberId;

        String normalize(String text) {
            clusterId = OutputDiff.learn(CLUSTER_ID, text, clusterId);
            memberId = OutputDiff.learn(MEMBER_ID, text, memberId);
            text = OutputDiff.replaceId(text, clusterId, "<CLUSTER_ID>");
            text = OutputDiff.replaceId(text, memberId, "<MEMBER_ID>");
            return text
                    .replaceAll("127\\.0\\.0\\.1:\\d+", "127.0.0.1:<PORT>")
                    .replaceAll("\"ts\":\"[^\"]*\"", "\"ts\":\"<TS>\"")
                    .replaceAll("client-[0-9a-f-]{36}", "client-<UUID>");
        }
    }

    static void append(Path transcript, Step step, String output) throws IOException {
        Files.writeString(transcript, "=== " + step + "\n" + output + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.APPEND);
    }
}
