package io.vetcd.compat;

import static io.vetcd.compat.EtcdTestBase.await;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.api.WatchCreateRequest;
import io.etcd.jetcd.kv.DeleteResponse;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import io.vetcd.compat.WatchGuaranteeChecker.Ev;
import io.vetcd.compat.WatchGuaranteeChecker.Filter;
import io.vetcd.compat.WatchGuaranteeChecker.Observed;
import io.vetcd.compat.WatchGuaranteeChecker.Segment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

/**
 * Concurrent writers (puts, deletes, range deletes, txns) over a few keys under a prefix while
 * watchers of several kinds watch; afterwards every watcher's stream is checked against the
 * history with {@link WatchGuaranteeChecker}. Works on one member or on a cluster: writers and
 * watchers are spread over the given clients (one client per member).
 */
final class WatchGuaranteeScenario {

    private static final int KEYS = 8;
    private static final long SEED = 20240611L;

    private final String ns;
    private final List<Client> clients;
    private final List<Integer> ports;
    private final List<String> urls;
    private final int writers;
    private final int opsPerWriter;

    private final String prefix;
    private final String outside;
    private final List<String> keys = new ArrayList<>();
    private final List<Write> writes = Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger opsDone = new AtomicInteger();
    private final List<JetcdWatcher> jetcdWatchers = new ArrayList<>();
    private final List<RawWatcher> rawWatchers = new ArrayList<>();
    private final List<RawWatchStream> rawStreams = new ArrayList<>();
    private final List<Client> ownClients = new ArrayList<>();

    /** A write that created a revision, with its changes in the order they were applied. */
    private record Change(boolean put, String key, String value) {
    }

    private record Write(long rev, List<Change> changes) {
    }

    WatchGuaranteeScenario(String ns, List<Client> clients, List<Integer> ports, List<String> urls, int writers,
            int opsPerWriter) {
        this.ns = ns;
        this.clients = clients;
        this.ports = ports;
        this.urls = urls;
        this.writers = writers;
        this.opsPerWriter = opsPerWriter;
        this.prefix = ns + "w/";
        this.outside = ns + "o/x";
        for (int i = 0; i < KEYS; i++) {
            keys.add(prefix + "k" + i);
        }
    }

    private static ByteSequence bs(String s) {
        return ByteSequence.from(s, StandardCharsets.UTF_8);
    }

    private static String str(ByteSequence b) {
        return b.toString(StandardCharsets.UTF_8);
    }

    private Client client(int i) {
        return clients.get(Math.floorMod(i, clients.size()));
    }

    private long currentRevision() {
        return await(client(0).getKVClient().get(bs("\u0000__revision_probe__"))).getHeader().getRevision();
    }

    // ------------------------------------------------------------------ watchers

    /** A jetcd watcher; restart() closes it and watches again from the last revision seen + 1. */
    private final class JetcdWatcher {
        final Observed obs;
        final Client client;
        final boolean slow;
        final List<Long> restartAt;
        WatchRecorder rec;
        Watch.Watcher watcher;
        Segment seg;

        JetcdWatcher(String name, Filter f, Client client, boolean slow, List<Long> restartAt) {
            this.obs = new Observed(name, f);
            this.client = client;
            this.slow = slow;
            this.restartAt = new ArrayList<>(restartAt);
        }

        /** Starts a segment at {@code rev}; 0 means "from now", the start then read from the created header. */
        void start(long rev) {
            WatchOption.Builder b = WatchOption.builder().withRevision(rev).withPrevKV(obs.filter.prevKv())
                    .withNoPut(obs.filter.noPut()).withNoDelete(obs.filter.noDelete())
                    .withCreateNotify(rev == 0);
            if (obs.filter.end() != null) {
                b.withRange(bs(obs.filter.end()));
            }
            WatchRecorder r = new WatchRecorder(obs.name + "#" + (obs.segments.size() + 1));
            rec = r;
            Watch.Listener l = !slow ? r : new Watch.Listener() {
                @Override
                public void onNext(WatchResponse resp) {
                    // a consumer that lags: the server has to buffer (or batch) for this stream
                    sleep(1);
                    r.onNext(resp);
                }

                @Override
                public void onError(Throwable t) {
                    r.onError(t);
                }

                @Override
                public void onCompleted() {
                    r.onCompleted();
                }
            };
            watcher = client.getWatchClient().watch(bs(obs.filter.key()), b.build(), l);
            if (rev == 0) {
                // etcd starts such a watch right after the revision in its created response
                r.awaitCreated();
                rev = r.created().get(0).getHeader().getRevision() + 1;
            }
            seg = new Segment(rev);
            obs.segments.add(seg);
        }

