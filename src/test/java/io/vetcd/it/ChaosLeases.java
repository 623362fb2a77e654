package io.vetcd.it;

import com.google.protobuf.ByteString;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.LeaseGrantRequest;
import io.vetcd.proto.etcdserverpb.LeaseGrantResponse;
import io.vetcd.proto.etcdserverpb.LeaseGrpcClient;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveRequest;
import io.vetcd.proto.etcdserverpb.LeaseKeepAliveResponse;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * A client that keeps a lease alive through the chaos run, with a key attached, and checks the key
 * every second: a key attached to a lease that was kept alive must not go before the lease's TTL has
 * run out since the last keep-alive that was answered. Each lease's grant, keep-alives and the moment
 * it was found gone are recorded ({@link Event}); {@link #check} judges them. When a lease is found
 * gone (expired because keep-alives failed for a TTL: fine then) a new one takes over.
 */
final class ChaosLeases {

    static final String PREFIX = "chaoslease/";
    static final long TTL_SECONDS = 5;
    private static final long KEEP_ALIVE_MILLIS = 1_000;

    enum Type { GRANTED, KEPT, GONE }

    /** {@code ttl}: what the grant or keep-alive answered, in seconds; times are the client's. */
    record Event(long lease, Type type, long invoke, long response, long ttl, String how) {
    }

    private final ClusterProcess cluster;
    private final ChaosGrpc grpc;
    private final Random random;
    private final List<Event> events = Collections.synchronizedList(new ArrayList<>());
    private Thread thread;
    private volatile boolean stopping;

    ChaosLeases(ClusterProcess cluster, ChaosGrpc grpc, long seed) {
        this.cluster = cluster;
        this.grpc = grpc;
        this.random = new Random(seed ^ 0x1ea5e);
    }

    void start() {
        thread = new Thread(this::run, "chaos-leases");
        thread.setDaemon(true);
        thread.start();
    }

    void stop() throws InterruptedException {
        stopping = true;
        thread.join(TimeUnit.SECONDS.toMillis(15));
    }

    List<Event> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    private int member() {
        return 1 + random.nextInt(cluster.size());
    }

    private void run() {
        long lease = 0;
        String key = null;
        try {
            while (!stopping) {
                if (lease == 0) {
                    long invoke = System.nanoTime();
                    try {
                        LeaseGrantResponse granted = grpc.call(member(), LeaseGrpcClient.LeaseGrant,
                                LeaseGrantRequest.newBuilder().setTTL(TTL_SECONDS).build(), ChaosClients.TIMEOUT_MILLIS);
                        key = PREFIX + Long.toHexString(granted.getID());
                        grpc.call(member(), KVGrpcClient.Put, PutRequest.newBuilder()
                                .setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8("kept"))
                                .setLease(granted.getID()).build(), ChaosClients.TIMEOUT_MILLIS);
                        lease = granted.getID();
                        events.add(new Event(lease, Type.GRANTED, invoke, System.nanoTime(), granted.getTTL(), ""));
                    } catch (ChaosGrpc.CallFailed e) {
                        TimeUnit.MILLISECONDS.sleep(KEEP_ALIVE_MILLIS); // a lease granted without its key expires alone
                        continue;
                    }
                }
                TimeUnit.MILLISECONDS.sleep(KEEP_ALIVE_MILLIS);
                long invoke = System.nanoTime();
                try {
                    LeaseKeepAliveResponse kept = grpc.call(member(), LeaseGrpcClient.LeaseKeepAlive,
                            LeaseKeepAliveRequest.newBuilder().setID(lease).build(), ChaosClients.TIMEOUT_MILLIS);
                    if (kept.getTTL() > 0) {
                        events.add(new Event(lease, Type.KEPT, invoke, System.nanoTime(), kept.getTTL(), ""));
                    } else {
                        events.add(new Event(lease, Type.GONE, invoke, System.nanoTime(), 0, "keep-alive answered TTL "
                                + kept.getTTL()));
                        lease = 0;
                        continue;
                    }
                } catch (ChaosGrpc.CallFailed e) {
                    if (e.getMessage().contains("requested lease not found")) {
                        events.add(new Event(lease, Type.GONE, invoke, System.nanoTime(), 0, e.getMessage()));
                        lease = 0;
                        continue;
                    }
                }
                invoke = System.nanoTime();
                try {
                    RangeResponse read = grpc.call(member(), KVGrpcClient.Range,
                            RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8(key)).build(),
                            ChaosClients.TIMEOUT_MILLIS);
                    if (read.getKvsCount() == 0) {
                        events.add(new Event(lease, Type.GONE, invoke, System.nanoTime(), 0, "its key " + key
                                + " is gone (revision " + read.getHeader().getRevision() + ")"));
                        lease = 0;
                    }
                } catch (ChaosGrpc.CallFailed e) {
                    // unknown: nothing to judge
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * EARLY: a lease (or its key) found gone before the TTL ran out since the invocation of a grant or
     * keep-alive that was answered (the leader set the expiry on receiving it, after its invocation).
     */
    static List<String> check(List<Event> events) {
        List<String> violations = new ArrayList<>();
        Map<Long, Long> aliveUntil = new HashMap<>();
        for (Event e : events) {
            if (e.type() == Type.GONE) {
                long until = aliveUntil.getOrDefault(e.lease(), Long.MIN_VALUE);
                if (e.response() < until) {
                    violations.add("EARLY: lease " + Long.toHexString(e.lease()) + " found gone (" + e.how() + ") "
                            + TimeUnit.NANOSECONDS.toMillis(until - e.response())
                            + " ms before its TTL ran out since the last answered keep-alive");
                }
            } else {
                aliveUntil.merge(e.lease(), e.invoke() + TimeUnit.SECONDS.toNanos(e.ttl()), Math::max);
            }
        }
        return violations;
    }
}
