package io.vetcd.transport;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.netty.buffer.Unpooled;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Member-to-member messages over the peer URLs: one long-lived TCP stream per peer and direction,
 * carrying length-prefixed frames. Messages queued in one event-loop turn go out in one write
 * (batching); a stream that breaks is re-dialled with exponential backoff. What is sent while a dial is
 * under way waits for it (a little); what cannot be sent otherwise is dropped and reported as
 * unreachable — Raft retransmits, and must not wait on a dead peer. Snapshots travel on their own
 * short-lived stream so that a big one never delays heartbeats, streamed from a file to a file in
 * bounded chunks ({@link SnapshotStream}).
 *
 * <p>Every frame is {@code [int length][byte kind][long clusterId][long from][payload]}; a receiver
 * drops frames of another cluster (a member of an old cluster dialling the wrong port must not join
 * this one). Must be used from the one context that created it (the consensus loop).
 */
public final class PeerTransport {

  private static final Logger LOG = LoggerFactory.getLogger(PeerTransport.class);
  static final byte MESSAGE = 1;
  static final byte SNAPSHOT = 2;
  /**
   * A member starting with --initial-cluster-state existing asks for the member list (its cluster id is
   * not known yet: 0); the answer comes back on the same stream, which then closes.
   */
  static final byte MEMBERS = 3;
  /** Written back on a stream from a member the cluster removed: it learns why nobody answers it. */
  static final byte REMOVED = 4;
  private static final int HEADER = 1 + 8 + 8;
  private static final long MIN_BACKOFF_MS = 50;
  /**
   * Why so short: a member that restarts hears nothing until the leader's stream to it is dialled again
   * (a follower without a leader sends nothing), so this is the time it sits idle before catching up; at
   * 1 s it was most of a second per restart. A refused dial on a peer network costs next to nothing (etcd
   * retries every 100 ms).
   */
  private static final long MAX_BACKOFF_MS = 200;
  /** Raft batches are bounded (a snapshot's data does not travel in its frame). */
  private static final int MAX_FRAME = 1 << 30;
  /** The least and the most room a turn's frames to one peer start with (a bigger turn grows it). */
  private static final int MIN_PENDING = 256;
  private static final int MAX_PENDING = 64 * 1024;
  /**
   * A frame whose payload is this big goes to the socket as it is, not copied into the turn's buffer:
   * with 1 MiB values a leader's turn copied hundreds of megabytes into one buffer (grown by doubling),
   * seconds of allocation on the event loop.
   */
  private static final int LARGE_PAYLOAD = 16 * 1024;
  /**
   * What a peer's socket may hold unwritten before frames to it are dropped (and the peer reported
   * unreachable, so that the leader probes it instead of pipelining): above the Raft core's bytes in
   * flight per follower, so that catching up is never throttled by drops, and bounded, so that a peer
   * that stopped reading costs this much memory at most.
   */
  static final int WRITE_QUEUE_BYTES = 32 << 20;
  /**
   * What frames to a peer may wait for its stream's dial, sent once it connects (dropped and reported
   * if it fails). Dropping them instead cost a member that had just restarted its first forwarded
   * proposal — its publish, or a client's put — and the request's whole timeout (7 s) before the retry.
   * Entries are not held back: beyond this bound Raft's own resend takes over.
   */
  static final int DIAL_HOLD_BYTES = 1 << 20;

  /** What arrives from peers; called on the transport's context. */
  public interface Receiver {
    void message(long from, byte[] payload);

    /**
     * A SNAP message ({@code payload}) and the keyspace copy it carries, received whole and checked, in
     * {@code file} (under the snapshot directory); the receiver owns the file from now on.
     */
    void snapshot(long from, byte[] payload, Path file);

    /** A send to {@code peer} failed: the peer is unreachable for now. */
    void unreachable(long peer);

    /** The member list to give a member that joins (an encoded ClusterRecord); null: none to give. */
    default byte[] members() {
      return null;
    }

    /** Whether {@code from} was removed from the cluster: its frames are refused and it is told so. */
    default boolean removed(long from) {
      return false;
    }

    /** Peer {@code by} says this member was removed from the cluster. */
    default void removedFromCluster(long by) {}

    /** The stream to {@code peer} closed, or a dial failed: not connected now. */
    default void disconnected(long peer) {}
  }

