package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.api.Event;
import io.etcd.jetcd.api.WatchCreateRequest;
import io.etcd.jetcd.common.exception.CompactedException;
import io.etcd.jetcd.common.exception.ErrorCode;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Watch service through jetcd 0.8.7 (one gRPC stream per watcher) and, where jetcd hides what the
 * server does, through a hand-driven stream ({@link RawWatchStream}).
 *
 * <p>Most watches start at an explicit revision (the first one the test writes): jetcd sends the
 * create request asynchronously, so a watch "from now" could miss a put made right after
 * {@code watch()} returns.
 */
class WatchTest extends EtcdTestBase {

    private final List<Watch.Watcher> watchers = new ArrayList<>();
    private final List<RawWatchStream> raws = new ArrayList<>();

    @AfterEach
    void closeWatchers() {
        watchers.forEach(Watch.Watcher::close);
        watchers.clear();
        raws.forEach(RawWatchStream::close);
        raws.clear();
    }

    private WatchRecorder watch(String name, ByteSequence key, WatchOption opt) {
        WatchRecorder rec = new WatchRecorder(name);
        watchers.add(client.getWatchClient().watch(key, opt, rec));
        return rec;
    }

    /**
     * A watch that is surely in place (created response received) before the test writes: its
     * events are live ones, one response per revision, rather than a replay that may batch several
     * revisions into one response.
     */
    private WatchRecorder watchLive(String name, ByteSequence key, WatchOption.Builder opt) {
        WatchRecorder rec = watch(name, key, opt.withCreateNotify(true).build());
        rec.awaitCreated();
        return rec;
    }

    private static WatchOption.Builder from(long rev) {
        return WatchOption.builder().withRevision(rev);
    }

    private RawWatchStream raw() {
        RawWatchStream r = new RawWatchStream(server.clientPort());
        raws.add(r);
        return r;
    }

    private List<String> described(WatchRecorder rec) {
        return WatchRecorder.describe(rec.events(), ns);
    }

    private static void assertKvFields(KeyValue kv, long create, long mod, long version) {
        assertEquals(create, kv.getCreateRevision(), "create_revision");
        assertEquals(mod, kv.getModRevision(), "mod_revision");
        assertEquals(version, kv.getVersion(), "version");
    }

    @Test
    void watchOneKey() {
        long r0 = currentRevision();
        WatchRecorder w = watchLive("a", k("a"), from(r0 + 1));
        put(ns + "a", "1");     // r0+1
        put(ns + "ab", "x");    // r0+2: another key sharing the prefix is not watched
        put(ns + "a", "2");     // r0+3
        await(kv.delete(k("a")));   // r0+4
        w.awaitRevision(r0 + 4);
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT a=2@" + (r0 + 3), "DELETE a@" + (r0 + 4)), described(w));

        List<WatchEvent> evs = w.events();
        assertKvFields(evs.get(0).getKeyValue(), r0 + 1, r0 + 1, 1);
        assertKvFields(evs.get(1).getKeyValue(), r0 + 1, r0 + 3, 2);
        // a delete event carries the key and the deletion revision only
        KeyValue del = evs.get(2).getKeyValue();
        assertKvFields(del, 0, r0 + 4, 0);
        assertTrue(del.getValue().isEmpty(), "a delete event has no value");
        // without prev_kv no previous pair is sent
        evs.forEach(e -> assertTrue(e.getPrevKV().getKey().isEmpty(), "prev_kv not requested"));
        // live events: one response per revision, header revision = the event's revision
        for (WatchResponse r : w.responses()) {
            assertEquals(1, r.getEvents().size());
            assertEquals(r.getEvents().get(0).getKeyValue().getModRevision(), r.getHeader().getRevision());
            assertNotEquals(0, r.getHeader().getClusterId());
            assertNotEquals(0, r.getHeader().getMemberId());
        }
        assertTrue(w.errors().isEmpty(), () -> "errors: " + w.errors());
    }

