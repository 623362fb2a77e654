package io.vetcd.proxy;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vetcd.api.GrpcErrors;
import io.vetcd.proto.etcdserverpb.RangeRequest;
import io.vetcd.proto.etcdserverpb.RangeResponse;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The proxy's Watch service, as etcd's proxy serves it: identical watches share one watch on the
 * cluster. Each watcher (key, range end, start revision) joins a running upstream watch of the same
 * range whose next event is not after the watcher's start, and gets that watch's events from its
 * start on, filtered (NOPUT, NODELETE) and with or without previous values as it asked, under its own
 * watch id. The upstream watch asks for previous values and progress notifications so that it can
 * serve any watcher of its range; it is cancelled with its last watcher, and two watches of one range
 * that reach the same point become one. 1,000 clients watching one key cost the cluster one watch.
 *
 * <p>Before a watcher is created, a count-only read of its range is made with the caller's own token
 * (etcd's proxy does the same: the shared watch runs with another caller's token); its answer's
 * revision is where a watch "from now" starts, and its header is the created response's, as a member
 * would send it. Created responses come from the proxy, in the order of the creates.
 *
 * <p>Beyond etcd's proxy: a broken upstream watch (its member gone) is opened again on the next
 * member from the revision after the last event it delivered, so its watchers see neither a gap nor a
 * repeat; a client stream that stops reading (its answers unsent for {@value #STALLED_SECONDS} s, or
 * more than {@value #MAX_QUEUED_BYTES} bytes of them) is ended with Unavailable, and etcd's clients
 * resume each of its watches from their last revision, instead of being buffered for without bound; a
 * compaction ends only the watchers that needed what it removed.
 *
 * <p>Everything here runs on the proxy server's event loop: no locks.
 */
final class WatchCoalescer {

  private static final Logger LOG = LoggerFactory.getLogger(WatchCoalescer.class);
  static final String METHOD = "etcdserverpb.Watch/Watch";
  /** How long a client stream's answers may wait unsent before the client counts as stopped. */
  static final long STALLED_SECONDS = 10;
  /** How many bytes of answers a client stream may leave unread before it counts as stopped. */
  static final long MAX_QUEUED_BYTES = 64L << 20;
  /** etcd's names, from its mvcc and clientv3 packages. */
  private static final String EMPTY_RANGE = "mvcc: watcher range is empty";
  private static final String DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";

  /** How the coalescer reaches the cluster: a call opened on the member in use. */
  interface Upstream {
    Future<GrpcClientRequest<Buffer, Buffer>> open(String method);
  }

  private final Vertx vertx;
  private final Upstream upstream;
  private final Map<Range, List<Broadcast>> ranges = new HashMap<>();
  private boolean closed;
  /** etcd_grpc_proxy_watchers_coalescing_total: watchers served by an upstream watch another opened. */
  final AtomicLong watchersCoalescing = new AtomicLong();
  /** etcd_grpc_proxy_events_coalescing_total: responses sent to more watchers than the one who opened. */
  final AtomicLong eventsCoalescing = new AtomicLong();

  WatchCoalescer(Vertx vertx, Upstream upstream) {
    this.vertx = vertx;
    this.upstream = upstream;
  }

  /** A client's Watch call. */
  void serve(GrpcServerRequest<Buffer, Buffer> down, MultiMap callerHeaders) {
    new ClientStream(down, callerHeaders).start();
  }

  /** The proxy stops: every shared watch is cancelled, and none is opened again. */
  void close() {
    closed = true;
    for (List<Broadcast> shared : List.copyOf(ranges.values())) {
      List.copyOf(shared).forEach(Broadcast::stop);
    }
  }

  record Range(ByteString key, ByteString end) {}

  /** One client's Watch call: its watchers, its requests handled one at a time and in order. */
  private final class ClientStream {
    private final GrpcServerRequest<Buffer, Buffer> down;
    private final MultiMap callerHeaders;
    private final Map<Long, Watcher> watchers = new LinkedHashMap<>();
    private final ArrayDeque<WatchRequest> requests = new ArrayDeque<>();
    private boolean handling;
    /** Its watchers are gone (the client left, or the stream is being ended). */
    private boolean closed;
    /** The proxy is ending the stream (closed first, ended on the next turn of the loop). */
    private boolean ending;
    private boolean ended;
    private long nextId;
    private long queuedBytes;
    private int queued;
    /** When the oldest answer still unsent was queued (0: none is). */
    private long stalledSince;

    ClientStream(GrpcServerRequest<Buffer, Buffer> down, MultiMap callerHeaders) {
      this.down = down;
      this.callerHeaders = callerHeaders;
    }

    void start() {
      down.handler(message -> {
        try {
          requests.add(WatchRequest.parseFrom(message.getBytes()));
        } catch (InvalidProtocolBufferException e) {
          end(GrpcStatus.INTERNAL, "grpc: error unmarshalling request: " + e.getMessage());
          return;
        }
        next();
      });
      // A client that half-closes still gets its events, as from a member; it leaves by cancelling.
      down.errorHandler(e -> close());
      down.exceptionHandler(e -> close());
    }

    /** The requests waiting, in order; a create waits for its permission check before the next. */
    private void next() {
      while (!handling && !closed && !requests.isEmpty()) {
        WatchRequest request = requests.poll();
        switch (request.getRequestUnionCase()) {
          case CREATE_REQUEST -> {
            Future<Void> created = create(request.getCreateRequest());
            if (!created.isComplete()) { // waiting for its permission read: the next request waits too
              handling = true;
              created.onComplete(v -> {
                handling = false;
                next();
              });
            }
          }
          case CANCEL_REQUEST -> {
            Watcher w = watchers.remove(request.getCancelRequest().getWatchId());
            if (w != null) {
              w.leave();
              send(WatchResponse.newBuilder().setHeader(w.lastHeader).setWatchId(w.id).setCanceled(true).build());
            }
          }
          default -> {
            // a progress request: etcd's proxy does not answer it either
          }
        }
      }
    }

    private Future<Void> create(WatchCreateRequest c) {
      ByteString key = c.getKey();
      ByteString end = c.getRangeEnd();
      if (!end.isEmpty() && !(end.size() == 1 && end.byteAt(0) == 0)
          && ByteString.unsignedLexicographicalComparator().compare(end, key) <= 0) {
        send(WatchResponse.newBuilder().setWatchId(-1).setCreated(true).setCanceled(true)
            .setCancelReason(EMPTY_RANGE).build());
        return Future.succeededFuture();
      }
      long id = c.getWatchId();
      if (id == 0) {
        while (watchers.containsKey(nextId)) {
          nextId++;
        }
        id = nextId++;
      } else if (watchers.containsKey(id)) {
        send(WatchResponse.newBuilder().setWatchId(-1).setCreated(true).setCanceled(true)
            .setCancelReason(DUPLICATE_ID).build());
        return Future.succeededFuture();
      }
      long watchId = id;
      return check(key, end).compose(answer -> {
        if (closed) {
          return Future.succeededFuture();
        }
        if (answer.refusal != null) {
          send(WatchResponse.newBuilder().setHeader(ResponseHeader.getDefaultInstance()).setWatchId(-1)
              .setCreated(true).setCanceled(true).setCancelReason(answer.refusal).build());
          return Future.succeededFuture();
        }
        Watcher w = new Watcher(this, watchId, new Range(key, end), c);
        if (w.nextRev == 0) {
          w.nextRev = answer.header.getRevision() + 1; // from now: after the revision just read
        }
        w.lastHeader = answer.header;
        watchers.put(watchId, w);
        send(WatchResponse.newBuilder().setHeader(answer.header).setWatchId(watchId).setCreated(true).build());
        join(w);
        return Future.succeededFuture();
      }, e -> {
        // No member answered: the client opens its watches again (on this proxy or another).
        end(GrpcStatus.UNAVAILABLE, "grpc-proxy: no endpoint is available: " + e.getMessage());
        return Future.succeededFuture();
      });
    }

    /** A check's outcome: the member's refusal, or the header of its answer. */
    private record Checked(String refusal, ResponseHeader header) {}

    /**
     * etcd's proxy permission check, a count-only serializable read of the range with the caller's
     * token; fails if no member answers.
     */
    private Future<Checked> check(ByteString key, ByteString end) {
      RangeRequest.Builder read = RangeRequest.newBuilder().setSerializable(true).setCountOnly(true).setLimit(1);
      if (key.isEmpty()) {
        read.setKey(ByteString.copyFrom(new byte[] {0})).setRangeEnd(ByteString.copyFrom(new byte[] {0}));
      } else {
        read.setKey(key).setRangeEnd(end);
      }
      return upstream.open("etcdserverpb.KV/Range").compose(call -> {
        call.headers().addAll(callerHeaders);
        call.timeout(GrpcProxy.ANSWER_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        call.end(Buffer.buffer(read.build().toByteArray()));
        return call.response();
      }).compose(response -> {
        Promise<Checked> answer = Promise.promise();
        Buffer[] message = {null};
        response.handler(m -> message[0] = m);
        response.exceptionHandler(answer::tryFail);
        response.endHandler(v -> {
          if (response.status() == GrpcStatus.OK && message[0] != null) {
            try {
              answer.tryComplete(new Checked(null, RangeResponse.parseFrom(message[0].getBytes()).getHeader()));
            } catch (InvalidProtocolBufferException e) {
              answer.tryFail(e);
            }
          } else if (response.status() == GrpcStatus.UNAVAILABLE || response.status() == GrpcStatus.DEADLINE_EXCEEDED
              || response.status() == GrpcStatus.CANCELLED) {
            answer.tryFail("the member did not answer (" + response.status() + ")");
          } else {
            // As a member words a watch it refuses: the status error as Go prints it.
            answer.tryComplete(new Checked(GrpcErrors.goText(response.status(),
                java.util.Objects.toString(GrpcProxy.statusMessage(response), "")), null));
          }
        });
        return answer.future();
      });
    }

    /**
     * One response to the client. A client whose answers stay unsent too long, or pile up past the
     * bound, has stopped reading: its stream is ended, later, on the loop (a broadcast may be
     * delivering to this and other streams just now).
     */
    void send(WatchResponse response) {
      if (closed) {
        return;
      }
      long now = System.nanoTime();
      if (queued > 0 && (now - stalledSince > TimeUnit.SECONDS.toNanos(STALLED_SECONDS)
          || queuedBytes > MAX_QUEUED_BYTES)) {
        int unsent = queued;
        ending = true;
        close();
        vertx.runOnContext(v -> end(GrpcStatus.UNAVAILABLE, "grpc-proxy: the watch stream stopped reading ("
            + unsent + " responses unsent); watch again from the last revision received"));
        return;
      }
      byte[] bytes = response.toByteArray();
      if (queued == 0) {
        stalledSince = now;
      }
      queued++;
      queuedBytes += bytes.length;
      down.response().write(Buffer.buffer(bytes)).onComplete(v -> {
        queued--;
        queuedBytes -= bytes.length;
        stalledSince = System.nanoTime(); // the client reads: the next unsent answer waits from now
      });
    }

    void end(GrpcStatus status, String message) {
      boolean clientLeft = closed && !ending;
      close();
      if (clientLeft || ended) {
        return;
      }
      ended = true;
      down.response().status(status);
      if (message != null) {
        down.response().statusMessage(message);
      }
      down.response().end();
    }

    /** The client went away or the stream ended: each watcher leaves its shared watch. */
    void close() {
      if (closed) {
        return;
      }
      closed = true;
      requests.clear();
      List<Watcher> leaving = new ArrayList<>(watchers.values());
      watchers.clear();
      leaving.forEach(Watcher::leave);
    }

    /** A watcher its shared watch ended for good: told why, and gone from the stream. */
    void cancel(Watcher w, WatchResponse why) {
      if (watchers.remove(w.id, w)) {
        send(why.toBuilder().setWatchId(w.id).setCreated(false).build());
      }
    }

    /**
     * A watcher whose shared watch was refused with another caller's token: its own permission read
     * again; allowed, it goes on (from where it was) in a watch opened with its own token.
     */
    void recheck(Watcher w, WatchResponse refusal) {
      check(w.range.key(), w.range.end()).onComplete(answer -> {
        if (closed || watchers.get(w.id) != w) {
          return; // cancelled, or its stream ended, meanwhile
        }
        if (answer.succeeded() && answer.result().refusal == null) {
          joinAlone(w);
        } else {
          cancel(w, answer.succeeded() ? refusal.toBuilder().setCancelReason(answer.result().refusal).build()
              : refusal);
        }
      });
    }
  }

  /** A watcher in a new shared watch of its own, opened with its token (after a refusal of another's). */
  private void joinAlone(Watcher w) {
    Broadcast b = new Broadcast(w.range, w.nextRev);
    ranges.computeIfAbsent(w.range, r -> new ArrayList<>()).add(b);
    b.enter(w);
    b.open();
  }

  /** The metadata that says who calls (its token), the only metadata a shared watch carries. */
  private static MultiMap credentials(MultiMap callerHeaders) {
    MultiMap credentials = MultiMap.caseInsensitiveMultiMap();
    for (String name : new String[] {"token", "authorization"}) {
      callerHeaders.getAll(name).forEach(value -> credentials.add(name, value));
    }
    return credentials;
  }

  /** Adds a watcher to a running shared watch of its range that has not passed its start, or to a new one. */
  private void join(Watcher w) {
    List<Broadcast> shared = ranges.computeIfAbsent(w.range, r -> new ArrayList<>());
    Broadcast best = null;
    for (Broadcast b : shared) {
      // The furthest that has not passed the watcher's start: not one still replaying old history.
      if (b.nextRev <= w.nextRev && (best == null || b.nextRev > best.nextRev)) {
        best = b;
      }
    }
    if (best != null) {
      best.enter(w);
      return;
    }
    Broadcast b = new Broadcast(w.range, w.nextRev);
    shared.add(b);
    b.enter(w);
    b.open();
  }

  /**
   * One watch on the cluster, shared by the watchers of its range. {@code nextRev} is the revision of
   * the next event it will deliver: every event of its range before it has been delivered.
   */
  private final class Broadcast {
    private final Range range;
    private final Set<Watcher> receivers = new LinkedHashSet<>();
    private long nextRev;
    private GrpcClientRequest<Buffer, Buffer> call;
    private boolean stopped;
    private long retryDelayMs = 100;

    Broadcast(Range range, long nextRev) {
      this.range = range;
      this.nextRev = nextRev;
    }

    void enter(Watcher w) {
      w.broadcast = this;
      receivers.add(w);
      if (receivers.size() > 1) {
        watchersCoalescing.incrementAndGet();
      }
    }

    void open() {
      WatchCreateRequest.Builder create = WatchCreateRequest.newBuilder().setKey(range.key).setRangeEnd(range.end)
          .setStartRevision(nextRev).setPrevKv(true).setProgressNotify(true);
      // With a watcher's token (only: its other metadata, e.g. require-leader, is its own): the first
      // watcher may have left, and its token expired, since the last open.
      MultiMap headers = receivers.isEmpty() ? MultiMap.caseInsensitiveMultiMap()
          : credentials(receivers.iterator().next().stream.callerHeaders);
      upstream.open(METHOD).onComplete(opened -> {
        if (stopped) {
          if (opened.succeeded()) {
            opened.result().cancel();
          }
          return;
        }
        if (opened.failed()) {
          retry("no member can be reached: " + opened.cause().getMessage());
          return;
        }
        GrpcClientRequest<Buffer, Buffer> c = opened.result();
        call = c;
        c.headers().addAll(headers);
        c.exceptionHandler(e -> broken(c, "sending: " + e.getMessage()));
        c.write(Buffer.buffer(WatchRequest.newBuilder().setCreateRequest(create).build().toByteArray()));
        c.response().onComplete(answered -> {
          if (answered.failed()) {
            broken(c, answered.cause().getMessage());
            return;
          }
          var response = answered.result();
          response.exceptionHandler(e -> broken(c, "receiving: " + e.getMessage()));
          response.errorHandler(e -> broken(c, "reset by the member: " + e));
          response.handler(message -> {
            if (call != c) {
              return; // a call given up on
            }
            try {
              receive(WatchResponse.parseFrom(message.getBytes()));
            } catch (InvalidProtocolBufferException e) {
              broken(c, "unreadable response: " + e.getMessage());
            }
          });
          response.endHandler(v -> {
            if (call != c) {
              return;
            }
            String why = java.util.Objects.toString(GrpcProxy.statusMessage(response), response.status().toString());
            if (response.status() == GrpcStatus.UNAVAILABLE || response.status() == GrpcStatus.CANCELLED
                || response.status() == GrpcStatus.OK) {
              broken(c, response.status() + " " + why);
            } else {
              cancelAll(WatchResponse.newBuilder().setCanceled(true)
                  .setCancelReason(GrpcErrors.goText(response.status(), why)).build());
            }
          });
        });
      });
    }

    private void receive(WatchResponse r) {
      if (stopped) {
        return;
      }
      retryDelayMs = 100;
      if (r.getCanceled()) {
        cancelAll(r);
        return;
      }
      if (r.getCreated()) {
        return; // its watchers had theirs from the proxy
      }
      // After events, the next is after the last of them (etcd's catch-up responses carry the current
      // revision in their header while more history is to come); a response without events (progress)
      // says nothing of this range happened up to its header's revision.
      nextRev = r.getEventsCount() > 0 ? r.getEvents(r.getEventsCount() - 1).getKv().getModRevision() + 1
          : Math.max(nextRev, r.getHeader().getRevision() + 1);
      List<Watcher> all = List.copyOf(receivers);
      for (Watcher w : all) {
        if (w.broadcast == this) { // (a stream ended by a send above left with its watchers)
          w.send(r);
        }
      }
      if (all.size() > 1) {
        eventsCoalescing.addAndGet(all.size() - 1);
      }
      mergeIntoAnother();
    }

    /**
     * Two watches of one range at the same point deliver the same events from there on: this one hands
     * its watchers to the other and closes (a watch from an old revision that caught up with a live one).
     */
    private void mergeIntoAnother() {
      if (stopped || receivers.isEmpty()) {
        return;
      }
      for (Broadcast other : ranges.getOrDefault(range, List.of())) {
        if (other != this && other.call != null && other.nextRev == nextRev) {
          List<Watcher> moving = List.copyOf(receivers);
          watchersCoalescing.addAndGet(-(moving.size() - 1));
          receivers.clear();
          moving.forEach(other::enter);
          stop();
          return;
        }
      }
    }

    /**
     * The member ended the watch. A compaction ends the watchers that needed a compacted revision; the
     * others go on from their own start. A refusal was the refusal of the token the watch ran with: each
     * watcher is checked again with its own, once, and goes on in a watch of its own if allowed.
     */
    private void cancelAll(WatchResponse r) {
      List<Watcher> all = List.copyOf(receivers);
      watchersCoalescing.addAndGet(-Math.max(0, all.size() - 1));
      receivers.clear();
      stop();
      for (Watcher w : all) {
        if (w.broadcast != this) {
          continue; // its stream ended meanwhile (a send below found it stopped reading)
        }
        w.broadcast = null;
        if (r.getCompactRevision() > 0 && w.nextRev >= r.getCompactRevision()) {
          join(w);
        } else if (r.getCompactRevision() == 0 && !w.rechecked) {
          w.rechecked = true;
          w.stream.recheck(w, r);
        } else {
          w.stream.cancel(w, r);
        }
      }
    }

    /** The upstream watch broke (its member went away): opened again from where it was, after a pause. */
    private void broken(GrpcClientRequest<Buffer, Buffer> c, String why) {
      if (stopped || call != c) {
        return;
      }
      call = null;
      c.cancel();
      retry(why + " [" + c.connection().remoteAddress() + "]");
    }

    private void retry(String why) {
      LOG.warn("grpc-proxy: the shared watch of {} broke ({}); opening it again from revision {} in {} ms",
          range.key.toStringUtf8(), why, nextRev, retryDelayMs);
      vertx.setTimer(retryDelayMs, t -> {
        if (!stopped && !closed) {
          open();
        }
      });
      retryDelayMs = Math.min(retryDelayMs * 2, 2_000);
    }

    void remove(Watcher w) {
      if (!receivers.remove(w)) {
        return;
      }
      if (receivers.isEmpty()) {
        stop();
      } else {
        watchersCoalescing.decrementAndGet();
      }
    }

    void stop() {
      if (stopped) {
        return;
      }
      stopped = true;
      if (receivers.size() > 1) {
        watchersCoalescing.addAndGet(-(receivers.size() - 1));
      }
      receivers.clear();
      List<Broadcast> shared = ranges.get(range);
      if (shared != null) {
        shared.remove(this);
        if (shared.isEmpty()) {
          ranges.remove(range);
        }
      }
      if (call != null) {
        call.cancel();
        call = null;
      }
    }
  }

  /** A client's watch: what it asked for, and where it is. */
  private static final class Watcher {
    final ClientStream stream;
    final long id;
    final Range range;
    final boolean noPut;
    final boolean noDelete;
    final boolean prevKv;
    final boolean progress;
    /** The revision of the next event it wants. */
    long nextRev;
    ResponseHeader lastHeader = ResponseHeader.getDefaultInstance();
    Broadcast broadcast;
    /** Checked again with its own token after its shared watch was refused (once only). */
    boolean rechecked;

    Watcher(ClientStream stream, long id, Range range, WatchCreateRequest c) {
      this.stream = stream;
      this.id = id;
      this.range = range;
      this.noPut = c.getFiltersList().contains(WatchCreateRequest.FilterType.NOPUT);
      this.noDelete = c.getFiltersList().contains(WatchCreateRequest.FilterType.NODELETE);
      this.prevKv = c.getPrevKv();
      this.progress = c.getProgressNotify();
      this.nextRev = c.getStartRevision();
    }

    /** The shared watch's response, as this watcher would have had it from a member. */
    void send(WatchResponse r) {
      boolean progressNotify = r.getEventsCount() == 0 && r.getCompactRevision() == 0;
      if (progressNotify) {
        if (progress && r.getHeader().getRevision() + 1 >= nextRev) {
          lastHeader = r.getHeader();
          stream.send(WatchResponse.newBuilder().setHeader(r.getHeader()).setWatchId(id).build());
        }
        return;
      }
      List<Event> events = new ArrayList<>(r.getEventsCount());
      long lastRev = 0;
      for (Event e : r.getEventsList()) {
        if (e.getKv().getModRevision() < nextRev) {
          continue;
        }
        lastRev = e.getKv().getModRevision(); // nextRev moves after the loop: a txn's events share one revision
        if (noPut && e.getType() == Event.EventType.PUT || noDelete && e.getType() == Event.EventType.DELETE) {
          continue;
        }
        events.add(prevKv || !e.hasPrevKv() ? e : e.toBuilder().clearPrevKv().build());
      }
      if (lastRev >= nextRev) {
        nextRev = lastRev + 1;
      }
      if (events.isEmpty()) {
        return;
      }
      lastHeader = r.getHeader();
      stream.send(WatchResponse.newBuilder().setHeader(r.getHeader()).setWatchId(id).addAllEvents(events).build());
    }

    /** Leaves its shared watch (cancelled, or its stream ended). */
    void leave() {
      if (broadcast != null) {
        broadcast.remove(this);
        broadcast = null;
      }
    }
  }
}
