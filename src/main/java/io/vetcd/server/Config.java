package io.vetcd.server;

import java.nio.file.Path;
import java.util.List;

/**
 * A member's configuration, from etcd's flags and {@code ETCD_*} variables (see {@link Flags}).
 *
 * @param name human-readable member name (etcd {@code --name})
 * @param dataDir where the log and keyspace live
 * @param listenClientUrls URLs the client port binds (gRPC and HTTP on one port)
 * @param advertiseClientUrls client URLs told to clients (member list)
 * @param listenPeerUrls URLs the peer port binds
 * @param initialAdvertisePeerUrls this member's peer URLs as the cluster knows them
 * @param initialCluster the members of a new cluster: name → peer URLs, as "n1=u1,n2=u2"
 * @param initialClusterToken mixes into the member and cluster ids, so two clusters differ
 * @param initialClusterState "new" or "existing"
 * @param maxRequestBytes the largest client request accepted
 * @param maxTxnOps the most operations in one txn branch
 * @param quotaBackendBytes the keyspace size that raises the NOSPACE alarm
 * @param heartbeatIntervalMs Raft heartbeat period
 * @param electionTimeoutMs Raft election timeout
 * @param snapshotCount applied entries between snapshots
 * @param watchProgressNotifyIntervalMs how often watchers that asked for it hear the current revision
 * @param logLevel debug, info, warn, error
 * @param strictReconfigCheck refuse membership changes that could cost the quorum (etcd's default)
 * @param autoPromoteLearners promote a learner once it is in sync with the leader (vetcd's own)
 * @param initialElectionTickAdvance at start, once the peers' streams are up, fast-forward the first
 *     election timeout by its ticks less two (etcd's {@code --initial-election-tick-advance}, on by default)
 * @param listenMetricsUrls URLs of a port serving only /metrics and the health endpoints (none: the
 *     client port serves them alone)
 * @param metricsLevel basic, or extensive (adds grpc_server_handling_seconds, as etcd)
 * @param clientTls the client port's certificate, key and trust (null: none; then https URLs are refused)
 * @param peerTls the peer port's, also shown when dialling peers (null: none)
 */
public record Config(
    String name,
    Path dataDir,
    List<String> listenClientUrls,
    List<String> advertiseClientUrls,
    List<String> listenPeerUrls,
    List<String> initialAdvertisePeerUrls,
    String initialCluster,
    String initialClusterToken,
    String initialClusterState,
    long maxRequestBytes,
    int maxTxnOps,
    long quotaBackendBytes,
    long heartbeatIntervalMs,
    long electionTimeoutMs,
    long snapshotCount,
    long watchProgressNotifyIntervalMs,
    String logLevel,
    boolean strictReconfigCheck,
    boolean autoPromoteLearners,
    boolean initialElectionTickAdvance,
    List<String> listenMetricsUrls,
    String metricsLevel,
    Tls clientTls,
    Tls peerTls,
    AuthOptions auth) {

  /**
   * How callers prove who they are once auth is enabled: the token kind ({@code --auth-token}: simple
   * or jwt), a simple token's life past its last use in seconds ({@code --auth-token-ttl}), the bcrypt
   * cost new passwords are hashed with ({@code --bcrypt-cost}), and for JWT tokens their sign method,
   * keys and life (null for simple tokens).
   */
  public record AuthOptions(String tokenKind, long tokenTtlSeconds, int bcryptCost,
      io.vetcd.auth.JwtTokens.Options jwt) {
    public static final AuthOptions DEFAULTS =
        new AuthOptions("simple", 300, io.vetcd.auth.Passwords.DEFAULT_COST, null);
  }

  /**
   * A TLS endpoint as etcd's flags describe it: PEM files for the certificate (chain) and its key, the
   * CA bundle that the other side's certificate must chain to (empty: none asked), whether a client
   * must show one, the cipher suites allowed ({@code --cipher-suites}, Go's names; empty: the JDK's
   * defaults), and whether the certificate is the member's own self-signed one ({@code --auto-tls},
   * {@code --peer-auto-tls}: made at start in the data dir; then, as etcd, a peer's certificate is not
   * checked when dialling it, since each member's is its own).
   */
  public record Tls(String certFile, String keyFile, String trustedCaFile, boolean clientCertAuth,
      List<String> cipherSuites, boolean selfSigned) {
    public Tls(String certFile, String keyFile, String trustedCaFile, boolean clientCertAuth,
        List<String> cipherSuites) {
      this(certFile, keyFile, trustedCaFile, clientCertAuth, cipherSuites, false);
    }

    public Tls(String certFile, String keyFile, String trustedCaFile, boolean clientCertAuth) {
      this(certFile, keyFile, trustedCaFile, clientCertAuth, List.of());
    }
  }

  /** etcd's default backend quota (2 GiB) when --quota-backend-bytes is 0. */
  public static final long DEFAULT_QUOTA_BYTES = 2L * 1024 * 1024 * 1024;

  /** The quota in force: etcd treats 0 (and negative values) as its default. */
  public long effectiveQuotaBytes() {
    return quotaBackendBytes <= 0 ? DEFAULT_QUOTA_BYTES : quotaBackendBytes;
  }
}
