package io.vetcd.auth;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.vetcd.proto.authpb.Permission;
import io.vetcd.proto.authpb.Role;
import io.vetcd.proto.authpb.User;
import io.vetcd.proto.authpb.UserAddOptions;
import io.vetcd.proto.etcdserverpb.AuthDisableResponse;
import io.vetcd.proto.etcdserverpb.AuthEnableResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleAddResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleDeleteResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleGetResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleGrantPermissionResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleListResponse;
import io.vetcd.proto.etcdserverpb.AuthRoleRevokePermissionResponse;
import io.vetcd.proto.etcdserverpb.AuthUserAddResponse;
import io.vetcd.proto.etcdserverpb.AuthUserChangePasswordResponse;
import io.vetcd.proto.etcdserverpb.AuthUserDeleteResponse;
import io.vetcd.proto.etcdserverpb.AuthUserGetResponse;
import io.vetcd.proto.etcdserverpb.AuthUserGrantRoleResponse;
import io.vetcd.proto.etcdserverpb.AuthUserListResponse;
import io.vetcd.proto.etcdserverpb.AuthUserRevokeRoleResponse;
import io.vetcd.proto.etcdserverpb.AuthenticateResponse;
import io.vetcd.proto.internal.AuthChange;
import io.vetcd.proto.internal.AuthRecord;
import io.vetcd.server.EtcdError;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * etcd 3.4's auth store (auth/store.go) as a value: users, roles with their key permissions, whether
 * auth is enabled, and the auth revision that every change of users or roles moves on. It changes only
 * through {@link #apply}, by log entries, so every member holds the same store at the same index; it is
 * kept in the keyspace as one {@link AuthRecord}, in the transaction of the entry that changed it, so
 * it survives restarts and travels with snapshots. Pure: no clock, no I/O, no bcrypt (passwords come
 * hashed, see {@link Passwords}).
 */
public final class AuthStore {

  public static final String ROOT_USER = "root";
  public static final String ROOT_ROLE = "root";

  /** The store a member starts with: no users, no roles, auth disabled, revision 0. */
  public static final AuthStore EMPTY = new AuthStore(false, 0, new TreeMap<>(), new TreeMap<>());

  private final boolean enabled;
  private final long revision;
  private final TreeMap<String, User> users;
  private final TreeMap<String, Role> roles;
  /** Each user's merged permissions, made when first asked (the store never changes, so neither do they). */
  private final Map<String, KeyRanges[]> permissions = new java.util.concurrent.ConcurrentHashMap<>();

  private AuthStore(boolean enabled, long revision, TreeMap<String, User> users, TreeMap<String, Role> roles) {
    this.enabled = enabled;
    this.revision = revision;
    this.users = users;
    this.roles = roles;
  }

  public boolean enabled() {
    return enabled;
  }

  /** etcd's auth revision: moves on with every change of users, roles or permissions, and at auth disable. */
  public long revision() {
    return revision;
  }

  public User user(String name) {
    return users.get(name);
  }

  public Role role(String name) {
    return roles.get(name);
  }

  // ------------------------------------------------------------------------------------------- records

  public static AuthStore fromRecord(byte[] record) {
    if (record == null) {
      return EMPTY;
    }
    try {
      AuthRecord r = AuthRecord.parseFrom(record);
      TreeMap<String, User> users = new TreeMap<>();
      r.getUsersList().forEach(u -> users.put(u.getName().toStringUtf8(), u));
      TreeMap<String, Role> roles = new TreeMap<>();
      r.getRolesList().forEach(role -> roles.put(role.getName().toStringUtf8(), role));
      return new AuthStore(r.getEnabled(), r.getRevision(), users, roles);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("the auth record in the keyspace is corrupt", e);
    }
  }

  public byte[] toRecord() {
    return AuthRecord.newBuilder().setEnabled(enabled).setRevision(revision)
        .addAllUsers(users.values()).addAllRoles(roles.values()).build().toByteArray();
  }

  // ------------------------------------------------------------------------------------------- changes

  /** A change's outcome: the store after it (this one if nothing changed) and the answer. */
  public record Applied(AuthStore store, Message response) {}

  /**
   * Applies an auth change as etcd's store does, in its order of checks; an error it would answer is
   * thrown as {@link EtcdError.EtcdException} and changes nothing. {@code index} is the entry's log
   * index (a simple token ends with it).
   */
  public Applied apply(AuthChange change, long index) {
    return switch (change.getRequestCase()) {
      case ENABLE -> enable();
      case DISABLE -> enabled
          ? new Applied(new AuthStore(false, revision + 1, users, roles), AuthDisableResponse.getDefaultInstance())
          : unchanged(AuthDisableResponse.getDefaultInstance());
      case AUTHENTICATE -> authenticate(change.getAuthenticate().getName(), change.getAuthenticate().getToken(),
          change.getAuthenticate().getRevision(), index);
      case USER_ADD -> userAdd(change);
      case USER_DELETE -> userDelete(change.getUserDelete().getName());
      case USER_CHANGE_PASSWORD -> userChangePassword(change);
      case USER_GRANT_ROLE -> userGrantRole(change.getUserGrantRole().getUser(), change.getUserGrantRole().getRole());
      case USER_REVOKE_ROLE -> userRevokeRole(change.getUserRevokeRole().getName(), change.getUserRevokeRole().getRole());
      case ROLE_ADD -> roleAdd(change.getRoleAdd().getName());
      case ROLE_DELETE -> roleDelete(change.getRoleDelete().getRole());
      case ROLE_GRANT_PERMISSION -> roleGrantPermission(change.getRoleGrantPermission().getName(),
          change.getRoleGrantPermission().getPerm());
      case ROLE_REVOKE_PERMISSION -> roleRevokePermission(change.getRoleRevokePermission().getRole(),
          change.getRoleRevokePermission().getKey(), change.getRoleRevokePermission().getRangeEnd());
      case REQUEST_NOT_SET -> throw new IllegalStateException("an auth change with no request");
    };
  }

  private Applied enable() {
    if (enabled) {
      return unchanged(AuthEnableResponse.getDefaultInstance());
    }
    User root = users.get(ROOT_USER);
    if (root == null) {
      throw EtcdError.ROOT_USER_NOT_EXIST.exception();
    }
    if (!root.getRolesList().contains(ROOT_ROLE)) {
      throw EtcdError.ROOT_ROLE_NOT_EXIST.exception();
    }
    // etcd does not move the revision on when it enables auth, only when it disables it.
    return new Applied(new AuthStore(true, revision, users, roles), AuthEnableResponse.getDefaultInstance());
  }

  private Applied authenticate(String name, String tokenPrefix, long checkedRevision, long index) {
    if (!enabled) {
      throw EtcdError.AUTH_NOT_ENABLED.exception();
    }
    if (checkedRevision != revision) {
      throw EtcdError.AUTH_OLD_REVISION.exception(); // the password was checked against another store
    }
    User user = users.get(name);
    if (user == null || user.getOptions().getNoPassword()) {
      throw EtcdError.AUTH_FAILED.exception();
    }
    return unchanged(AuthenticateResponse.newBuilder().setToken(tokenPrefix + "." + index).build());
  }

  private Applied userAdd(AuthChange change) {
    var r = change.getUserAdd();
    if (r.getName().isEmpty()) {
      throw EtcdError.USER_EMPTY.exception();
    }
    if (users.containsKey(r.getName())) {
      throw EtcdError.USER_ALREADY_EXIST.exception();
    }
    UserAddOptions options = r.hasOptions() ? r.getOptions() : UserAddOptions.getDefaultInstance();
    User user = User.newBuilder().setName(ByteString.copyFromUtf8(r.getName()))
        .setPassword(options.getNoPassword() ? ByteString.EMPTY : change.getHashedPassword())
        .setOptions(options).build();
    TreeMap<String, User> after = new TreeMap<>(users);
    after.put(r.getName(), user);
    return changed(after, roles, AuthUserAddResponse.getDefaultInstance());
  }

  private Applied userDelete(String name) {
    if (enabled && ROOT_USER.equals(name)) {
      throw EtcdError.INVALID_AUTH_MGMT.exception();
    }
    if (!users.containsKey(name)) {
      throw EtcdError.USER_NOT_FOUND.exception();
    }
    TreeMap<String, User> after = new TreeMap<>(users);
    after.remove(name);
    return changed(after, roles, AuthUserDeleteResponse.getDefaultInstance());
  }

  private Applied userChangePassword(AuthChange change) {
    String name = change.getUserChangePassword().getName();
    User user = users.get(name);
    if (user == null) {
      throw EtcdError.USER_NOT_FOUND.exception();
    }
    TreeMap<String, User> after = new TreeMap<>(users);
    after.put(name, user.toBuilder().setPassword(change.getHashedPassword()).build());
    return changed(after, roles, AuthUserChangePasswordResponse.getDefaultInstance());
  }

  private Applied userGrantRole(String name, String role) {
    User user = users.get(name);
    if (user == null) {
      throw EtcdError.USER_NOT_FOUND.exception();
    }
    if (!ROOT_ROLE.equals(role) && !roles.containsKey(role)) {
      throw EtcdError.ROLE_NOT_FOUND.exception();
    }
    if (user.getRolesList().contains(role)) {
      return unchanged(AuthUserGrantRoleResponse.getDefaultInstance());
    }
    List<String> granted = new ArrayList<>(user.getRolesList());
    granted.add(role);
    Collections.sort(granted);
    TreeMap<String, User> after = new TreeMap<>(users);
    after.put(name, user.toBuilder().clearRoles().addAllRoles(granted).build());
    return changed(after, roles, AuthUserGrantRoleResponse.getDefaultInstance());
  }

  private Applied userRevokeRole(String name, String role) {
    if (enabled && ROOT_USER.equals(name) && ROOT_ROLE.equals(role)) {
      throw EtcdError.INVALID_AUTH_MGMT.exception();
    }
    User user = users.get(name);
    if (user == null) {
      throw EtcdError.USER_NOT_FOUND.exception();
    }
    if (!user.getRolesList().contains(role)) {
      throw EtcdError.ROLE_NOT_GRANTED.exception();
    }
    TreeMap<String, User> after = new TreeMap<>(users);
    after.put(name, withoutRole(user, role));
    return changed(after, roles, AuthUserRevokeRoleResponse.getDefaultInstance());
  }

  private static User withoutRole(User user, String role) {
    List<String> kept = new ArrayList<>(user.getRolesList());
    kept.remove(role);
    return user.toBuilder().clearRoles().addAllRoles(kept).build();
  }

  private Applied roleAdd(String name) {
    if (name.isEmpty()) {
      throw EtcdError.ROLE_EMPTY.exception();
    }
    if (roles.containsKey(name)) {
      throw EtcdError.ROLE_ALREADY_EXIST.exception();
    }
    TreeMap<String, Role> after = new TreeMap<>(roles);
    after.put(name, Role.newBuilder().setName(ByteString.copyFromUtf8(name)).build());
    return changed(users, after, AuthRoleAddResponse.getDefaultInstance());
  }

  private Applied roleDelete(String name) {
    if (enabled && ROOT_ROLE.equals(name)) {
      throw EtcdError.INVALID_AUTH_MGMT.exception();
    }
    if (!roles.containsKey(name)) {
      throw EtcdError.ROLE_NOT_FOUND.exception();
    }
    TreeMap<String, Role> afterRoles = new TreeMap<>(roles);
    afterRoles.remove(name);
    TreeMap<String, User> afterUsers = new TreeMap<>(users);
    users.forEach((userName, user) -> {
      if (user.getRolesList().contains(name)) {
        afterUsers.put(userName, withoutRole(user, name)); // the role goes from every user that had it
      }
    });
    return changed(afterUsers, afterRoles, AuthRoleDeleteResponse.getDefaultInstance());
  }

  private Applied roleGrantPermission(String name, Permission perm) {
    Role role = roles.get(name);
    if (role == null) {
      throw EtcdError.ROLE_NOT_FOUND.exception();
    }
    List<Permission> perms = new ArrayList<>(role.getKeyPermissionList());
    int same = -1;
    for (int i = 0; i < perms.size(); i++) {
      if (perms.get(i).getKey().equals(perm.getKey()) && perms.get(i).getRangeEnd().equals(perm.getRangeEnd())) {
        same = i;
      }
    }
    if (same >= 0) {
      perms.set(same, perms.get(same).toBuilder().setPermType(perm.getPermType()).build()); // a new type
    } else {
      perms.add(Permission.newBuilder().setKey(perm.getKey()).setRangeEnd(perm.getRangeEnd())
          .setPermType(perm.getPermType()).build());
      perms.sort((a, b) -> ByteString.unsignedLexicographicalComparator().compare(a.getKey(), b.getKey()));
    }
    TreeMap<String, Role> after = new TreeMap<>(roles);
    after.put(name, role.toBuilder().clearKeyPermission().addAllKeyPermission(perms).build());
    return changed(users, after, AuthRoleGrantPermissionResponse.getDefaultInstance());
  }

  private Applied roleRevokePermission(String name, ByteString key, ByteString rangeEnd) {
    Role role = roles.get(name);
    if (role == null) {
      throw EtcdError.ROLE_NOT_FOUND.exception();
    }
    List<Permission> kept = new ArrayList<>();
    for (Permission p : role.getKeyPermissionList()) {
      if (!p.getKey().equals(key) || !p.getRangeEnd().equals(rangeEnd)) {
        kept.add(p);
      }
    }
    if (kept.size() == role.getKeyPermissionCount()) {
      throw EtcdError.PERMISSION_NOT_GRANTED.exception();
    }
    TreeMap<String, Role> after = new TreeMap<>(roles);
    after.put(name, role.toBuilder().clearKeyPermission().addAllKeyPermission(kept).build());
    return changed(users, after, AuthRoleRevokePermissionResponse.getDefaultInstance());
  }

  private Applied unchanged(Message response) {
    return new Applied(this, response);
  }

  /** Users or roles changed: the revision moves on. */
  private Applied changed(TreeMap<String, User> u, TreeMap<String, Role> r, Message response) {
    return new Applied(new AuthStore(enabled, revision + 1, u, r), response);
  }

  // ------------------------------------------------------------------------------------------- reads

  public AuthUserGetResponse userGet(String name) {
    User user = users.get(name);
    if (user == null) {
      throw EtcdError.USER_NOT_FOUND.exception();
    }
    return AuthUserGetResponse.newBuilder().addAllRoles(user.getRolesList()).build();
  }

  public AuthUserListResponse userList() {
    return AuthUserListResponse.newBuilder().addAllUsers(users.keySet()).build();
  }

  public AuthRoleGetResponse roleGet(String name) {
    Role role = roles.get(name);
    if (role == null) {
      throw EtcdError.ROLE_NOT_FOUND.exception();
    }
    return AuthRoleGetResponse.newBuilder().addAllPerm(role.getKeyPermissionList()).build();
  }

  public AuthRoleListResponse roleList() {
    return AuthRoleListResponse.newBuilder().addAllRoles(roles.keySet()).build();
  }

  // ------------------------------------------------------------------------------------------- checks

  /**
   * etcd's isOpPermitted: nothing is checked while auth is disabled; a caller with no user (revision 0:
   * no token) is refused with "user name is empty", one whose auth revision is older than the store's
   * with "revision of auth store is old" (the permissions it was checked against may have changed); the
   * root role may do anything; anyone else needs the kind of permission asked over the whole range.
   * {@code rangeEnd} empty means the key alone, "\0" every key from it.
   */
  public void checkKeys(Caller caller, byte[] key, byte[] rangeEnd, Permission.Type type) {
    if (!enabled) {
      return;
    }
    if (caller == null || caller.revision() == 0) {
      throw EtcdError.USER_EMPTY.exception();
    }
    if (caller.revision() < revision) {
      throw EtcdError.AUTH_OLD_REVISION.exception();
    }
    User user = users.get(caller.user());
    if (user == null) {
      throw EtcdError.PERMISSION_DENIED.exception();
    }
    if (user.getRolesList().contains(ROOT_ROLE)) {
      return;
    }
    KeyRanges[] merged = permissions.computeIfAbsent(caller.user(), u -> KeyRanges.of(user, roles));
    KeyRanges granted = type == Permission.Type.WRITE ? merged[1] : merged[0];
    boolean permitted = rangeEnd == null || rangeEnd.length == 0 ? granted.containsKey(key)
        : granted.containsRange(key, rangeEnd.length == 1 && rangeEnd[0] == 0 ? null : rangeEnd);
    if (!permitted) {
      throw EtcdError.PERMISSION_DENIED.exception();
    }
  }

  /** etcd's IsAdminPermitted: with auth enabled, only a user with the root role. */
  public void checkAdmin(Caller caller) {
    if (!enabled) {
      return;
    }
    if (caller == null || caller.user().isEmpty()) {
      throw EtcdError.USER_EMPTY.exception();
    }
    User user = users.get(caller.user());
    if (user == null) {
      throw EtcdError.USER_NOT_FOUND.exception();
    }
    if (!user.getRolesList().contains(ROOT_ROLE)) {
      throw EtcdError.PERMISSION_DENIED.exception();
    }
  }
}
