package io.vetcd.watch;

import com.google.protobuf.ByteString;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vetcd.mvcc.MvccException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import io.vetcd.proto.mvccpb.KeyValue;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client's watch stream (a gRPC Watch call or a WebSocket): the watchers multiplexed on it, and
 * the delivery of their events, on the stream's event loop.
 *
 * <p>A watcher is only a position: the next revision it must see. Delivery reads forward from there —
 * from the hub's recent history, or from the store when that is gone — one batch of whole revisions
 * per watcher per turn, and only while the client's connection takes more ({@link Sink#writeQueueFull}).
 * So events arrive in revision order, each once, all of a revision in one response (unless the
 * watcher asked for fragments), with none skipped; and a client that stops reading costs the server
 * one position per watcher, not a growing buffer: when it reads again, its watchers catch up from
 * the store (or are cancelled with the compacted revision if that history is gone).
 */
public final class WatchStream {

  private static final Logger LOG = LoggerFactory.getLogger(WatchStream.class);

  /** etcd's error texts for a watch that cannot be created. */
  static final String EMPTY_RANGE = "mvcc: watcher range is empty";
  static final String DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";
  /** How many events one watcher takes per turn (more only to finish a revision). */
  static final int BATCH_EVENTS = 1000;

  /** Where responses go: the gRPC response stream or the WebSocket. */
  public interface Sink {
    void send(WatchResponse response);

    /** True while the connection holds as much unsent data as it should: stop sending. */
    boolean writeQueueFull();

    /** Runs {@code onDrain} (on the stream's context) when the connection takes more again. */
    void drainHandler(Runnable onDrain);
  }

  /** The response header as the member fills it (cluster, member, term) for a revision. */
  public interface Headers {
    ResponseHeader header(long revision);
  }

  /**
   * Completes (on the stream's context) once the hub holds every write the member has answered: the
   * member answers a write just before its transaction commits and is published, so a client that saw
   * its put or compaction acknowledged and then creates a watch could otherwise meet the hub one batch
   * behind (a watch without a start revision would get the put it already saw; one below a compaction
   * just answered would not be cancelled). Complete at once nearly always.
   */
  public interface AnsweredWrites {
    Future<Void> published();
  }

  private static final Comparator<ByteString> BYTES = ByteString.unsignedLexicographicalComparator();

  private final Vertx vertx;
  private final Context context;
  private final WatchHub hub;
  private final Sink sink;
  private final Headers headers;
  private final AnsweredWrites answeredWrites;
  private final long fragmentBytes;
  private final Map<Long, Watcher> watchers = new LinkedHashMap<>();
  /** The watchers at {@link #syncedNext}, up to date or nearly: served together, through an index. */
  private final SyncedWatchers synced = new SyncedWatchers();
  /** The next revision of every watcher in {@link #synced} (meaningless while it is empty). */
  private long syncedNext;
  /** The other watchers (behind, catching up, or just created), each at its own position. */
  private final Set<Watcher> unsynced = new LinkedHashSet<>();
  private final AtomicBoolean woken = new AtomicBoolean();
  /** The client's requests not handled yet: a create waits for {@link AnsweredWrites}, the rest behind it. */
  private final ArrayDeque<WatchRequest> requests = new ArrayDeque<>();
  private final long progressTimer;
  private long nextId;
  private boolean progressRequested;
  private boolean closed;

  /**
   * @param fragmentBytes responses larger than this are split for watchers that asked for fragments
   *     (etcd uses --max-request-bytes)
   * @param progressIntervalMs how often watchers that asked for progress notifications get one while
   *     they are up to date (etcd's --experimental-watch-progress-notify-interval)
   */
  public WatchStream(Vertx vertx, WatchHub hub, Sink sink, Headers headers, AnsweredWrites answeredWrites,
      long fragmentBytes, long progressIntervalMs) {
    this.vertx = vertx;
    this.context = vertx.getOrCreateContext();
    this.hub = hub;
    this.sink = sink;
    this.headers = headers;
    this.answeredWrites = answeredWrites;
    this.fragmentBytes = fragmentBytes;
    sink.drainHandler(this::pump);
    hub.register(this);
    this.progressTimer = vertx.setPeriodic(progressIntervalMs, id -> notifyProgress());
  }

