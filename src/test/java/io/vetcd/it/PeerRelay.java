package io.vetcd.it;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntToLongFunction;

/**
 * TCP relays in front of the peer ports of a cluster's members, to cut the traffic between members
 * one direction at a time (test helper for partition tests, issue 22).
 *
 * <h2>Wiring</h2>
 * Member {@code m} (1..size) advertises {@link #advertisedUrl(int)} (in {@code --initial-cluster} and
 * {@code --initial-advertise-peer-urls}: member ids derive from it) and listens on
 * {@link #listenUrl(int)} ({@code --listen-peer-urls}); the relay listening on the advertised port
 * forwards every connection to the member's real port. Every byte a member exchanges with its peers
 * thus passes through the relay of the <em>listening</em> side of its connection.
 *
 * <h2>Directed links</h2>
 * Cuts are per directed link "messages from A to B". A connection dialled by D to member L's relay
 * carries D→L in its upstream bytes (what D writes) and L→D in its downstream bytes (what L answers).
 * vetcd's streams are one-way (each member dials each peer and only writes: upstream), etcd's rafthttp
 * also reads a peer's messages from a stream it dialled (downstream): cutting both byte directions by
 * link covers both. The relay learns the dialling member from the kernel: it finds the dialler's
 * socket in {@code /proc/net/tcp{,6}} by its port and looks for that socket's inode among the file
 * descriptors of the members' processes ({@link #identifyBy}); so it needs no knowledge of the peer
 * protocol and works for etcd and vetcd alike (Linux only). A connection whose dialler could not be
 * identified counts as coming from member 0, which no cut names; {@link #unidentified()} counts them.
 *
 * <h2>What a cut does to the bytes ({@link Mode})</h2>
 * <ul>
 *   <li>{@link Mode#HOLD}: bytes of a cut link are held back in order and delivered when the link is
 *       healed, like an iptables DROP under TCP retransmission: connections stay up, nothing is lost,
 *       everything arrives late in a burst. The relay holds at most {@link #HOLD_LIMIT_BYTES} per
 *       connection and direction, then stops reading, so the sender's socket buffers fill and its
 *       writes back up as they would behind a real DROP (vetcd then drops messages on a full write
 *       queue; etcd's streams stall). Exercises late, stale messages.
 *   <li>{@link Mode#RESET}: connections carrying a cut link (in either byte direction) are reset
 *       (RST) when the cut starts, and new ones are reset as soon as accepted, until the heal; like
 *       an iptables REJECT --reject-with tcp-reset. Bytes in flight are lost, senders see errors at
 *       once and redial. Exercises lost messages and reconnects, no stale messages.
 *   <li>{@link Mode#BLACKHOLE}: bytes of a cut link are read and silently discarded, connections stay
 *       up (the sender sees no error), and at the heal every connection that lost bytes is reset
 *       (a stream with a hole in it cannot go on). Exercises silently lost messages.
 * </ul>
 * Note that at the IP level an asymmetric cut is impossible for TCP (the ACKs of one direction travel
 * in the other); these cuts are at the level of what a member's peer streams carry, which is what a
 * Raft implementation sees.
 *
 * <h2>Partitions expressed as cuts</h2>
 * {@link #blockReceive} (a member hears nobody, its own messages still go out), {@link #blockSend} (the
 * reverse), {@link #split} (both directions between two groups: minority/majority), {@link #bridge}
 * (A–B and B–C connected, A–C cut both ways); {@link #cut} for any single directed link.
 */
final class PeerRelay implements AutoCloseable {

    enum Mode { HOLD, RESET, BLACKHOLE }

    /** Bytes held back per connection and direction before the relay stops reading (HOLD). */
    static final int HOLD_LIMIT_BYTES = 1 << 20;
    private static final String HOST = "127.0.0.1";
    private static final int CHUNK = 64 * 1024;

    private final int size;
    private final int[] advertisedPorts;
    private final int[] memberPorts;
    private final ServerSocket[] listeners;
    /** cuts[from][to]: how the link from→to is cut, null when open. Guarded by {@code this}. */
    private final Mode[][] cuts;
    private final List<Connection> connections = new CopyOnWriteArrayList<>();
    private final AtomicLong unidentified = new AtomicLong();
    private final AtomicLong heldBytesTotal = new AtomicLong();
    private final AtomicLong discardedBytesTotal = new AtomicLong();
    private final AtomicLong resets = new AtomicLong();
    private volatile IntToLongFunction pidOf = m -> 0;
    private volatile boolean closed;

