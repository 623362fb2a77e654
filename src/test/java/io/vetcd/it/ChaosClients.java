package io.vetcd.it;

import com.google.protobuf.ByteString;
import io.vetcd.proto.etcdserverpb.Compare;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeResponse;
import io.vetcd.proto.etcdserverpb.KVGrpcClient;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
import io.vetcd.proto.mvccpb.KeyValue;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The chaos run's clients: each a thread that sends one request at a time, each request to a member
 * picked at random (so traffic goes through every member, followers included), on a small set of
 * keys so that clients contend: puts of unique values, linearizable gets, deletes, and transactions
 * that compare a key's value with the one the client last saw and put a new value if it matched
 * (compare-and-set; the failure branch reads the key). Every request is recorded with the client's
 * clock around it; a write whose answer never came is recorded as unknown (it may have happened).
 *
 * <p>The key set moves on every {@link #KEY_EPOCH_MILLIS}, so that each key's history stays short
 * enough for the linearizability search whatever the run's length.
 */
final class ChaosClients {

    static final String PREFIX = "chaos/";
    static final int KEYS_PER_EPOCH = 6;
    static final long KEY_EPOCH_MILLIS = 20_000;
    static final long TIMEOUT_MILLIS = 3_000;

    enum Kind { PUT, GET, DELETE, CAS }

    /**
     * One request as the client saw it. {@code ok}: answered (for a CAS: compared and wrote; a CAS
     * whose compare failed is recorded as the GET its failure branch made). {@code revision}: the
     * write's revision from the answer's header (a delete's only if it deleted something), or the
     * mod_revision a get found (0: absent). {@code response} is {@link LinearizabilityChecker#NEVER}
     * for a write without answer.
     */
    record Op(int client, int member, Kind kind, String key, String expected, String value, long invoke,
            long response, boolean ok, long revision, long deleted, String error) {
        @Override
        public String toString() {
            String what = switch (kind) {
                case PUT -> "put " + key + "=" + value;
                case GET -> "get " + key + (ok ? " -> " + value : "");
                case DELETE -> "delete " + key + (ok ? " (" + deleted + " deleted)" : "");
                case CAS -> "cas " + key + " " + expected + "->" + value;
            };
            return "client " + client + " via infra" + member + ": " + what + (ok ? " @" + revision : " FAILED ("
                    + error + ")") + " [" + invoke + ", " + (response == LinearizabilityChecker.NEVER ? "inf" : response)
                    + "]";
        }
    }

    private final ClusterProcess cluster;
    private final ChaosGrpc grpc;
    private final int clients;
    private final double opsPerSecondEach;
    private final long seed;
    private final long startNanos;
    private final List<Op> history = Collections.synchronizedList(new ArrayList<>());
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicLong answered = new AtomicLong();
    private volatile boolean stopping;

    ChaosClients(ClusterProcess cluster, ChaosGrpc grpc, int clients, double opsPerSecondEach, long seed) {
        this.cluster = cluster;
        this.grpc = grpc;
        this.clients = clients;
        this.opsPerSecondEach = opsPerSecondEach;
        this.seed = seed;
        this.startNanos = System.nanoTime();
    }

    void start() {
        for (int c = 0; c < clients; c++) {
            int client = c;
            Thread thread = new Thread(() -> runClient(client), "chaos-client-" + c);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
    }

    /** Stops sending and waits for the requests in flight (each is bounded by its timeout). */
    void stop() throws InterruptedException {
        stopping = true;
        for (Thread thread : threads) {
            thread.join(TimeUnit.MILLISECONDS.toMillis(TIMEOUT_MILLIS * 3));
        }
    }

    List<Op> history() {
        synchronized (history) {
            return List.copyOf(history);
        }
    }

    /** Requests that got an answer (a write acknowledged, a read answered). */
    long answered() {
        return answered.get();
    }

    private String key(int index) {
        long epoch = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos) / KEY_EPOCH_MILLIS;
        return PREFIX + "e" + epoch + "/k" + index;
    }

    private void runClient(int client) {
        Random random = new Random(seed * 31 + client);
        Map<String, String> lastSeen = new HashMap<>();
        long intervalNanos = (long) (1e9 / opsPerSecondEach);
        long next = System.nanoTime();
        for (int n = 0; !stopping; n++) {
            long wait = next - System.nanoTime();
            if (wait > 0) {
                try {
                    TimeUnit.NANOSECONDS.sleep(wait);
                } catch (InterruptedException e) {
                    return;
                }
            }
            next = Math.max(next + intervalNanos, System.nanoTime() - intervalNanos);
            int member = 1 + random.nextInt(cluster.size());
            String key = key(random.nextInt(KEYS_PER_EPOCH));
            String value = "c" + client + "-" + n;
            int dice = random.nextInt(100);
            Op op;
            try {
                if (dice < 35) {
                    op = put(client, member, key, value);
                } else if (dice < 65) {
                    op = get(client, member, key);
                } else if (dice < 75) {
                    op = delete(client, member, key);
                } else {
                    op = cas(client, member, key, lastSeen.get(key), value);
                }
            } catch (InterruptedException e) {
                return;
            }
            history.add(op);
            if (op.ok()) {
                answered.incrementAndGet();
                lastSeen.put(key, op.kind() == Kind.DELETE ? null : op.value());
            }
        }
    }

    private Op put(int client, int member, String key, String value) throws InterruptedException {
        long invoke = System.nanoTime();
        try {
            PutResponse answer = grpc.call(member, KVGrpcClient.Put, PutRequest.newBuilder()
                    .setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8(value)).build(),
                    TIMEOUT_MILLIS);
            return new Op(client, member, Kind.PUT, key, null, value, invoke, System.nanoTime(), true,
                    answer.getHeader().getRevision(), 0, "");
        } catch (ChaosGrpc.CallFailed e) {
            return unknown(client, member, Kind.PUT, key, null, value, invoke, e);
        }
    }

    private Op get(int client, int member, String key) throws InterruptedException {
        long invoke = System.nanoTime();
        try {
            RangeResponse answer = grpc.call(member, KVGrpcClient.Range,
                    RangeRequest.newBuilder().setKey(ByteString.copyFromUtf8(key)).build(), TIMEOUT_MILLIS);
            return read(client, member, key, invoke, answer.getKvsList());
        } catch (ChaosGrpc.CallFailed e) {
            return new Op(client, member, Kind.GET, key, null, null, invoke, System.nanoTime(), false, 0, 0,
                    e.getMessage());
        }
    }

    private Op delete(int client, int member, String key) throws InterruptedException {
        long invoke = System.nanoTime();
        try {
            DeleteRangeResponse answer = grpc.call(member, KVGrpcClient.DeleteRange,
                    DeleteRangeRequest.newBuilder().setKey(ByteString.copyFromUtf8(key)).build(), TIMEOUT_MILLIS);
            return new Op(client, member, Kind.DELETE, key, null, null, invoke, System.nanoTime(), true,
                    answer.getHeader().getRevision(), answer.getDeleted(), "");
        } catch (ChaosGrpc.CallFailed e) {
            return unknown(client, member, Kind.DELETE, key, null, null, invoke, e);
        }
    }

    /** Puts {@code value} if the key holds {@code expected} (null: if the key does not exist). */
    private Op cas(int client, int member, String key, String expected, String value) throws InterruptedException {
        ByteString k = ByteString.copyFromUtf8(key);
        Compare compare = expected == null
                ? Compare.newBuilder().setKey(k).setTarget(Compare.CompareTarget.CREATE)
                        .setResult(Compare.CompareResult.EQUAL).setCreateRevision(0).build()
                : Compare.newBuilder().setKey(k).setTarget(Compare.CompareTarget.VALUE)
                        .setResult(Compare.CompareResult.EQUAL).setValue(ByteString.copyFromUtf8(expected)).build();
        TxnRequest txn = TxnRequest.newBuilder()
                .addCompare(compare)
                .addSuccess(RequestOp.newBuilder().setRequestPut(PutRequest.newBuilder().setKey(k)
                        .setValue(ByteString.copyFromUtf8(value))))
                .addFailure(RequestOp.newBuilder().setRequestRange(RangeRequest.newBuilder().setKey(k)))
                .build();
        long invoke = System.nanoTime();
        try {
            TxnResponse answer = grpc.call(member, KVGrpcClient.Txn, txn, TIMEOUT_MILLIS);
            if (answer.getSucceeded()) {
                return new Op(client, member, Kind.CAS, key, expected, value, invoke, System.nanoTime(), true,
                        answer.getHeader().getRevision(), 0, "");
            }
            return read(client, member, key, invoke, answer.getResponses(0).getResponseRange().getKvsList());
        } catch (ChaosGrpc.CallFailed e) {
            return unknown(client, member, Kind.CAS, key, expected, value, invoke, e);
        }
    }

    private Op read(int client, int member, String key, long invoke, List<KeyValue> kvs) {
        long response = System.nanoTime();
        return kvs.isEmpty()
                ? new Op(client, member, Kind.GET, key, null, null, invoke, response, true, 0, 0, "")
                : new Op(client, member, Kind.GET, key, null, kvs.get(0).getValue().toStringUtf8(), invoke, response,
                        true, kvs.get(0).getModRevision(), 0, "");
    }

    private static Op unknown(int client, int member, Kind kind, String key, String expected, String value,
            long invoke, ChaosGrpc.CallFailed e) {
        return new Op(client, member, kind, key, expected, value, invoke, LinearizabilityChecker.NEVER, false, 0, 0,
                e.getMessage());
    }
}
