package io.vetcd.server;

import io.vetcd.proto.etcdserverpb.Member;
import io.vetcd.proto.internal.ClusterRecord;
import io.vetcd.transport.PeerTransport;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How a member started with {@code --initial-cluster-state existing} finds out who it is, as etcd does
 * (GetClusterFromRemotePeers, ValidateClusterAndAssignIDs): it asks the other members named in
 * {@code --initial-cluster} for the cluster's member list, checks that its flags describe that list
 * (every member, itself included, by peer URLs: what {@code etcdctl member add} printed), and takes the
 * id the cluster gave it when it was added.
 *
 * <p>Nothing is written until that succeeds. The keyspace's (empty) member list is then written before
 * the log records the member's identity: a crash between the two leaves a data directory that the next
 * start treats as new again, and joins again.
 */
final class Joining {

  private static final Logger LOG = LoggerFactory.getLogger(Joining.class);
  private static final int TIMEOUT_MS = 1000;

  private Joining() {}

  /** The member list of the running cluster, from the first member named in the flags that answers. */
  static ClusterRecord fetchCluster(Membership initial, String selfName, Config.Tls peerTls) {
    List<String> tried = new ArrayList<>();
    for (Membership.MemberInfo m : initial.members()) {
      if (m.name().equals(selfName)) {
        continue;
      }
      for (String url : m.peerUrls()) {
        try {
          return ClusterRecord.parseFrom(PeerTransport.fetchMembers(url, TIMEOUT_MS, peerTls));
        } catch (IOException e) {
          LOG.warn("could not get the cluster's members from {}: {}", url, e.toString());
          tried.add(url);
        }
      }
    }
    throw new IllegalStateException("cannot fetch cluster info from peer urls: could not retrieve cluster "
        + "information from the given URLs " + tried + " (with --initial-cluster-state existing, the other "
        + "members of --initial-cluster must be running)");
  }

  /**
   * The id the cluster gave this member, once {@code --initial-cluster} is checked against the
   * cluster's members: the same number of members, each matched by its peer URLs.
   */
  static long ownId(ClusterRecord cluster, Membership initial, String selfName, List<String> advertisedPeerUrls) {
    String problem = null;
    if (cluster.getMembersCount() != initial.members().size()) {
      problem = "member count is unequal";
    }
    long self = 0;
    for (Membership.MemberInfo local : initial.members()) {
      Member remote = byPeerUrls(cluster, local.peerUrls());
      if (remote == null) {
        problem = problem != null ? problem
            : "unmatched member while checking PeerURLs (" + local.name() + "=" + local.peerUrls() + ")";
      } else if (local.name().equals(selfName)) {
        self = remote.getID();
      }
    }
    if (problem != null) {
      throw new IllegalStateException("error validating peerURLs " + describe(cluster) + ": " + problem
          + ". --initial-cluster must list the cluster's members as 'etcdctl member add' printed them "
          + "(ETCD_INITIAL_CLUSTER), this member included");
    }
    if (!sameUrls(ClusterMembers.find(cluster, self).getPeerURLsList(), advertisedPeerUrls)) {
      throw new IllegalStateException("--initial-advertise-peer-urls " + advertisedPeerUrls + " differ from "
          + "this member's peer URLs in --initial-cluster");
    }
    return self;
  }

  private static Member byPeerUrls(ClusterRecord cluster, List<String> urls) {
    for (Member m : cluster.getMembersList()) {
      if (sameUrls(m.getPeerURLsList(), urls)) {
        return m;
      }
    }
    return null;
  }

  private static boolean sameUrls(List<String> a, List<String> b) {
    Set<String> left = new HashSet<>(a);
    return left.equals(new HashSet<>(b));
  }

  /** The cluster as etcd prints it in this error: its id and its members. */
  private static String describe(ClusterRecord cluster) {
    StringBuilder b = new StringBuilder("{ClusterID:").append(Long.toHexString(cluster.getClusterId())).append(" Members:[");
    for (int i = 0; i < cluster.getMembersCount(); i++) {
      Member m = cluster.getMembers(i);
      b.append(i == 0 ? "" : " ").append("&{ID:").append(Long.toHexString(m.getID()))
          .append(" PeerURLs:").append(m.getPeerURLsList()).append(" Name:").append(m.getName())
          .append(" IsLearner:").append(m.getIsLearner()).append('}');
    }
    return b.append("]}").toString();
  }
}
