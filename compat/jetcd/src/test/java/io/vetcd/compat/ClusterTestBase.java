package io.vetcd.compat;

import static io.vetcd.compat.EtcdTestBase.await;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.maintenance.StatusResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.TestInstance;

/**
 * One fresh 3-member cluster (etcd or vetcd, see {@link ClusterProcess}) per test class, and one
 * jetcd client per member, each pinned to that member's endpoint only, so a test decides which
 * member serves each request.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class ClusterTestBase {

    protected static final int SIZE = 3;

    protected ClusterProcess cluster;
    /** clients.get(i) talks to member i only. */
    protected List<Client> clients;
    protected String ns;

    @BeforeAll
    void startCluster() {
        cluster = ClusterProcess.start(getClass().getSimpleName(), SIZE);
        clients = new ArrayList<>();
        for (ServerProcess m : cluster.members()) {
            clients.add(Client.builder().endpoints(m.clientUrl()).build());
        }
    }

    @AfterAll
    void stopCluster() {
        try {
            if (clients != null) {
                clients.forEach(Client::close);
            }
        } finally {
            if (cluster != null) {
                cluster.close();
            }
        }
    }

    @BeforeEach
    void setNamespace(TestInfo info) {
        ns = "/" + getClass().getSimpleName() + "/" + info.getTestMethod().map(m -> m.getName()).orElse("x") + "/";
    }

    protected static ByteSequence bs(String s) {
        return ByteSequence.from(s, StandardCharsets.UTF_8);
    }

    protected static String str(ByteSequence b) {
        return b.toString(StandardCharsets.UTF_8);
    }

    protected ByteSequence k(String suffix) {
        return bs(ns + suffix);
    }

    /** Index of the member that is leader now, as every member reports it (they must agree). */
    protected int leader() {
        return leaderAmong(IntStream.range(0, SIZE).boxed().collect(Collectors.toList()));
    }

    /** Index of the leader, asking only the given (running) members. */
    protected int leaderAmong(List<Integer> members) {
        long leaderId = 0;
        int idx = -1;
        for (int i : members) {
            StatusResponse s = await(clients.get(i).getMaintenanceClient().statusMember(cluster.member(i).clientUrl()));
            if (leaderId == 0) {
                leaderId = s.getLeader();
            } else if (leaderId != s.getLeader()) {
                throw new AssertionError("members disagree on the leader: " + Long.toHexString(leaderId) + " vs "
                        + Long.toHexString(s.getLeader()));
            }
            if (s.getHeader().getMemberId() == s.getLeader()) {
                idx = i;
            }
        }
        if (idx < 0) {
            throw new AssertionError("no member is the leader " + Long.toHexString(leaderId));
        }
        return idx;
    }

    protected List<Integer> followers(int leader) {
        return IntStream.range(0, SIZE).filter(i -> i != leader).boxed().collect(Collectors.toList());
    }

    /** Store revision as member i sees it (a linearizable read, so it is caught up). */
    protected long revision(int i) {
        return await(clients.get(i).getKVClient().get(bs("\u0000__revision_probe__"))).getHeader().getRevision();
    }
}
