package io.vetcd.watch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.ResponseHeader;
import io.vetcd.proto.etcdserverpb.WatchCancelRequest;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.etcdserverpb.WatchProgressRequest;
import io.vetcd.proto.etcdserverpb.WatchRequest;
import io.vetcd.proto.etcdserverpb.WatchResponse;
import io.vetcd.proto.mvccpb.Event;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Watch streams over a real keyspace: etcd's guarantees (ordered, unique, atomic per revision,
 * resumable), its create/cancel/progress answers, and a client that stops reading.
 */
class WatchStreamTest {

  @TempDir
  Path dir;

  private Vertx vertx;
  private Context context;
  private MvccStore store;
  private WatchHub hub;
  private final FakeSink sink = new FakeSink();
  private WatchStream stream;
  /** What the stream waits for before a create: the member's answered writes published to the hub. */
  private volatile Future<Void> answered = Future.succeededFuture();

  /** Records responses; "full" plays a client that stopped reading. */
  static final class FakeSink implements WatchStream.Sink {
    final List<WatchResponse> sent = java.util.Collections.synchronizedList(new ArrayList<>());
    volatile boolean full;
    volatile Runnable onDrain;

    @Override
    public void send(WatchResponse response) {
      sent.add(response);
    }

    @Override
    public boolean writeQueueFull() {
      return full;
    }

    @Override
    public void drainHandler(Runnable onDrain) {
      this.onDrain = onDrain;
    }

    List<WatchResponse> snapshot() {
      synchronized (sent) {
        return new ArrayList<>(sent);
      }
    }
  }

  @BeforeEach
  void open() {
    vertx = Vertx.vertx();
    context = vertx.getOrCreateContext();
    store = MvccStore.open(dir, 1L << 30);
  }

  @AfterEach
  void close() throws Exception {
    vertx.close().await(10, TimeUnit.SECONDS);
    store.close();
  }

  /** A hub with a small in-memory history, so that catching up from the store is exercised. */
  private void startHub(int ringEvents) {
    hub = new WatchHub(store, ringEvents, ringEvents, 1L << 30);
    onContext(() -> stream = new WatchStream(vertx, hub, sink,
        rev -> ResponseHeader.newBuilder().setRevision(rev).build(), () -> answered, 4096, 60_000));
  }