  /** Handles one request from the client, in the order they came. On the stream's context. */
  public void handle(WatchRequest request) {
    if (closed) {
      return;
    }
    requests.add(request);
    if (requests.size() == 1) {
      handleQueued();
    }
  }

  private void handleQueued() {
    while (!closed && !requests.isEmpty()) {
      WatchRequest next = requests.peek();
      if (next.hasCreateRequest()) {
        Future<Void> published = answeredWrites.published();
        if (!published.isComplete()) {
          // A failure (the member stopping) is no reason to keep the stream's requests waiting.
          published.onComplete(v -> handleQueued());
          return;
        }
      }
      requests.poll();
      handleNow(next);
    }
  }

  private void handleNow(WatchRequest request) {
    switch (request.getRequestUnionCase()) {
      case CREATE_REQUEST -> create(request.getCreateRequest());
      case CANCEL_REQUEST -> {
        long id = request.getCancelRequest().getWatchId();
        Watcher w = watchers.remove(id);
        if (w != null) {
          forget(w);
          sink.send(response(hub.revision(), id).setCanceled(true).build());
        }
      }
      case PROGRESS_REQUEST -> {
        progressRequested = true;
        pump();
      }
      default -> { }
    }
  }

  /** The client went away: drop every watcher. */
  public void close() {
    closed = true;
    requests.clear();
    hub.watcherCount.addAndGet(-watchers.size());
    watchers.clear();
    synced.clear();
    unsynced.clear();
    hub.unregister(this);
    vertx.cancelTimer(progressTimer);
  }

  /** New events were published: deliver them on the stream's context (once per burst). */
  /**
   * Permissions changed (auth): each watcher whose caller may no longer read its keys is canceled,
   * with the reason (beyond etcd 3.4, whose watches go on after a revoke). Queued on the stream's loop
   * before the events applied after the change are published (see WatchHub#authChanged).
   */
  void recheckAccess() {
    context.runOnContext(v -> {
      if (closed) {
        return;
      }
      for (Watcher w : new ArrayList<>(watchers.values())) {
        String reason = w.recheck == null ? null : w.recheck.get();
        if (reason != null && watchers.remove(w.id) == w) {
          forget(w);
          sink.send(response(hub.revision(), w.id).setCanceled(true).setCancelReason(reason).build());
        }
      }
    });
  }

  void wake() {
    if (woken.compareAndSet(false, true)) {
      context.runOnContext(v -> {
        woken.set(false);
        pump();
      });
    }
  }

  /**
   * Decides whether a watch may be created (auth). Runs as the create request is handled, where the
   * transport made the caller known.
   */
  public interface CreateCheck {
    Admission admit(WatchCreateRequest create);
  }

  /**
   * A create's outcome: refused (the cancel reason to answer with), or admitted with the check to run
   * again whenever the permissions change (null while still permitted, else the reason to cancel it).
   */
  public record Admission(String refusal, java.util.function.Supplier<String> recheck) {
    public static final Admission ALWAYS = new Admission(null, () -> null);

    public static Admission refused(String reason) {
      return new Admission(reason, null);
    }
  }

  private CreateCheck createCheck = c -> Admission.ALWAYS;

  /** Checks each create request with {@code check} before it makes a watcher (see {@link CreateCheck}). */
  public void checkCreates(CreateCheck check) {
    this.createCheck = check;
  }

  private void create(WatchCreateRequest c) {
    long current = hub.revision();
    Admission admission = createCheck.admit(c);
    String refused = admission.refusal();
    if (refused != null) {
      // etcd: created and canceled at once, with the invalid watch id, whatever id was asked for.
      sink.send(response(current, -1).setCreated(true).setCanceled(true).setCancelReason(refused).build());
      return;
    }
    ByteString end = c.getRangeEnd();
    if (end.size() == 1 && end.byteAt(0) == 0) {
      end = ByteString.EMPTY; // "\0": every key from key on
    } else if (end.isEmpty()) {
      end = null; // the single key
    }
    String error = null;
    long id = c.getWatchId();
    if (end != null && !end.isEmpty() && BYTES.compare(c.getKey(), end) >= 0) {
      error = EMPTY_RANGE;
    } else if (id == 0) {
      while (watchers.containsKey(nextId)) {
        nextId++;
      }
      id = nextId++;
    } else if (watchers.containsKey(id)) {
      error = DUPLICATE_ID;
    }
    if (error != null) {
      sink.send(response(current, -1).setCreated(true).setCanceled(true).setCancelReason(error).build());
      return;
    }
    Watcher w = new Watcher(id, c.getKey(), end, c.getFiltersList(), c.getPrevKv(), c.getProgressNotify(),
        c.getFragment(), c.getStartRevision() > 0 ? c.getStartRevision() : current + 1);
    w.recheck = admission.recheck();
    watchers.put(id, w);
    hub.watcherCount.incrementAndGet();
    unsynced.add(w);
    maybeJoin(w);
    sink.send(response(current, id).setCreated(true).build());
    pump();
  }