    private PeerRelay(int size) throws IOException {
        this.size = size;
        int[] ports = MemberProcess.freePorts(2 * size);
        this.advertisedPorts = new int[size + 1];
        this.memberPorts = new int[size + 1];
        this.listeners = new ServerSocket[size + 1];
        this.cuts = new Mode[size + 1][size + 1];
        for (int m = 1; m <= size; m++) {
            advertisedPorts[m] = ports[2 * (m - 1)];
            memberPorts[m] = ports[2 * (m - 1) + 1];
        }
    }

    /** Relays for members 1..size, listening at once on their advertised ports. */
    static PeerRelay start(int size) throws IOException {
        PeerRelay relay = new PeerRelay(size);
        try {
            for (int m = 1; m <= size; m++) {
                ServerSocket server = new ServerSocket();
                server.setReuseAddress(true);
                server.bind(new InetSocketAddress(InetAddress.getByName(HOST), relay.advertisedPorts[m]), 64);
                relay.listeners[m] = server;
                int member = m;
                daemon("relay-accept-" + m, () -> relay.acceptLoop(member, server));
            }
        } catch (IOException e) {
            relay.close();
            throw e;
        }
        return relay;
    }

    int advertisedPort(int m) {
        return advertisedPorts[check(m)];
    }

    int memberPort(int m) {
        return memberPorts[check(m)];
    }

    /** The URL member {@code m} advertises to its peers (the relay). */
    String advertisedUrl(int m) {
        return "http://" + HOST + ":" + advertisedPorts[check(m)];
    }

    /** The URL member {@code m} listens on for its peers (behind the relay). */
    String listenUrl(int m) {
        return "http://" + HOST + ":" + memberPorts[check(m)];
    }

    /**
     * How to tell which member dialled a connection: the process id of member {@code m} (0 when it
     * is not running). Called for each new connection, so restarts are followed.
     */
    void identifyBy(IntToLongFunction pidOfMember) {
        this.pidOf = pidOfMember;
    }

    // ------------------------------------------------------------------ cuts

    /** Cuts messages from {@code from} to {@code to}. */
    void cut(int from, int to, Mode mode) {
        List<Connection> toReset = new ArrayList<>();
        synchronized (this) {
            cuts[check(from)][check(to)] = mode;
            if (mode == Mode.RESET) {
                for (Connection c : connections) {
                    if (c.carries(from, to)) {
                        toReset.add(c);
                    }
                }
            }
            notifyAll();
        }
        toReset.forEach(Connection::reset);
    }

    /** Member {@code m} receives nothing from its peers; what it sends still arrives. */
    void blockReceive(int m, Mode mode) {
        for (int p = 1; p <= size; p++) {
            if (p != m) {
                cut(p, m, mode);
            }
        }
    }

    /** Nothing member {@code m} sends reaches its peers; it still hears them. */
    void blockSend(int m, Mode mode) {
        for (int p = 1; p <= size; p++) {
            if (p != m) {
                cut(m, p, mode);
            }
        }
    }

    /** No traffic either way between the two groups (e.g. a minority and a majority). */
    void split(Set<Integer> a, Set<Integer> b, Mode mode) {
        for (int x : a) {
            for (int y : b) {
                cut(x, y, mode);
                cut(y, x, mode);
            }
        }
    }

    /** A–B and B–C stay connected, A–C is cut both ways: B is the only bridge between A and C. */
    void bridge(int a, int b, int c, Mode mode) {
        if (a == b || b == c || a == c) {
            throw new IllegalArgumentException("a bridge needs three members: " + a + ", " + b + ", " + c);
        }
        cut(a, c, mode);
        cut(c, a, mode);
    }

    /**
     * Opens every link: held bytes are delivered (in order, before anything newer), connections that
     * lost bytes to a black hole are reset, refused connections may be dialled again.
     */
    void heal() {
        List<Connection> tainted = new ArrayList<>();
        synchronized (this) {
            for (Mode[] row : cuts) {
                Arrays.fill(row, null);
            }
            for (Connection c : connections) {
                if (c.up.tainted || c.down.tainted) {
                    tainted.add(c);
                }
            }
            notifyAll();
        }
        tainted.forEach(Connection::reset);
    }

    private synchronized Mode cutOf(int from, int to) {
        return from == 0 || to == 0 ? null : cuts[from][to];
    }

    // ------------------------------------------------------------------ statistics

    /** Connections whose dialling member could not be told (treated as from member 0: never cut). */
    long unidentified() {
        return unidentified.get();
    }

