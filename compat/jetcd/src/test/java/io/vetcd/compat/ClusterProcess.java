package io.vetcd.compat;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A fresh N-member cluster of the server under test (real etcd or vetcd, see {@link ServerProcess}),
 * every member a process on loopback with its own free ports and data dir, started as etcd's
 * static bootstrap: {@code --initial-cluster m1=...,m2=...,m3=... --initial-cluster-state new}.
 * All members are launched before any is waited for, because a member reports healthy only once a
 * quorum is up and a leader is elected.
 */
public final class ClusterProcess implements AutoCloseable {

    private static final int START_ATTEMPTS = 3;
    /** etcd's defaults, spelled out so both servers surely run the same Raft timing. */
    static final int HEARTBEAT_MS = 100;
    static final int ELECTION_MS = 1000;

    private final List<ServerProcess> members;

    private ClusterProcess(List<ServerProcess> members) {
        this.members = members;
    }

    public static ClusterProcess start(String label, int size) {
        AssertionError last = null;
        for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
            List<ServerProcess> ms = new ArrayList<>();
            try {
                Set<Integer> taken = new HashSet<>();
                for (int i = 1; i <= size; i++) {
                    ServerProcess m = new ServerProcess(label + "-m" + i, "m" + i);
                    m.installShutdownHook();
                    m.pickPorts(taken);
                    taken.add(m.clientPort());
                    taken.add(m.peerPort());
                    ms.add(m);
                }
                String initialCluster = ms.stream().map(m -> m.name() + "=" + m.peerUrl())
                        .collect(Collectors.joining(","));
                List<String> flags = List.of(
                        "--initial-cluster-state", "new",
                        "--initial-cluster-token", "compat-" + label,
                        "--heartbeat-interval", Integer.toString(HEARTBEAT_MS),
                        "--election-timeout", Integer.toString(ELECTION_MS));
                for (ServerProcess m : ms) {
                    m.launch(initialCluster, flags);
                }
                for (ServerProcess m : ms) {
                    m.waitHealthy();
                }
                return new ClusterProcess(ms);
            } catch (ServerProcess.PortClash e) {
                // a "free" port was taken between probe and bind: the whole membership must change
                last = new AssertionError(e.getMessage());
                ms.forEach(ServerProcess::close);
            } catch (RuntimeException | AssertionError e) {
                ms.forEach(ServerProcess::close);
                throw e;
            }
        }
        throw last;
    }

    public List<ServerProcess> members() {
        return members;
    }

    public ServerProcess member(int i) {
        return members.get(i);
    }

    public List<String> clientUrls() {
        return members.stream().map(ServerProcess::clientUrl).collect(Collectors.toList());
    }

    @Override
    public void close() {
        members.forEach(ServerProcess::close);
    }
}