  /** Delivers what watchers are owed while the connection takes it; then answers a progress request. */
  private void pump() {
    if (closed) {
      return;
    }
    boolean advanced = true;
    while (advanced && !sink.writeQueueFull()) {
      advanced = pumpSynced();
      long current = hub.revision();
      for (Watcher w : new ArrayList<>(unsynced)) {
        if (sink.writeQueueFull()) {
          break;
        }
        if (w.loading || w.inSynced || w.nextRev > current || watchers.get(w.id) != w) {
          continue;
        }
        if (w.nextRev < hub.compactRevision()) {
          cancelCompacted(w, hub.compactRevision());
          continue;
        }
        List<EventRing.Revision> recent = hub.recent(w.nextRev, BATCH_EVENTS);
        if (recent == null) {
          catchUp(w);
          continue;
        }
        if (recent.isEmpty()) {
          continue;
        }
        List<Event> events = new ArrayList<>();
        long compacted = hub.compactRevision();
        for (EventRing.Revision r : recent) {
          for (Event e : r.events()) {
            if (w.accepts(e)) {
              events.add(prevKvAsAsked(w, e, compacted));
            }
          }
        }
        deliver(w, events, recent.get(recent.size() - 1).revision());
        maybeJoin(w);
        advanced = true;
      }
    }
    // One reading of the revision for the check and the answer: the apply thread publishes meanwhile,
    // and a second reading could name a revision whose events are still to be sent (the chaos run's
    // watch validator caught a progress notification at 37 followed by the event at 37; etcd-io/etcd
    // #15220 is the same bug in etcd).
    long current = hub.revision();
    if (progressRequested && !sink.writeQueueFull() && allSynced(current)) {
      progressRequested = false;
      // As etcd 3.4: not tied to one watcher (-1), the revision every watcher has seen.
      sink.send(response(current, -1).build());
    }
  }

  /**
   * Delivers the synced group's next revisions from the recent history: each event finds the
   * watchers that take it through the index, and those without events just move on with the group. A
   * watcher whose response finds the connection full leaves the group at its old position (it is sent
   * later, on its own). Returns whether the group moved.
   */
  private boolean pumpSynced() {
    if (synced.isEmpty() || syncedNext > hub.revision()) {
      return false;
    }
    List<EventRing.Revision> recent = syncedNext < hub.compactRevision() ? null : hub.recent(syncedNext, BATCH_EVENTS);
    if (recent == null) {
      dissolve(); // behind the history in memory, or compacted: each watcher on its own from here
      return true;
    }
    if (recent.isEmpty()) {
      return false;
    }
    long from = syncedNext;
    long last = recent.get(recent.size() - 1).revision();
    long compacted = hub.compactRevision();
    Map<Watcher, List<Event>> taken = new LinkedHashMap<>();
    for (EventRing.Revision r : recent) {
      for (Event e : r.events()) {
        synced.forEachTaking(e, w -> taken.computeIfAbsent(w, x -> new ArrayList<>()).add(prevKvAsAsked(w, e, compacted)));
      }
    }
    syncedNext = last + 1;
    for (Map.Entry<Watcher, List<Event>> t : taken.entrySet()) {
      Watcher w = t.getKey();
      if (sink.writeQueueFull()) {
        leave(w, from);
      } else {
        send(w, t.getValue(), last);
      }
    }
    return true;
  }

