package io.vetcd.api;

import com.google.protobuf.Message;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.StatusException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.CompactionRequest;
import io.vetcd.proto.etcdserverpb.CompactionResponse;
import io.vetcd.proto.etcdserverpb.DeleteRangeRequest;
import io.vetcd.proto.etcdserverpb.DeleteRangeResponse;
import io.vetcd.proto.etcdserverpb.KVService;
import io.vetcd.proto.etcdserverpb.PutRequest;
import io.vetcd.proto.etcdserverpb.PutResponse;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.RequestOp;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.TxnRequest;
import io.vetcd.proto.etcdserverpb.TxnResponse;
import io.vetcd.auth.Caller;
import io.vetcd.proto.authpb.Permission;
import io.vetcd.server.EtcdError;
import io.vetcd.server.WriteChecks;
import io.vetcd.server.KvApplier;
import io.vetcd.server.LocalMember;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * etcd's KV service. Writes go through the log ({@link LocalMember#put} and its kind); reads are served from the
 * local keyspace, after a read barrier unless the request asks for a serializable read.
 */
final class KvGrpc extends KVService {

  private final Vertx vertx;
  private final LocalMember member;

  KvGrpc(Vertx vertx, LocalMember member) {
    this.vertx = vertx;
    this.member = member;
  }

  @Override
  public Future<RangeResponse> range(RangeRequest request) {
    io.vetcd.metrics.EtcdMetrics.RANGES.increment();
    return call(request, () -> {
      RequestChecks.range(request);
      return read(request.getSerializable(), request.getRangeEnd().isEmpty(), Callers.capture(),
          (store, caller) -> store.checkKeys(caller, request.getKey().toByteArray(),
              request.getRangeEnd().toByteArray(), Permission.Type.READ),
          view -> KvApplier.range(view, request))
          .map(this::withHeader);
    });
  }

  @Override
  public Future<PutResponse> put(PutRequest request) {
    return call(request, () -> {
      RequestChecks.put(request);
      // Permissions are checked as the entry applies, against the store of that entry (etcd checks
      // writes there alone): a check here could use a store older than a grant already acknowledged.
      Future<Caller> caller = Callers.resolveOnceKnown(member);
      checkQuota(request);
      return caller.compose(c -> member.put(request, c))
          .map(this::withHeader);
    });
  }

  @Override
  public Future<DeleteRangeResponse> deleteRange(DeleteRangeRequest request) {
    return call(request, () -> {
      RequestChecks.deleteRange(request);
      return Callers.resolveOnceKnown(member) // checked as it applies, as a put
          .compose(caller -> member.deleteRange(request, caller))
          .map(this::withHeader);
    });
  }

  @Override
  public Future<TxnResponse> txn(TxnRequest request) {
    io.vetcd.metrics.EtcdMetrics.TXNS.increment();
    return call(request, () -> {
      RequestChecks.txn(request, member.config().maxTxnOps());
      Future<TxnResponse> result;
      if (KvApplier.isReadOnly(request)) {
        // Ranges only: no entry in the log, as etcd serves read-only txns.
        boolean serializable = request.getSuccessList().stream().allMatch(KvGrpc::serializable)
            && request.getFailureList().stream().allMatch(KvGrpc::serializable);
        result = read(serializable, false, Callers.capture(), (store, caller) -> WriteChecks.txn(store, caller, request),
            view -> KvApplier.readOnlyTxn(view, request));
      } else {
        if (KvApplier.hasPut(request)) {
          checkQuota(request);
        }
        result = Callers.resolveOnceKnown(member) // checked as it applies
            .compose(caller -> member.txn(request, caller));
      }
      return result.map(this::withHeader);
    });
  }

  @Override
  public Future<CompactionResponse> compact(CompactionRequest request) {
    return call(request, () -> member.compact(request)
        .map(this::withHeader));
  }

  /**
   * Runs a handler after gRPC's receive limit (the request limit plus etcd's 512 KiB of slack), which
   * etcd's gRPC server enforces with this message before the request reaches etcd.
   */
  private <T> Future<T> call(Message request, Supplier<Future<T>> handler) {
    long max = member.config().maxRequestBytes() + ClientServer.GRPC_OVERHEAD_BYTES;
    int size = request.getSerializedSize();
    if (size > max) {
      return Future.failedFuture(new StatusException(GrpcStatus.RESOURCE_EXHAUSTED,
          "grpc: received message larger than max (" + size + " vs. " + max + ")"));
    }
    if (member.isLearner() && !(request instanceof RangeRequest range && range.getSerializable())) {
      // etcd's interceptor: a learner serves serializable ranges (and Status) only.
      return Future.failedFuture(GrpcErrors.toStatus(EtcdError.NOT_SUPPORTED_FOR_LEARNER.exception()));
    }
    return GrpcErrors.call(handler);
  }

