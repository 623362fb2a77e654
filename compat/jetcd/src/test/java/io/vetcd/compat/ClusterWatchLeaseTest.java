package io.vetcd.compat;

import static io.vetcd.compat.EtcdTestBase.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.KV;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import io.etcd.jetcd.lease.LeaseTimeToLiveResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.LeaseOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.support.CloseableClient;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Watch and Lease on a 3-member cluster: every member serves watches from its own copy of the
 * history; lease requests reaching a follower act on the leader's lessor (grant and revoke go
 * through Raft, keep-alive and time-to-live are forwarded), and only the leader expires leases,
 * through a replicated revoke that every member applies at the same revision.
 */
class ClusterWatchLeaseTest extends ClusterTestBase {

    private final List<Watch.Watcher> watchers = new ArrayList<>();

    @AfterEach
    void closeWatchers() {
        watchers.forEach(Watch.Watcher::close);
        watchers.clear();
    }

    private WatchRecorder watch(int member, String name, String key, WatchOption opt) {
        WatchRecorder rec = new WatchRecorder(name + "@m" + member);
        watchers.add(clients.get(member).getWatchClient().watch(bs(key), opt, rec));
        return rec;
    }

    private WatchRecorder watchPrefix(int member, long from) {
        return watch(member, "prefix", ns, WatchOption.builder().withRevision(from).isPrefix(true)
                .withPrevKV(true).build());
    }

    /** An event with everything a client can see of it. */
    private String full(WatchEvent e) {
        KeyValue kv = e.getKeyValue();
        String s = WatchRecorder.describe(e, ns) + "(c" + kv.getCreateRevision() + ",v" + kv.getVersion() + ",l"
                + kv.getLease() + ")";
        if (!e.getPrevKV().getKey().isEmpty()) {
            s += "[prev " + str(e.getPrevKV().getValue()) + "@" + e.getPrevKV().getModRevision() + "]";
        }
        return s;
    }

    private List<String> full(WatchRecorder w) {
        return w.events().stream().map(this::full).collect(Collectors.toList());
    }

    private long count(int member, String suffix) {
        return await(clients.get(member).getKVClient().get(k(suffix))).getCount();
    }

