package io.vetcd.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The cluster's members and their ids. Ids are derived as etcd derives them, so every member of a new
 * cluster agrees without talking, and a vetcd cluster gets the ids etcd would give it:
 * member id = first 8 bytes (big-endian) of SHA-1(sorted peer URLs concatenated + cluster token);
 * cluster id = first 8 bytes of SHA-1(the sorted member ids, 8 big-endian bytes each).
 */
public record Membership(long clusterId, List<MemberInfo> members) {

  /** One member of a new cluster: its id, name and peer URLs (client URLs come when it publishes). */
  public record MemberInfo(long id, String name, List<String> peerUrls) {}

  /** Builds the membership of a new cluster from {@code --initial-cluster} and the token. */
  public static Membership initial(String initialCluster, String token) {
    Map<String, List<String>> byName = new LinkedHashMap<>();
    for (String part : initialCluster.split(",")) {
      int eq = part.indexOf('=');
      // An empty name is allowed, as etcd allows it: `member add` prints a member that has not started
      // yet as "=http://..." in ETCD_INITIAL_CLUSTER.
      if (eq < 0) {
        throw new IllegalArgumentException("--initial-cluster entry \"" + part + "\" is not name=peer-url");
      }
      byName.computeIfAbsent(part.substring(0, eq).trim(), k -> new ArrayList<>()).add(part.substring(eq + 1).trim());
    }
    List<MemberInfo> members = new ArrayList<>();
    byName.forEach((name, urls) -> members.add(new MemberInfo(memberId(urls, token), name, urls)));
    return new Membership(clusterId(members.stream().mapToLong(MemberInfo::id).toArray()), members);
  }

  public MemberInfo byName(String name) {
    return members.stream().filter(m -> m.name().equals(name)).findFirst().orElse(null);
  }

  static long memberId(List<String> peerUrls, String token) {
    List<String> sorted = new ArrayList<>(peerUrls);
    sorted.sort(null);
    StringBuilder b = new StringBuilder();
    sorted.forEach(b::append);
    b.append(token);
    return first8(sha1(b.toString().getBytes(StandardCharsets.UTF_8)));
  }

  static long clusterId(long[] memberIds) {
    long[] sorted = memberIds.clone();
    ByteBuffer buf = ByteBuffer.allocate(8 * sorted.length);
    sortUnsigned(sorted); // etcd sorts ids as uint64
    for (long id : sorted) {
      buf.putLong(id);
    }
    return first8(sha1(buf.array()));
  }

  private static void sortUnsigned(long[] ids) {
    Long[] boxed = java.util.Arrays.stream(ids).boxed().toArray(Long[]::new);
    java.util.Arrays.sort(boxed, Long::compareUnsigned);
    for (int i = 0; i < ids.length; i++) {
      ids[i] = boxed[i];
    }
  }

  private static byte[] sha1(byte[] input) {
    try {
      return MessageDigest.getInstance("SHA-1").digest(input);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static long first8(byte[] hash) {
    return ByteBuffer.wrap(hash, 0, 8).getLong();
  }
}