  private final Vertx vertx;
  private final long clusterId;
  private final long selfId;
  private final Receiver receiver;
  /** Dials http peer URLs. */
  private final NetClient client;
  /** Dials https peer URLs with this member's certificate (null: no peer TLS configured). */
  private final NetClient tlsClient;
  private final io.vetcd.server.Config.Tls peerTls;
  private final List<NetServer> servers = new ArrayList<>();
  /** The timers that give the TLS servers their certificates again when the files change. */
  private final List<Long> reloadTimers = new ArrayList<>();
  private final Map<Long, Peer> peers = new HashMap<>();
  /** Where incoming snapshots are written. */
  private final Path snapshotDir;
  private boolean closed;

  public PeerTransport(Vertx vertx, long clusterId, long selfId, Map<Long, List<String>> peerUrls,
      Path snapshotDir, Receiver receiver) {
    this(vertx, clusterId, selfId, peerUrls, snapshotDir, null, receiver);
  }

  /**
   * As above; {@code peerTls} (null: none) is used for https peer URLs, to listen and to dial, as
   * etcd's --peer-cert-file and related flags say.
   */
  public PeerTransport(Vertx vertx, long clusterId, long selfId, Map<Long, List<String>> peerUrls,
      Path snapshotDir, io.vetcd.server.Config.Tls peerTls, Receiver receiver) {
    this.vertx = vertx;
    this.peerTls = peerTls;
    if (peerTls != null) {
      io.vertx.core.net.ClientSSLOptions ssl = io.vetcd.tls.TlsFiles.client(peerTls);
      NetClientOptions options = new NetClientOptions().setConnectTimeout(1000).setTcpNoDelay(true)
          .setSsl(true).setKeyCertOptions(ssl.getKeyCertOptions()).setTrustOptions(ssl.getTrustOptions())
          .setTrustAll(ssl.isTrustAll()).setHostnameVerificationAlgorithm(ssl.getHostnameVerificationAlgorithm());
      ssl.getEnabledCipherSuites().forEach(options::addEnabledCipherSuite);
      this.tlsClient = vertx.createNetClient(options);
    } else {
      this.tlsClient = null;
    }
    this.snapshotDir = snapshotDir;
    this.clusterId = clusterId;
    this.selfId = selfId;
    this.receiver = receiver;
    this.client = vertx.createNetClient(new NetClientOptions().setConnectTimeout(1000).setTcpNoDelay(true));
    peerUrls.forEach((id, urls) -> {
      if (id != selfId && !urls.isEmpty()) {
        peers.put(id, new Peer(id, URI.create(urls.get(0))));
      }
    });
  }

  /** Starts accepting peer streams on every listen URL. */
  public Future<Void> listen(List<String> listenUrls) {
    List<Future<NetServer>> all = new ArrayList<>();
    for (String url : listenUrls) {
      URI uri = URI.create(url);
      NetServer server;
      if (io.vetcd.tls.TlsFiles.isTls(url)) {
        io.vertx.core.net.ServerSSLOptions ssl = io.vetcd.tls.TlsFiles.server(peerTls);
        io.vertx.core.net.NetServerOptions options = new io.vertx.core.net.NetServerOptions().setSsl(true)
            .setKeyCertOptions(ssl.getKeyCertOptions()).setTrustOptions(ssl.getTrustOptions())
            .setClientAuth(ssl.getClientAuth());
        ssl.getEnabledCipherSuites().forEach(options::addEnabledCipherSuite);
        server = vertx.createNetServer(options).connectHandler(this::accept);
        NetServer tlsServer = server;
        server.exceptionHandler(e -> {
          String why = io.vetcd.tls.TlsFiles.refusal(e, "--peer-trusted-ca-file");
          if (why != null) {
            LOG.warn("refused a peer TLS connection on {}: {}", url, why);
          }
        });
        // The dialling side shows the same certificate and trusts the same CA: it gets them again too.
        reloadTimers.add(io.vetcd.tls.TlsFiles.reloadOnChange(vertx, peerTls, url, reloaded -> {
          tlsClient.updateSSLOptions(io.vetcd.tls.TlsFiles.client(peerTls), true);
          return tlsServer.updateSSLOptions(reloaded, true);
        }));
      } else {
        server = vertx.createNetServer().connectHandler(this::accept);
      }
      servers.add(server);
      all.add(server.listen(uri.getPort(), uri.getHost())
          .recover(e -> Future.failedFuture(
              new IllegalStateException("cannot listen for peer traffic on " + url + ": " + e.getMessage(), e))));
    }
    return Future.all(all).mapEmpty();
  }

