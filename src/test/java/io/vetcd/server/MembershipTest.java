package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** etcd's deterministic member and cluster ids. */
class MembershipTest {

  private static final String THREE =
      "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380";

  @Test
  void defaultSingleMemberHasEtcdsWellKnownIds() {
    // a fresh `etcd` with no flags reports member 8e9e05c52164694d in cluster cdf818194e3a8c32
    Membership m = Membership.initial("default=http://localhost:2380", "etcd-cluster");
    assertEquals(1, m.members().size());
    Membership.MemberInfo self = m.byName("default");
    assertEquals(0x8e9e05c52164694dL, self.id());
    assertEquals("8e9e05c52164694d", Long.toHexString(self.id()));
    assertEquals(0xcdf818194e3a8c32L, m.clusterId());
    assertEquals(List.of("http://localhost:2380"), self.peerUrls());
  }

  @Test
  void defaultFlagsGiveTheWellKnownIds() throws Exception {
    Config c = ((Flags.Run) Flags.parse(new String[0], java.util.Map.of())).config();
    Membership m = Membership.initial(c.initialCluster(), c.initialClusterToken());
    assertEquals(0x8e9e05c52164694dL, m.byName(c.name()).id());
    assertEquals(0xcdf818194e3a8c32L, m.clusterId());
  }

  @Test
  void threeMemberIdsAreDistinctAndStable() {
    Membership m = Membership.initial(THREE, "etcd-cluster-1");
    Set<Long> ids = new HashSet<>();
    m.members().forEach(x -> ids.add(x.id()));
    assertEquals(3, ids.size());
    assertNotEquals(m.clusterId(), m.byName("infra0").id());
    Membership again = Membership.initial(THREE, "etcd-cluster-1");
    assertEquals(m, again);
  }

  @Test
  void everyMemberComputesTheSameIdsWhateverTheOrderOfInitialCluster() {
    Membership m = Membership.initial(THREE, "etcd-cluster-1");
    Membership reordered = Membership.initial(
        "infra2=http://10.0.1.12:2380,infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380", "etcd-cluster-1");
    assertEquals(m.clusterId(), reordered.clusterId());
    for (String name : List.of("infra0", "infra1", "infra2")) {
      assertEquals(m.byName(name).id(), reordered.byName(name).id(), name);
    }
  }

  @Test
  void theTokenMakesClustersDiffer() {
    Membership one = Membership.initial(THREE, "etcd-cluster-1");
    Membership two = Membership.initial(THREE, "etcd-cluster-2");
    assertNotEquals(one.clusterId(), two.clusterId());
    assertNotEquals(one.byName("infra0").id(), two.byName("infra0").id());
  }

  @Test
  void memberIdDependsOnTheSortedPeerUrlsNotTheName() {
    Membership a = Membership.initial("x=http://a:2380,x=http://b:2380", "t");
    Membership b = Membership.initial("y=http://b:2380,y=http://a:2380", "t");
    assertEquals(a.byName("x").id(), b.byName("y").id());
    assertEquals(List.of("http://a:2380", "http://b:2380"), a.byName("x").peerUrls());
    assertEquals(1, a.members().size());
  }

  @Test
  void clusterIdSortsMemberIdsAsUnsigned() {
    // ids with the high bit set must sort after the others, as Go's uint64 sort does
    long high = 0x8000000000000001L;
    long low = 0x0000000000000002L;
    assertEquals(Membership.clusterId(new long[] {high, low}), Membership.clusterId(new long[] {low, high}));
  }

  @Test
  void malformedInitialClusterIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> Membership.initial("http://a:2380", "t"));
  }

  @Test
  void aMemberWithoutANameIsOneThatHasNotStartedYet() {
    // etcdctl member add prints an added member that never started as "=url" in ETCD_INITIAL_CLUSTER.
    Membership m = Membership.initial("a=http://a:2380,=http://b:2380", "t");
    assertEquals(2, m.members().size());
    assertEquals("", m.members().get(1).name());
  }

  @Test
  void anUnknownNameHasNoMember() {
    assertNull(Membership.initial(THREE, "etcd-cluster-1").byName("nobody"));
  }
}
