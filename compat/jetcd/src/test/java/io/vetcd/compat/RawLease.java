package io.vetcd.compat;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnknownFieldSet;
import io.etcd.jetcd.api.KVGrpc;
import io.etcd.jetcd.api.LeaseGrantRequest;
import io.etcd.jetcd.api.LeaseGrantResponse;
import io.etcd.jetcd.api.LeaseGrpc;
import io.etcd.jetcd.api.LeaseKeepAliveRequest;
import io.etcd.jetcd.api.LeaseKeepAliveResponse;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Lease calls jetcd 0.8.7 cannot make: LeaseLeases (absent from its generated proto, so sent with a
 * hand-made method descriptor and decoded field by field), grant with a client-chosen id, the
 * bare keep-alive answer for an unknown lease (jetcd turns TTL 0 into its own exception), and a
 * put with ignore_lease.
 */
final class RawLease implements AutoCloseable {

    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    /** etcdserverpb.Lease/LeaseLeases: LeaseLeasesRequest {} → {header = 1, repeated LeaseStatus leases = 2 {ID = 1}}. */
    private static final MethodDescriptor<byte[], byte[]> LEASE_LEASES = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName("etcdserverpb.Lease/LeaseLeases")
            .setRequestMarshaller(BYTES)
            .setResponseMarshaller(BYTES)
            .build();

    private final ManagedChannel channel;

    RawLease(int port) {
        channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    }

    private CallOptions opts() {
        return CallOptions.DEFAULT.withDeadlineAfter(EtcdTestBase.TIMEOUT_S, TimeUnit.SECONDS);
    }

    /** Lease ids the server lists. */
    List<Long> leases() {
        byte[] resp = ClientCalls.blockingUnaryCall(channel, LEASE_LEASES, opts(), new byte[0]);
        try {
            UnknownFieldSet msg = UnknownFieldSet.parseFrom(resp);
            List<Long> ids = new ArrayList<>();
            if (msg.hasField(2)) {
                for (ByteString status : msg.getField(2).getLengthDelimitedList()) {
                    UnknownFieldSet s = UnknownFieldSet.parseFrom(status);
                    ids.add(s.hasField(1) ? s.getField(1).getVarintList().get(0) : 0L);
                }
            }
            return ids;
        } catch (InvalidProtocolBufferException e) {
            throw new AssertionError("cannot decode LeaseLeasesResponse", e);
        }
    }

    LeaseGrantResponse grant(long id, long ttl) {
        return LeaseGrpc.newBlockingStub(channel).withDeadlineAfter(EtcdTestBase.TIMEOUT_S, TimeUnit.SECONDS)
                .leaseGrant(LeaseGrantRequest.newBuilder().setID(id).setTTL(ttl).build());
    }

    /** KV on the same channel, for put options jetcd lacks (ignore_lease). */
    KVGrpc.KVBlockingStub kv() {
        return KVGrpc.newBlockingStub(channel).withDeadlineAfter(EtcdTestBase.TIMEOUT_S, TimeUnit.SECONDS);
    }

    /** One keep-alive on a fresh stream; returns the server's answer as is. */
    LeaseKeepAliveResponse keepAliveOnce(long id) {
        CompletableFuture<LeaseKeepAliveResponse> f = new CompletableFuture<>();
        StreamObserver<LeaseKeepAliveRequest> req = LeaseGrpc.newStub(channel).leaseKeepAlive(new StreamObserver<>() {
            @Override
            public void onNext(LeaseKeepAliveResponse r) {
                f.complete(r);
            }

            @Override
            public void onError(Throwable t) {
                f.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {
                f.completeExceptionally(new AssertionError("keep-alive stream ended without an answer"));
            }
        });
        req.onNext(LeaseKeepAliveRequest.newBuilder().setID(id).build());
        try {
            return EtcdTestBase.await(f);
        } finally {
            req.onCompleted();
        }
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