  /** An event as the watcher asked for it: with the previous value only if it asked, and it is not compacted. */
  private static Event prevKvAsAsked(Watcher w, Event e, long compacted) {
    boolean keepPrev = w.prevKv && e.getKv().getModRevision() - 1 >= compacted;
    return keepPrev || !e.hasPrevKv() ? e : e.toBuilder().clearPrevKv().build();
  }

  /** A watcher up to date joins the synced group (starting it, if empty) when it is at the group's revision. */
  private void maybeJoin(Watcher w) {
    if (w.inSynced || w.loading || w.nextRev != hub.revision() + 1 || watchers.get(w.id) != w) {
      return;
    }
    if (synced.isEmpty()) {
      syncedNext = w.nextRev;
    } else if (syncedNext != w.nextRev) {
      return;
    }
    unsynced.remove(w);
    w.inSynced = true;
    synced.add(w);
  }

  /** A watcher of the group goes on on its own from {@code nextRev}. */
  private void leave(Watcher w, long nextRev) {
    synced.remove(w);
    w.inSynced = false;
    w.nextRev = nextRev;
    unsynced.add(w);
  }

  /** Every watcher of the group goes on on its own, from the group's revision. */
  private void dissolve() {
    for (Watcher w : synced.all()) {
      w.inSynced = false;
      w.nextRev = syncedNext;
      unsynced.add(w);
    }
    synced.clear();
  }

  /** A cancelled watcher leaves whichever set it was in. */
  private void forget(Watcher w) {
    hub.watcherCount.decrementAndGet();
    if (w.inSynced) {
      synced.remove(w);
      w.inSynced = false;
    } else {
      unsynced.remove(w);
    }
  }

  /** How many watchers are served as the synced group (tests: that the index is what serves them). */
  int syncedCount() {
    return synced.size();
  }

  /** The next revision the watcher must see. */
  private long next(Watcher w) {
    return w.inSynced ? syncedNext : w.nextRev;
  }

  /** Whether every watcher of the stream has been sent everything up to {@code current}. */
  private boolean allSynced(long current) {
    if (!synced.isEmpty() && syncedNext <= current) {
      return false;
    }
    for (Watcher w : unsynced) {
      if (w.loading || w.nextRev <= current) {
        return false;
      }
    }
    return true;
  }

  /** Sends a watcher's events up to {@code lastRevision} and moves it past that revision. */
  private void deliver(Watcher w, List<Event> events, long lastRevision) {
    w.nextRev = lastRevision + 1;
    send(w, events, lastRevision);
  }

  /** Sends a watcher's events up to {@code lastRevision} (nothing if none), in fragments if it asked. */
  private void send(Watcher w, List<Event> events, long lastRevision) {
    if (events.isEmpty()) {
      return;
    }
    WatchResponse whole = response(lastRevision, w.id).addAllEvents(events).build();
    if (!w.fragment || events.size() < 2 || whole.getSerializedSize() < fragmentBytes) {
      sink.send(whole);
      return;
    }
    // etcd's sendFragments: as many events per response as fit (at least one), all but the last
    // response marked as a fragment.
    int i = 0;
    while (i < events.size()) {
      WatchResponse.Builder part = response(lastRevision, w.id).setFragment(true);
      int size = part.build().getSerializedSize();
      while (i < events.size()) {
        int eventSize = events.get(i).getSerializedSize() + 3;
        if (part.getEventsCount() > 0 && size + eventSize >= fragmentBytes) {
          break;
        }
        part.addEvents(events.get(i++));
        size += eventSize;
      }
      sink.send(part.setFragment(i < events.size()).build());
    }
  }

