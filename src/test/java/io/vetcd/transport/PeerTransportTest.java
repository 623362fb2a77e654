package io.vetcd.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PeerTransportTest {

  private static final long CLUSTER = 0xC1;

  @TempDir
  Path tmp;

  private Vertx vertx;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** A transport of member 1 that sends to member 2 at {@code port}; {@code unreachable} counts reports. */
  private PeerTransport sender(int port, AtomicInteger unreachable) throws Exception {
    Map<Long, List<String>> urls = Map.of(1L, List.of("http://127.0.0.1:1"), 2L, List.of("http://127.0.0.1:" + port));
    CompletableFuture<PeerTransport> made = new CompletableFuture<>();
    vertx.runOnContext(v -> made.complete(new PeerTransport(vertx, CLUSTER, 1, urls, tmp.resolve("out"),
        new Receiver(m -> { }, unreachable))));
    return made.get(10, TimeUnit.SECONDS);
  }

  private record Receiver(java.util.function.Consumer<byte[]> messages, AtomicInteger unreachable)
      implements PeerTransport.Receiver {
    @Override
    public void message(long from, byte[] payload) {
      messages.accept(payload);
    }

    @Override
    public void snapshot(long from, byte[] payload, Path file) {}

    @Override
    public void unreachable(long peer) {
      unreachable.incrementAndGet();
    }
  }

  /** Member 2's transport listening at {@code port}, its messages added to {@code got}. */
  private void listen(int port, List<byte[]> got) throws Exception {
    Map<Long, List<String>> urls = Map.of(1L, List.of("http://127.0.0.1:1"), 2L, List.of("http://127.0.0.1:" + port));
    CompletableFuture<Void> listening = new CompletableFuture<>();
    vertx.runOnContext(v -> new PeerTransport(vertx, CLUSTER, 2, urls, tmp.resolve("in"),
        new Receiver(got::add, new AtomicInteger())).listen(List.of("http://127.0.0.1:" + port))
        .onComplete(ar -> listening.complete(null)));
    listening.get(10, TimeUnit.SECONDS);
  }

  /** Sends {@code payload} to member 2 on the transport's context. */
  private void send(PeerTransport t, byte[] payload) {
    vertx.runOnContext(v -> t.send(2, payload));
  }

  @Test
  void framesCutAnywhereByTheNetworkArriveWhole() throws Exception {
    // Length, header and body cut in pieces of 1 to 7 bytes, one piece per write: the receiver gathers
    // each frame across reads, whatever falls where.
    int port = freePort();
    List<byte[]> got = new CopyOnWriteArrayList<>();
    listen(port, got);
    Random random = new Random(9);
    List<byte[]> sent = List.of(new byte[0], new byte[] {7}, new byte[300], new byte[70_000]);
    sent.forEach(random::nextBytes);
    java.io.ByteArrayOutputStream stream = new java.io.ByteArrayOutputStream();
    for (byte[] payload : sent) {
      java.nio.ByteBuffer frame = java.nio.ByteBuffer.allocate(4 + 17 + payload.length);
      frame.putInt(17 + payload.length).put(PeerTransport.MESSAGE).putLong(CLUSTER).putLong(1).put(payload);
      stream.write(frame.array());
    }
    byte[] bytes = stream.toByteArray();
    try (Socket socket = new Socket("127.0.0.1", port)) {
      socket.setTcpNoDelay(true);
      var out = socket.getOutputStream();
      int at = 0;
      for (int piece = 1; at < bytes.length; piece = piece % 7 + 1) {
        int n = Math.min(at < 1000 ? piece : 4096, bytes.length - at); // small pieces over the first frames
        out.write(bytes, at, n);
        out.flush();
        at += n;
        if (at < 1000) {
          Thread.sleep(1); // a write of its own, most often a read of its own at the other end
        }
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (got.size() < sent.size()) {
        assertTrue(System.nanoTime() < deadline, "got " + got.size() + " of " + sent.size());
        Thread.sleep(10);
      }
    }
    for (int i = 0; i < sent.size(); i++) {
      assertArrayEquals(sent.get(i), got.get(i), "frame " + i);
    }
  }

  @Test
  void framesSentWhileTheStreamIsDialledArriveOnceItConnectsAndAreReportedIfItFails() throws Exception {
    // A member that just restarted forwards its first proposal before its stream to the leader exists:
    // dropped, the proposal waited its whole timeout.
    int port = freePort();
    List<byte[]> got = new CopyOnWriteArrayList<>();
    listen(port, got);
    AtomicInteger unreachable = new AtomicInteger();
    PeerTransport sender = sender(port, unreachable);
    vertx.runOnContext(v -> {
      sender.send(2, new byte[] {1});
      sender.send(2, new byte[] {2, 2});
    });
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (got.size() < 2) {
      assertTrue(System.nanoTime() < deadline, "got " + got.size() + " of 2 frames sent while dialling");
      Thread.sleep(10);
    }
    assertArrayEquals(new byte[] {1}, got.get(0));
    assertArrayEquals(new byte[] {2, 2}, got.get(1));
    assertEquals(0, unreachable.get());

    AtomicInteger deadPeerReports = new AtomicInteger();
    PeerTransport toNobody = sender(freePort(), deadPeerReports);
    send(toNobody, new byte[] {3});
    while (deadPeerReports.get() == 0) {
      assertTrue(System.nanoTime() < deadline, "a frame held for a failed dial was not reported");
      Thread.sleep(10);
    }
  }

  @Test
  void largeAndSmallFramesOfOneTurnArriveWholeAndInOrder() throws Exception {
    int port = freePort();
    List<byte[]> got = new CopyOnWriteArrayList<>();
    listen(port, got);
    PeerTransport sender = sender(port, new AtomicInteger());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (got.isEmpty()) {
      assertTrue(System.nanoTime() < deadline, "the peer stream never came up");
      send(sender, new byte[] {0});
      Thread.sleep(20);
    }
    got.clear();
    Random random = new Random(5);
    List<byte[]> sent = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      byte[] payload = new byte[i % 3 == 0 ? (1 << 20) + i : 10 + i]; // 1 MiB frames go unbuffered
      random.nextBytes(payload);
      sent.add(payload);
    }
    vertx.runOnContext(v -> sent.forEach(p -> sender.send(2, p))); // one turn of the loop
    while (got.size() < sent.size()) {
      assertTrue(System.nanoTime() < deadline + TimeUnit.SECONDS.toNanos(20), "got " + got.size() + " of " + sent.size());
      Thread.sleep(10);
    }
    for (int i = 0; i < sent.size(); i++) {
      assertArrayEquals(sent.get(i), got.get(i), "frame " + i);
    }
  }

  @Test
  void framesToAPeerThatStoppedReadingAreDroppedAndReportedOnceItsQueueIsFull() throws Exception {
    AtomicInteger unreachable = new AtomicInteger();
    try (ServerSocket silent = new ServerSocket(0)) {
      PeerTransport sender = sender(silent.getLocalPort(), unreachable);
      send(sender, new byte[] {0}); // dials
      try (Socket accepted = silent.accept()) {
        // Accepted by the peer before the sender's side saw its dial complete: until then each frame is
        // dropped as "not connected" (also reported). Wait until a small frame goes without a report.
        long connected = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
          int reports = unreachable.get();
          send(sender, new byte[] {0});
          Thread.sleep(50);
          if (unreachable.get() == reports) {
            break;
          }
          assertTrue(System.nanoTime() < connected, "the sender never saw its stream connected");
        }
        // Accepted and never read: the kernel's buffers fill, then the socket's write queue.
        int before = unreachable.get();
        byte[] mib = new byte[1 << 20];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        int sentMib = 0;
        while (unreachable.get() == before) {
          assertTrue(System.nanoTime() < deadline, "no drop reported after " + sentMib + " MiB");
          send(sender, mib);
          sentMib++;
          Thread.sleep(2);
        }
        assertTrue(sentMib * (1L << 20) >= PeerTransport.WRITE_QUEUE_BYTES,
            "dropped after " + sentMib + " MiB, before the write queue's bound was reached");
      }
    }
  }
}
