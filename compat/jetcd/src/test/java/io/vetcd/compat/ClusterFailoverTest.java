package io.vetcd.compat;

import static io.vetcd.compat.EtcdTestBase.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.KV;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import io.etcd.jetcd.options.LeaseOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.support.CloseableClient;
import io.etcd.jetcd.watch.WatchEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The leader of a 3-member cluster is killed (SIGKILL) while watches run on the two followers and
 * leases are live. Its own class: the cluster is left with two members afterwards.
 */
class ClusterFailoverTest extends ClusterTestBase {

    /** Long enough to survive the election; etcd extends every lease by one election timeout on promotion. */
    static final long TTL = 5;

    private final List<Watch.Watcher> watchers = new ArrayList<>();

    @AfterEach
    void closeWatchers() {
        watchers.forEach(Watch.Watcher::close);
        watchers.clear();
    }

    private WatchRecorder watchPrefix(int member, long from) {
        WatchRecorder rec = new WatchRecorder("prefix@m" + member);
        watchers.add(clients.get(member).getWatchClient().watch(bs(ns),
                WatchOption.builder().withRevision(from).isPrefix(true).build(), rec));
        return rec;
    }

    private long count(int member, String suffix) {
        return await(clients.get(member).getKVClient().get(k(suffix))).getCount();
    }

    /** Put through one member, retried while the cluster has no leader (the error is expected then). */
    private void putRetrying(int member, String suffix, String value) {
        KV kv = clients.get(member).getKVClient();
        long deadline = System.currentTimeMillis() + 30_000;
        while (true) {
            try {
                await(kv.put(k(suffix), bs(value)));
                return;
            } catch (RuntimeException | AssertionError e) {
                if (System.currentTimeMillis() > deadline) {
                    throw new AssertionError("put through member " + member + " kept failing after the leader died", e);
                }
                sleep(200);
            }
        }
    }

    @Test
    void leaderKillKeepsWatchesGaplessAndLeasesAlive() {
        int l = leader();
        List<Integer> fs = followers(l);
        int a = fs.get(0);
        int b = fs.get(1);
        long r0 = revision(a);
        WatchRecorder wa = watchPrefix(a, r0 + 1);
        WatchRecorder wb = watchPrefix(b, r0 + 1);

        // kept alive through follower a across the failover
        long kept = await(clients.get(a).getLeaseClient().grant(TTL)).getID();
        await(clients.get(b).getKVClient().put(k("kept"), bs("1"), PutOption.builder().withLeaseId(kept).build()));
        KeepAliveRecorder recorder = new KeepAliveRecorder();
        List<LeaseKeepAliveResponse> answers = recorder.answers;
        CloseableClient ka = clients.get(a).getLeaseClient().keepAlive(kept, recorder);
        // left alone: the new leader must expire it
        long loose = await(clients.get(b).getLeaseClient().grant(TTL)).getID();
        await(clients.get(a).getKVClient().put(k("loose"), bs("1"), PutOption.builder().withLeaseId(loose).build()));
        for (int i = 0; i < 5; i++) {
            putRetrying(i % 2 == 0 ? a : b, "p/" + i, "before");
        }

        cluster.member(l).close();
        long killedAt = System.currentTimeMillis();
        for (int i = 5; i < 10; i++) {
            putRetrying(i % 2 == 0 ? a : b, "p/" + i, "after");
        }
        int newLeader = leaderAmong(fs);
        assertNotEquals(l, newLeader);

        LeaseTest.eventually("the un-renewed lease expires under the new leader", 30_000,
                () -> count(a, "loose") == 0);
        // a new leader restarts every lease's clock (etcd: Promote gives each a full TTL plus one
        // election timeout), so the loose lease outlives a whole TTL counted from the kill
        long expiredAfter = System.currentTimeMillis() - killedAt;
        assertTrue(expiredAfter >= TTL * 1000, "un-renewed lease expired " + expiredAfter
                + " ms after the leader died: its TTL was not restarted by the new leader");
        try {
            // the renewed one lives on, well past its TTL since the kill
            long until = killedAt + (TTL + 2) * 1000;
            while (System.currentTimeMillis() < until) {
                assertEquals(1, count(a, "kept"), "kept-alive lease expired");
                sleep(250);
            }
            assertEquals(1, count(b, "kept"));
            assertTrue(await(clients.get(b).getLeaseClient().timeToLive(kept, LeaseOption.DEFAULT)).getTTL() > 0);
        } finally {
            ka.close();
        }
        assertEquals(-1, await(clients.get(b).getLeaseClient().timeToLive(loose, LeaseOption.DEFAULT)).getTTL());
        await(clients.get(b).getLeaseClient().revoke(kept));

        // both followers' watches went through the failover without a gap and agree
        long end = revision(a);
        wa.awaitRevision(end);
        wb.awaitRevision(end);
        List<String> ea = WatchRecorder.describe(wa.events(), ns);
        assertEquals(ea, WatchRecorder.describe(wb.events(), ns));
        Set<Long> revs = wa.events().stream().map(e -> e.getKeyValue().getModRevision())
                .collect(Collectors.toCollection(TreeSet::new));
        // every revision since r0 was one of ours, under the prefix
        assertEquals(end - r0, revs.size(), () -> "revisions seen " + revs + " for " + r0 + ".." + end);
        for (int i = 0; i < 10; i++) {
            String key = "p/" + i;
            assertTrue(ea.stream().anyMatch(s -> s.startsWith("PUT " + key + "=")), key + " missing in " + ea);
        }
        List<String> deletes = wa.events().stream().filter(e -> e.getEventType() == WatchEvent.EventType.DELETE)
                .map(e -> WatchRecorder.str(e.getKeyValue().getKey()).substring(ns.length()))
                .collect(Collectors.toList());
        assertEquals(List.of("loose", "kept"), deletes);
        assertTrue(wa.errors().isEmpty() && wb.errors().isEmpty(), () -> "watch errors " + wa.errors() + wb.errors());
        assertTrue(answers.size() >= 3, "keep-alive answers " + answers.size());
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
