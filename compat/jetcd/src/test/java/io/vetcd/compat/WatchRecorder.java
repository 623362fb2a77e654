package io.vetcd.compat;

import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

/**
 * A jetcd watch listener that records everything it is told, for assertions from the test thread.
 * Responses are kept whole (not flattened into events) so tests can check which events arrived
 * together. {@link #stop()} freezes the record: a response jetcd is still delivering while the
 * watcher is being closed is dropped, so after stop() the record is exactly what was seen before.
 */
public final class WatchRecorder implements Watch.Listener {

    /** Upper bound for waits; generous because a loaded CI box runs several JVMs. */
    static final long WAIT_MS = 20_000;

    private final String name;
    private final List<WatchResponse> responses = new ArrayList<>();   // with events
    private final List<WatchResponse> created = new ArrayList<>();
    private final List<WatchResponse> progress = new ArrayList<>();
    private final List<Throwable> errors = new ArrayList<>();
    private boolean completed;
    private boolean stopped;

    public WatchRecorder(String name) {
        this.name = name;
    }

    public String name() {
        return name;
    }

    @Override
    public synchronized void onNext(WatchResponse r) {
        if (stopped) {
            return;
        }
        if (r.isCreatedNotify()) {
            created.add(r);
        } else if (r.getEvents().isEmpty()) {
            progress.add(r);
        } else {
            responses.add(r);
        }
        notifyAll();
    }

    @Override
    public synchronized void onError(Throwable t) {
        errors.add(t);
        notifyAll();
    }

    @Override
    public synchronized void onCompleted() {
        completed = true;
        notifyAll();
    }

    /** Ignores everything delivered from now on. */
    public synchronized void stop() {
        stopped = true;
    }

    public synchronized List<WatchResponse> responses() {
        return new ArrayList<>(responses);
    }

    public synchronized List<WatchEvent> events() {
        return responses.stream().flatMap(r -> r.getEvents().stream()).collect(Collectors.toList());
    }

    public synchronized List<WatchResponse> created() {
        return new ArrayList<>(created);
    }

    public synchronized List<WatchResponse> progress() {
        return new ArrayList<>(progress);
    }

    public synchronized List<Throwable> errors() {
        return new ArrayList<>(errors);
    }

    public synchronized boolean completed() {
        return completed;
    }

    /** Revision of the last event seen, 0 if none. */
    public synchronized long lastRevision() {
        if (responses.isEmpty()) {
            return 0;
        }
        List<WatchEvent> evs = responses.get(responses.size() - 1).getEvents();
        return evs.get(evs.size() - 1).getKeyValue().getModRevision();
    }

    public synchronized int eventCount() {
        return responses.stream().mapToInt(r -> r.getEvents().size()).sum();
    }

    /** Waits until the condition holds; fails with the record so far otherwise. */
    public synchronized void await(String what, BooleanSupplier cond) {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (!cond.getAsBoolean()) {
            if (completed) {
                // jetcd completes a watcher only when it is closed or failed for good: nothing more will come
                throw new AssertionError("watcher " + name + ": ended before " + what + "; seen " + describe(events())
                        + ", errors " + errors);
            }
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                throw new AssertionError("watcher " + name + ": no " + what + " within " + WAIT_MS + " ms; seen "
                        + describe(events()) + ", errors " + errors + ", completed " + completed);
            }
            try {
                wait(Math.min(left, 100));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    public void awaitEvents(int n) {
        await(n + " events", () -> eventCount() >= n);
    }

    public void awaitRevision(long rev) {
        await("event at revision " + rev, () -> lastRevision() >= rev);
    }

    public void awaitCreated() {
        await("created response", () -> !created.isEmpty());
    }

    public void awaitError() {
        await("error", () -> !errors.isEmpty());
    }

    public void awaitCompleted() {
        await("completion", () -> completed);
    }

    public void awaitProgress(int n) {
        await(n + " progress notifications", () -> progress.size() >= n);
    }

    // ------------------------------------------------------------ formatting

    static String str(io.etcd.jetcd.ByteSequence b) {
        return b.toString(StandardCharsets.UTF_8);
    }

    /** "PUT key=value@mod" or "DELETE key@mod"; keys shortened by {@code ns}. */
    static String describe(WatchEvent e, String ns) {
        KeyValue kv = e.getKeyValue();
        String key = str(kv.getKey());
        if (ns != null && key.startsWith(ns)) {
            key = key.substring(ns.length());
        }
        if (e.getEventType() == WatchEvent.EventType.DELETE) {
            return "DELETE " + key + "@" + kv.getModRevision();
        }
        return e.getEventType() + " " + key + "=" + str(kv.getValue()) + "@" + kv.getModRevision();
    }

    static List<String> describe(List<WatchEvent> evs, String ns) {
        return evs.stream().map(e -> describe(e, ns)).collect(Collectors.toList());
    }

    static List<String> describe(List<WatchEvent> evs) {
        return describe(evs, null);
    }
}
