package io.vetcd.compat;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Watch guarantees (ordered, unique, atomic, reliable, resumable) on one member under concurrent
 * writes; see {@link WatchGuaranteeScenario} and {@link WatchGuaranteeChecker}. The three-member
 * run is {@link ClusterWatchLeaseTest#watchGuaranteesWithWatchersOnEveryMember}.
 */
class WatchGuaranteeTest extends EtcdTestBase {

    @Test
    void guaranteesHoldUnderConcurrentWrites() throws Exception {
        WatchGuaranteeScenario s = new WatchGuaranteeScenario(ns, List.of(client), List.of(server.clientPort()),
                List.of(server.clientUrl()), 4, 500);
        try {
            s.run();
        } finally {
            s.close();
        }
    }
}
