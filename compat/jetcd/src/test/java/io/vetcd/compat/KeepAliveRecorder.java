package io.vetcd.compat;

import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Records what a jetcd keep-alive observer hears. Errors are kept, not thrown: jetcd restarts its
 * keep-alive stream by itself, so an error during an election is expected and a test decides.
 */
final class KeepAliveRecorder implements StreamObserver<LeaseKeepAliveResponse> {

    final List<LeaseKeepAliveResponse> answers = new CopyOnWriteArrayList<>();
    final List<Throwable> errors = new CopyOnWriteArrayList<>();

    @Override
    public void onNext(LeaseKeepAliveResponse r) {
        answers.add(r);
    }

    @Override
    public void onError(Throwable t) {
        errors.add(t);
    }

    @Override
    public void onCompleted() {
    }
}