  /**
   * Starts sending to the members in {@code peerUrls} not known yet, and to a known one at its new URL
   * if it changed (etcd's MemberUpdate); this member itself is skipped.
   */
  public void addPeers(Map<Long, List<String>> peerUrls) {
    peerUrls.forEach((id, urls) -> {
      if (id == selfId || urls.isEmpty()) {
        return;
      }
      URI uri = URI.create(urls.get(0));
      Peer known = peers.get(id);
      if (known == null || !known.uri.equals(uri)) {
        if (known != null) {
          known.close();
        }
        peers.put(id, new Peer(id, uri));
      }
    });
  }

  /**
   * Dials every peer whose stream is down (unless its backoff says wait) and answers how many streams
   * are up: a starting member's measure of which peers could hear a campaign (etcd's ActivePeers).
   */
  public int dialPeers() {
    int up = 0;
    for (Peer peer : peers.values()) {
      if (peer.socket != null) {
        up++;
      } else if (!closed) {
        peer.connect();
      }
    }
    return up;
  }

  /** Stops sending to a member (it was removed from the cluster). */
  public void removePeer(long id) {
    Peer known = peers.remove(id);
    if (known != null) {
      known.close();
    }
  }

  /** Stops sending to every member not in {@code ids}. */
  public void retainPeers(java.util.Set<Long> ids) {
    for (Long id : List.copyOf(peers.keySet())) {
      if (!ids.contains(id)) {
        removePeer(id);
      }
    }
  }

  /**
   * Asks the member at {@code peerUrl} for the cluster's member list (an encoded ClusterRecord), as a
   * member started with --initial-cluster-state existing does before anything else. Blocking, with
   * {@code timeoutMs} for the dial and the answer each; throws IOException if there is none.
   */
  public static byte[] fetchMembers(String peerUrl, int timeoutMs, io.vetcd.server.Config.Tls peerTls)
      throws IOException {
    URI uri = URI.create(peerUrl);
    try (java.net.Socket socket = io.vetcd.tls.TlsFiles.isTls(peerUrl) ? tlsSocket(peerUrl, peerTls)
        : new java.net.Socket()) {
      socket.connect(new java.net.InetSocketAddress(uri.getHost(), uri.getPort()), timeoutMs);
      socket.setSoTimeout(timeoutMs);
      java.io.DataOutputStream out = new java.io.DataOutputStream(socket.getOutputStream());
      out.writeInt(HEADER);
      out.writeByte(MEMBERS);
      out.writeLong(0);
      out.writeLong(0);
      out.flush();
      java.io.DataInputStream in = new java.io.DataInputStream(socket.getInputStream());
      int length = in.readInt();
      if (length < HEADER || length > MAX_FRAME) {
        throw new IOException("malformed answer (frame length " + length + ")");
      }
      byte kind = in.readByte();
      in.readLong(); // the cluster id, which the record holds too
      in.readLong();
      byte[] record = new byte[length - HEADER];
      in.readFully(record);
      if (kind != MEMBERS) {
        throw new IOException("the peer answered with a frame of kind " + kind);
      }
      return record;
    }
  }

  /** Dials {@code uri}: with TLS for https, which needs this member's peer certificate. */
  private Future<NetSocket> dial(URI uri) {
    if (!io.vetcd.tls.TlsFiles.isTls(uri.toString())) {
      return client.connect(uri.getPort(), uri.getHost());
    }
    if (tlsClient == null) {
      return Future.failedFuture("peer URL " + uri + " needs TLS, and this member has no --peer-cert-file and "
          + "--peer-key-file");
    }
    return tlsClient.connect(uri.getPort(), uri.getHost());
  }

  /**
   * An unconnected TLS socket that shows this member's peer certificate and checks the peer's (its
   * authority, and the host dialled), for the blocking {@link #fetchMembers}.
   */
  private static java.net.Socket tlsSocket(String peerUrl, io.vetcd.server.Config.Tls peerTls) throws IOException {
    if (peerTls == null) {
      throw new IOException("peer URL " + peerUrl + " needs TLS, and this member has no --peer-cert-file and "
          + "--peer-key-file");
    }
    javax.net.ssl.SSLContext context = io.vetcd.tls.TlsFiles.jdkClientContext(peerTls);
    javax.net.ssl.SSLSocket socket = (javax.net.ssl.SSLSocket) context.getSocketFactory().createSocket();
    javax.net.ssl.SSLParameters parameters = socket.getSSLParameters();
    parameters.setEndpointIdentificationAlgorithm(peerTls.selfSigned() ? null : "HTTPS");
    List<String> suites = io.vetcd.tls.TlsFiles.client(peerTls).getEnabledCipherSuites().stream().toList();
    if (!suites.isEmpty()) {
      parameters.setCipherSuites(suites.toArray(String[]::new));
    }
    socket.setSSLParameters(parameters);
    return socket;
  }