    /** A one-line account: connections, bytes held back and discarded, resets. */
    String stats() {
        return String.format(Locale.ROOT, "%d connections live, %d unidentified, %d bytes held back, %d discarded, %d resets",
                connections.size(), unidentified.get(), heldBytesTotal.get(), discardedBytesTotal.get(), resets.get());
    }

    @Override
    public void close() {
        closed = true;
        for (ServerSocket s : listeners) {
            closeQuietly(s);
        }
        for (Connection c : connections) {
            c.close();
        }
        synchronized (this) {
            notifyAll();
        }
    }

    // ------------------------------------------------------------------ relaying

    private void acceptLoop(int member, ServerSocket server) {
        while (!closed) {
            Socket accepted;
            try {
                accepted = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    System.err.println("PeerRelay: accept on " + advertisedUrl(member) + " failed: " + e);
                }
                return;
            }
            daemon("relay-open-" + member, () -> open(member, accepted));
        }
    }

    private void open(int listener, Socket accepted) {
        int dialler = identify(accepted);
        if (dialler == 0) {
            unidentified.incrementAndGet();
        }
        boolean refuse;
        synchronized (this) {
            refuse = cutOf(dialler, listener) == Mode.RESET || cutOf(listener, dialler) == Mode.RESET;
        }
        if (refuse) {
            resets.incrementAndGet();
            rst(accepted);
            return;
        }
        Socket member = new Socket();
        try {
            accepted.setTcpNoDelay(true);
            member.setTcpNoDelay(true);
            member.connect(new InetSocketAddress(HOST, memberPorts[listener]), 1000);
        } catch (IOException e) {
            rst(accepted); // the member is down: as if the port were closed
            closeQuietly(member);
            return;
        }
        Connection c = new Connection(dialler, listener, accepted, member);
        synchronized (this) {
            connections.add(c);
            // A RESET cut may have begun while the member was being dialled.
            refuse = cutOf(dialler, listener) == Mode.RESET || cutOf(listener, dialler) == Mode.RESET;
        }
        if (closed || refuse) {
            if (refuse) {
                c.reset();
            } else {
                c.close();
            }
            return;
        }
        c.start();
    }

    /** One relayed connection: dialler ↔ relay ↔ listening member. */
    private final class Connection {
        final int dialler;
        final int listener;
        final Socket outer;
        final Socket inner;
        final Pipe up;
        final Pipe down;

        Connection(int dialler, int listener, Socket outer, Socket inner) {
            this.dialler = dialler;
            this.listener = listener;
            this.outer = outer;
            this.inner = inner;
            this.up = new Pipe(this, dialler, listener, outer, inner);
            this.down = new Pipe(this, listener, dialler, inner, outer);
        }

        boolean carries(int from, int to) {
            return (dialler == from && listener == to) || (dialler == to && listener == from);
        }

        void start() {
            up.start("relay-" + dialler + "to" + listener);
            down.start("relay-" + listener + "to" + dialler);
        }

        void reset() {
            if (connections.remove(this)) {
                resets.incrementAndGet();
                rst(outer);
                rst(inner);
                synchronized (PeerRelay.this) {
                    PeerRelay.this.notifyAll();
                }
            }
        }

        void close() {
            if (connections.remove(this)) {
                closeQuietly(outer);
                closeQuietly(inner);
                synchronized (PeerRelay.this) {
                    PeerRelay.this.notifyAll();
                }
            }
        }
    }

    /** One byte direction of a connection: the link from→to. */
    private final class Pipe {
        final Connection connection;
        final int from;
        final int to;
        final Socket source;
        final Socket sink;
        /** Chunks read and not yet written, in order; guarded by the relay. */
        final ArrayDeque<byte[]> queue = new ArrayDeque<>();
        long queued;
        /** Bytes were discarded (BLACKHOLE): the connection must be reset at the heal. */
        volatile boolean tainted;
        volatile boolean done;

        Pipe(Connection connection, int from, int to, Socket source, Socket sink) {
            this.connection = connection;
            this.from = from;
            this.to = to;
            this.source = source;
            this.sink = sink;
        }

        void start(String name) {
            daemon(name + "-read", this::readLoop);
            daemon(name + "-write", this::writeLoop);
        }

        private void readLoop() {
            byte[] buffer = new byte[CHUNK];
            try (InputStream in = source.getInputStream()) {
                while (true) {
                    int n = in.read(buffer);
                    if (n < 0) {
                        break;
                    }
                    byte[] chunk = Arrays.copyOf(buffer, n);
                    synchronized (PeerRelay.this) {
                        if (cutOf(from, to) == Mode.BLACKHOLE) {
                            tainted = true;
                            discardedBytesTotal.addAndGet(n);
                            continue;
                        }
                        // HOLD: stop reading when too much is held, as a sender behind a DROP backs up.
                        while (queued >= HOLD_LIMIT_BYTES && !closed && connections.contains(connection)) {
                            PeerRelay.this.wait(100);
                        }
                        if (cutOf(from, to) == Mode.HOLD) {
                            heldBytesTotal.addAndGet(n);
                        }
                        queue.add(chunk);
                        queued += n;
                        PeerRelay.this.notifyAll();
                    }
                }
            } catch (IOException | InterruptedException e) {
                // reset or closed: the connection ends
            } finally {
                synchronized (PeerRelay.this) {
                    done = true;
                    PeerRelay.this.notifyAll();
                }
            }
        }

        private void writeLoop() {
            try (OutputStream out = sink.getOutputStream()) {
                while (true) {
                    byte[] chunk;
                    synchronized (PeerRelay.this) {
                        while (!closed && connections.contains(connection)
                                && (queue.isEmpty() || cutOf(from, to) == Mode.HOLD)) {
                            if (queue.isEmpty() && done) {
                                break;
                            }
                            PeerRelay.this.wait(100);
                        }
                        if (closed || !connections.contains(connection) || queue.isEmpty()) {
                            break; // closed, reset, or the source ended and all is written
                        }
                        chunk = queue.poll();
                        queued -= chunk.length;
                        if (cutOf(from, to) == Mode.BLACKHOLE) {
                            tainted = true; // read before the cut, still lost
                            discardedBytesTotal.addAndGet(chunk.length);
                            PeerRelay.this.notifyAll();
                            continue;
                        }
                        PeerRelay.this.notifyAll();
                    }
                    out.write(chunk);
                    out.flush();
                }
                if (done && !closed && connections.contains(connection)) {
                    sink.shutdownOutput(); // pass the sender's FIN on
                }
            } catch (IOException | InterruptedException e) {
                // the other side went away
            } finally {
                if (done || closed) {
                    connection.close();
                } else {
                    connection.reset();
                }
            }
        }
    }

    // ------------------------------------------------------------------ who dialled

    /**
     * The member whose process holds the other end of {@code accepted}, found through /proc: the
     * dialler's socket is the loopback socket whose local port is our remote port and whose remote
     * port is our local port; its inode is among the dialler's file descriptors. 0 if not found.
     */
    private int identify(Socket accepted) {
        int theirPort = accepted.getPort();
        int ourPort = accepted.getLocalPort();
        for (int attempt = 0; attempt < 5; attempt++) {
            String inode = socketInode(theirPort, ourPort);
            if (inode != null) {
                String link = "socket:[" + inode + "]";
                for (int m = 1; m <= size; m++) {
                    long pid = pidOf.applyAsLong(m);
                    if (pid > 0 && holds(pid, link)) {
                        return m;
                    }
                }
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return 0;
            }
        }
        return 0;
    }

    private static String socketInode(int localPort, int remotePort) {
        String local = String.format(Locale.ROOT, ":%04X", localPort);
        String remote = String.format(Locale.ROOT, ":%04X", remotePort);
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            try {
                for (String line : Files.readAllLines(Path.of(table))) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length > 9 && f[1].endsWith(local) && f[2].endsWith(remote) && !"0".equals(f[9])) {
                        return f[9];
                    }
                }
            } catch (IOException e) {
                // no IPv6 table, say
            }
        }
        return null;
    }

    private static boolean holds(long pid, String link) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc", Long.toString(pid), "fd"))) {
            for (Path fd : fds) {
                try {
                    if (link.equals(Files.readSymbolicLink(fd).toString())) {
                        return true;
                    }
                } catch (IOException closedMeanwhile) {
                    // fds come and go
                }
            }
        } catch (IOException e) {
            // the process is gone
        }
        return false;
    }

    // ------------------------------------------------------------------ helpers

    private int check(int m) {
        if (m < 1 || m > size) {
            throw new IllegalArgumentException("members are numbered 1.." + size + ", not " + m);
        }
        return m;
    }

    private static void rst(Socket socket) {
        try {
            socket.setSoLinger(true, 0); // close with RST, not FIN
        } catch (SocketException e) {
            // already closed
        }
        closeQuietly(socket);
    }

    private static void closeQuietly(java.io.Closeable c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException e) {
                // nothing to do
            }
        }
    }

    private static void daemon(String name, Runnable body) {
        Thread t = new Thread(body, name);
        t.setDaemon(true);
        t.start();
    }
}