  private void onContext(Runnable r) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    context.runOnContext(v -> {
      r.run();
      done.complete(null);
    });
    done.join();
  }

  private void send(WatchRequest request) {
    onContext(() -> stream.handle(request));
  }

  private void create(WatchCreateRequest.Builder c) {
    send(WatchRequest.newBuilder().setCreateRequest(c).build());
  }

  private static ByteString bs(String s) {
    return ByteString.copyFrom(s, StandardCharsets.UTF_8);
  }

  /** Writes one revision (each pair key, value; a null value deletes) and publishes it. */
  private void write(String... keyValues) {
    try (MvccStore.WriteBatch batch = store.write()) {
      MvccStore.StoreTxn txn = batch.begin();
      for (int i = 0; i < keyValues.length; i += 2) {
        if (keyValues[i + 1] == null) {
          txn.deleteRange(keyValues[i].getBytes(StandardCharsets.UTF_8), null);
        } else {
          txn.put(keyValues[i].getBytes(StandardCharsets.UTF_8), bs(keyValues[i + 1]), 0);
        }
      }
      txn.end();
      long compacted = batch.compactRevision();
      batch.commit();
      if (hub != null) {
        hub.publish(batch.events(), compacted);
      }
    }
  }

  private void compact(long revision) {
    try (MvccStore.WriteBatch batch = store.write()) {
      batch.compact(revision);
      long compacted = batch.compactRevision();
      batch.commit();
      hub.publish(List.of(), compacted);
    }
  }

  private static void waitFor(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - deadline > 0) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5);
    }
  }

  private List<Event> events(long watchId) {
    List<Event> events = new ArrayList<>();
    for (WatchResponse r : sink.snapshot()) {
      if (r.getWatchId() == watchId) {
        events.addAll(r.getEventsList());
      }
    }
    return events;
  }

  private static List<String> describe(List<Event> events) {
    return events.stream()
        .map(e -> e.getType() + " " + e.getKv().getKey().toStringUtf8() + "@" + e.getKv().getModRevision())
        .toList();
  }

  @Test
  void createIsAnsweredWithTheCurrentRevisionAndEventsFollowInOrder() throws Exception {
    write("a", "1"); // revision 2
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("a")));
    WatchResponse created = sink.snapshot().get(0);
    assertTrue(created.getCreated());
    assertEquals(0, created.getWatchId());
    assertEquals(2, created.getHeader().getRevision());
    write("a", "2");
    write("b", "1");
    write("a", null);
    waitFor("two events", () -> events(0).size() == 2);
    assertEquals(List.of("PUT a@3", "DELETE a@5"), describe(events(0)));
  }

  @Test
  void aCreateWaitsUntilTheAnsweredWritesArePublishedAndLaterRequestsWaitBehindIt() throws Exception {
    write("a", "1");
    write("a", "2");
    write("a", "3"); // revision 4
    startHub(1000);
    Promise<Void> published = Promise.promise();
    answered = published.future();
    // The compaction committed and its answer left, but the apply thread has not published it yet.
    try (MvccStore.WriteBatch batch = store.write()) {
      batch.compact(3);
      batch.commit();
    }
    create(WatchCreateRequest.newBuilder().setKey(bs("a")).setStartRevision(2).setWatchId(7));
    send(WatchRequest.newBuilder().setProgressRequest(WatchProgressRequest.getDefaultInstance()).build());
    assertEquals(List.of(), sink.snapshot(), "answered before the hub caught up");
    hub.publish(List.of(), 3);
    onContext(published::complete);
    waitFor("create, cancel and progress", () -> sink.snapshot().size() == 3);
    List<WatchResponse> sent = sink.snapshot();
    assertTrue(sent.get(0).getCreated());
    assertTrue(sent.get(1).getCanceled(), () -> "below the compaction: " + sent.get(1));
    assertEquals(3, sent.get(1).getCompactRevision());
    assertEquals(-1, sent.get(2).getWatchId(), () -> "progress after the create: " + sent.get(2));
  }

  /** etcd_debugging_mvcc_watcher_total: up with each create, down with a cancel, a compaction's cancel, a close. */
  @Test
  void theHubCountsWatchersAsTheyComeAndGo() throws Exception {
    write("a", "1");
    write("a", "2");
    write("a", "3"); // revision 4
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("a")).setWatchId(1));
    create(WatchCreateRequest.newBuilder().setKey(bs("b")).setWatchId(2));
    create(WatchCreateRequest.newBuilder().setKey(bs("c")).setWatchId(3));
    create(WatchCreateRequest.newBuilder().setKey(bs("a")).setWatchId(1)); // a duplicate id: refused, not counted
    assertEquals(3, hub.watcherCount());
    send(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(2)).build());
    send(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(2)).build());
    assertEquals(2, hub.watcherCount());
    compact(3);
    create(WatchCreateRequest.newBuilder().setKey(bs("a")).setStartRevision(2).setWatchId(4));
    waitFor("the compacted watch cancelled", () -> sink.snapshot().stream()
        .anyMatch(r -> r.getWatchId() == 4 && r.getCanceled()));
    assertEquals(2, hub.watcherCount());
    onContext(stream::close);
    assertEquals(0, hub.watcherCount());
  }

  @Test
  void rangesPrefixesAndFromKeyWatchesSeeTheirKeysOnly() throws Exception {
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("foo")).setRangeEnd(bs("foo9")).setWatchId(1));
    create(WatchCreateRequest.newBuilder().setKey(bs("foo")).setRangeEnd(bs("fop")).setWatchId(2));
    create(WatchCreateRequest.newBuilder().setKey(bs("g")).setRangeEnd(ByteString.copyFrom(new byte[] {0})).setWatchId(3));
    write("fo", "x");
    write("foo", "x");
    write("foo5", "x");
    write("foo9", "x");
    write("fooa", "x");
    write("h", "x");
    waitFor("all events", () -> events(1).size() == 2 && events(2).size() == 4 && events(3).size() == 1);
    assertEquals(List.of("PUT foo@3", "PUT foo5@4"), describe(events(1)));
    assertEquals(List.of("PUT foo@3", "PUT foo5@4", "PUT foo9@5", "PUT fooa@6"), describe(events(2)));
    assertEquals(List.of("PUT h@7"), describe(events(3)));
  }

  @Test
  void aStartRevisionReplaysHistoryFromTheStoreThenGoesLive() throws Exception {
    write("foo", "1");
    write("bar", "1");
    write("foo", "2");
    startHub(1000); // the history above is in the store only
    create(WatchCreateRequest.newBuilder().setKey(bs("foo")).setStartRevision(2).setPrevKv(true));
    write("foo", "3");
    waitFor("three events", () -> events(0).size() == 3);
    List<Event> events = events(0);
    assertEquals(List.of("PUT foo@2", "PUT foo@4", "PUT foo@5"), describe(events));
    assertFalse(events.get(0).hasPrevKv(), "a creation has no previous value");
    assertEquals("1", events.get(1).getPrevKv().getValue().toStringUtf8(), "read back from the store");
    assertEquals("2", events.get(2).getPrevKv().getValue().toStringUtf8(), "from memory");
  }

  @Test
  void allEventsOfOneRevisionArriveInOneResponse() throws Exception {
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setRangeEnd(bs("l")));
    write("k1", "a", "k2", "b", "k3", "c");
    waitFor("the txn's events", () -> events(0).size() == 3);
    List<WatchResponse> withEvents = sink.snapshot().stream().filter(r -> r.getEventsCount() > 0).toList();
    assertEquals(1, withEvents.size());
    assertEquals(2, withEvents.get(0).getHeader().getRevision());
  }

  @Test
  void filtersAndPrevKv() throws Exception {
    write("k", "0");
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setWatchId(1)
        .addFilters(WatchCreateRequest.FilterType.NOPUT));
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setWatchId(2)
        .addFilters(WatchCreateRequest.FilterType.NODELETE).setPrevKv(true));
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setWatchId(3));
    write("k", "1");
    write("k", null);
    waitFor("events", () -> events(1).size() == 1 && events(2).size() == 1 && events(3).size() == 2);
    assertEquals(List.of("DELETE k@4"), describe(events(1)));
    assertEquals(List.of("PUT k@3"), describe(events(2)));
    assertEquals("0", events(2).get(0).getPrevKv().getValue().toStringUtf8());
    assertFalse(events(3).get(0).hasPrevKv(), "prev_kv only when asked for");
  }

  @Test
  void cancelAnswersCanceledAndStopsTheEvents() throws Exception {
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")));
    create(WatchCreateRequest.newBuilder().setKey(bs("k")));
    send(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(0)).build());
    assertTrue(sink.snapshot().get(2).getCanceled());
    assertEquals(0, sink.snapshot().get(2).getWatchId());
    send(WatchRequest.newBuilder().setCancelRequest(WatchCancelRequest.newBuilder().setWatchId(42)).build());
    assertEquals(3, sink.snapshot().size(), "an unknown watch id is not answered (etcd 3.4)");
    write("k", "1");
    waitFor("the other watcher's event", () -> events(1).size() == 1);
    assertEquals(0, events(0).size());
  }

  @Test
  void aDuplicateIdOrAnEmptyRangeIsRefusedWithEtcdsWords() {
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setWatchId(5));
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setWatchId(5));
    create(WatchCreateRequest.newBuilder().setKey(bs("b")).setRangeEnd(bs("a")));
    List<WatchResponse> sent = sink.snapshot();
    for (int i = 1; i <= 2; i++) {
      assertTrue(sent.get(i).getCreated());
      assertTrue(sent.get(i).getCanceled());
      assertEquals(-1, sent.get(i).getWatchId());
    }
    assertEquals("mvcc: duplicate watch ID provided on the WatchStream", sent.get(1).getCancelReason());
    assertEquals("mvcc: watcher range is empty", sent.get(2).getCancelReason());
  }

  @Test
  void aWatchFromACompactedRevisionIsCancelledWithTheCompactRevision() throws Exception {
    write("k", "1");
    write("k", "2");
    write("k", "3");
    startHub(1000);
    compact(3);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setStartRevision(2));
    waitFor("the compaction answer", () -> sink.snapshot().size() == 2);
    WatchResponse r = sink.snapshot().get(1);
    assertEquals(3, r.getCompactRevision());
    assertTrue(r.getCanceled());
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setStartRevision(3));
    waitFor("the event at the compacted revision", () -> events(1).size() == 2);
  }

  @Test
  void prevKvIsLeftOutWhenTheRevisionBeforeTheEventIsCompacted() throws Exception {
    startHub(1000);
    write("a", "1");
    write("a", "2"); // revision 3
    write("a", "3");
    compact(3);
    create(WatchCreateRequest.newBuilder().setKey(bs("a")).setStartRevision(3).setPrevKv(true));
    waitFor("two events", () -> events(0).size() == 2);
    assertFalse(events(0).get(0).hasPrevKv(), "etcd reads prev_kv at revision 2, which is compacted");
    assertEquals("2", events(0).get(1).getPrevKv().getValue().toStringUtf8());
    hub = new WatchHub(store, 1000, 1000, 1L << 30); // the same from the store instead of memory
    onContext(() -> stream = new WatchStream(vertx, hub, sink,
        rev -> ResponseHeader.newBuilder().setRevision(rev).build(), () -> answered, 4096, 60_000));
    create(WatchCreateRequest.newBuilder().setKey(bs("a")).setStartRevision(3).setPrevKv(true).setWatchId(9));
    waitFor("two events", () -> events(9).size() == 2);
    assertFalse(events(9).get(0).hasPrevKv());
    assertEquals("2", events(9).get(1).getPrevKv().getValue().toStringUtf8());
  }

  @Test
  void progressIsAnsweredOnceEveryWatcherHasCaughtUp() throws Exception {
    for (int i = 0; i < 50; i++) {
      write("k", "v" + i);
    }
    startHub(10);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setStartRevision(2));
    send(WatchRequest.newBuilder().setProgressRequest(WatchProgressRequest.getDefaultInstance()).build());
    waitFor("the progress answer", () -> sink.snapshot().stream().anyMatch(r -> r.getWatchId() == -1));
    List<WatchResponse> sent = sink.snapshot();
    WatchResponse progress = sent.get(sent.size() - 1);
    assertEquals(-1, progress.getWatchId());
    assertEquals(51, progress.getHeader().getRevision());
    assertEquals(50, events(0).size(), "every event before the progress answer");
  }

  @Test
  void largeResponsesAreFragmentedForWatchersThatAskForIt() throws Exception {
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setRangeEnd(bs("l")).setFragment(true));
    String[] kvs = new String[40];
    for (int i = 0; i < 20; i++) {
      kvs[2 * i] = "k" + i;
      kvs[2 * i + 1] = "x".repeat(500);
    }
    write(kvs);
    waitFor("all fragments", () -> events(0).size() == 20);
    List<WatchResponse> parts = sink.snapshot().stream().filter(r -> r.getEventsCount() > 0).toList();
    assertTrue(parts.size() > 1, "split: " + parts.size());
    for (int i = 0; i < parts.size(); i++) {
      assertEquals(i < parts.size() - 1, parts.get(i).getFragment());
      assertTrue(parts.get(i).getSerializedSize() < 4096 + 600);
    }
  }

  /**
   * A client that stops reading while 100,000 events are written: nothing is queued for it (the
   * server keeps its position only, and the in-memory history stays within its bound); when it reads
   * again it gets every event, in order, once, caught up from the store.
   */
  @Test
  void aReaderHeldStillWhile100kEventsAreWrittenCostsNoMemoryAndMissesNothing() throws Exception {
    startHub(1000);
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setRangeEnd(bs("l")));
    sink.full = true;
    int total = 100_000;
    int perRevision = 10;
    for (int rev = 0; rev < total / perRevision; rev++) {
      String[] kvs = new String[2 * perRevision];
      for (int i = 0; i < perRevision; i++) {
        kvs[2 * i] = "k" + (rev * perRevision + i) % 5000;
        kvs[2 * i + 1] = "v" + rev;
      }
      write(kvs);
    }
    onContext(() -> { }); // wake-ups queued before this have run
    assertEquals(1, sink.snapshot().size(), "only the created answer: nothing queued while the client is full");
    sink.full = false;
    onContext(() -> sink.onDrain.run());
    waitFor("every event", () -> events(0).size() >= total);
    List<Event> events = events(0);
    assertEquals(total, events.size());
    long revision = 1;
    int inRevision = 0;
    for (Event e : events) {
      long r = e.getKv().getModRevision();
      if (r != revision) {
        assertEquals(revision + 1, r, "no revision skipped, none repeated");
        assertTrue(revision == 1 || inRevision == perRevision);
        revision = r;
        inRevision = 0;
      }
      inRevision++;
    }
    for (WatchResponse r : sink.snapshot()) {
      if (r.getEventsCount() > 0) {
        assertEquals(0, r.getEventsCount() % perRevision, "whole revisions per response");
      }
    }
  }

  /**
   * Ten thousand single-key watchers and a few ranges on one stream, served through the synced group's
   * index: each event reaches exactly the watchers of its key (filters included) and the ranges that
   * hold it, once, in order; the watchers of other keys get nothing.
   */
  @Test
  void manyWatchersOnOneStreamEachGetExactlyTheirKeysEvents() throws Exception {
    startHub(1000);
    int keys = 10_000;
    onContext(() -> {
      for (int k = 0; k < keys; k++) {
        stream.handle(WatchRequest.newBuilder().setCreateRequest(WatchCreateRequest.newBuilder()
            .setKey(bs(String.format("k%05d", k))).setWatchId(k + 1)).build());
      }
    });
    create(WatchCreateRequest.newBuilder().setKey(bs("k00042")).setWatchId(20_001)
        .addFilters(WatchCreateRequest.FilterType.NOPUT));
    create(WatchCreateRequest.newBuilder().setKey(bs("k0004")).setRangeEnd(bs("k0005")).setWatchId(20_002));
    create(WatchCreateRequest.newBuilder().setKey(bs("k")).setRangeEnd(bs("l")).setWatchId(20_003).setPrevKv(true));
    AtomicInteger grouped = new AtomicInteger();
    onContext(() -> grouped.set(stream.syncedCount()));
    assertEquals(keys + 3, grouped.get(), "watchers created up to date are served as one group");
    write("k00042", "1");
    write("k09999", "1", "k00040", "1");
    write("k00042", null);
    write("other", "1");
    waitFor("the prefix watcher's four events", () -> events(20_003).size() == 4);
    waitFor("the last delete", () -> events(20_001).size() == 1);
    assertEquals(List.of("PUT k00042@2", "DELETE k00042@4"), describe(events(43)));
    assertEquals(List.of("PUT k09999@3"), describe(events(10_000)));
    assertEquals(List.of("PUT k00040@3"), describe(events(41)));
    assertEquals(List.of("DELETE k00042@4"), describe(events(20_001)), "NOPUT filters in the index too");
    assertEquals(List.of("PUT k00042@2", "PUT k00040@3", "DELETE k00042@4"), describe(events(20_002)));
    assertEquals(List.of("PUT k00042@2", "PUT k09999@3", "PUT k00040@3", "DELETE k00042@4"),
        describe(events(20_003)));
    assertTrue(events(20_003).get(3).hasPrevKv(), "prev_kv as the watcher asked");
    assertFalse(events(43).get(1).hasPrevKv(), "no prev_kv for a watcher that did not ask");
    onContext(() -> grouped.set(stream.syncedCount()));
    assertEquals(keys + 3, grouped.get(), "and stay in it while the client reads");
    long withEvents = sink.snapshot().stream().filter(r -> r.getEventsCount() > 0).map(WatchResponse::getWatchId)
        .distinct().count();
    assertEquals(6, withEvents, "only the watchers of the keys written heard of them");
  }
}
