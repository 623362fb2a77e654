package io.vetcd.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetSocket;
import java.io.DataOutputStream;
import java.net.ServerSocket;
import java.lang.reflect.Proxy;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A keyspace copy between two members' transports: whole and checked, or not at all. */
class SnapshotStreamTest {

  private static final long CLUSTER = 0xc1;

  @TempDir
  Path tmp;

  private Vertx vertx;
  private int port;
  private PeerTransport sender;
  private PeerTransport receiver;
  private final CompletableFuture<Received> received = new CompletableFuture<>();

  private record Received(long from, byte[] payload, Path file) {}

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Files.createDirectories(tmp.resolve("in"));
    Map<Long, List<String>> urls = Map.of(1L, List.of("http://127.0.0.1:1"), 2L, List.of("http://127.0.0.1:" + port));
    CompletableFuture<Void> listening = new CompletableFuture<>();
    vertx.runOnContext(v -> {
      receiver = new PeerTransport(vertx, CLUSTER, 2, urls, tmp.resolve("in"), new PeerTransport.Receiver() {
        @Override
        public void message(long from, byte[] payload) {}

        @Override
        public void snapshot(long from, byte[] payload, Path file) {
          received.complete(new Received(from, payload, file));
        }

        @Override
        public void unreachable(long peer) {}
      });
      sender = new PeerTransport(vertx, CLUSTER, 1, urls, tmp.resolve("unused"), null);
      receiver.listen(List.of("http://127.0.0.1:" + port)).onComplete(ar -> {
        if (ar.succeeded()) {
          listening.complete(null);
        } else {
          listening.completeExceptionally(ar.cause());
        }
      });
    });
    listening.get(10, TimeUnit.SECONDS);
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  void aCopyLargerThanManyChunksArrivesWholeInAFileWithItsMessage() throws Exception {
    byte[] data = new byte[5 * SnapshotStream.CHUNK + 123];
    new Random(7).nextBytes(data);
    Path file = Files.write(tmp.resolve("copy.mdb"), data);
    byte[] message = "the SNAP message".getBytes(StandardCharsets.UTF_8);
    CompletableFuture<Void> sent = new CompletableFuture<>();
    vertx.runOnContext(v -> sender.sendSnapshot(2, message, file).onComplete(ar -> {
      if (ar.succeeded()) {
        sent.complete(null);
      } else {
        sent.completeExceptionally(ar.cause());
      }
    }));
    sent.get(10, TimeUnit.SECONDS);
    Received r = received.get(10, TimeUnit.SECONDS);
    assertEquals(1, r.from());
    assertArrayEquals(message, r.payload());
    assertTrue(r.file().startsWith(tmp.resolve("in")), "written under the snapshot directory: " + r.file());
    assertArrayEquals(data, Files.readAllBytes(r.file()));
  }