  /** The watcher needs revisions no longer in memory: read them from the store, off the event loop. */
  private void catchUp(Watcher w) {
    w.loading = true;
    long from = w.nextRev;
    MvccStore store = hub.store();
    vertx.executeBlocking(() -> {
      try (MvccStore.ReadView view = store.read()) {
        MvccStore.History h = view.history(from, BATCH_EVENTS);
        List<Event> events = new ArrayList<>();
        for (Event e : h.events()) {
          if (w.accepts(e)) {
            events.add(w.prevKv ? withPrevKv(view, e) : e);
          }
        }
        return new MvccStore.History(events, h.lastRevision());
      } catch (MvccException e) {
        try (MvccStore.ReadView view = store.read()) {
          throw new CompactedException(view.compactRevision());
        }
      }
    }, false).onComplete(ar -> {
      w.loading = false;
      if (closed || watchers.get(w.id) != w || w.nextRev != from) {
        pump();
        return;
      }
      if (ar.failed()) {
        if (ar.cause() instanceof CompactedException ce) {
          cancelCompacted(w, ce.compactRevision);
        } else {
          LOG.warn("reading watch history from revision {} failed: {}", from, ar.cause().toString());
          watchers.remove(w.id);
          forget(w);
          sink.send(response(hub.revision(), w.id).setCanceled(true)
              .setCancelReason(String.valueOf(ar.cause().getMessage())).build());
        }
      } else {
        deliver(w, ar.result().events(), Math.max(from - 1, ar.result().lastRevision()));
        maybeJoin(w);
      }
      pump();
    });
  }

  /**
   * etcd's previous value of an event's key: a read at the revision before it, so none for a creation,
   * and none when that revision is compacted (etcd's read fails there, even if an older value is kept).
   */
  private static Event withPrevKv(MvccStore.ReadView view, Event e) {
    KeyValue kv = e.getKv();
    if (e.getType() == Event.EventType.PUT && kv.getVersion() == 1
        || kv.getModRevision() - 1 < view.compactRevision()) {
      return e;
    }
    KeyValue prev = view.valueBefore(kv.getKey().toByteArray(), kv.getModRevision());
    return prev == null ? e : e.toBuilder().setPrevKv(prev).build();
  }

  /**
   * The history the watcher needs is compacted: as etcd, it is told the compacted revision and
   * cancelled (the header's revision stays 0, as etcd leaves it).
   */
  private void cancelCompacted(Watcher w, long compactRevision) {
    watchers.remove(w.id);
    forget(w);
    sink.send(response(0, w.id).setCompactRevision(compactRevision).setCanceled(true).build());
  }

  /** etcd's progress notifications: a watcher that is up to date hears the current revision. */
  private void notifyProgress() {
    if (closed || sink.writeQueueFull()) {
      return;
    }
    long current = hub.revision();
    for (Watcher w : watchers.values()) {
      if (w.progressNotify && !w.loading && next(w) > current) {
        sink.send(response(current, w.id).build());
      }
    }
  }

  private WatchResponse.Builder response(long revision, long watchId) {
    return WatchResponse.newBuilder().setHeader(headers.header(revision)).setWatchId(watchId);
  }

  private static final class CompactedException extends RuntimeException {
    final long compactRevision;

    CompactedException(long compactRevision) {
      super("compacted at " + compactRevision, null, false, false);
      this.compactRevision = compactRevision;
    }
  }

  /** One watcher: what it watches, and the next revision it must see. */
  static final class Watcher {
    final long id;
    final ByteString key;
    /** null: the single key; empty: every key from {@code key}; otherwise the exclusive end. */
    final ByteString end;
    final boolean noPut;
    final boolean noDelete;
    final boolean prevKv;
    final boolean progressNotify;
    final boolean fragment;
    /** Whether its caller may still read its keys (see {@link #recheckAccess}); null: always. */
    java.util.function.Supplier<String> recheck;
    /** The next revision to see, while not {@link #inSynced} (the group's is the stream's). */
    long nextRev;
    boolean loading;
    boolean inSynced;

    Watcher(long id, ByteString key, ByteString end, List<WatchCreateRequest.FilterType> filters,
        boolean prevKv, boolean progressNotify, boolean fragment, long startRev) {
      this.id = id;
      this.key = key;
      this.end = end;
      this.noPut = filters.contains(WatchCreateRequest.FilterType.NOPUT);
      this.noDelete = filters.contains(WatchCreateRequest.FilterType.NODELETE);
      this.prevKv = prevKv;
      this.progressNotify = progressNotify;
      this.fragment = fragment;
      this.nextRev = startRev;
    }

    boolean accepts(Event e) {
      if (e.getType() == Event.EventType.PUT ? noPut : noDelete) {
        return false;
      }
      ByteString k = e.getKv().getKey();
      if (end == null) {
        return k.equals(key);
      }
      return BYTES.compare(k, key) >= 0 && (end.isEmpty() || BYTES.compare(k, end) < 0);
    }
  }
}