        /** Freezes the current segment: copies what the recorder saw into it. */
        void stopSegment() {
            rec.stop();
            watcher.close();
            for (WatchResponse r : rec.responses()) {
                seg.responses.add(r.getEvents().stream().map(WatchGuaranteeScenario::ev).collect(Collectors.toList()));
            }
            rec.errors().forEach(t -> obs.errors.add(rec.name() + ": " + t));
        }

        void maybeRestart() {
            if (!restartAt.isEmpty() && rec.eventCount() >= restartAt.get(0)) {
                restartAt.remove(0);
                stopSegment();
                long last = seg.lastRevision();
                start(last == 0 ? seg.start : last + 1);
            }
        }
    }

    /** A watch id on a shared hand-driven stream: several of them are multiplexed on one stream. */
    private static final class RawWatcher {
        final Observed obs;
        final RawWatchStream stream;
        long watchId;

        RawWatcher(String name, Filter f, RawWatchStream stream) {
            this.obs = new Observed(name, f);
            this.stream = stream;
        }
    }

    private static Ev ev(WatchEvent e) {
        KeyValue kv = e.getKeyValue();
        KeyValue p = e.getPrevKV();
        Ev prev = p.getKey().isEmpty() ? null
                : new Ev(true, str(p.getKey()), str(p.getValue()), p.getCreateRevision(), p.getModRevision(),
                        p.getVersion(), p.getLease(), null);
        boolean put = e.getEventType() == WatchEvent.EventType.PUT;
        return new Ev(put, str(kv.getKey()), put ? str(kv.getValue()) : "", kv.getCreateRevision(),
                kv.getModRevision(), kv.getVersion(), kv.getLease(), prev);
    }

    private static Ev ev(io.etcd.jetcd.api.Event e) {
        io.etcd.jetcd.api.KeyValue kv = e.getKv();
        Ev prev = null;
        if (e.hasPrevKv()) {
            io.etcd.jetcd.api.KeyValue p = e.getPrevKv();
            prev = new Ev(true, p.getKey().toStringUtf8(), p.getValue().toStringUtf8(), p.getCreateRevision(),
                    p.getModRevision(), p.getVersion(), p.getLease(), null);
        }
        boolean put = e.getType() == io.etcd.jetcd.api.Event.EventType.PUT;
        return new Ev(put, kv.getKey().toStringUtf8(), put ? kv.getValue().toStringUtf8() : "", kv.getCreateRevision(),
                kv.getModRevision(), kv.getVersion(), kv.getLease(), prev);
    }

    private Filter prefixFilter(boolean noPut, boolean noDelete, boolean prevKv) {
        return new Filter(prefix, prefix.substring(0, prefix.length() - 1) + "0", noPut, noDelete, prevKv);
    }

    private JetcdWatcher jetcd(String name, Filter f, int member, List<Long> restartAt) {
        JetcdWatcher w = new JetcdWatcher(name + "@m" + Math.floorMod(member, clients.size()), f, client(member),
                false, restartAt);
        jetcdWatchers.add(w);
        return w;
    }

    // ------------------------------------------------------------------ writers

    private void writer(int id) {
        Random rnd = new Random(SEED + id);
        KV kv = client(id).getKVClient();
        DeleteOption withPrev = DeleteOption.builder().withPrevKV(true).build();
        for (int i = 0; i < opsPerWriter; i++) {
            String val = "w" + id + "-" + i;
            int dice = rnd.nextInt(100);
            if (dice < 45) {
                String k = keys.get(rnd.nextInt(KEYS));
                long rev = await(kv.put(bs(k), bs(val))).getHeader().getRevision();
                writes.add(new Write(rev, List.of(new Change(true, k, val))));
            } else if (dice < 60) {
                String k = keys.get(rnd.nextInt(KEYS));
                DeleteResponse d = await(kv.delete(bs(k), withPrev));
                record(d.getHeader().getRevision(), deletes(d));
            } else if (dice < 65) {
                // range delete [k1, k4): the deletes come in key order
                DeleteResponse d = await(kv.delete(bs(keys.get(1)),
                        DeleteOption.builder().withRange(bs(keys.get(4))).withPrevKV(true).build()));
                record(d.getHeader().getRevision(), deletes(d));
            } else if (dice < 70) {
                // a revision nobody under the prefix sees
                long rev = await(kv.put(bs(outside), bs(val))).getHeader().getRevision();
                writes.add(new Write(rev, List.of(new Change(true, outside, val))));
            } else {
                txn(kv, rnd, val);
            }
            opsDone.incrementAndGet();
        }
    }

