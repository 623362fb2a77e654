package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A freshly started member does not wait out a whole election timeout before the first election, as
 * etcd does not ({@code --initial-election-tick-advance}, etcd's adjustTicks): the difference between
 * serving a fresh cluster's first request in tenths of a second and in one to two seconds.
 */
class FirstElectionIT {

    /** etcd's longest election timeout: waited out, it is far beyond how long a start may take here. */
    private static final String LONGEST_ELECTION_TIMEOUT_MS = "50000";

    /**
     * A member alone in its cluster leads at once, fresh (its first entry, its own addition, is not
     * applied yet when it first tries) and restarted. Its election timeout is 50 s: the member's
     * start, which waits for /health (30 s at most), shows it did not wait for it. vetcd only: etcd
     * fast-forwards all but one tick of the timeout, and then waits up to half of it (its timeout is
     * drawn between one and two of them), so it would take up to 25 s here.
     */
    @Test
    void aLoneMemberLeadsWithoutWaitingOutItsElectionTimeout() throws Exception {
        MemberProcess.Options options = MemberProcess.Options.defaults().withExtraArgs(
                "--heartbeat-interval", "100", "--election-timeout", LONGEST_ELECTION_TIMEOUT_MS);
        try (MemberProcess member = MemberProcess.start(MemberProcess.Kind.VETCD, "first-election-lone", options)) {
            Etcdctl.Result put = Etcdctl.run(member.endpoint(), "put", "k", "v");
            assertTrue(put.ok(), put.toString());
            member.stop();
            member.restart();
            Etcdctl.Result get = Etcdctl.run(member.endpoint(), "get", "k", "--print-value-only");
            assertTrue(get.ok() && get.stdout().strip().equals("v"), get.toString());
        }
    }

    /**
     * Three members started together fast-forward their first election timeout by its ticks less two once
     * the streams to both peers are up, and say so as etcd does; with
     * {@code --initial-election-tick-advance=false} none does, and the cluster forms all the same. (At
     * least two of the three: a member whose process came up well after the others may hear their
     * leader first, and then has nothing to bring forward. The ticks themselves: ElectionTest.)
     */
    @Test
    void membersFastForwardTheirFirstElectionOnceBothPeersAreConnected() throws Exception {
        MemberProcess.Kind kind = ClusterProcess.candidateKind();
        try (ClusterProcess cluster = ClusterProcess.start(kind, "first-election-advance")) {
            int advanced = 0;
            for (int member = 1; member <= ClusterProcess.SIZE; member++) {
                if (Files.readString(cluster.logFile(member)).contains(
                        "initialized peer connection; fast-forwarding 8 ticks (election ticks 10) with 2 active peer(s)")) {
                    advanced++;
                }
            }
            assertTrue(advanced >= 2, advanced + " of 3 fast-forwarded\n" + cluster.logTails());
        }
        try (ClusterProcess cluster = ClusterProcess.start(kind, "first-election-no-advance",
                "--initial-election-tick-advance=false")) {
            for (int member = 1; member <= ClusterProcess.SIZE; member++) {
                Path log = cluster.logFile(member);
                assertFalse(Files.readString(log).contains("fast-forwarding"), cluster.logTail(member));
            }
            Etcdctl.Result put = Etcdctl.run(cluster.endpoints(), "put", "k", "v");
            assertTrue(put.ok(), put.toString());
        }
    }
}
