package io.vetcd.auth;

import com.google.protobuf.ByteString;
import io.vetcd.proto.authpb.Permission;
import io.vetcd.proto.authpb.Role;
import io.vetcd.proto.authpb.User;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A user's key permissions of one kind, merged over their roles (etcd's unifiedRangePermissions): key
 * intervals [begin, end), an end of null reaching past every key. A permission on one key is the
 * interval of that key alone; one whose range end is "\0" reaches every key from its begin.
 */
final class KeyRanges {

  private final List<byte[][]> intervals; // {begin, end or null}, sorted by begin

  private KeyRanges(List<byte[][]> intervals) {
    intervals.sort((a, b) -> Arrays.compareUnsigned(a[0], b[0]));
    this.intervals = intervals;
  }

  /** {read, write}: what the user's roles grant. */
  static KeyRanges[] of(User user, Map<String, Role> roles) {
    List<byte[][]> read = new ArrayList<>();
    List<byte[][]> write = new ArrayList<>();
    for (String name : user.getRolesList()) {
      Role role = roles.get(name);
      if (role == null) {
        continue;
      }
      for (Permission p : role.getKeyPermissionList()) {
        byte[][] interval = interval(p.getKey(), p.getRangeEnd());
        if (p.getPermType() != Permission.Type.WRITE) {
          read.add(interval);
        }
        if (p.getPermType() != Permission.Type.READ) {
          write.add(interval);
        }
      }
    }
    return new KeyRanges[] {new KeyRanges(read), new KeyRanges(write)};
  }

  private static byte[][] interval(ByteString key, ByteString rangeEnd) {
    byte[] begin = key.toByteArray();
    if (rangeEnd.isEmpty()) {
      return new byte[][] {begin, successor(begin)};
    }
    if (rangeEnd.size() == 1 && rangeEnd.byteAt(0) == 0) {
      return new byte[][] {begin, null};
    }
    return new byte[][] {begin, rangeEnd.toByteArray()};
  }

  /** The key just after {@code key}: {@code key} followed by a zero byte. */
  private static byte[] successor(byte[] key) {
    return Arrays.copyOf(key, key.length + 1);
  }

  /** Whether some interval holds {@code key} (etcd's checkKeyPoint). */
  boolean containsKey(byte[] key) {
    return containsRange(key, successor(key));
  }

  /**
   * Whether the intervals, together, cover [begin, end) without a gap (etcd's interval tree Contains);
   * {@code end} null: every key from {@code begin}.
   */
  boolean containsRange(byte[] begin, byte[] end) {
    byte[] covered = null; // the end of the run of overlapping intervals that starts at or before begin
    boolean started = false;
    for (byte[][] iv : intervals) {
      if (end != null && Arrays.compareUnsigned(iv[0], end) >= 0) {
        break; // starts at or after the asked end: neither it nor those after it overlap
      }
      if (iv[1] != null && Arrays.compareUnsigned(iv[1], begin) <= 0) {
        continue; // ends before the asked begin
      }
      if (!started) {
        if (Arrays.compareUnsigned(iv[0], begin) > 0) {
          return false; // the first overlapping interval leaves [begin, its start) uncovered
        }
        started = true;
        covered = iv[1];
      } else {
        if (covered != null && Arrays.compareUnsigned(iv[0], covered) > 0) {
          return false; // a gap
        }
        if (covered != null && (iv[1] == null || Arrays.compareUnsigned(iv[1], covered) > 0)) {
          covered = iv[1];
        }
      }
      if (covered == null || (end != null && Arrays.compareUnsigned(covered, end) >= 0)) {
        return true;
      }
    }
    return false;
  }
}
