package io.vetcd.k8s;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class StatefulSetMemberTest {

  @Test
  void theFoundingPodsAreReadFromTheInitialCluster() {
    assertEquals(Map.of("vetcd-0", List.of("http://vetcd-0.vetcd:2380"), "vetcd-1",
            List.of("http://vetcd-1.vetcd:2380", "https://10.0.0.2:2380")),
        StatefulSetMember.initialCluster(
            "vetcd-0=http://vetcd-0.vetcd:2380, vetcd-1=http://vetcd-1.vetcd:2380,vetcd-1=https://10.0.0.2:2380"));
  }

  @Test
  void theOthersAreAskedOnTheirClientPortWithThisPodsScheme() {
    Map<String, List<String>> founding = new LinkedHashMap<>();
    founding.put("vetcd-0", List.of("http://vetcd-0.vetcd.ns.svc.cluster.local:2380"));
    founding.put("vetcd-1", List.of("http://vetcd-1.vetcd.ns.svc.cluster.local:2380"));
    founding.put("vetcd-2", List.of("http://vetcd-2.vetcd.ns.svc.cluster.local:2380"));
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