  @Test
  void aCopyWhoseConnectionClosesWhileItsLastBytesStillWaitInTheSocketArrivesWhole() throws Exception {
    // As Vert.x does it when the receiver has paused the socket (its file's writes queued up) and the
    // sender closed after its last byte: the close is reported at once, the bytes still queued after it,
    // then the end. Seen in ClusterIT: a 300 MB copy "ended 1347588 bytes short", sent again and again.
    byte[] data = new byte[3 * SnapshotStream.CHUNK + 17];
    new Random(9).nextBytes(data);
    CRC32C crc = new CRC32C();
    crc.update(data);
    Map<String, Handler<Void>> handlers = new java.util.concurrent.ConcurrentHashMap<>();
    NetSocket socket = (NetSocket) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {NetSocket.class},
        (proxy, method, args) -> switch (method.getName()) {
          case "closeHandler", "endHandler" -> {
            @SuppressWarnings("unchecked")
            Handler<Void> h = (Handler<Void>) args[0];
            handlers.put(method.getName(), h);
            yield proxy;
          }
          case "close" -> io.vertx.core.Future.succeededFuture();
          case "writeQueueFull" -> false;
          default -> method.getReturnType().isInstance(proxy) ? proxy : null;
        });
    Path file = tmp.resolve("in/direct.snap.incoming");
    CompletableFuture<Path> accepted = new CompletableFuture<>();
    vertx.runOnContext(v -> {
      SnapshotStream.Inbound in = new SnapshotStream.Inbound(vertx, socket, file, data.length, "1", accepted::complete);
      Handler<Void> closed = handlers.get("closeHandler");
      if (closed != null) {
        closed.handle(null);
      }
      for (int at = 0; at < data.length; at += SnapshotStream.CHUNK) {
        in.feed(Buffer.buffer(Arrays.copyOfRange(data, at, Math.min(data.length, at + SnapshotStream.CHUNK))));
      }
      in.feed(Buffer.buffer(4).appendInt((int) crc.getValue()));
      handlers.get("endHandler").handle(null);
    });
    assertEquals(file, accepted.get(10, TimeUnit.SECONDS));
    assertArrayEquals(data, Files.readAllBytes(file));
  }

  @Test
  void aCopyWhoseChecksumDoesNotMatchIsDroppedAndDeleted() throws Exception {
    byte[] data = new byte[3 * SnapshotStream.CHUNK];
    new Random(8).nextBytes(data);
    CRC32C crc = new CRC32C();
    crc.update(data);
    data[100] ^= 1; // damaged on the way
    rawSnapshot(data, (int) crc.getValue(), data.length);
    awaitEmpty(tmp.resolve("in"));
    assertTrue(!received.isDone(), "a damaged copy was handed on");
  }

  @Test
  void aCopyCutShortIsDroppedAndDeleted() throws Exception {
    byte[] data = new byte[2 * SnapshotStream.CHUNK];
    rawSnapshot(data, 0, data.length + 1000); // announces more than it sends, then closes
    awaitEmpty(tmp.resolve("in"));
    assertTrue(!received.isDone(), "a short copy was handed on");
  }

  @Test
  void aCopyThatStopsMovingIsDroppedWhileItsStreamStaysOpen() throws Exception {
    long before = SnapshotStream.stallMillis;
    SnapshotStream.stallMillis = 200;
    try {
      try (Socket s = new Socket("127.0.0.1", port);
           DataOutputStream out = new DataOutputStream(s.getOutputStream())) {
        snapshotFrame(out, 1 << 20);
        out.write(new byte[1000]); // then nothing, and no close: a peer that vanished without a reset
        out.flush();
        s.setSoTimeout(10_000);
        assertEquals(-1, s.getInputStream().read(), "the receiver gives the stalled stream up");
        awaitEmpty(tmp.resolve("in"));
      }
      assertTrue(!received.isDone(), "a stalled copy was handed on");
    } finally {
      SnapshotStream.stallMillis = before;
    }
  }

  /**
   * Sends a SNAPSHOT frame announcing {@code announced} bytes, then {@code data} (and {@code crc} if that
   * is all it announced). A complete stream is left open until the receiver closes it (as it does when it
   * drops a copy); a short one is closed at once.
   */
  private void rawSnapshot(byte[] data, int crc, long announced) throws Exception {
    try (Socket s = new Socket("127.0.0.1", port);
         DataOutputStream out = new DataOutputStream(s.getOutputStream())) {
      snapshotFrame(out, announced);
      out.write(data);
      if (announced == data.length) {
        out.writeInt(crc);
        out.flush();
        s.setSoTimeout(10_000);
        assertEquals(-1, s.getInputStream().read(), "the receiver closes the stream of a copy it drops");
      }
    }
  }

  /** A SNAPSHOT frame from member 1 (message "m") announcing a copy of {@code announced} bytes. */
  private static void snapshotFrame(DataOutputStream out, long announced) throws java.io.IOException {
    byte[] message = "m".getBytes(StandardCharsets.UTF_8);
    out.writeInt(1 + 8 + 8 + message.length + 8);
    out.writeByte(PeerTransport.SNAPSHOT);
    out.writeLong(CLUSTER);
    out.writeLong(1);
    out.write(message);
    out.writeLong(announced);
  }

  private static long filesIn(Path dir) throws Exception {
    try (var files = Files.list(dir)) {
      return files.count();
    }
  }

  private void awaitEmpty(Path dir) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (filesIn(dir) > 0) {
      assertTrue(System.nanoTime() < deadline, "the dropped copy is still in " + dir);
      Thread.sleep(10);
    }
  }
}