  /** etcd's quota gate: only writes that can grow the keyspace (puts) are refused when it is full. */
  private void checkQuota(Message request) {
    if (!member.spaceAvailable(request.getSerializedSize())) {
      throw EtcdError.NO_SPACE.exception();
    }
  }

  private static boolean serializable(RequestOp op) {
    return switch (op.getRequestCase()) {
      case REQUEST_RANGE -> op.getRequestRange().getSerializable();
      case REQUEST_TXN -> op.getRequestTxn().getSuccessList().stream().allMatch(KvGrpc::serializable)
          && op.getRequestTxn().getFailureList().stream().allMatch(KvGrpc::serializable);
      default -> true;
    };
  }

  /** Fills the outermost response header as etcd does: cluster, member and term beside the revision. */
  @SuppressWarnings("unchecked")
  private <T extends Message> T withHeader(Message response) {
    // Typed builders, not protobuf's reflection (descriptor lookup, field accessor tables), which was
    // a visible share of every request's CPU on the event loop.
    Message full;
    if (response instanceof PutResponse r) {
      full = r.toBuilder().setHeader(header(r.getHeader())).build();
    } else if (response instanceof RangeResponse r) {
      full = r.toBuilder().setHeader(header(r.getHeader())).build();
    } else if (response instanceof DeleteRangeResponse r) {
      full = r.toBuilder().setHeader(header(r.getHeader())).build();
    } else if (response instanceof TxnResponse r) {
      full = r.toBuilder().setHeader(header(r.getHeader())).build();
    } else if (response instanceof CompactionResponse r) {
      full = r.toBuilder().setHeader(header(r.getHeader())).build();
    } else {
      throw new IllegalArgumentException("no response header in " + response.getClass().getName());
    }
    return (T) full;
  }

  /** The applier's header (a revision) completed with this member's cluster, id and term. */
  private ResponseHeader header(ResponseHeader applied) {
    return member.header(applied.getRevision());
  }

  /**
   * Reads the keyspace once the read is allowed (linearizable: after the read barrier). A read of one
   * key runs right here on the event loop: an LMDB read transaction takes no lock and the lookup is a
   * few B-tree pages, cheaper than the two thread hand-offs a worker would cost (on two cores they
   * were a third of a one-key read's CPU). Reads of a range, which may walk any number of keys, go to
   * a worker so that a big one never stalls the loop's other connections.
   */
  private <T> Future<T> read(boolean serializable, boolean oneKey, Function<MvccStore.ReadView, T> reader) {
    Future<Void> ready = serializable ? member.serializableBarrier() : member.readBarrier();
    if (oneKey) {
      return ready.map(v -> readNow(reader));
    }
    return ready.compose(v -> vertx.executeBlocking(() -> readNow(reader), false));
  }

  /**
   * A read with auth, as etcd's doSerialize: once the read is allowed (after the barrier, so the auth
   * store is at least as new as every change acknowledged before the read began) the caller is
   * resolved and checked against that store, and the read is refused as old if the store moved on
   * while it ran. With auth disabled this costs one volatile read.
   */
  private <T> Future<T> read(boolean serializable, boolean oneKey, Callers.Credentials who,
      java.util.function.BiConsumer<io.vetcd.auth.AuthStore, Caller> permitted, Function<MvccStore.ReadView, T> reader) {
    return read(serializable, oneKey, view -> {
      io.vetcd.auth.AuthStore store = member.auth().store();
      if (!store.enabled()) {
        return reader.apply(view);
      }
      Caller caller = who.resolve(member.auth());
      permitted.accept(store, caller);
      T result = reader.apply(view);
      if (caller.revision() != member.auth().store().revision()) {
        throw EtcdError.AUTH_OLD_REVISION.exception();
      }
      return result;
    });
  }

  private <T> T readNow(Function<MvccStore.ReadView, T> reader) {
    try (MvccStore.ReadView view = member.store().read()) {
      return reader.apply(view);
    }
  }
}