  /** Queues a message for {@code to}; all messages queued in this loop turn leave in one write. */
  public void send(long to, byte[] payload) {
    Peer peer = peers.get(to);
    if (peer != null && !closed) {
      peer.queue(MESSAGE, payload);
    }
  }

  /**
   * Sends a SNAP message ({@code payload}, without data) and the keyspace copy in {@code file} on their
   * own stream; completes once all of it was written.
   */
  public Future<Void> sendSnapshot(long to, byte[] payload, Path file) {
    Peer peer = peers.get(to);
    if (peer == null || closed) {
      return Future.failedFuture("unknown peer " + Long.toHexString(to));
    }
    long length;
    try {
      length = Files.size(file);
    } catch (IOException e) {
      return Future.failedFuture(e);
    }
    byte[] header = ByteBuffer.allocate(payload.length + 8).put(payload).putLong(length).array();
    return dial(peer.uri)
        .compose(socket -> SnapshotStream.send(vertx, socket, frame(SNAPSHOT, header), file).eventually(socket::close));
  }

  public Future<Void> close() {
    closed = true;
    List<Future<?>> all = new ArrayList<>();
    reloadTimers.forEach(vertx::cancelTimer);
    servers.forEach(s -> all.add(s.close()));
    peers.values().forEach(p -> {
      if (p.socket != null) {
        all.add(p.socket.close());
      }
    });
    all.add(client.close());
    if (tlsClient != null) {
      all.add(tlsClient.close());
    }
    return Future.join(all).mapEmpty();
  }

  private void accept(NetSocket socket) {
    new InboundStream(socket);
  }

  /**
   * One peer's incoming stream: frames (a length, the header, the body), or after a SNAPSHOT frame the
   * keyspace copy it announces. A frame's body is gathered straight into one array of its size, which
   * is what the receiver gets. Why not Vert.x's RecordParser: it gathers a record by appending to a
   * buffer that grows (copying) and then copies it out; with 1 MiB entries a member catching up
   * allocated ~14 bytes per byte received, and collected them in pauses of 30-50 ms.
   */
  private final class InboundStream {
    final NetSocket socket;
    /** The length prefix, then the header, of the frame being read. */
    private final byte[] head = new byte[4 + HEADER];
    private int headRead;
    /** The body of the frame being read (null while its length and header are), and how much is in. */
    private byte[] body;
    private int bodyRead;
    private boolean closed;
    /** Whether this stream's sender was told it is removed (once is enough). */
    private boolean toldRemoved;
    SnapshotStream.Inbound snapshot;
    /** Bytes of the snapshot copy (and its checksum) still to come. */
    long snapshotLeft;

    InboundStream(NetSocket socket) {
      this.socket = socket;
      socket.handler(this::data);
    }

    void data(Buffer chunk) {
      int at = 0;
      int end = chunk.length();
      while (at < end && !closed) {
        if (snapshot != null) {
          int n = (int) Math.min(snapshotLeft, end - at);
          snapshot.feed(chunk.slice(at, at + n));
          at += n;
          snapshotLeft -= n;
          if (snapshotLeft == 0) {
            snapshot = null;
          }
        } else if (body == null) {
          int want = (headRead < 4 ? 4 : head.length) - headRead;
          int n = Math.min(want, end - at);
          chunk.getBytes(at, at + n, head, headRead);
          at += n;
          headRead += n;
          if (headRead == 4) {
            int length = ByteBuffer.wrap(head).getInt();
            if (length < HEADER || length > MAX_FRAME) {
              LOG.warn("peer stream from {} sent a malformed frame; closing it", socket.remoteAddress());
              close();
            }
          } else if (headRead == head.length) {
            body = new byte[ByteBuffer.wrap(head).getInt() - HEADER];
            bodyRead = 0;
          }
        }
        if (body != null && !closed) {
          int n = Math.min(body.length - bodyRead, end - at);
          chunk.getBytes(at, at + n, body, bodyRead);
          at += n;
          bodyRead += n;
          if (bodyRead == body.length) {
            byte[] frame = body;
            body = null;
            headRead = 0;
            ByteBuffer h = ByteBuffer.wrap(head, 4, HEADER);
            deliver(h.get(), h.getLong(), h.getLong(), frame);
          }
        }
      }
    }