    @Test
    void watchFromPastRevisionOnAFollower() {
        int l = leader();
        List<Integer> fs = followers(l);
        KV onLeader = clients.get(l).getKVClient();
        KV onOther = clients.get(fs.get(1)).getKVClient();
        long r0 = revision(l);
        await(onLeader.put(k("a"), bs("1")));                             // r0+1
        await(onOther.put(k("a"), bs("2")));                              // r0+2
        await(onOther.txn().Then(Op.put(k("c"), bs("1"), PutOption.DEFAULT),
                Op.put(k("b"), bs("1"), PutOption.DEFAULT)).commit());    // r0+3
        await(onLeader.delete(k("a")));                                   // r0+4

        int f = fs.get(0);
        WatchRecorder w = watchPrefix(f, r0 + 1);
        w.awaitRevision(r0 + 4);
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT a=2@" + (r0 + 2), "PUT c=1@" + (r0 + 3),
                "PUT b=1@" + (r0 + 3), "DELETE a@" + (r0 + 4)), WatchRecorder.describe(w.events(), ns));
        assertEquals("2", str(w.events().get(4).getPrevKV().getValue()));
        // the follower answers with its own member id
        long followerId = await(clients.get(f).getKVClient().get(k("a"))).getHeader().getMemberId();
        for (WatchResponse r : w.responses()) {
            assertEquals(followerId, r.getHeader().getMemberId());
        }
        // and keeps going live after the replay
        await(onLeader.put(k("a"), bs("3")));                             // r0+5
        w.awaitRevision(r0 + 5);
        assertEquals("PUT a=3@" + (r0 + 5), WatchRecorder.describe(w.events(), ns).get(5));

        // a compacted start revision is refused by a follower just like by the leader, once the follower
        // has applied the compaction: the leader answers Compact when it applied it, and a linearizable
        // read on the follower is what waits for the follower to catch up (etcd's followers lag alike)
        await(onLeader.compact(r0 + 2));
        await(clients.get(f).getKVClient().get(k("a")));
        WatchRecorder old = watch(f, "compacted", ns + "a", WatchOption.builder().withRevision(r0 + 1).build());
        old.awaitError();
        assertTrue(old.errors().get(0) instanceof io.etcd.jetcd.common.exception.CompactedException,
                () -> "error " + old.errors());
    }

    @Test
    void everyMemberDeliversTheSameEventsInTheSameOrder() throws Exception {
        int l = leader();
        long r0 = revision(l);
        List<WatchRecorder> ws = new ArrayList<>();
        for (int m = 0; m < SIZE; m++) {
            // one of them with require-leader (gRPC metadata "hasleader"): a healthy cluster serves it alike
            ws.add(watch(m, "prefix", ns, WatchOption.builder().withRevision(r0 + 1).isPrefix(true).withPrevKV(true)
                    .withRequireLeader(m == 1).build()));
        }
        // one writer per member, concurrently, so the order is decided by the leader
        ExecutorService pool = Executors.newFixedThreadPool(SIZE);
        List<Future<?>> fs = new ArrayList<>();
        for (int m = 0; m < SIZE; m++) {
            int id = m;
            fs.add(pool.submit(() -> {
                Random rnd = new Random(id);
                KV kv = clients.get(id).getKVClient();
                for (int i = 0; i < 40; i++) {
                    String key = "k" + rnd.nextInt(5);
                    int dice = rnd.nextInt(10);
                    if (dice < 6) {
                        await(kv.put(k(key), bs("m" + id + "-" + i)));
                    } else if (dice < 8) {
                        await(kv.delete(k(key)));
                    } else {
                        String other = "k" + ((Integer.parseInt(key.substring(1)) + 1) % 5);
                        await(kv.txn().If(new Cmp(k(key), Cmp.Op.GREATER, CmpTarget.version(0)))
                                .Then(Op.put(k(other), bs("t" + id + "-" + i), PutOption.DEFAULT),
                                        Op.delete(k(key), DeleteOption.DEFAULT))
                                .Else(Op.put(k(key), bs("e" + id + "-" + i), PutOption.DEFAULT),
                                        Op.put(k(other), bs("e" + id + "-" + i), PutOption.DEFAULT))
                                .commit());
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : fs) {
            f.get();
        }
        pool.shutdown();
        long end = revision(l);
        assertTrue(end > r0 + 60, "writes made revisions: " + (end - r0));
        for (WatchRecorder w : ws) {
            w.awaitRevision(end);
        }
        List<String> reference = full(ws.get(0));
        for (int m = 1; m < SIZE; m++) {
            assertEquals(reference, full(ws.get(m)), "member " + m + " delivered other events than member 0");
        }
        // every revision since r0 wrote under the prefix, so every one of them was seen
        Set<Long> revs = ws.get(0).events().stream().map(e -> e.getKeyValue().getModRevision())
                .collect(Collectors.toSet());
        assertEquals(end - r0, revs.size(), "revisions seen");
        for (WatchRecorder w : ws) {
            assertTrue(w.errors().isEmpty(), () -> w.name() + " errors " + w.errors());
        }
    }

    @Test
    void leaseKeptAliveThroughAFollowerThenExpiredByTheLeader() {
        int l = leader();
        List<Integer> fs = followers(l);
        int fa = fs.get(0);
        int fb = fs.get(1);
        long granted = System.currentTimeMillis();
        long id = await(clients.get(fa).getLeaseClient().grant(LeaseTest.MIN_TTL)).getID();
        assertEquals(LeaseTest.MIN_TTL, await(clients.get(fa).getLeaseClient().timeToLive(id, LeaseOption.DEFAULT))
                .getGrantedTTL());
        await(clients.get(fb).getKVClient().put(k("leased"), bs("1"), PutOption.builder().withLeaseId(id).build()));
        long r = revision(l);
        List<WatchRecorder> ws = new ArrayList<>();
        for (int m = 0; m < SIZE; m++) {
            ws.add(watch(m, "leased", ns + "leased", WatchOption.builder().withRevision(r + 1).build()));
        }
        // every member knows the lease and where it is attached
        for (int m = 0; m < SIZE; m++) {
            LeaseTimeToLiveResponse t = await(clients.get(m).getLeaseClient()
                    .timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()));
            assertTrue(t.getTTL() > 0, "member " + m + " TTL " + t.getTTL());
            assertEquals(List.of(ns + "leased"), t.getKeys().stream().map(ClusterTestBase::str)
                    .collect(Collectors.toList()), "member " + m);
            assertEquals(id, await(clients.get(m).getKVClient().get(k("leased"))).getKvs().get(0).getLease());
            try (RawLease raw = new RawLease(cluster.member(m).clientPort())) {
                assertTrue(raw.leases().contains(id), "member " + m + " lists the lease");
            }
        }

        KeepAliveRecorder recorder = new KeepAliveRecorder();
        List<LeaseKeepAliveResponse> answers = recorder.answers;
        List<Throwable> errors = recorder.errors;
        CloseableClient ka = clients.get(fb).getLeaseClient().keepAlive(id, recorder);
        try {
            long until = granted + 2 * LeaseTest.MIN_TTL * 1000 + 500;
            while (System.currentTimeMillis() < until) {
                for (int m = 0; m < SIZE; m++) {
                    assertEquals(1, count(m, "leased"), "key expired on member " + m + " although kept alive");
                }
                sleep(200);
            }
            assertTrue(errors.isEmpty(), "keep-alive errors " + errors);
            assertTrue(answers.size() >= 2, "keep-alive answers " + answers.size());
            answers.forEach(a -> assertEquals(LeaseTest.MIN_TTL, a.getTTL()));
            assertEquals(LeaseTest.MIN_TTL, await(clients.get(fa).getLeaseClient().keepAliveOnce(id)).getTTL(),
                    "keepAliveOnce through the other follower");
        } finally {
            ka.close();
        }

        // no more keep-alives: the leader expires it; every member sees the same delete
        for (WatchRecorder w : ws) {
            w.awaitEvents(1);
        }
        List<String> first = WatchRecorder.describe(ws.get(0).events(), ns);
        assertEquals(1, first.size());
        assertTrue(first.get(0).startsWith("DELETE leased@"), first::toString);
        for (WatchRecorder w : ws) {
            assertEquals(first, WatchRecorder.describe(w.events(), ns), w.name());
        }
        for (int m = 0; m < SIZE; m++) {
            assertEquals(0, count(m, "leased"), "member " + m);
            assertEquals(-1, await(clients.get(m).getLeaseClient().timeToLive(id, LeaseOption.DEFAULT)).getTTL());
        }
    }

    @Test
    void revokeThroughAFollowerDeletesInOneRevisionOnEveryMember() {
        int l = leader();
        List<Integer> fs = followers(l);
        long id = await(clients.get(l).getLeaseClient().grant(60)).getID();
        await(clients.get(fs.get(0)).getKVClient().put(k("b"), bs("1"), PutOption.builder().withLeaseId(id).build()));
        await(clients.get(fs.get(1)).getKVClient().put(k("a"), bs("1"), PutOption.builder().withLeaseId(id).build()));
        long r = revision(l);
        List<WatchRecorder> ws = new ArrayList<>();
        for (int m = 0; m < SIZE; m++) {
            ws.add(watchPrefix(m, r + 1));
        }
        long rev = await(clients.get(fs.get(1)).getLeaseClient().revoke(id)).getHeader().getRevision();
        assertEquals(r + 1, rev);
        for (WatchRecorder w : ws) {
            w.awaitRevision(r + 1);
            assertEquals(1, w.responses().size(), w.name());
            assertEquals(List.of("DELETE a@" + (r + 1), "DELETE b@" + (r + 1)), WatchRecorder.describe(w.events(), ns),
                    w.name());
        }
        Set<Long> leasesLeft = new HashSet<>();
        for (int m = 0; m < SIZE; m++) {
            assertEquals(r + 1, revision(m));
            try (RawLease raw = new RawLease(cluster.member(m).clientPort())) {
                leasesLeft.addAll(raw.leases());
            }
        }
        assertTrue(!leasesLeft.contains(id), "revoked lease still listed");
    }

    @Test
    void watchGuaranteesWithWatchersOnEveryMember() throws Exception {
        WatchGuaranteeScenario s = new WatchGuaranteeScenario(ns, clients,
                cluster.members().stream().map(ServerProcess::clientPort).collect(Collectors.toList()),
                cluster.clientUrls(), 4, 250);
        try {
            s.run();
        } finally {
            s.close();
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
