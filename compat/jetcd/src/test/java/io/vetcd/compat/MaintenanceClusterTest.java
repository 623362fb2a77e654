package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.Maintenance;
import io.etcd.jetcd.cluster.Member;
import io.etcd.jetcd.cluster.MemberListResponse;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.maintenance.HashKVResponse;
import io.etcd.jetcd.maintenance.StatusResponse;
import java.net.URI;
import java.util.List;
import org.junit.jupiter.api.Test;

class MaintenanceClusterTest extends EtcdTestBase {

    private Maintenance maintenance() {
        return client.getMaintenanceClient();
    }

    @Test
    void status() {
        StatusResponse s = await(maintenance().statusMember(server.clientUrl()));
        assertTrue(s.getVersion().startsWith("3.4"), "version " + s.getVersion());
        assertTrue(s.getDbSize() > 0, "db size");
        assertTrue(s.getDbSizeInUse() > 0 && s.getDbSizeInUse() <= s.getDbSize(), "db size in use");
        assertEquals(s.getHeader().getMemberId(), s.getLeader(), "a single member is its own leader");
        assertTrue(s.getRaftTerm() >= 1);
        assertTrue(s.getRaftIndex() >= 1);
        assertTrue(s.getRaftAppliedIndex() >= 1);
        assertTrue(s.getErrorList().isEmpty());
        assertFalse(s.isLearner());
        assertEquals(s.getRaftTerm(), s.getHeader().getRaftTerm());
        assertNotEquals(0, s.getHeader().getClusterId());
        assertEquals(currentRevision(), s.getHeader().getRevision());
        // a write advances the raft index
        long before = s.getRaftIndex();
        put(ns + "x", "1");
        assertTrue(await(maintenance().statusMember(server.clientUrl())).getRaftIndex() > before);
    }

    @Test
    void memberList() {
        MemberListResponse r = await(client.getClusterClient().listMember());
        List<Member> members = r.getMembers();
        assertEquals(1, members.size());
        Member m = members.get(0);
        assertEquals("default", m.getName());
        assertEquals(List.of(URI.create(server.peerUrl())), m.getPeerURIs());
        assertEquals(List.of(URI.create(server.clientUrl())), m.getClientURIs());
        assertFalse(m.isLearner());
        assertNotEquals(0, m.getId());
        // the member id and cluster id are those of every response header
        GetResponse g = get(ns + "probe");
        assertEquals(g.getHeader().getMemberId(), m.getId());
        assertEquals(g.getHeader().getMemberId(), r.getHeader().getMemberId());
        assertEquals(g.getHeader().getClusterId(), r.getHeader().getClusterId());
        // etcd 3.4 does not fill the revision in cluster API headers
        assertEquals(0, r.getHeader().getRevision());
        assertEquals(g.getHeader().getRaftTerm(), r.getHeader().getRaftTerm());
    }

    @Test
    void hashKvIsStableAtTheSameRevision() {
        put(ns + "a", "1");
        put(ns + "b", "2");
        long rev = currentRevision();
        HashKVResponse h1 = await(maintenance().hashKV(server.clientUrl(), rev));
        HashKVResponse h2 = await(maintenance().hashKV(server.clientUrl(), rev));
        assertEquals(h1.getHash(), h2.getHash());
        assertEquals(rev, h1.getHeader().getRevision());
        // revision 0 means the current revision
        assertEquals(h1.getHash(), await(maintenance().hashKV(server.clientUrl(), 0)).getHash());
        // no compaction yet: etcd reports -1
        assertEquals(-1, h1.getCompacted());

        // later writes change the current hash but not the hash at the old revision
        put(ns + "c", "3");
        HashKVResponse h3 = await(maintenance().hashKV(server.clientUrl(), rev));
        assertEquals(h1.getHash(), h3.getHash());
        assertEquals(rev + 1, h3.getHeader().getRevision());
        HashKVResponse now = await(maintenance().hashKV(server.clientUrl(), 0));
        assertNotEquals(h1.getHash(), now.getHash());
    }

    @Test
    void hashKvAtFutureRevisionFails() {
        long rev = currentRevision();
        assertGrpcError(maintenance().hashKV(server.clientUrl(), rev + 10), io.grpc.Status.Code.OUT_OF_RANGE,
                "etcdserver: mvcc: required revision is a future revision");
    }

    @Test
    void noAlarms() {
        assertTrue(await(maintenance().listAlarms()).getAlarms().isEmpty());
    }
}
