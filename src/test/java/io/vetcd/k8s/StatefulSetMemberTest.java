package io.vetcd.k8s;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vetcd.server.Membership;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class StatefulSetMemberTest {

  @Test
  void theOthersAreAskedOnTheirClientPortWithThisPodsScheme() {
    List<Membership.MemberInfo> founding = Membership.initial("vetcd-0=http://vetcd-0.vetcd.ns.svc.cluster.local:2380,"
        + "vetcd-1=http://vetcd-1.vetcd.ns.svc.cluster.local:2380,vetcd-2=http://vetcd-2.vetcd.ns.svc.cluster.local:2380",
        "t").members();
    assertEquals(List.of("https://vetcd-0.vetcd.ns.svc.cluster.local:2479",
            "https://vetcd-2.vetcd.ns.svc.cluster.local:2479"),
        StatefulSetMember.endpoints(founding, "vetcd-1", List.of("https://vetcd-1.vetcd.ns.svc.cluster.local:2479")));
  }

  @Test
  void aJoiningPodsFlagsReplaceTheFoundingOnes() {
    Map<String, String> join = new LinkedHashMap<>();
    join.put("initial-cluster", "a=http://a:2380,b=http://b:2380");
    join.put("initial-cluster-state", "existing");
    assertArrayEquals(new String[] {"--name=b", "--initial-cluster-token=t", "--data-dir", "/d",
            "--initial-cluster=a=http://a:2380,b=http://b:2380", "--initial-cluster-state=existing"},
        StatefulSetMember.withFlags(new String[] {"--name=b", "--initial-cluster=a=http://a:2380",
            "--initial-cluster-token=t", "-initial-cluster-state", "new", "--data-dir", "/d"}, join));
  }
}