    private void close() {
      closed = true;
      socket.close();
    }

    private void deliver(byte kind, long cluster, long from, byte[] frame) {
      if (kind == MEMBERS) {
        byte[] record = receiver.members();
        if (record == null) {
          close();
          return;
        }
        socket.write(frame(MEMBERS, record)).onComplete(v -> close());
        return;
      }
      if (cluster != clusterId) {
        LOG.warn("dropped a peer frame of cluster {} (this is cluster {})",
            Long.toHexString(cluster), Long.toHexString(clusterId));
        if (kind == SNAPSHOT) {
          close(); // the copy that follows is not for us either
        }
        return;
      }
      if (kind == SNAPSHOT) {
        if (frame.length < 8) {
          LOG.warn("peer stream from {} sent a malformed snapshot frame; closing it", socket.remoteAddress());
          close();
          return;
        }
        byte[] message = Arrays.copyOf(frame, frame.length - 8);
        long copyLength = ByteBuffer.wrap(frame, frame.length - 8, 8).getLong();
        if (copyLength < 0) {
          LOG.warn("peer stream from {} announced a snapshot of {} bytes; closing it", socket.remoteAddress(), copyLength);
          close();
          return;
        }
        Path file = snapshotDir.resolve(String.format("%016x-%d.snap.incoming", from, System.nanoTime()));
        snapshot = new SnapshotStream.Inbound(vertx, socket, file, copyLength, Long.toHexString(from),
            received -> receiver.snapshot(from, message, received));
        snapshotLeft = copyLength + 4;
        return;
      }
      if (kind != MESSAGE) {
        LOG.warn("peer stream from {} sent a frame of unknown kind {}; closing it", socket.remoteAddress(), kind);
        close();
        return;
      }
      if (receiver.removed(from)) {
        if (!toldRemoved) {
          toldRemoved = true;
          LOG.warn("refused messages from member {}, which was removed from the cluster; telling it so",
              Long.toHexString(from));
          socket.write(frame(REMOVED, new byte[0]));
        }
        return;
      }
      receiver.message(from, frame);
    }
  }

  private Buffer frame(byte kind, byte[] payload) {
    return appendFrame(Buffer.buffer(4 + HEADER + payload.length), kind, payload);
  }

  private Buffer appendFrame(Buffer out, byte kind, byte[] payload) {
    return appendFrameHeader(out, kind, payload.length).appendBytes(payload);
  }

  private Buffer appendFrameHeader(Buffer out, byte kind, int payloadLength) {
    return out.appendInt(HEADER + payloadLength)
        .appendByte(kind)
        .appendLong(clusterId)
        .appendLong(selfId);
  }

  /** The outbound stream to one peer, with its pending frames and reconnect state. */
  private final class Peer {
    final long id;
    final URI uri;
    NetSocket socket;
    boolean connecting;
    long backoffMs = MIN_BACKOFF_MS;
    long retryAtNanos;
    /** Why the last dial's handshake failed, logged once until it changes or a dial succeeds. */
    String refusal;
    /** Removed from the transport: never dialled again. */
    boolean gone;
    Buffer pending;
    /**
     * What the last turn sent this peer: the next turn's buffer starts a half bigger, so that it rarely
     * grows. A fixed 8 KiB per turn was a tenth of all a leader allocated under puts, for turns that
     * mostly send a few hundred bytes.
     */
    int lastSent = MIN_PENDING;
    /** Frames sent while the stream was being dialled: they go first once it connects (see {@link #DIAL_HOLD_BYTES}). */
    Buffer dialling;

    /** etcd_network_peer_sent_bytes_total{To}; its send failures, registered at the first (as etcd's appear). */
    private final io.micrometer.core.instrument.Counter sentBytes;
    private io.micrometer.core.instrument.Counter sentFailures;

    Peer(long id, URI uri) {
      this.id = id;
      this.uri = uri;
      this.sentBytes = io.vetcd.metrics.EtcdMetrics.peerSentBytes(Long.toHexString(id));
    }

    /** A message that did not go: Raft sends again once the peer answers. */
    private void dropped() {
      countFailure();
      receiver.unreachable(id);
    }

