package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Lease;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.api.LeaseGrantResponse;
import io.etcd.jetcd.api.LeaseKeepAliveResponse;
import io.etcd.jetcd.lease.LeaseRevokeResponse;
import io.etcd.jetcd.lease.LeaseTimeToLiveResponse;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.LeaseOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.support.CloseableClient;
import io.etcd.jetcd.watch.WatchResponse;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Lease service through jetcd 0.8.7 (plus {@link RawLease} for what jetcd cannot send). The server
 * runs with etcd's default timing (heartbeat 100 ms, election 1000 ms), so the smallest lease TTL it
 * grants is ceil(1.5 × election timeout) = 2 s. Expiry is awaited with a deadline, never slept for.
 */
class LeaseTest extends EtcdTestBase {

    static final String NOT_FOUND = "etcdserver: requested lease not found";
    /** etcd's minimum TTL with the default 1 s election timeout: ceil(3/2 × 1 s). */
    static final long MIN_TTL = 2;

    private final List<Watch.Watcher> watchers = new ArrayList<>();
    private RawLease raw;

    private Lease lease() {
        return client.getLeaseClient();
    }

    private RawLease raw() {
        if (raw == null) {
            raw = new RawLease(server.clientPort());
        }
        return raw;
    }

    @AfterEach
    void closeWatchers() {
        watchers.forEach(Watch.Watcher::close);
        watchers.clear();
    }

    @AfterAll
    void closeRaw() {
        if (raw != null) {
            raw.close();
        }
    }

    private WatchRecorder watch(String name, ByteSequence key, WatchOption opt) {
        WatchRecorder rec = new WatchRecorder(name);
        watchers.add(client.getWatchClient().watch(key, opt, rec));
        return rec;
    }

    private void putWithLease(String suffix, String value, long leaseId) {
        await(kv.put(k(suffix), bs(value), PutOption.builder().withLeaseId(leaseId).build()));
    }

    private long count(String suffix) {
        return await(kv.get(k(suffix))).getCount();
    }

    /** Polls (every 50 ms) until the condition holds or the deadline passes. */
    static void eventually(String what, long deadlineMs, BooleanSupplier cond) {
        long deadline = System.currentTimeMillis() + deadlineMs;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("not within " + deadlineMs + " ms: " + what);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    private Set<String> keySet(LeaseTimeToLiveResponse r) {
        return r.getKeys().stream().map(b -> str(b).substring(ns.length())).collect(Collectors.toSet());
    }

    @Test
    void grantChoosesIdAndKeepsTtl() {
        long rev = currentRevision();
        io.etcd.jetcd.lease.LeaseGrantResponse g = await(lease().grant(60));
        assertTrue(g.getID() > 0, "server-chosen id is positive: " + g.getID());
        assertEquals(60, g.getTTL());
        assertEquals(rev, g.getHeader().getRevision(), "a grant does not create a revision");
        assertEquals(rev, currentRevision());
        io.etcd.jetcd.lease.LeaseGrantResponse g2 = await(lease().grant(60));
        assertNotEquals(g.getID(), g2.getID(), "ids are unique");

        LeaseTimeToLiveResponse t = await(lease().timeToLive(g.getID(), LeaseOption.DEFAULT));
        assertEquals(g.getID(), t.getID());
        assertEquals(60, t.getGrantedTTL());
        // etcd truncates the remaining time to whole seconds: just after the grant it is 59, not 60
        assertTrue(t.getTTL() > 50 && t.getTTL() < 60, "remaining TTL " + t.getTTL());
        assertTrue(t.getKeys().isEmpty());
    }

    @Test
    void grantBelowTheMinimumTtlGetsTheMinimum() {
        assertEquals(MIN_TTL, await(lease().grant(1)).getTTL());
        // 0 and negative mean "the minimum" as well
        assertEquals(MIN_TTL, await(lease().grant(0)).getTTL());
        assertEquals(MIN_TTL, raw().grant(0, -5).getTTL());
        assertEquals(MIN_TTL + 1, await(lease().grant(MIN_TTL + 1)).getTTL());
    }

    @Test
    void grantWithClientChosenId() {
        long id = 0x1234_5678L + (System.nanoTime() & 0xffff);
        LeaseGrantResponse g = raw().grant(id, 30);
        assertEquals(id, g.getID());
        assertEquals(30, g.getTTL());
        assertTrue(g.getError().isEmpty());
        Throwable dup = null;
        try {
            raw().grant(id, 30);
        } catch (RuntimeException e) {
            dup = e;
        }
        assertGrpcError(dup, Status.Code.FAILED_PRECONDITION, "etcdserver: lease already exists");

        Throwable big = null;
        try {
            raw().grant(0, 9_000_000_001L);
        } catch (RuntimeException e) {
            big = e;
        }
        assertGrpcError(big, Status.Code.OUT_OF_RANGE, "etcdserver: too large lease TTL");
        await(lease().revoke(id));
    }

    @Test
    void putWithLeaseAttachesAndPlainPutDetaches() {
        long r0 = currentRevision();
        WatchRecorder w = watch("leases", k(""), WatchOption.builder().withRevision(r0 + 1).isPrefix(true).build());
        long id = await(lease().grant(60)).getID();
        putWithLease("a", "1", id);
        putWithLease("b", "1", id);
        assertEquals(id, await(kv.get(k("a"))).getKvs().get(0).getLease());
        w.awaitRevision(r0 + 2);
        for (io.etcd.jetcd.watch.WatchEvent e : w.events()) {
            assertEquals(id, e.getKeyValue().getLease(), "watch events carry the key's lease");
        }
        assertEquals(Set.of("a", "b"),
                keySet(await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()))));

