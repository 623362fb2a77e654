package io.vetcd.metrics;

import io.micrometer.core.instrument.Timer;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * etcd_network_peer_round_trip_time_seconds from the leader's heartbeats: the time from a heartbeat to
 * a peer until that peer's answer to it (the latest one sent; a heartbeat whose answer was lost is
 * superseded by the next). etcd times a prober of its own instead; the heartbeat already makes the
 * round trip every interval. One consensus loop's state: not thread-safe.
 */
public final class PeerRoundTrips {

  private final Map<Long, Long> sentAt = new HashMap<>();
  private final Map<Long, Timer> timers = new HashMap<>();

  public void sent(long peer) {
    sentAt.put(peer, System.nanoTime());
  }

  public void answered(long peer) {
    Long sent = sentAt.remove(peer);
    if (sent != null) {
      timers.computeIfAbsent(peer, p -> EtcdMetrics.peerRoundTrip(Long.toHexString(p)))
          .record(System.nanoTime() - sent, TimeUnit.NANOSECONDS);
    }
  }
}