    @Test
    void watchKeyRange() {
        long r0 = currentRevision();
        // [a, c): a, b, b/x but not c
        WatchRecorder w = watch("range", k("a"), from(r0 + 1).withRange(k("c")).build());
        put(ns + "a", "1");
        put(ns + "c", "1");
        put(ns + "b", "1");
        put(ns + "b/x", "1");
        put(ns + "0", "1");
        put(ns + "bz", "1");    // r0+6
        w.awaitRevision(r0 + 6);
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT b=1@" + (r0 + 3), "PUT b/x=1@" + (r0 + 4),
                "PUT bz=1@" + (r0 + 6)), described(w));
    }

    @Test
    void watchFromKeyToTheEndOfTheKeyspace() {
        long r0 = currentRevision();
        // range_end "\0" means every key >= key
        WatchRecorder w = watch("to-end", k("m"), from(r0 + 1).withRange(bs("\0")).build());
        put(ns + "a", "1");     // r0+1, below
        put(ns + "m", "1");     // r0+2
        put(ns + "z", "1");     // r0+3
        put(ns + "zz/zz", "1"); // r0+4
        w.awaitRevision(r0 + 4);
        assertEquals(List.of("PUT m=1@" + (r0 + 2), "PUT z=1@" + (r0 + 3), "PUT zz/zz=1@" + (r0 + 4)), described(w));
    }

    @Test
    void watchPrefix() {
        long r0 = currentRevision();
        WatchRecorder w = watch("prefix", k("p/"), from(r0 + 1).isPrefix(true).build());
        put(ns + "p/1", "a");   // r0+1
        put(ns + "p", "b");     // r0+2 not under "p/"
        put(ns + "q/1", "c");   // r0+3
        put(ns + "p/2/x", "d"); // r0+4
        await(kv.delete(k("p/"), DeleteOption.builder().isPrefix(true).build()));   // r0+5, two deletes
        w.awaitRevision(r0 + 5);
        assertEquals(List.of("PUT p/1=a@" + (r0 + 1), "PUT p/2/x=d@" + (r0 + 4), "DELETE p/1@" + (r0 + 5),
                "DELETE p/2/x@" + (r0 + 5)), described(w));
        // a range delete is one revision: both events in one response, in key order
        WatchResponse last = w.responses().get(w.responses().size() - 1);
        assertEquals(List.of("DELETE p/1@" + (r0 + 5), "DELETE p/2/x@" + (r0 + 5)),
                WatchRecorder.describe(last.getEvents(), ns));
    }

    @Test
    void watchFromPastRevisionReplaysHistory() {
        long r0 = currentRevision();
        put(ns + "k", "1");     // r0+1
        put(ns + "k", "2");     // r0+2
        put(ns + "other", "x"); // r0+3
        await(kv.delete(k("k")));   // r0+4
        put(ns + "k", "3");     // r0+5

        // from r0+2: the history of the key since then, then live events
        WatchRecorder w = watch("past", k("k"), from(r0 + 2).build());
        w.awaitRevision(r0 + 5);
        put(ns + "k", "4");     // r0+6
        w.awaitRevision(r0 + 6);
        assertEquals(List.of("PUT k=2@" + (r0 + 2), "DELETE k@" + (r0 + 4), "PUT k=3@" + (r0 + 5),
                "PUT k=4@" + (r0 + 6)), described(w));
        List<WatchEvent> evs = w.events();
        assertKvFields(evs.get(0).getKeyValue(), r0 + 1, r0 + 2, 2);
        assertKvFields(evs.get(2).getKeyValue(), r0 + 5, r0 + 5, 1);    // recreated: new create revision
        assertKvFields(evs.get(3).getKeyValue(), r0 + 5, r0 + 6, 2);
        // header revisions never go below the events they carry
        for (WatchResponse r : w.responses()) {
            long last = r.getEvents().get(r.getEvents().size() - 1).getKeyValue().getModRevision();
            assertTrue(r.getHeader().getRevision() >= last, "header revision " + r.getHeader().getRevision()
                    + " below event revision " + last);
        }

        // the whole prefix from r0+1 replays every write in order
        WatchRecorder all = watch("all", k(""), from(r0 + 1).isPrefix(true).build());
        all.awaitRevision(r0 + 6);
        assertEquals(List.of("PUT k=1@" + (r0 + 1), "PUT k=2@" + (r0 + 2), "PUT other=x@" + (r0 + 3),
                "DELETE k@" + (r0 + 4), "PUT k=3@" + (r0 + 5), "PUT k=4@" + (r0 + 6)), described(all));
    }

    @Test
    void prevKv() {
        long r0 = currentRevision();
        WatchRecorder w = watch("prev", k("a"), from(r0 + 1).withPrevKV(true).build());
        put(ns + "a", "1");     // r0+1
        put(ns + "a", "2");     // r0+2
        await(kv.delete(k("a")));   // r0+3
        put(ns + "a", "3");     // r0+4
        w.awaitRevision(r0 + 4);
        List<WatchEvent> evs = w.events();
        assertEquals(4, evs.size(), () -> described(w).toString());
        assertTrue(evs.get(0).getPrevKV().getKey().isEmpty(), "creating put has no prev_kv");
        KeyValue p1 = evs.get(1).getPrevKV();
        assertEquals(ns + "a", str(p1.getKey()));
        assertEquals("1", str(p1.getValue()));
        assertKvFields(p1, r0 + 1, r0 + 1, 1);
        KeyValue p2 = evs.get(2).getPrevKV();
        assertEquals("2", str(p2.getValue()), "delete carries the deleted pair");
        assertKvFields(p2, r0 + 1, r0 + 2, 2);
        assertTrue(evs.get(3).getPrevKV().getKey().isEmpty(), "put after delete has no prev_kv");

        // prev_kv on a replayed (past) watch too
        WatchRecorder past = watch("prev-past", k("a"), from(r0 + 2).withPrevKV(true).build());
        past.awaitRevision(r0 + 4);
        List<WatchEvent> pe = past.events();
        assertEquals("1", str(pe.get(0).getPrevKV().getValue()));
        assertEquals("2", str(pe.get(1).getPrevKV().getValue()));
        assertTrue(pe.get(2).getPrevKV().getKey().isEmpty());
    }

    @Test
    void noPutAndNoDeleteFilters() {
        long r0 = currentRevision();
        WatchRecorder noPut = watchLive("noput", k(""), from(r0 + 1).isPrefix(true).withNoPut(true));
        WatchRecorder noDel = watchLive("nodelete", k(""), from(r0 + 1).isPrefix(true).withNoDelete(true));
        put(ns + "a", "1");         // r0+1
        put(ns + "b", "1");         // r0+2
        await(kv.delete(k("a")));   // r0+3
        await(kv.txn().Then(Op.put(k("c"), bs("1"), PutOption.DEFAULT),
                Op.delete(k("b"), DeleteOption.DEFAULT)).commit());   // r0+4: one put, one delete
        put(ns + "end", "1");       // r0+5
        noDel.awaitRevision(r0 + 5);
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT b=1@" + (r0 + 2), "PUT c=1@" + (r0 + 4),
                "PUT end=1@" + (r0 + 5)), described(noDel));
        noPut.awaitRevision(r0 + 4);
        assertEquals(List.of("DELETE a@" + (r0 + 3), "DELETE b@" + (r0 + 4)), described(noPut));
        // a revision whose events are all filtered out sends nothing: the mixed txn is one response each
        assertEquals(4, noDel.responses().size());
        assertEquals(2, noPut.responses().size());
    }

    @Test
    void closedWatcherGetsNoMoreEvents() {
        long r0 = currentRevision();
        WatchRecorder closed = watch("closed", k("a"), from(r0 + 1).build());
        WatchRecorder open = watch("open", k("a"), from(r0 + 1).build());
        put(ns + "a", "1");     // r0+1
        closed.awaitRevision(r0 + 1);
        Watch.Watcher toClose = watchers.get(0);
        toClose.close();
        assertTrue(toClose.isClosed());
        closed.awaitCompleted();    // jetcd reports the close as completion
        put(ns + "a", "2");     // r0+2
        open.awaitRevision(r0 + 2);
        assertEquals(List.of("PUT a=1@" + (r0 + 1)), described(closed));
        assertTrue(closed.errors().isEmpty(), () -> "errors: " + closed.errors());
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT a=2@" + (r0 + 2)), described(open));
    }

    @Test
    void severalWatchersOnOneClient() {
        long r0 = currentRevision();
        // jetcd 0.8.7 gives each watcher its own stream; the server must serve them side by side
        WatchRecorder a = watch("a", k("a"), from(r0 + 1).build());
        WatchRecorder b = watch("b", k("b"), from(r0 + 1).build());
        WatchRecorder ab = watch("a+b", k("a"), from(r0 + 1).withRange(k("c")).build());
        WatchRecorder a2 = watch("a-again", k("a"), from(r0 + 1).withPrevKV(true).build());
        put(ns + "a", "1");
        put(ns + "b", "1");
        put(ns + "a", "2");
        put(ns + "b", "2");     // r0+4
        b.awaitRevision(r0 + 4);
        ab.awaitRevision(r0 + 4);
        a.awaitRevision(r0 + 3);
        a2.awaitRevision(r0 + 3);
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT a=2@" + (r0 + 3)), described(a));
        assertEquals(List.of("PUT b=1@" + (r0 + 2), "PUT b=2@" + (r0 + 4)), described(b));
        assertEquals(List.of("PUT a=1@" + (r0 + 1), "PUT b=1@" + (r0 + 2), "PUT a=2@" + (r0 + 3),
                "PUT b=2@" + (r0 + 4)), described(ab));
        assertEquals(described(a), described(a2));
    }

    private WatchCreateRequest.Builder rawCreate(String suffix) {
        return WatchCreateRequest.newBuilder().setKey(RawWatchStream.bytes(ns + suffix));
    }

    private static List<String> rawEvents(io.etcd.jetcd.api.WatchResponse r) {
        return r.getEventsList().stream()
                .map(e -> e.getType() + " " + e.getKv().getKey().toStringUtf8().replaceFirst("^.*/", "")
                        + "@" + e.getKv().getModRevision())
                .collect(Collectors.toList());
    }

    @Test
    void severalWatchIdsMultiplexedOnOneStream() {
        long r0 = currentRevision();
        RawWatchStream s = raw();
        io.etcd.jetcd.api.WatchResponse c0 = s.createAndAwait(rawCreate("a").setStartRevision(r0 + 1).build());
        io.etcd.jetcd.api.WatchResponse c1 = s.createAndAwait(rawCreate("b").setStartRevision(r0 + 1).build());
        io.etcd.jetcd.api.WatchResponse c2 = s.createAndAwait(rawCreate("a").setStartRevision(r0 + 1)
                .setRangeEnd(RawWatchStream.bytes(ns + "c")).build());
        // etcd numbers the watches of a stream 0, 1, 2, ...
        assertEquals(List.of(0L, 1L, 2L), List.of(c0.getWatchId(), c1.getWatchId(), c2.getWatchId()));
        for (io.etcd.jetcd.api.WatchResponse c : List.of(c0, c1, c2)) {
            assertFalse(c.getCanceled());
            assertEquals(0, c.getEventsCount());
            assertEquals(r0, c.getHeader().getRevision(), "created header = store revision at creation");
        }

        put(ns + "a", "1");     // r0+1: watches 0 and 2
        put(ns + "b", "1");     // r0+2: watches 1 and 2
        List<io.etcd.jetcd.api.WatchResponse> got = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            got.add(s.next());
        }
        List<String> byId = got.stream().map(r -> r.getWatchId() + ":" + rawEvents(r)).sorted()
                .collect(Collectors.toList());
        assertEquals(List.of("0:[PUT a@" + (r0 + 1) + "]", "1:[PUT b@" + (r0 + 2) + "]",
                "2:[PUT a@" + (r0 + 1) + "]", "2:[PUT b@" + (r0 + 2) + "]"), byId);
        // per watch id the order is the revision order
        List<Long> w2 = got.stream().filter(r -> r.getWatchId() == 2)
                .map(r -> r.getEvents(0).getKv().getModRevision()).collect(Collectors.toList());
        assertEquals(List.of(r0 + 1, r0 + 2), w2);
    }

    @Test
    void cancelOnSharedStreamStopsOnlyThatWatch() {
        long r0 = currentRevision();
        RawWatchStream s = raw();
        long idA = s.createAndAwait(rawCreate("a").setStartRevision(r0 + 1).build()).getWatchId();
        long idB = s.createAndAwait(rawCreate("b").setStartRevision(r0 + 1).build()).getWatchId();
        put(ns + "a", "1");     // r0+1
        io.etcd.jetcd.api.WatchResponse ev = s.next();
        assertEquals(idA, ev.getWatchId());

        s.cancel(idA);
        io.etcd.jetcd.api.WatchResponse cancelled = s.next();
        assertTrue(cancelled.getCanceled(), () -> "expected the cancel confirmation, got " + cancelled);
        assertEquals(idA, cancelled.getWatchId());
        assertFalse(cancelled.getCreated());
        assertEquals(0, cancelled.getEventsCount());
        assertEquals(0, cancelled.getCompactRevision());
        assertEquals(r0 + 1, cancelled.getHeader().getRevision());

        put(ns + "a", "2");     // r0+2: nobody watches a any more
        put(ns + "b", "1");     // r0+3
        // one stream is ordered: had the cancelled watch got r0+2, it would come before this
        io.etcd.jetcd.api.WatchResponse next = s.next();
        assertEquals(idB, next.getWatchId(), () -> "event for a cancelled watch: " + next);
        assertEquals(List.of("PUT b@" + (r0 + 3)), rawEvents(next));

        // cancelling an id that does not exist is ignored silently: the next message is the progress
        s.cancel(77);
        s.requestProgress();
        io.etcd.jetcd.api.WatchResponse afterBadCancel = s.next();
        assertEquals(-1, afterBadCancel.getWatchId(), () -> "unknown cancel answered: " + afterBadCancel);
        assertFalse(afterBadCancel.getCanceled());

        // a new watch on the stream gets a fresh id, not the cancelled one
        long idC = s.createAndAwait(rawCreate("a").setStartRevision(r0 + 2).build()).getWatchId();
        assertEquals(2, idC);
        assertEquals(List.of("PUT a@" + (r0 + 2)), rawEvents(s.next()));
    }

    @Test
    void compactedStartRevisionEndsTheWatch() {
        long r0 = currentRevision();
        put(ns + "a", "1");     // r0+1
        put(ns + "a", "2");     // r0+2
        put(ns + "a", "3");     // r0+3
        await(kv.compact(r0 + 2));

        WatchRecorder w = watch("compacted", k("a"), from(r0 + 1).build());
        w.awaitError();
        w.awaitCompleted();     // jetcd closes the watcher after this error
        Throwable t = w.errors().get(0);
        // jetcd turns a cancel with compact_revision into CompactedException, whatever the reason text
        assertInstanceOf(CompactedException.class, t, () -> "error " + t);
        assertEquals(r0 + 2, ((CompactedException) t).getCompactedRevision());
        assertEquals(ErrorCode.OUT_OF_RANGE, ((CompactedException) t).getErrorCode());
        assertTrue(t.getMessage().contains("etcdserver: mvcc: required revision has been compacted"), t::toString);
        assertTrue(w.events().isEmpty(), () -> "events: " + described(w));
        assertEquals(1, w.errors().size());

        // exactly at the compaction revision the watch works
        WatchRecorder ok = watch("at-compaction", k("a"), from(r0 + 2).build());
        ok.awaitRevision(r0 + 3);
        assertEquals(List.of("PUT a=2@" + (r0 + 2), "PUT a=3@" + (r0 + 3)), described(ok));
        assertTrue(ok.errors().isEmpty());

        // on the wire: created first, then a cancel carrying compact_revision and no events
        RawWatchStream s = raw();
        io.etcd.jetcd.api.WatchResponse created = s.createAndAwait(rawCreate("a").setStartRevision(r0 + 1).build());
        assertFalse(created.getCanceled(), "the create itself succeeds");
        io.etcd.jetcd.api.WatchResponse cancel = s.next();
        assertEquals(created.getWatchId(), cancel.getWatchId());
        assertTrue(cancel.getCanceled(), () -> "expected cancel, got " + cancel);
        assertFalse(cancel.getCreated());
        assertEquals(r0 + 2, cancel.getCompactRevision());
        assertEquals(0, cancel.getEventsCount());
        assertEquals(COMPACTED_CANCEL_REASON, cancel.getCancelReason());
        // etcd 3.4 sends this one with header revision 0 (mvcc's compaction response has no revision)
        assertEquals(0, cancel.getHeader().getRevision(), "header revision of the compaction cancel");
        assertNotEquals(0, cancel.getHeader().getMemberId());
        // the stream stays usable for other watches
        long id2 = s.createAndAwait(rawCreate("a").setStartRevision(r0 + 3).build()).getWatchId();
        assertEquals(List.of("PUT a@" + (r0 + 3)), rawEvents(s.next()));
        assertNotEquals(created.getWatchId(), id2);
    }

    @Test
    void prevKvIsMissingWhenThePreviousRevisionIsCompacted() {
        long r0 = currentRevision();
        put(ns + "a", "1");     // r0+1
        put(ns + "a", "2");     // r0+2
        put(ns + "a", "3");     // r0+3
        await(kv.compact(r0 + 2));
        // etcd reads prev_kv at mod_revision - 1: for the event at the compaction revision that read
        // is below the compaction, so the event comes without prev_kv although a previous value existed
        WatchRecorder w = watch("prev-compacted", k("a"), from(r0 + 2).withPrevKV(true).build());
        w.awaitRevision(r0 + 3);
        List<WatchEvent> evs = w.events();
        assertEquals(List.of("PUT a=2@" + (r0 + 2), "PUT a=3@" + (r0 + 3)), described(w));
        assertTrue(evs.get(0).getPrevKV().getKey().isEmpty(), () -> "prev_kv below the compaction: "
                + evs.get(0).getPrevKV().getModRevision());
        assertEquals("2", str(evs.get(1).getPrevKV().getValue()));
    }

    @Test
    void createRefusedForAnEmptyRangeOrADuplicateWatchId() {
        RawWatchStream s = raw();
        // range_end <= key: created and cancelled at once, with watch_id -1
        s.create(rawCreate("b").setRangeEnd(RawWatchStream.bytes(ns + "a")).build());
        io.etcd.jetcd.api.WatchResponse bad = s.next();
        assertTrue(bad.getCreated() && bad.getCanceled(), () -> "response " + bad);
        assertEquals(-1, bad.getWatchId());
        assertEquals("mvcc: watcher range is empty", bad.getCancelReason());
        s.create(rawCreate("b").setRangeEnd(RawWatchStream.bytes(ns + "b")).build());
        assertEquals("mvcc: watcher range is empty", s.next().getCancelReason());

        // a client-chosen watch_id (field 7; jetcd's proto lacks it) is honoured, a second use refused
        WatchCreateRequest withId = rawCreate("c").setUnknownFields(com.google.protobuf.UnknownFieldSet.newBuilder()
                .addField(7, com.google.protobuf.UnknownFieldSet.Field.newBuilder().addVarint(100).build()).build())
                .build();
        io.etcd.jetcd.api.WatchResponse c100 = s.createAndAwait(withId);
        assertEquals(100, c100.getWatchId());
        assertFalse(c100.getCanceled());
        s.create(withId);
        io.etcd.jetcd.api.WatchResponse dup = s.next();
        assertTrue(dup.getCreated() && dup.getCanceled(), () -> "response " + dup);
        assertEquals(-1, dup.getWatchId());
        assertEquals("mvcc: duplicate watch ID provided on the WatchStream", dup.getCancelReason());
        // automatic ids go on from where they were (refused creates used none)
        assertEquals(0, s.createAndAwait(rawCreate("d").build()).getWatchId());
        // an empty key watches "\0"; a negative start revision is accepted as is
        assertEquals(1, s.createAndAwait(WatchCreateRequest.newBuilder().build()).getWatchId());
        assertEquals(2, s.createAndAwait(rawCreate("e").setStartRevision(-5).build()).getWatchId());

        // jetcd reports the refused create (watch_id -1) as an error and keeps the watcher open
        WatchRecorder w = watch("bad-range", k("b"), WatchOption.builder().withRange(k("a")).build());
        w.awaitError();
        assertTrue(w.errors().get(0).getMessage().contains("etcd server failed to create watch id"),
                () -> "error " + w.errors());
    }

    /** What etcd 3.4.23 puts in cancel_reason of the compaction cancel. */
    static final String COMPACTED_CANCEL_REASON = "";

    @Test
    void txnEventsArriveInOneResponseInTxnOrder() {
        long r0 = currentRevision();
        put(ns + "d1", "x");    // r0+1
        put(ns + "d2", "x");    // r0+2
        WatchRecorder w = watchLive("txn", k(""), from(r0 + 3).isPrefix(true).withPrevKV(true));
        // keys written in the txn's order b, a — not key order
        TxnResponse t1 = await(kv.txn().Then(
                Op.put(k("b"), bs("1"), PutOption.DEFAULT),
                Op.put(k("a"), bs("1"), PutOption.DEFAULT)).commit());   // r0+3
        assertEquals(r0 + 3, t1.getHeader().getRevision());
        // put, range delete of two keys, put
        await(kv.txn().Then(
                Op.put(k("c"), bs("1"), PutOption.DEFAULT),
                Op.delete(k("d"), DeleteOption.builder().isPrefix(true).build()),
                Op.get(k("a"), GetOption.DEFAULT),
                Op.put(k("a"), bs("2"), PutOption.DEFAULT)).commit());   // r0+4
        w.awaitRevision(r0 + 4);
        List<WatchResponse> rs = w.responses();
        assertEquals(2, rs.size(), () -> "one response per txn, got " + described(w));
        assertEquals(List.of("PUT b=1@" + (r0 + 3), "PUT a=1@" + (r0 + 3)),
                WatchRecorder.describe(rs.get(0).getEvents(), ns));
        assertEquals(List.of("PUT c=1@" + (r0 + 4), "DELETE d1@" + (r0 + 4), "DELETE d2@" + (r0 + 4),
                "PUT a=2@" + (r0 + 4)), WatchRecorder.describe(rs.get(1).getEvents(), ns));
        assertEquals(r0 + 3, rs.get(0).getHeader().getRevision());
        assertEquals(r0 + 4, rs.get(1).getHeader().getRevision());
        // prev_kv inside a txn is the value before the txn
        assertEquals("1", str(rs.get(1).getEvents().get(3).getPrevKV().getValue()));
        assertEquals("x", str(rs.get(1).getEvents().get(1).getPrevKV().getValue()));
    }

    @Test
    void aResponseLargerThanTheRequestLimitIsStillOneResponse() {
        long r0 = currentRevision();
        int n = 12;
        byte[] big = new byte[120 * 1024];
        java.util.Arrays.fill(big, (byte) 'v');
        for (int i = 0; i < n; i++) {
            await(kv.put(k("big/" + i), bs(big)));
        }
        // one txn rewriting all: 1.4 MB of request, but with prev_kv ~2.9 MB of watch response, more
        // than the 2 MiB a request may have; etcd sends it whole (no fragment unless asked for)
        WatchRecorder w = watchLive("big", k("big/"), from(r0 + n + 1).isPrefix(true).withPrevKV(true));
        byte[] big2 = new byte[120 * 1024];
        java.util.Arrays.fill(big2, (byte) 'w');
        Op[] ops = new Op[n];
        for (int i = 0; i < n; i++) {
            ops[i] = Op.put(k("big/" + i), bs(big2), PutOption.DEFAULT);
        }
        await(kv.txn().Then(ops).commit());
        w.awaitRevision(r0 + n + 1);
        assertEquals(1, w.responses().size());
        List<WatchEvent> evs = w.events();
        assertEquals(n, evs.size());
        for (WatchEvent e : evs) {
            assertEquals(big2.length, e.getKeyValue().getValue().size());
            assertEquals(big.length, e.getPrevKV().getValue().size());
        }
        assertTrue(w.errors().isEmpty(), () -> "errors " + w.errors());
    }

    @Test
    void requestProgress() {
        long r0 = currentRevision();
        WatchRecorder w = watch("progress", k("a"), from(r0 + 1).build());
        put(ns + "a", "1");     // r0+1
        w.awaitRevision(r0 + 1);
        put(ns + "b", "1");     // r0+2, not watched
        put(ns + "b", "2");     // r0+3
        long now = currentRevision();
        assertEquals(r0 + 3, now);
        client.getWatchClient().requestProgress();
        w.awaitProgress(1);
        WatchResponse p = w.progress().get(0);
        assertTrue(p.isProgressNotify());
        assertTrue(p.getEvents().isEmpty());
        assertEquals(now, p.getHeader().getRevision(), "progress = the store revision");
        assertEquals(1, w.events().size());

        // on the wire: watch_id -1, not created, not canceled
        RawWatchStream s = raw();
        s.createAndAwait(rawCreate("a").build());
        s.requestProgress();
        io.etcd.jetcd.api.WatchResponse rp = s.next();
        assertEquals(-1, rp.getWatchId(), () -> "progress response " + rp);
        assertFalse(rp.getCreated());
        assertFalse(rp.getCanceled());
        assertEquals(0, rp.getEventsCount());
        assertEquals(now, rp.getHeader().getRevision());
    }

    @Test
    void createdResponseCarriesTheCurrentRevision() {
        put(ns + "x", "1");
        long now = currentRevision();
        WatchRecorder w = watch("created", k("a"), WatchOption.builder().withCreateNotify(true).build());
        w.awaitCreated();
        assertEquals(now, w.created().get(0).getHeader().getRevision());
        // once created, a watch without start revision sees the next write
        put(ns + "a", "1");
        w.awaitRevision(now + 1);
        assertEquals(List.of("PUT a=1@" + (now + 1)), described(w));
    }

    @Test
    void futureStartRevisionWaitsForIt() {
        long r0 = currentRevision();
        WatchRecorder w = watch("future", k("a"), from(r0 + 2).build());
        put(ns + "a", "1");     // r0+1: before the start revision
        put(ns + "a", "2");     // r0+2
        w.awaitRevision(r0 + 2);
        assertEquals(List.of("PUT a=2@" + (r0 + 2)), described(w));
        assertTrue(w.errors().isEmpty());
    }

    @Test
    void keysWithBinaryAndEmptyValues() {
        long r0 = currentRevision();
        WatchRecorder w = watch("bin", k("bin"), from(r0 + 1).build());
        byte[] value = {0, (byte) 0xff, 10, 0};
        await(kv.put(k("bin"), bs(value)));
        await(kv.put(k("bin"), ByteSequence.EMPTY));
        w.awaitRevision(r0 + 2);
        List<WatchEvent> evs = w.events();
        assertEquals(ByteSequence.from(value), evs.get(0).getKeyValue().getValue());
        assertTrue(evs.get(1).getKeyValue().getValue().isEmpty());
        assertEquals(Event.EventType.PUT.name(), evs.get(1).getEventType().name());
    }
}
