package io.vetcd.transport;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.file.AsyncFile;
import io.vertx.core.file.OpenOptions;
import io.vertx.core.net.NetSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A copy of the keyspace on the wire, in bounded pieces: after the SNAPSHOT frame (the Raft message and
 * the copy's length) come the copy's bytes as they are read from the sender's file, then their CRC32C.
 * Neither side holds more than a few chunks in memory, whatever the keyspace's size: the sender reads
 * the file only as fast as the socket drains, the receiver writes what arrives to a file and stops
 * reading the socket while the file's write queue is full. The receiver hands the file on only once
 * all of it arrived and its checksum matches, and says so with one byte ({@link #RECEIVED}); a short or
 * damaged copy is deleted and the stream closed without it. The sender counts a copy as sent only on
 * that byte, and only then closes: a sender that closed after its last write lost the end of copies
 * (Netty may give up the unread rest of a paused socket once it sees the peer's close), and the leader
 * sent the same 300 MB again and again.
 */
final class SnapshotStream {

  private static final Logger LOG = LoggerFactory.getLogger(SnapshotStream.class);
  /** Bytes read from the file per chunk sent. */
  static final int CHUNK = 64 * 1024;
  /**
   * A stream that moves no byte for this long is given up, on either side: a peer that vanished without
   * a reset would otherwise keep the leader's follower paused, and the receiver's half-written file, for
   * as long as TCP takes to notice (a quarter of an hour).
   */
  static volatile long stallMillis = Long.getLong("vetcd.snapshot.stall-ms", 30_000);

  /** The receiver's answer to a copy that arrived whole and checked. */
  static final byte RECEIVED = 1;

  private SnapshotStream() {}

  /**
   * Writes {@code file} to {@code socket} after {@code header} (the SNAPSHOT frame), then its checksum;
   * completes once the receiver said it has all of it, checked.
   */
  static Future<Void> send(Vertx vertx, NetSocket socket, Buffer header, Path file) {
    Promise<Void> done = Promise.promise();
    socket.write(header);
    vertx.fileSystem().open(file.toString(), new OpenOptions().setRead(true).setWrite(false))
        .onFailure(done::fail)
        .onSuccess(in -> {
          CRC32C crc = new CRC32C();
          long[] moved = {0, 0}; // bytes sent, and at the last check
          long stallMs = stallMillis;
          long stallTimer = vertx.setPeriodic(stallMs, id -> {
            if (moved[0] == moved[1]) {
              done.tryFail("the snapshot stream moved nothing for " + stallMs + " ms");
              socket.close();
            }
            moved[1] = moved[0];
          });
          done.future().onComplete(ar -> {
            vertx.cancelTimer(stallTimer);
            in.close(); // whatever ended it: the copy is deleted next, and must not stay open
          });
          in.setReadBufferSize(CHUNK);
          in.exceptionHandler(done::tryFail);
          socket.closeHandler(v -> done.tryFail("the peer closed the snapshot stream before it had all of it"));
          socket.handler(answer -> {
            if (answer.length() > 0 && answer.getByte(0) == RECEIVED) {
              done.tryComplete();
            } else {
              done.tryFail("the peer answered the snapshot stream with " + answer);
            }
          });
          in.handler(chunk -> {
            moved[0] += chunk.length();
            crc.update(chunk.getBytes());
            socket.write(chunk);
            if (socket.writeQueueFull()) {
              in.pause();
              socket.drainHandler(v -> in.resume());
            }
          });
          in.endHandler(v -> {
            socket.write(Buffer.buffer(4).appendInt((int) crc.getValue())).onFailure(done::tryFail);
            // then the receiver's answer (above); the stall timer covers a receiver that never gives it
          });
        });
    return done.future();
  }

  /**
   * The receiving end of one copy: fed the bytes after the SNAPSHOT frame, in order, as they arrive;
   * {@code accept} hears the file once all of it is there and checked.
   */
  static final class Inbound {

    interface Accept {
      void accept(Path file);
    }

    private final NetSocket socket;
    private final Path file;
    private final String from;
    private long remaining;
    private final Accept accept;
    private final CRC32C crc = new CRC32C();
    private final Buffer trailer = Buffer.buffer(4);
    /** Chunks that arrived before the file was open. */
    private final ArrayDeque<Buffer> early = new ArrayDeque<>();
    private AsyncFile out;
    private boolean finished;
    private boolean failed;
    /** Bytes received, and at the last stall check. */
    private long received;
    private long receivedAtCheck;
    private final Vertx vertx;
    private final long stallTimer;

    Inbound(Vertx vertx, NetSocket socket, Path file, long length, String from, Accept accept) {
      this.socket = socket;
      this.file = file;
      this.from = from;
      this.remaining = length;
      this.accept = accept;
      this.vertx = vertx;
      long stallMs = stallMillis;
      this.stallTimer = vertx.setPeriodic(stallMs, id -> {
        if (received == receivedAtCheck) {
          fail("it moved nothing for " + stallMs + " ms");
        }
        receivedAtCheck = received;
      });
      socket.pause();
      vertx.fileSystem().open(file.toString(), new OpenOptions().setWrite(true).setCreateNew(true))
          .onFailure(e -> fail("cannot create " + file + ": " + e.getMessage()))
          .onSuccess(f -> {
            if (failed) { // the stream broke while the file was being created
              f.close().onComplete(ar -> deleteQuietly(file));
              return;
            }
            out = f;
            out.exceptionHandler(e -> fail("writing " + file + " failed: " + e.getMessage()));
            while (!early.isEmpty() && !failed) {
              write(early.poll());
            }
            socket.resume();
            maybeFinish();
          });
      // The end, not the close: Vert.x reports the connection closed at once, while bytes that arrived
      // before it may still wait in the paused socket's queue (behind a slow file); the end comes after them.
      socket.endHandler(v -> {
        if (!complete()) {
          fail("the stream ended " + (remaining + 4 - trailer.length()) + " bytes short");
        }
      });
    }

    /** Whether the copy and its checksum have all arrived (further bytes are not part of it). */
    boolean complete() {
      return remaining == 0 && trailer.length() == 4;
    }

    /** The next bytes of the copy (its checksum last), as the transport cuts them from the stream. */
    void feed(Buffer data) {
      if (failed || finished) {
        return;
      }
      received += data.length();
      int used = 0;
      if (remaining > 0) {
        int n = (int) Math.min(remaining, data.length());
        Buffer chunk = data.slice(0, n);
        crc.update(chunk.getBytes());
        remaining -= n;
        used = n;
        if (out == null) {
          early.add(chunk.copy());
        } else {
          write(chunk.copy());
        }
      }
      int want = 4 - trailer.length();
      if (remaining == 0 && want > 0 && used < data.length()) {
        trailer.appendBuffer(data.slice(used, Math.min(data.length(), used + want)));
      }
      maybeFinish();
    }

    private void write(Buffer chunk) {
      out.write(chunk);
      if (out.writeQueueFull()) {
        socket.pause();
        out.drainHandler(v -> socket.resume());
      }
    }

    private void maybeFinish() {
      if (finished || failed || out == null || !complete() || !early.isEmpty()) {
        return;
      }
      finished = true;
      vertx.cancelTimer(stallTimer);
      AsyncFile f = out;
      out = null;
      f.close().onComplete(ar -> {
        if (ar.failed()) {
          fail("closing " + file + " failed: " + ar.cause().getMessage());
        } else if (trailer.getInt(0) != (int) crc.getValue()) {
          fail("its checksum does not match (CRC32C " + Integer.toHexString((int) crc.getValue()) + ", sent "
              + Integer.toHexString(trailer.getInt(0)) + ")");
        } else {
          socket.write(Buffer.buffer(new byte[] {RECEIVED}));
          accept.accept(file);
        }
      });
    }

    private void fail(String why) {
      if (failed) {
        return;
      }
      failed = true;
      vertx.cancelTimer(stallTimer);
      LOG.warn("dropped a snapshot from {}: {}", from, why);
      if (out != null) {
        AsyncFile f = out;
        out = null;
        f.close().onComplete(ar -> deleteQuietly(file));
      } else {
        deleteQuietly(file);
      }
      socket.close();
    }

    private static void deleteQuietly(Path file) {
      try {
        Files.deleteIfExists(file);
      } catch (java.io.IOException e) {
        LOG.warn("cannot delete the dropped snapshot {}: {}", file, e.toString());
      }
    }
  }
}