    private void countFailure() {
      if (sentFailures == null) {
        sentFailures = io.vetcd.metrics.EtcdMetrics.peerSentFailures(Long.toHexString(id));
      }
      sentFailures.increment();
    }

    /** A write the stream refused (it closed under it): counted; the close handler reports the peer. */
    private void written(io.vertx.core.AsyncResult<Void> ar) {
      if (ar.failed()) {
        countFailure();
      }
    }

    /** No more frames to this peer: the member left, or moved. */
    void close() {
      pending = null;
      dialling = null;
      if (socket != null) {
        socket.close();
        socket = null;
      }
      gone = true; // never dialled again
    }

    void queue(byte kind, byte[] payload) {
      if (socket == null) {
        connect();
        if (connecting && heldWhileDialling(payload.length)) {
          sentBytes.increment(4 + HEADER + payload.length);
          appendFrame(dialling, kind, payload);
          return;
        }
        dropped(); // Raft resends once the peer answers again
        return;
      }
      if (socket.writeQueueFull()) {
        // A slow or stuck peer: drop rather than buffer without bound. Reported, so the leader stops
        // counting on the pipeline and probes; Raft sends again what was lost.
        dropped();
        return;
      }
      sentBytes.increment(4 + HEADER + payload.length);
      if (payload.length >= LARGE_PAYLOAD) {
        flush(); // what is pending goes first: frames keep their order
        socket.write(appendFrameHeader(Buffer.buffer(4 + HEADER), kind, payload.length));
        socket.write(BufferInternal.buffer(Unpooled.wrappedBuffer(payload))).onComplete(this::written);
        return;
      }
      if (pending == null) {
        pending = Buffer.buffer(Math.max(Math.min(lastSent + lastSent / 2, MAX_PENDING), 4 + HEADER + payload.length));
        vertx.runOnContext(v -> flush());
      }
      appendFrame(pending, kind, payload);
    }

    void flush() {
      Buffer out = pending;
      pending = null;
      if (out != null) {
        lastSent = Math.max(MIN_PENDING, out.length());
      }
      if (socket != null && out != null) {
        socket.write(out).onComplete(this::written);
      }
    }

    /** Whether a frame of {@code payloadBytes} fits beside those already held for the dial under way. */
    boolean heldWhileDialling(int payloadBytes) {
      long held = dialling == null ? 0 : dialling.length();
      if (held + 4 + HEADER + payloadBytes > DIAL_HOLD_BYTES) {
        return false;
      }
      if (dialling == null) {
        dialling = Buffer.buffer(4 + HEADER + payloadBytes);
      }
      return true;
    }

    void connect() {
      if (connecting || closed || gone || System.nanoTime() - retryAtNanos < 0) {
        return;
      }
      connecting = true;
      dial(uri).onComplete(ar -> {
        connecting = false;
        Buffer held = dialling;
        dialling = null;
        if (ar.succeeded() && gone) {
          ar.result().close();
          return;
        }
        if (ar.failed() || closed || gone) {
          if (ar.failed()) {
            receiver.disconnected(id);
            String why = io.vetcd.tls.TlsFiles.refusal(ar.cause(), "--peer-trusted-ca-file");
            if (why != null && !why.equals(refusal)) {
              LOG.warn("cannot reach member {} at {} over TLS: {}", Long.toHexString(id), uri, why);
            }
            refusal = why;
          }
          retryAtNanos = System.nanoTime() + backoffMs * 1_000_000L;
          backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
          if (held != null) {
            dropped(); // what waited for the dial is dropped: Raft resends
          }
          return;
        }
        backoffMs = MIN_BACKOFF_MS;
        refusal = null;
        socket = ar.result();
        socket.setWriteQueueMaxSize(WRITE_QUEUE_BYTES);
        socket.closeHandler(v -> {
          socket = null;
          if (!gone && !closed) {
            receiver.unreachable(id); // at once: the peer went away (exited, restarted, cut off)
            receiver.disconnected(id);
          }
        });
        socket.exceptionHandler(e -> LOG.debug("peer stream to {} failed: {}", Long.toHexString(id), e.toString()));
        // Outbound only: the peer answers on its own stream. All it ever writes back here is REMOVED.
        socket.handler(b -> {
          if (b.length() > 4 && b.getByte(4) == REMOVED) {
            receiver.removedFromCluster(id);
          }
        });
        if (held != null) {
          socket.write(held);
        }
      });
    }
  }
}
