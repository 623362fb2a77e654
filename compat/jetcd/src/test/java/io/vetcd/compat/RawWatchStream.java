package io.vetcd.compat;

import com.google.protobuf.ByteString;
import io.etcd.jetcd.api.WatchCancelRequest;
import io.etcd.jetcd.api.WatchCreateRequest;
import io.etcd.jetcd.api.WatchGrpc;
import io.etcd.jetcd.api.WatchProgressRequest;
import io.etcd.jetcd.api.WatchRequest;
import io.etcd.jetcd.api.WatchResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One Watch gRPC stream driven by hand. jetcd 0.8.7 opens a separate stream per watcher and closes
 * a watcher by cancelling its whole RPC, so the multiplexing of several watch ids on one stream,
 * WatchCancelRequest and the raw progress response can only be observed through this.
 */
final class RawWatchStream implements AutoCloseable {

    private final ManagedChannel channel;
    private final StreamObserver<WatchRequest> requests;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private static final Object END = new Object();

    RawWatchStream(int port) {
        channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
        requests = WatchGrpc.newStub(channel).watch(new StreamObserver<>() {
            @Override
            public void onNext(WatchResponse r) {
                inbox.add(r);
            }

            @Override
            public void onError(Throwable t) {
                inbox.add(t);
            }

            @Override
            public void onCompleted() {
                inbox.add(END);
            }
        });
    }

    static ByteString bytes(String s) {
        return ByteString.copyFrom(s, StandardCharsets.UTF_8);
    }

    synchronized void send(WatchRequest r) {
        requests.onNext(r);
    }

    void create(WatchCreateRequest c) {
        send(WatchRequest.newBuilder().setCreateRequest(c).build());
    }

    /** Creates a watch and returns its created response (the next message on the stream). */
    WatchResponse createAndAwait(WatchCreateRequest c) {
        create(c);
        WatchResponse r = next();
        if (!r.getCreated()) {
            throw new AssertionError("expected a created response, got " + r);
        }
        return r;
    }

    void cancel(long watchId) {
        send(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(watchId)).build());
    }

    void requestProgress() {
        send(WatchRequest.newBuilder().setProgressRequest(WatchProgressRequest.newBuilder()).build());
    }

    /** Next response; fails if none arrives in time or the stream failed. */
    WatchResponse next() {
        Object o;
        try {
            o = inbox.poll(WatchRecorder.WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        if (o == null) {
            throw new AssertionError("no watch response within " + WatchRecorder.WAIT_MS + " ms");
        }
        if (o instanceof Throwable) {
            throw new AssertionError("watch stream failed: " + o, (Throwable) o);
        }
        if (o == END) {
            throw new AssertionError("watch stream ended by the server");
        }
        return (WatchResponse) o;
    }

    /** Responses until (and including) the first one the predicate accepts. */
    List<WatchResponse> nextUntil(java.util.function.Predicate<WatchResponse> last) {
        List<WatchResponse> out = new ArrayList<>();
        while (true) {
            WatchResponse r = next();
            out.add(r);
            if (last.test(r)) {
                return out;
            }
        }
    }

    @Override
    public void close() {
        try {
            requests.onCompleted();
        } catch (RuntimeException ignored) {
            // stream already failed
        }
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
