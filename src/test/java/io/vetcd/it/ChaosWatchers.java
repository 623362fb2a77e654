package io.vetcd.it;

import com.google.protobuf.ByteString;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchGrpcClient;
import io.vetcd.proto.etcdserverpb.WatchProgressRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One watcher per member on the chaos keys, for the whole run: a Watch stream with progress
 * notifications on, asked for progress every second, and re-created on the same member whenever the
 * stream breaks (the member was killed, or answered with an error) from the revision after the last
 * event it delivered — as etcd's clients resume. Everything a stream delivers is recorded, segment by
 * segment, for {@link WatchValidator}.
 */
final class ChaosWatchers {

    private static final long RECONNECT_MILLIS = 300;
    private static final long PROGRESS_REQUEST_MILLIS = 1_000;

    /** One change as a watch delivers it. */
    record Ev(boolean put, String key, String value, long mod) {
        @Override
        public String toString() {
            return (put ? "PUT " + key + "=" + value : "DELETE " + key) + "@" + mod;
        }
    }

    /** One WatchResponse: its events, or none for a progress notification at {@code headerRevision}. */
    record Response(long headerRevision, List<Ev> events) {
        boolean progress() {
            return events.isEmpty();
        }
    }

    /** What one stream delivered, from the revision it was created at. */
    record Segment(long start, List<Response> responses, List<String> errors) {
        long lastEventRevision() {
            for (int i = responses.size() - 1; i >= 0; i--) {
                List<Ev> events = responses.get(i).events();
                if (!events.isEmpty()) {
                    return events.get(events.size() - 1).mod();
                }
            }
            return 0;
        }
    }

    /** The watcher on one member: its segments, in order. Handlers run on one event loop; reads lock. */
    final class Watcher {
        final int member;
        final List<Segment> segments = new ArrayList<>();
        private final long firstRevision;
        private GrpcClientRequest<WatchRequest, WatchResponse> stream;
        private Segment current;
        private boolean closed;

        Watcher(int member, long firstRevision) {
            this.member = member;
            this.firstRevision = firstRevision;
        }

        synchronized long lastEventRevision() {
            for (int i = segments.size() - 1; i >= 0; i--) {
                long last = segments.get(i).lastEventRevision();
                if (last > 0) {
                    return last;
                }
            }
            return firstRevision - 1;
        }

        /** The highest revision a progress notification named, 0 if none came. */
        synchronized long progressRevision() {
            long progress = 0;
            for (Segment s : segments) {
                for (Response r : s.responses()) {
                    if (r.progress()) {
                        progress = Math.max(progress, r.headerRevision());
                    }
                }
            }
            return progress;
        }

        /** Every event delivered, in order. */
        synchronized List<Ev> events() {
            return segments.stream().flatMap(s -> s.responses().stream()).flatMap(r -> r.events().stream()).toList();
        }

        synchronized List<Segment> segments() {
            return segments.stream()
                    .map(s -> new Segment(s.start(), List.copyOf(s.responses()), List.copyOf(s.errors())))
                    .toList();
        }

        private synchronized void open() {
            if (closed) {
                return;
            }
            long start = lastEventRevision() + 1;
            grpc.client().request(grpc.address(member), WatchGrpcClient.Watch).onComplete(ar -> {
                if (ar.failed()) {
                    reconnectLater();
                    return;
                }
                GrpcClientRequest<WatchRequest, WatchResponse> request = ar.result();
                Segment segment = new Segment(start, new ArrayList<>(), new ArrayList<>());
                synchronized (this) {
                    if (closed) {
                        request.cancel();
                        return;
                    }
                    stream = request;
                    current = segment;
                    segments.add(segment);
                }
                request.response().onSuccess(response -> {
                    response.handler(r -> onResponse(segment, r));
                    response.exceptionHandler(e -> ended(segment, null));
                    response.endHandler(v -> ended(segment, response.status() + " " + response.statusMessage()));
                }).onFailure(e -> ended(segment, null));
                request.exceptionHandler(e -> ended(segment, null));
                request.write(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
                        .setKey(ByteString.copyFromUtf8(ChaosClients.PREFIX))
                        .setRangeEnd(ByteString.copyFromUtf8(prefixEnd(ChaosClients.PREFIX)))
                        .setStartRevision(start)
                        .setProgressNotify(true)).build());
            });
        }

        private void onResponse(Segment segment, WatchResponse r) {
            synchronized (this) {
                if (current != segment) {
                    return; // a late message of a stream already given up: the next one resumes after it
                }
                if (r.getCanceled()) {
                    segment.errors().add("canceled: compact revision " + r.getCompactRevision() + ", reason '"
                            + r.getCancelReason() + "'");
                    return;
                }
                if (r.getCreated()) {
                    return;
                }
                List<Ev> events = new ArrayList<>(r.getEventsCount());
                for (Event e : r.getEventsList()) {
                    events.add(new Ev(e.getType() == Event.EventType.PUT, e.getKv().getKey().toStringUtf8(),
                            e.getKv().getValue().toStringUtf8(), e.getKv().getModRevision()));
                }
                segment.responses().add(new Response(r.getHeader().getRevision(), List.copyOf(events)));
            }
        }

        /** The stream broke: a gRPC status other than a cancel we asked for is worth recording. */
        private void ended(Segment segment, String status) {
            synchronized (this) {
                if (current != segment) {
                    return; // already handled
                }
                current = null;
                stream = null;
                if (status != null && !closed && !status.startsWith("UNAVAILABLE") && !status.startsWith("CANCELLED")) {
                    segment.errors().add("stream ended: " + status);
                }
            }
            reconnectLater();
        }

        private void reconnectLater() {
            grpc.vertx().setTimer(RECONNECT_MILLIS, t -> open());
        }

        private synchronized void askProgress() {
            if (stream != null) {
                stream.write(WatchRequest.newBuilder().setProgressRequest(WatchProgressRequest.getDefaultInstance())
                        .build());
            }
        }

        private synchronized void close() {
            closed = true;
            if (stream != null) {
                stream.cancel();
                stream = null;
                current = null;
            }
        }
    }

    private final ChaosGrpc grpc;
    private final List<Watcher> watchers = new ArrayList<>();
    private long progressTimer = -1;

    /** Watches {@link ChaosClients#PREFIX} on each member of {@code members} from {@code firstRevision}. */
    ChaosWatchers(ChaosGrpc grpc, List<Integer> members, long firstRevision) {
        this.grpc = grpc;
        members.forEach(m -> watchers.add(new Watcher(m, firstRevision)));
    }

    void start() {
        watchers.forEach(Watcher::open);
        progressTimer = grpc.vertx().setPeriodic(PROGRESS_REQUEST_MILLIS, t -> watchers.forEach(Watcher::askProgress));
    }

    List<Watcher> watchers() {
        return watchers;
    }

    /** Waits until every watcher delivered an event at {@code revision} or later; false at the deadline. */
    boolean awaitRevision(long revision, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (watchers.stream().anyMatch(w -> w.lastEventRevision() < revision)) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(100);
        }
        return true;
    }

    /** Waits until every watcher was notified of progress at {@code revision} or later; false at the deadline. */
    boolean awaitProgress(long revision, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (watchers.stream().anyMatch(w -> w.progressRevision() < revision)) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(100);
        }
        return true;
    }

    void close() {
        if (progressTimer >= 0) {
            grpc.vertx().cancelTimer(progressTimer);
        }
        watchers.forEach(Watcher::close);
    }

    static String prefixEnd(String prefix) {
        return prefix.substring(0, prefix.length() - 1) + (char) (prefix.charAt(prefix.length() - 1) + 1);
    }
}
