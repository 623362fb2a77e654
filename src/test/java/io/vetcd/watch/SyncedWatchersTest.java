package io.vetcd.watch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.google.protobuf.ByteString;
import io.vetcd.proto.etcdserverpb.WatchCreateRequest;
import io.vetcd.proto.mvccpb.Event;
import io.vetcd.proto.mvccpb.KeyValue;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SyncedWatchersTest {

  private static ByteString bytes(int... b) {
    byte[] out = new byte[b.length];
    for (int i = 0; i < b.length; i++) {
      out[i] = (byte) b[i];
    }
    return ByteString.copyFrom(out);
  }

  @Test
  void thePrefixEndIsEtcds() {
    assertEquals(ByteString.copyFromUtf8("b"), SyncedWatchers.prefixEnd(ByteString.copyFromUtf8("a")));
    assertEquals(bytes('a', 2), SyncedWatchers.prefixEnd(bytes('a', 1)));
    assertEquals(bytes('b'), SyncedWatchers.prefixEnd(bytes('a', 0xff, 0xff)), "trailing 0xff bytes carry");
    assertNull(SyncedWatchers.prefixEnd(bytes(0xff, 0xff)), "no end short of every key from it");
    assertNull(SyncedWatchers.prefixEnd(ByteString.EMPTY));
  }

  /**
   * Random watchers of every kind (keys, prefixes, from-key, other ranges; with filters) over a small
   * alphabet, so that they overlap a lot; each random event must reach exactly the watchers that take
   * it when tested one by one, before and after half of them leave.
   */
  @Test
  void anEventReachesExactlyTheWatchersThatTakeIt() {
    Random random = new Random(13);
    for (int round = 0; round < 200; round++) {
      SyncedWatchers index = new SyncedWatchers();
      List<WatchStream.Watcher> all = new ArrayList<>();
      for (int i = 0; i < 60; i++) {
        ByteString key = randomKey(random);
        ByteString end = switch (random.nextInt(4)) {
          case 0 -> null;
          case 1 -> ByteString.EMPTY;
          case 2 -> SyncedWatchers.prefixEnd(key) == null ? ByteString.EMPTY : SyncedWatchers.prefixEnd(key);
          default -> randomKey(random);
        };
        List<WatchCreateRequest.FilterType> filters = switch (random.nextInt(5)) {
          case 0 -> List.of(WatchCreateRequest.FilterType.NOPUT);
          case 1 -> List.of(WatchCreateRequest.FilterType.NODELETE);
          default -> List.of();
        };
        WatchStream.Watcher w = new WatchStream.Watcher(i, key, end, filters, false, false, false, 1);
        all.add(w);
        index.add(w);
      }
      check(index, all, random);
      for (int i = 0; i < 30; i++) {
        index.remove(all.remove(random.nextInt(all.size())));
      }
      assertEquals(all.size(), index.size());
      assertEquals(new HashSet<>(all), new HashSet<>(index.all()));
      check(index, all, random);
    }
  }

  private static void check(SyncedWatchers index, List<WatchStream.Watcher> all, Random random) {
    for (int i = 0; i < 50; i++) {
      Event e = Event.newBuilder()
          .setType(random.nextBoolean() ? Event.EventType.PUT : Event.EventType.DELETE)
          .setKv(KeyValue.newBuilder().setKey(randomKey(random)))
          .build();
      Set<WatchStream.Watcher> expected = new HashSet<>();
      all.stream().filter(w -> w.accepts(e)).forEach(expected::add);
      List<WatchStream.Watcher> reached = new ArrayList<>();
      index.forEachTaking(e, reached::add);
      assertEquals(expected, new HashSet<>(reached), "event on " + e.getKv().getKey());
      assertEquals(reached.size(), new HashSet<>(reached).size(), "each watcher reached once");
    }
  }

  /** 1 to 4 bytes from {a, b, 0xff}: prefixes, carries and ranges overlap. */
  private static ByteString randomKey(Random random) {
    int length = 1 + random.nextInt(4);
    byte[] k = new byte[length];
    for (int i = 0; i < length; i++) {
      k[i] = (byte) new int[] {'a', 'b', 0xff}[random.nextInt(3)];
    }
    return ByteString.copyFrom(k);
  }
}