        // a put without lease detaches the key (lease 0), the lease keeps the others
        put(ns + "b", "2");
        assertEquals(0, await(kv.get(k("b"))).getKvs().get(0).getLease());
        assertEquals(Set.of("a"),
                keySet(await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()))));

        // moving a key to another lease detaches it from the first
        long id2 = await(lease().grant(60)).getID();
        putWithLease("a", "3", id2);
        assertTrue(await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()))
                .getKeys().isEmpty());
        await(lease().revoke(id));
        assertEquals(1, count("a"), "the key moved to another lease survives the first one's revoke");
        await(lease().revoke(id2));
        assertEquals(0, count("a"));
        assertEquals(1, count("b"));
    }

    @Test
    void deletingALeasedKeyDetachesItAndTxnPutsAttach() {
        long id = await(lease().grant(60)).getID();
        putWithLease("x", "1", id);
        await(kv.delete(k("x")));
        assertTrue(await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build())).getKeys()
                .isEmpty(), "a deleted key leaves its lease");
        // a put inside a txn attaches too
        await(kv.txn().Then(Op.put(k("t"), bs("1"), PutOption.builder().withLeaseId(id).build())).commit());
        assertEquals(id, await(kv.get(k("t"))).getKvs().get(0).getLease());
        assertEquals(Set.of("t"),
                keySet(await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()))));
        long r = currentRevision();
        assertEquals(r + 1, await(lease().revoke(id)).getHeader().getRevision(), "the txn-attached key is deleted");
        assertEquals(0, count("t"));
    }

    @Test
    void putWithIgnoreLeaseKeepsTheLease() {
        long id = await(lease().grant(60)).getID();
        putWithLease("il", "1", id);
        io.etcd.jetcd.api.PutRequest.Builder p = io.etcd.jetcd.api.PutRequest.newBuilder()
                .setKey(com.google.protobuf.ByteString.copyFromUtf8(ns + "il"))
                .setValue(com.google.protobuf.ByteString.copyFromUtf8("2"));
        raw().kv().put(p.clone().setIgnoreLease(true).build());
        io.etcd.jetcd.KeyValue after = await(kv.get(k("il"))).getKvs().get(0);
        assertEquals("2", str(after.getValue()));
        assertEquals(id, after.getLease(), "ignore_lease keeps the key's lease");
        assertEquals(Set.of("il"),
                keySet(await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()))));
        // ignore_lease together with a lease is refused
        Throwable both = null;
        try {
            raw().kv().put(p.clone().setIgnoreLease(true).setLease(id).build());
        } catch (RuntimeException e) {
            both = e;
        }
        assertGrpcError(both, Status.Code.INVALID_ARGUMENT, "etcdserver: lease is provided");
        await(lease().revoke(id));
        assertEquals(0, count("il"));
    }

    @Test
    void timeToLiveWithAndWithoutKeys() {
        long id = await(lease().grant(100)).getID();
        putWithLease("k1", "v", id);
        putWithLease("k2", "v", id);
        LeaseTimeToLiveResponse withKeys = await(lease().timeToLive(id, LeaseOption.newBuilder().withAttachedKeys().build()));
        assertEquals(id, withKeys.getID());
        assertEquals(100, withKeys.getGrantedTTL());
        assertTrue(withKeys.getTTL() > 90 && withKeys.getTTL() <= 100, "ttl " + withKeys.getTTL());
        // the order of keys is not specified (etcd walks a Go map)
        assertEquals(Set.of("k1", "k2"), keySet(withKeys));
        assertEquals(2, withKeys.getKeys().size());
        assertEquals(currentRevision(), withKeys.getHeader().getRevision());

        LeaseTimeToLiveResponse noKeys = await(lease().timeToLive(id, LeaseOption.DEFAULT));
        assertTrue(noKeys.getKeys().isEmpty(), "keys only when asked for");

        // an unknown lease is not an error: TTL -1, granted 0, the id echoed
        long unknown = id + 1_000_003;
        LeaseTimeToLiveResponse none = await(lease().timeToLive(unknown, LeaseOption.newBuilder().withAttachedKeys().build()));
        assertEquals(unknown, none.getID());
        assertEquals(-1, none.getTTL());
        assertEquals(0, none.getGrantedTTL());
        assertTrue(none.getKeys().isEmpty());
        assertNotEquals(0, none.getHeader().getMemberId());
        await(lease().revoke(id));
    }

    @Test
    void leasesListsGrantedLeases() {
        long a = await(lease().grant(60)).getID();
        long b = await(lease().grant(60)).getID();
        Set<Long> listed = new HashSet<>(raw().leases());
        assertTrue(listed.containsAll(Set.of(a, b)), "listed " + listed + " lacks " + a + " or " + b);
        await(lease().revoke(a));
        listed = new HashSet<>(raw().leases());
        assertFalse(listed.contains(a), "revoked lease still listed");
        assertTrue(listed.contains(b));
        await(lease().revoke(b));
    }

    @Test
    void revokeDeletesAttachedKeysInOneRevision() {
        long id = await(lease().grant(60)).getID();
        putWithLease("b", "1", id);     // attached out of key order on purpose
        putWithLease("a", "1", id);
        put(ns + "c", "1");             // not attached
        long r = currentRevision();
        WatchRecorder w = watch("revoke", k(""), WatchOption.builder().withRevision(r + 1).isPrefix(true)
                .withPrevKV(true).build());

        LeaseRevokeResponse rv = await(lease().revoke(id));
        assertEquals(r + 1, rv.getHeader().getRevision(), "revoke answers with the revision of its deletes");
        assertEquals(r + 1, currentRevision(), "two keys, one revision");
        assertEquals(0, count("a"));
        assertEquals(0, count("b"));
        assertEquals(1, count("c"));

        w.awaitRevision(r + 1);
        List<WatchResponse> rs = w.responses();
        assertEquals(1, rs.size(), () -> "one response for the revoke, got " + w.events());
        // etcd deletes a lease's keys in key order
        assertEquals(List.of("DELETE a@" + (r + 1), "DELETE b@" + (r + 1)),
                WatchRecorder.describe(rs.get(0).getEvents(), ns));
        assertEquals("1", str(rs.get(0).getEvents().get(0).getPrevKV().getValue()));
        assertEquals(id, rs.get(0).getEvents().get(0).getPrevKV().getLease());

        // revoked lease is gone
        assertEquals(-1, await(lease().timeToLive(id, LeaseOption.DEFAULT)).getTTL());
        assertGrpcError(lease().revoke(id), Status.Code.NOT_FOUND, NOT_FOUND);
    }

    @Test
    void revokeOfALeaseWithoutKeysCreatesNoRevision() {
        long id = await(lease().grant(60)).getID();
        long r = currentRevision();
        assertEquals(r, await(lease().revoke(id)).getHeader().getRevision());
        assertEquals(r, currentRevision());
    }

    @Test
    void keepAliveKeepsTheKeyBeyondItsTtl() {
        long granted = System.currentTimeMillis();
        long id = await(lease().grant(MIN_TTL)).getID();
        putWithLease("kept", "1", id);
        // a second lease kept alive by the same client: jetcd sends both on one keep-alive stream
        long id2 = await(lease().grant(MIN_TTL + 1)).getID();
        putWithLease("kept2", "1", id2);
        KeepAliveRecorder second = new KeepAliveRecorder();
        CloseableClient ka2 = lease().keepAlive(id2, second);
        KeepAliveRecorder first = new KeepAliveRecorder();
        CloseableClient ka = lease().keepAlive(id, first);
        try {
            // keep checking the key until 2 TTLs have passed since the grant
            long until = granted + 2 * MIN_TTL * 1000 + 500;
            while (System.currentTimeMillis() < until) {
                assertEquals(1, count("kept"), "key expired although kept alive");
                assertEquals(1, count("kept2"), "key of the second lease expired although kept alive");
                LeaseTimeToLiveResponse t = await(lease().timeToLive(id, LeaseOption.DEFAULT));
                assertTrue(t.getTTL() > 0, "lease TTL " + t.getTTL());
                sleepQuietly(200);
            }
            assertTrue(first.errors.isEmpty() && second.errors.isEmpty(),
                    "keep-alive errors " + first.errors + " " + second.errors);
            assertTrue(first.answers.size() >= 2, "keep-alive answers: " + first.answers.size());
            for (io.etcd.jetcd.lease.LeaseKeepAliveResponse r : first.answers) {
                assertEquals(id, r.getID());
                assertEquals(MIN_TTL, r.getTTL(), "a keep-alive answers the granted TTL");
            }
            for (io.etcd.jetcd.lease.LeaseKeepAliveResponse r : second.answers) {
                assertEquals(id2, r.getID(), "the second lease's stream answered another lease");
                assertEquals(MIN_TTL + 1, r.getTTL(), "the second lease answers its own granted TTL");
            }
        } finally {
            ka.close();
            ka2.close();
        }
        // without keep-alives they expire
        eventually("key of the lease no longer kept alive expires", 10 * MIN_TTL * 1000,
                () -> count("kept") == 0 && count("kept2") == 0);
    }

    @Test
    void keepAliveOnceRenews() {
        long id = await(lease().grant(10)).getID();
        putWithLease("k", "1", id);
        // wait until the remaining TTL has visibly dropped, then renew
        eventually("remaining TTL drops below 10", 5000,
                () -> await(lease().timeToLive(id, LeaseOption.DEFAULT)).getTTL() < 10);
        io.etcd.jetcd.lease.LeaseKeepAliveResponse r = await(lease().keepAliveOnce(id));
        assertEquals(id, r.getID());
        assertEquals(10, r.getTTL());
        long ttl = await(lease().timeToLive(id, LeaseOption.DEFAULT)).getTTL();
        assertTrue(ttl >= 9, "renewed lease has " + ttl + " s left");
        await(lease().revoke(id));
    }

    @Test
    void keepAliveOfUnknownLease() {
        // jetcd maps the TTL-0 answer to this exception itself
        assertGrpcError(lease().keepAliveOnce(987_654_321L), Status.Code.NOT_FOUND, NOT_FOUND);
        // on the wire: no error, the id echoed with TTL 0
        LeaseKeepAliveResponse r = raw().keepAliveOnce(987_654_321L);
        assertEquals(987_654_321L, r.getID());
        assertEquals(0, r.getTTL());
        assertNotEquals(0, r.getHeader().getMemberId());
    }

    @Test
    void expiryDeletesTheKey() {
        long before = System.currentTimeMillis();
        long id = await(lease().grant(MIN_TTL)).getID();
        putWithLease("short2", "1", id);    // attached out of key order: deletes come in key order
        putWithLease("short", "1", id);
        long r = currentRevision();
        WatchRecorder w = watch("expiry", k("short"), WatchOption.builder().withRevision(r + 1).isPrefix(true).build());
        assertEquals(1, count("short"));
        // etcd checks for expired leases every 500 ms; allow plenty for a loaded machine
        w.await("expiry deletes", () -> w.eventCount() >= 2);
        long elapsed = System.currentTimeMillis() - before;
        assertTrue(elapsed >= MIN_TTL * 1000 - 100, "expired after " + elapsed + " ms, TTL is " + MIN_TTL + " s");
        assertEquals(List.of("DELETE short@" + (r + 1), "DELETE short2@" + (r + 1)),
                WatchRecorder.describe(w.events(), ns), "both keys in one revision");
        assertEquals(1, w.responses().size());
        assertEquals(0, count("short"));
        assertEquals(-1, await(lease().timeToLive(id, LeaseOption.DEFAULT)).getTTL());
        assertGrpcError(lease().revoke(id), Status.Code.NOT_FOUND, NOT_FOUND);
    }

    @Test
    void unknownLeaseErrors() {
        long unknown = 424_242_424_242L;
        assertGrpcError(kv.put(k("x"), bs("1"), PutOption.builder().withLeaseId(unknown).build()),
                Status.Code.NOT_FOUND, NOT_FOUND);
        assertGrpcError(lease().revoke(unknown), Status.Code.NOT_FOUND, NOT_FOUND);
        assertGrpcError(kv.txn().Then(Op.put(k("x"), bs("1"), PutOption.builder().withLeaseId(unknown).build())).commit(),
                Status.Code.NOT_FOUND, NOT_FOUND);
        assertEquals(0, count("x"));
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
