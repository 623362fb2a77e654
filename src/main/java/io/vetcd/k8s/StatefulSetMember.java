package io.vetcd.k8s;

import io.vetcd.proto.etcdserverpb.Member;
import io.vetcd.proto.etcdserverpb.MemberAddResponse;
import io.vetcd.proto.etcdserverpb.MemberListResponse;
import io.vetcd.server.Config;
import io.vetcd.server.Flags;
import io.vetcd.server.Membership;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code vetcd statefulset [flags]}: a member that is a pod of a Kubernetes StatefulSet
 * (k8s/statefulset.yaml). Its flags are etcd's, as for any member, with {@code --name} the pod's name
 * ({@code <set>-<ordinal>}) and {@code --initial-cluster} naming the founding pods. A pod cannot
 * know from its spec alone whether it founds the cluster, comes back, replaces itself or joins, so
 * before the member starts it looks at its data directory and asks the others (through the founding
 * pods' client URLs, then every member's):
 * <ul>
 *   <li>data, and the cluster lists a member of its name (or nobody answers): a restart; it comes
 *       back with its old identity, the data directory's;
 *   <li>data, and the cluster answers without it: it was removed (a scale-down, then up again on the
 *       volume the StatefulSet kept); the old data is moved aside and it joins as below;
 *   <li>no data, a founding pod, and nobody answers (or its entry was never started): it founds the
 *       cluster with {@code --initial-cluster-state new}, as the flags say;
 *   <li>no data and the cluster answers with a started member of its name: its volume was lost; that
 *       member is removed and it joins as below, a replacement;
 *   <li>otherwise (a new ordinal after a scale-up): it is added as a learner ({@code member add
 *       --learner}) and starts with {@code --initial-cluster-state existing}; with
 *       {@code --auto-promote-learners} the leader promotes it once it is in sync.
 * </ul>
 * Asked to stop (SIGTERM) when the StatefulSet has no more replicas than its ordinal (a scale-down,
 * read from the API server with the pod's service account), it removes itself from the member list
 * first; any other stop (a restart, a rolling update, a drained node) keeps its membership.
 */
public final class StatefulSetMember {

  private static final Logger LOG = LoggerFactory.getLogger(StatefulSetMember.class);
  private static final Pattern POD_NAME = Pattern.compile("(.+)-(\\d+)");
  /** How long a joining pod keeps asking the cluster before it gives up (and Kubernetes restarts it). */
  private static final long JOIN_WAIT_MS = 60_000;
  /**
   * How long a founding pod with no data asks the others before it founds when nothing listens at
   * their addresses (a cluster that exists answers within it, if a quorum of it runs)...
   */
  private static final long FOUND_WAIT_MS = 5_000;
  /**
   * ...and when something listens and does not answer: members waiting for a quorum, which this pod
   * may be needed for (founding pods started at different times), or members of a cluster that lost
   * its quorum (see the README's warning about a lost volume while the cluster is down).
   */
  private static final long FOUND_WAIT_SILENT_MS = 30_000;
  /** All a stopping pod spends on leaving: well inside the manifest's 30 s grace period. */
  private static final long REMOVE_WAIT_MS = 15_000;

  /**
   * What the pod decided: the member's flags ({@code args}, the given ones with --initial-cluster and
   * its state replaced when it joins), who it is, and the client URLs of the others.
   */
  public record Plan(String[] args, String setName, int ordinal, List<String> endpoints, Config.Tls tls,
      String decision) {}

  private StatefulSetMember() {}

  /**
   * Decides how this pod's member starts (see the class comment). Throws if the flags are not a
   * StatefulSet pod's, or if it must join and no member would take it within a minute.
   */
  public static Plan plan(String[] args, Map<String, String> env) throws IOException, Flags.UsageException {
    Flags.Command command = Flags.parse(args, env);
    if (!(command instanceof Flags.Run run)) {
      throw new IllegalArgumentException("vetcd statefulset: runs a member; --help and --version are vetcd's own");
    }
    Config config = run.config();
    Matcher pod = POD_NAME.matcher(config.name());
    if (!pod.matches()) {
      throw new IllegalArgumentException("vetcd statefulset: --name must be the pod's name, <statefulset>-<ordinal> "
          + "(POD_NAME from metadata.name), not \"" + config.name() + "\"");
    }
    String setName = pod.group(1);
    int ordinal = Integer.parseInt(pod.group(2));
    // The founding pods, parsed as the member itself reads --initial-cluster.
    List<Membership.MemberInfo> founding =
        Membership.initial(config.initialCluster(), config.initialClusterToken()).members();
    List<String> endpoints = endpoints(founding, config.name(), config.advertiseClientUrls());
    // With TLS on the client port, the others are asked with this member's certificate (etcd's members
    // share one client CA), as etcdctl would be.
    Config.Tls tls = config.clientTls();
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx(); // the member's own starts after this
    try {
      return decide(args, config, setName, ordinal, founding, endpoints, tls,
          new ClusterClient(vertx, endpoints, tls));
    } finally {
      vertx.close();
    }
  }

  private static Plan decide(String[] args, Config config, String setName, int ordinal,
      List<Membership.MemberInfo> founding, List<String> endpoints, Config.Tls tls, ClusterClient cluster)
      throws IOException {
    List<String> peerUrls = config.initialAdvertisePeerUrls();
    boolean hasData = hasIdentity(config.dataDir());
    Optional<MemberListResponse> members = cluster.list();

    if (hasData) {
      if (members.isEmpty()) {
        return new Plan(args, setName, ordinal, endpoints, tls, "a restart: no other member answers; the member "
            + "starts from its data directory");
      }
      if (ClusterClient.find(members.get().getMembersList(), config.name(), peerUrls).isPresent()
          || !cluster.leaderKnown()) {
        return new Plan(args, setName, ordinal, endpoints, tls, "a restart: the cluster lists " + config.name()
            + " (or no member that knows a leader says otherwise); the member comes back with its data "
            + "directory's identity");
      }
      Path aside = config.dataDir().resolve("member.removed-"
          + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
      Files.move(config.dataDir().resolve("member"), aside);
      LOG.warn("the cluster no longer lists {} (it was removed, e.g. by a scale-down): its old data is moved to {} "
          + "and it joins again as a new member", config.name(), aside);
    } else if (founding.stream().anyMatch(m -> m.name().equals(config.name()))) {
      // Before founding, give a cluster that exists time to answer (its members may be starting too).
      long start = System.nanoTime();
      while (members.isEmpty()) {
        long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        if (waited >= (cluster.reachedAny() ? FOUND_WAIT_SILENT_MS : FOUND_WAIT_MS)) {
          if (cluster.reachedAny()) {
            LOG.warn("members listen at {} and have not answered for {} s (waiting for a quorum?): founding",
                cluster.endpoints(), waited / 1000);
          }
          break;
        }
        sleep(1_000);
        members = cluster.list();
      }
      Optional<Member> mine = members.flatMap(m -> ClusterClient.find(m.getMembersList(), config.name(), peerUrls));
      if (members.isEmpty() || (mine.isPresent() && mine.get().getName().isEmpty() && !mine.get().getIsLearner())) {
        return new Plan(args, setName, ordinal, endpoints, tls, "a founding member: "
            + (members.isEmpty() ? "no other member answers" : "the cluster lists it, never started")
            + "; it starts with --initial-cluster-state new");
      }
    }
    return join(args, config, setName, ordinal, cluster, tls, hasData);
  }

  /** Adds this pod as a learner (replacing an old member of its name first) and starts it as existing. */
  private static Plan join(String[] args, Config config, String setName, int ordinal, ClusterClient cluster,
      Config.Tls tls, boolean dataMovedAside) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(JOIN_WAIT_MS);
    List<String> peerUrls = config.initialAdvertisePeerUrls();
    String replaced = "";
    while (true) {
      try {
        MemberListResponse members = cluster.list().orElseThrow(() -> new ClusterClient.Unavailable(
            "no member answers at " + cluster.endpoints()));
        Optional<Member> old = ClusterClient.find(members.getMembersList(), config.name(), peerUrls);
        if (old.isPresent()) {
          // Its peer URLs are this pod's: the cluster refuses a second member with them.
          cluster.remove(old.get().getID());
          replaced = " in place of member " + Long.toHexString(old.get().getID());
          LOG.warn("{} has no data but the cluster lists it as member {}: its volume was lost; that member is "
              + "removed and the pod joins as a new one", config.name(), Long.toHexString(old.get().getID()));
        }
        MemberAddResponse added = cluster.addLearner(peerUrls);
        String initialCluster = added.getMembersList().stream()
            .flatMap(m -> {
              // A member added and not started yet has no name: "=url", as etcdctl's member add prints it
              // (the joining member checks that it counts as many members as the cluster).
              String name = m.getID() == added.getMember().getID() ? config.name() : m.getName();
              return m.getPeerURLsList().stream().map(u -> name + "=" + u);
            })
            .collect(Collectors.joining(","));
        String[] joined = withFlags(args, Map.of("initial-cluster", initialCluster,
            "initial-cluster-state", "existing"));
        String who = !replaced.isEmpty() ? "a pod whose volume was lost"
            : dataMovedAside ? "a removed member's pod, scaled up again" : "a new pod";
        return new Plan(joined, setName, ordinal, cluster.endpoints(), tls, who + ": added as learner "
            + Long.toHexString(added.getMember().getID()) + replaced
            + "; it starts with --initial-cluster-state existing --initial-cluster " + initialCluster);
      } catch (ClusterClient.Refused e) {
        // An addition that timed out on one member and went through: list again, and replace it.
        if (!e.getMessage().contains("Peer URLs already exists") || System.nanoTime() - deadline > 0) {
          throw e;
        }
        LOG.info("the cluster has a member with {}'s peer URLs already: listing again", config.name());
      } catch (ClusterClient.Unavailable e) {
        if (System.nanoTime() - deadline > 0) {
          throw new IOException("vetcd statefulset: " + config.name() + " must join the cluster, and " + e.getMessage()
              + " within " + JOIN_WAIT_MS / 1000 + " s", e);
        }
        LOG.info("waiting for the cluster to take {}: {}", config.name(), e.getMessage());
        sleep(1_000);
      }
    }
  }

  /**
   * At a stop: if the StatefulSet now has no more replicas than this pod's ordinal, the pod is being
   * scaled away, and its member leaves the cluster before it stops. Otherwise nothing. Runs on the
   * shutdown hook's thread, with the member's {@code vertx} still open.
   */
  public static void beforeStop(Plan plan, long memberId, Map<String, String> env, io.vertx.core.Vertx vertx) {
    KubernetesApi api = KubernetesApi.of(env);
    if (api == null) {
      LOG.info("not in Kubernetes (no KUBERNETES_SERVICE_HOST): the member keeps its place in the cluster");
      return;
    }
    String namespace = namespace(env);
    OptionalInt replicas;
    try {
      replicas = api.replicas(namespace, plan.setName());
    } catch (IOException | RuntimeException e) {
      LOG.warn("cannot read StatefulSet {}/{} from {} ({}): the member keeps its place in the cluster", namespace,
          plan.setName(), api, e.toString());
      return;
    }
    // Scaled to zero: every pod stops, and the cluster must come back whole when scaled up again.
    if (replicas.isEmpty() || replicas.getAsInt() == 0 || plan.ordinal() < replicas.getAsInt()) {
      LOG.info("StatefulSet {} has {} replicas: pod {} stops and keeps its place in the cluster", plan.setName(),
          replicas.isEmpty() ? "?" : replicas.getAsInt(), plan.ordinal());
      return;
    }
    LOG.info("StatefulSet {} has {} replicas and this is pod {}: a scale-down; member {} leaves the cluster",
        plan.setName(), replicas.getAsInt(), plan.ordinal(), Long.toHexString(memberId));
    // The member's Vert.x, still running: a new one cannot start once the JVM is shutting down.
    ClusterClient cluster = new ClusterClient(vertx, plan.endpoints(), plan.tls());
    try {
      leave(plan, memberId, cluster);
    } finally {
      cluster.close();
    }
  }

  private static void leave(Plan plan, long memberId, ClusterClient cluster) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REMOVE_WAIT_MS);
    cluster.callTimeout(java.time.Duration.ofSeconds(3));
    cluster.deadline(deadline);
    while (true) {
      try {
        cluster.remove(memberId);
        LOG.info("member {} removed from the cluster", Long.toHexString(memberId));
        return;
      } catch (ClusterClient.Refused e) {
        if (e.getMessage().contains("member not found")) {
          // An earlier attempt that timed out here went through.
          LOG.info("member {} removed from the cluster", Long.toHexString(memberId));
        } else {
          LOG.warn("member {} was not removed: {}", Long.toHexString(memberId), e.getMessage());
        }
        return;
      } catch (IOException e) {
        // Each call ends by the deadline (ClusterClient.deadline): try again while time is left.
        if (System.nanoTime() - deadline > -TimeUnit.SECONDS.toNanos(2)) {
          LOG.warn("member {} was not removed within {} s: {}; remove it with 'etcdctl member remove'",
              Long.toHexString(memberId), REMOVE_WAIT_MS / 1000, e.getMessage());
          return;
        }
        sleep(500);
      }
    }
  }

  /**
   * Whether the data directory holds a member: its log says who it is. A member that failed between its
   * addition and its first start has a log directory and no identity yet; it joins again.
   */
  static boolean hasIdentity(Path dataDir) {
    Path log = dataDir.resolve("member").resolve("wal");
    if (!Files.isDirectory(log)) {
      return false;
    }
    try (io.vetcd.wal.Wal wal = io.vetcd.wal.Wal.open(log)) {
      return wal.replay(Long.MAX_VALUE).identity() != null;
    }
  }

  /** POD_NAMESPACE (the downward API), else the service account's namespace, else "default". */
  private static String namespace(Map<String, String> env) {
    String ns = env.get("POD_NAMESPACE");
    if (ns != null && !ns.isBlank()) {
      return ns;
    }
    try {
      return Files.readString(KubernetesApi.SERVICE_ACCOUNT.resolve("namespace")).trim();
    } catch (IOException e) {
      return "default";
    }
  }

  /**
   * The other founding pods' client URLs: their peer URLs' hosts with this pod's client scheme and
   * port (the pods of one StatefulSet share one spec, so every pod's client port is this one's).
   */
  static List<String> endpoints(List<Membership.MemberInfo> founding, String self,
      List<String> advertiseClientUrls) {
    URI client = URI.create(advertiseClientUrls.get(0));
    List<String> endpoints = new ArrayList<>();
    for (Membership.MemberInfo member : founding) {
      if (!member.name().equals(self)) {
        for (String url : member.peerUrls()) {
          endpoints.add(client.getScheme() + "://" + URI.create(url).getHost() + ":" + client.getPort());
        }
      }
    }
    return endpoints;
  }

  /** {@code args} with each of {@code flags} (name → value) given once, replacing any given before. */
  static String[] withFlags(String[] args, Map<String, String> flags) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      String bare = arg.replaceFirst("^--?", "");
      int eq = bare.indexOf('=');
      String name = eq < 0 ? bare : bare.substring(0, eq);
      if (arg.startsWith("-") && flags.containsKey(name)) {
        if (eq < 0 && i + 1 < args.length) {
          i++; // "--flag value": the value goes too
        }
        continue;
      }
      out.add(arg);
    }
    flags.forEach((name, value) -> out.add("--" + name + "=" + value));
    return out.toArray(String[]::new);
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