    private static List<Change> deletes(DeleteResponse d) {
        List<Change> out = new ArrayList<>();
        // range deletes apply in key order; sort rather than trust the order of prev_kvs
        List<String> ks = d.getPrevKvs().stream().map(kv -> str(kv.getKey())).sorted().collect(Collectors.toList());
        for (String k : ks) {
            out.add(new Change(false, k, ""));
        }
        return out;
    }

    private void record(long rev, List<Change> changes) {
        if (!changes.isEmpty()) {
            writes.add(new Write(rev, changes));
        }
    }

    /** If(version(k) > 0) Then(1-3 ops) Else(1-3 ops) over distinct keys, sometimes also outside the prefix. */
    private void txn(KV kv, Random rnd, String val) {
        String ck = keys.get(rnd.nextInt(KEYS));
        List<String[]> then = branch(rnd);
        List<String[]> els = branch(rnd);
        TxnResponse r = await(kv.txn()
                .If(new Cmp(bs(ck), Cmp.Op.GREATER, CmpTarget.version(0)))
                .Then(ops(then, val + "t"))
                .Else(ops(els, val + "e"))
                .commit());
        List<String[]> ran = r.isSucceeded() ? then : els;
        String v = val + (r.isSucceeded() ? "t" : "e");
        List<Change> changes = new ArrayList<>();
        int del = 0;
        for (String[] op : ran) {
            if (op[0].equals("put")) {
                changes.add(new Change(true, op[1], v));
            } else {
                DeleteResponse d = r.getDeleteResponses().get(del++);
                changes.addAll(deletes(d));
            }
        }
        record(r.getHeader().getRevision(), changes);
    }

    private List<String[]> branch(Random rnd) {
        List<String> shuffled = new ArrayList<>(keys);
        Collections.shuffle(shuffled, rnd);
        int n = 1 + rnd.nextInt(3);
        List<String[]> ops = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ops.add(new String[] {rnd.nextInt(10) < 7 ? "put" : "del", shuffled.get(i)});
        }
        if (rnd.nextInt(5) == 0) {
            ops.add(rnd.nextInt(ops.size() + 1), new String[] {"put", outside});
        }
        return ops;
    }

    private Op[] ops(List<String[]> spec, String val) {
        DeleteOption withPrev = DeleteOption.builder().withPrevKV(true).build();
        return spec.stream().map(o -> o[0].equals("put") ? Op.put(bs(o[1]), bs(val), PutOption.DEFAULT)
                : Op.delete(bs(o[1]), withPrev)).toArray(Op[]::new);
    }

    // ------------------------------------------------------------------ run

    void run() throws Exception {
        long r0 = currentRevision();
        long start = r0 + 1;
        int n = clients.size();

        // before the writes: watchers from the first revision, of every kind, spread over members
        jetcd("all-prevkv", prefixFilter(false, false, true), 0, List.of()).start(start);
        jetcd("restarting", prefixFilter(false, false, false), 1, List.of(150L, 400L, 700L)).start(start);
        jetcd("one-key", new Filter(keys.get(0), null, false, false, true), 2, List.of()).start(start);
        jetcd("range-nodelete", new Filter(keys.get(2), keys.get(6), false, true, false), 3, List.of(400L))
                .start(start);
        jetcd("noput", prefixFilter(true, false, false), 4, List.of()).start(start);
        Client slowClient = Client.builder().endpoints(urls.get(0)).build();
        ownClients.add(slowClient);
        JetcdWatcher slow = new JetcdWatcher("slow@m0", prefixFilter(false, false, true), slowClient, true, List.of());
        jetcdWatchers.add(slow);
        slow.start(start);
        // several watch ids multiplexed on one stream per member
        for (int m = 0; m < n; m++) {
            RawWatchStream s = new RawWatchStream(ports.get(m));
            rawStreams.add(s);
            RawWatcher a = new RawWatcher("raw-prefix@m" + m, prefixFilter(false, false, true), s);
            RawWatcher b = new RawWatcher("raw-k3@m" + m, new Filter(keys.get(3), null, false, false, false), s);
            for (RawWatcher w : List.of(a, b)) {
                WatchCreateRequest.Builder c = WatchCreateRequest.newBuilder()
                        .setKey(RawWatchStream.bytes(w.obs.filter.key()))
                        .setStartRevision(start).setPrevKv(w.obs.filter.prevKv());
                if (w.obs.filter.end() != null) {
                    c.setRangeEnd(RawWatchStream.bytes(w.obs.filter.end()));
                }
                w.watchId = s.createAndAwait(c.build()).getWatchId();
                w.obs.segments.add(new Segment(start));
                rawWatchers.add(w);
            }
        }

        long t0 = System.nanoTime();
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        List<Future<?>> fs = new ArrayList<>();
        for (int i = 0; i < writers; i++) {
            int id = i;
            fs.add(pool.submit(() -> writer(id)));
        }
        int total = writers * opsPerWriter;
        boolean lateStarted = false;
        try {
            while (fs.stream().anyMatch(f -> !f.isDone())) {
                for (JetcdWatcher w : new ArrayList<>(jetcdWatchers)) {
                    w.maybeRestart();
                }
                if (!lateStarted && opsDone.get() >= total / 3) {
                    lateStarted = true;
                    long now = currentRevision();
                    // from "now" (no start revision) while writes go on
                    jetcd("late-now", prefixFilter(false, false, false), 5, List.of()).start(0);
                    // from the past while writes go on: replay then live, the unsynced→synced handover
                    jetcd("late-past", prefixFilter(false, false, true), 6, List.of())
                            .start(Math.max(start, now - 150));
                }
                Thread.sleep(10);
            }
            for (Future<?> f : fs) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        long end = currentRevision();
        long t1 = System.nanoTime();
        // after the writes: a pure replay of everything
        jetcd("replay-after", prefixFilter(false, false, true), 7, List.of()).start(start);

        NavigableMap<Long, List<Ev>> history = history(r0, end);
        crossCheckWithRanges(history, r0, end);
        WatchGuaranteeChecker checker = new WatchGuaranteeChecker(history, end);
        long t2 = System.nanoTime();

        // let every watcher catch up to the last revision it has to see, then freeze it
        List<String> problems = new ArrayList<>();
        for (JetcdWatcher w : jetcdWatchers) {
            long target = checker.lastExpectedRevision(w.obs.filter, w.seg.start);
            try {
                if (target > 0) {
                    w.rec.awaitRevision(target);
                }
            } catch (AssertionError e) {
                problems.add(w.obs.name + ": " + e.getMessage());
            }
            w.stopSegment();
        }
        drainRaw(checker);

        int events = 0;
        for (Observed o : observed()) {
            for (String v : checker.check(o)) {
                problems.add(o.name + ": " + v);
            }
            events += o.segments.stream().mapToInt(s -> s.events().size()).sum();
        }
        long t3 = System.nanoTime();
        System.out.printf("watch guarantees: %d writes → revisions %d..%d, %d watchers, %d events checked;"
                + " writes %d ms, range cross-check %d ms, catch-up and check %d ms%n",
                writes.size(), start, end, observed().size(), events, (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000,
                (t3 - t2) / 1_000_000);
        System.out.println("  " + observed().stream().map(o -> o.name + ": " + o.segments.size() + " segment(s) from "
                + o.segments.get(0).start + ", " + o.segments.stream().mapToInt(x -> x.events().size()).sum() + " events")
                .collect(Collectors.joining("\n  ")));
        if (!problems.isEmpty()) {
            throw new AssertionError(problems.size() + " watch guarantee violations:\n  "
                    + problems.stream().limit(40).collect(Collectors.joining("\n  ")));
        }
    }

    private List<Observed> observed() {
        List<Observed> out = new ArrayList<>();
        jetcdWatchers.forEach(w -> out.add(w.obs));
        rawWatchers.forEach(w -> out.add(w.obs));
        return out;
    }

    /** Reads every raw stream until each of its watch ids reached its last expected revision. */
    private void drainRaw(WatchGuaranteeChecker checker) {
        for (RawWatchStream s : rawStreams) {
            Map<Long, RawWatcher> byId = new HashMap<>();
            for (RawWatcher w : rawWatchers) {
                if (w.stream == s) {
                    byId.put(w.watchId, w);
                }
            }
            Map<Long, Long> target = new HashMap<>();
            byId.forEach((id, w) -> target.put(id, checker.lastExpectedRevision(w.obs.filter, start(w))));
            try {
                while (byId.entrySet().stream().anyMatch(e -> e.getValue().obs.segments.get(0).lastRevision()
                        < target.get(e.getKey()))) {
                    io.etcd.jetcd.api.WatchResponse r = s.next();
                    RawWatcher w = byId.get(r.getWatchId());
                    if (w == null || r.getCreated() || r.getEventsCount() == 0) {
                        if (r.getCanceled()) {
                            byId.values().forEach(x -> x.obs.errors.add("stream cancelled: " + r));
                            break;
                        }
                        continue;
                    }
                    w.obs.segments.get(0).responses.add(
                            r.getEventsList().stream().map(WatchGuaranteeScenario::ev).collect(Collectors.toList()));
                }
            } catch (AssertionError e) {
                byId.values().forEach(x -> x.obs.errors.add(e.getMessage()));
            }
        }
    }

    private static long start(RawWatcher w) {
        return w.obs.segments.get(0).start;
    }

    /** Replays the writers' log into the expected events, with create/mod/version and prev_kv. */
    private NavigableMap<Long, List<Ev>> history(long r0, long end) {
        NavigableMap<Long, Write> byRev = new TreeMap<>();
        List<String> problems = new ArrayList<>();
        for (Write w : writes) {
            Write before = byRev.put(w.rev(), w);
            if (before != null) {
                problems.add("two writes answered with revision " + w.rev() + ": " + before + " and " + w);
            }
        }
        for (long r = r0 + 1; r <= end; r++) {
            if (!byRev.containsKey(r)) {
                problems.add("revision " + r + " was created by no write");
            }
        }
        if (!byRev.isEmpty() && (byRev.firstKey() <= r0 || byRev.lastKey() > end)) {
            problems.add("write revisions outside " + (r0 + 1) + ".." + end);
        }
        if (!problems.isEmpty()) {
            throw new AssertionError("write log inconsistent with the store's revisions:\n  "
                    + problems.stream().limit(20).collect(Collectors.joining("\n  ")));
        }
        Map<String, Ev> state = new HashMap<>();
        NavigableMap<Long, List<Ev>> history = new TreeMap<>();
        for (Write w : byRev.values()) {
            List<Ev> evs = new ArrayList<>();
            Map<String, Ev> next = new HashMap<>(state);
            for (Change c : w.changes()) {
                Ev prev = state.get(c.key());
                if (c.put()) {
                    Ev e = new Ev(true, c.key(), c.value(), prev == null ? w.rev() : prev.create(), w.rev(),
                            prev == null ? 1 : prev.version() + 1, 0, prev);
                    evs.add(e);
                    next.put(c.key(), e.withoutPrev());
                } else {
                    evs.add(new Ev(false, c.key(), "", 0, w.rev(), 0, 0, prev));
                    next.remove(c.key());
                }
            }
            state = next;
            history.put(w.rev(), evs);
            snapshots.put(w.rev(), state);
        }
        return history;
    }

    /** State of the prefix after each revision, as the history says. */
    private final Map<Long, Map<String, Ev>> snapshots = new HashMap<>();

    /** The history must agree with what the store itself returns for a range at each revision. */
    private void crossCheckWithRanges(NavigableMap<Long, List<Ev>> history, long r0, long end) {
        KV kv = client(0).getKVClient();
        List<String> problems = new ArrayList<>();
        // 32 ranges in flight at a time: one per revision is a couple of thousand requests
        final int window = 32;
        for (long from = r0 + 1; from <= end && problems.size() < 10; from += window) {
            List<CompletableFuture<GetResponse>> fs = new ArrayList<>();
            for (long r = from; r < from + window && r <= end; r++) {
                fs.add(kv.get(bs(prefix), GetOption.builder().isPrefix(true).withRevision(r).build()));
            }
            for (int i = 0; i < fs.size(); i++) {
                long r = from + i;
                GetResponse g = await(fs.get(i));
                Map<String, String> got = new TreeMap<>();
                for (KeyValue x : g.getKvs()) {
                    got.put(str(x.getKey()), str(x.getValue()) + "@c" + x.getCreateRevision() + ",m"
                            + x.getModRevision() + ",v" + x.getVersion());
                }
                Map<String, String> want = new TreeMap<>();
                for (Ev e : snapshots.get(r).values()) {
                    if (e.key().startsWith(prefix)) {
                        want.put(e.key(), e.value() + "@c" + e.create() + ",m" + e.mod() + ",v" + e.version());
                    }
                }
                if (!want.equals(got)) {
                    problems.add("revision " + r + ": history says " + want + ", range says " + got);
                }
            }
        }
        if (!problems.isEmpty()) {
            throw new AssertionError("history disagrees with the store:\n  " + String.join("\n  ", problems));
        }
    }

    void close() {
        for (JetcdWatcher w : jetcdWatchers) {
            try {
                w.watcher.close();
            } catch (RuntimeException ignored) {
                // already closed
            }
        }
        rawStreams.forEach(RawWatchStream::close);
        ownClients.forEach(Client::close);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
