package io.vetcd.auth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.vetcd.proto.authpb.Permission;
import io.vetcd.proto.etcdserverpb.AuthDisableRequest;
import io.vetcd.proto.etcdserverpb.AuthEnableRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleAddRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleDeleteRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleGrantPermissionRequest;
import io.vetcd.proto.etcdserverpb.AuthRoleRevokePermissionRequest;
import io.vetcd.proto.etcdserverpb.AuthUserAddRequest;
import io.vetcd.proto.etcdserverpb.AuthUserDeleteRequest;
import io.vetcd.proto.etcdserverpb.AuthUserGrantRoleRequest;
import io.vetcd.proto.etcdserverpb.AuthUserRevokeRoleRequest;
import io.vetcd.proto.etcdserverpb.AuthenticateResponse;
import io.vetcd.proto.internal.AuthChange;
import io.vetcd.proto.internal.SimpleTokenGrant;
import io.vetcd.server.EtcdError;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The auth store's rules as etcd 3.4's auth/store.go has them, and its range permission checks. */
class AuthStoreTest {

  private static AuthStore apply(AuthStore store, AuthChange.Builder change) {
    return store.apply(change.build(), 7).store();
  }

  private static EtcdError refusal(AuthStore store, AuthChange.Builder change) {
    return assertThrows(EtcdError.EtcdException.class, () -> store.apply(change.build(), 7)).error();
  }

  private static AuthChange.Builder userAdd(String name) {
    return AuthChange.newBuilder().setUserAdd(AuthUserAddRequest.newBuilder().setName(name))
        .setHashedPassword(ByteString.copyFromUtf8("hash-of-" + name));
  }

  private static AuthChange.Builder grantRole(String user, String role) {
    return AuthChange.newBuilder().setUserGrantRole(AuthUserGrantRoleRequest.newBuilder().setUser(user).setRole(role));
  }

  private static AuthChange.Builder roleAdd(String role) {
    return AuthChange.newBuilder().setRoleAdd(AuthRoleAddRequest.newBuilder().setName(role));
  }

  private static AuthChange.Builder grant(String role, Permission.Type type, String key, String end) {
    return AuthChange.newBuilder().setRoleGrantPermission(AuthRoleGrantPermissionRequest.newBuilder().setName(role)
        .setPerm(Permission.newBuilder().setPermType(type).setKey(ByteString.copyFromUtf8(key))
            .setRangeEnd(ByteString.copyFromUtf8(end))));
  }

  private static final AuthChange.Builder ENABLE = AuthChange.newBuilder().setEnable(AuthEnableRequest.getDefaultInstance());

  /** root (with the root role) and alice with role "app": readwrite on /app/ (prefix), read on /cfg. */
  private static AuthStore withAlice() {
    AuthStore s = AuthStore.EMPTY;
    s = apply(s, userAdd("root"));
    s = apply(s, grantRole("root", "root"));
    s = apply(s, userAdd("alice"));
    s = apply(s, roleAdd("app"));
    s = apply(s, grant("app", Permission.Type.READWRITE, "/app/", "/app0"));
    s = apply(s, grant("app", Permission.Type.READ, "/cfg", ""));
    s = apply(s, grantRole("alice", "app"));
    return apply(s, ENABLE);
  }

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void enablingNeedsARootUserWithTheRootRoleAndDoesNotMoveTheRevision() {
    assertEquals(EtcdError.ROOT_USER_NOT_EXIST, refusal(AuthStore.EMPTY, ENABLE));
    AuthStore root = apply(AuthStore.EMPTY, userAdd("root"));
    assertEquals(EtcdError.ROOT_ROLE_NOT_EXIST, refusal(root, ENABLE));
    AuthStore ready = apply(root, grantRole("root", "root")); // the root role need not exist as a role
    AuthStore enabled = apply(ready, ENABLE);
    assertTrue(enabled.enabled());
    assertEquals(ready.revision(), enabled.revision());
    assertSame(enabled, apply(enabled, ENABLE)); // already: nothing changes
    AuthStore disabled = apply(enabled, AuthChange.newBuilder().setDisable(AuthDisableRequest.getDefaultInstance()));
    assertFalse(disabled.enabled());
    assertEquals(enabled.revision() + 1, disabled.revision());
  }

  @Test
  void usersAndRolesChangeAsEtcdChangesThem() {
    AuthStore s = withAlice();
    long rev = s.revision();
    assertEquals(EtcdError.USER_ALREADY_EXIST, refusal(s, userAdd("alice")));
    assertEquals(EtcdError.USER_EMPTY, refusal(s, userAdd("")));
    assertEquals(EtcdError.ROLE_EMPTY, refusal(s, roleAdd("")));
    assertEquals(EtcdError.ROLE_ALREADY_EXIST, refusal(s, roleAdd("app")));
    assertEquals(EtcdError.ROLE_NOT_FOUND, refusal(s, grantRole("alice", "nosuch")));
    assertEquals(EtcdError.USER_NOT_FOUND, refusal(s, grantRole("nobody", "app")));
    assertSame(s, apply(s, grantRole("alice", "app"))); // granted again: no change, no new revision
    assertEquals(EtcdError.ROLE_NOT_GRANTED, refusal(s, AuthChange.newBuilder()
        .setUserRevokeRole(AuthUserRevokeRoleRequest.newBuilder().setName("root").setRole("app"))));
    // While enabled, root and its role stay.
    assertEquals(EtcdError.INVALID_AUTH_MGMT, refusal(s, AuthChange.newBuilder()
        .setUserDelete(AuthUserDeleteRequest.newBuilder().setName("root"))));
    assertEquals(EtcdError.INVALID_AUTH_MGMT, refusal(s, AuthChange.newBuilder()
        .setUserRevokeRole(AuthUserRevokeRoleRequest.newBuilder().setName("root").setRole("root"))));
    assertEquals(EtcdError.INVALID_AUTH_MGMT, refusal(s, AuthChange.newBuilder()
        .setRoleDelete(AuthRoleDeleteRequest.newBuilder().setRole("root"))));
    // A deleted role goes from its users.
    AuthStore noApp = apply(s, AuthChange.newBuilder().setRoleDelete(AuthRoleDeleteRequest.newBuilder().setRole("app")));
    assertEquals(List.of(), noApp.userGet("alice").getRolesList());
    assertEquals(rev + 1, noApp.revision());
    assertEquals(List.of("alice", "root"), s.userList().getUsersList());
    assertEquals(List.of("app"), s.roleList().getRolesList());
  }

  @Test
  void permissionsAreKeptSortedAndAGrantOfTheSameRangeChangesItsType() {
    AuthStore s = withAlice();
    s = apply(s, grant("app", Permission.Type.WRITE, "/cfg", ""));
    s = apply(s, grant("app", Permission.Type.READ, "/a", "/b"));
    List<Permission> perms = s.roleGet("app").getPermList();
    assertEquals(List.of("/a", "/app/", "/cfg"), perms.stream().map(p -> p.getKey().toStringUtf8()).toList());
    assertEquals(Permission.Type.WRITE, perms.get(2).getPermType());
    assertEquals(EtcdError.PERMISSION_NOT_GRANTED, refusal(s, AuthChange.newBuilder().setRoleRevokePermission(
        AuthRoleRevokePermissionRequest.newBuilder().setRole("app").setKey(ByteString.copyFromUtf8("/a")))));
    AuthStore revoked = apply(s, AuthChange.newBuilder().setRoleRevokePermission(AuthRoleRevokePermissionRequest
        .newBuilder().setRole("app").setKey(ByteString.copyFromUtf8("/a")).setRangeEnd(ByteString.copyFromUtf8("/b"))));
    assertEquals(2, revoked.roleGet("app").getPermCount());
  }

  @Test
  void keysAreCheckedAgainstTheUnionOfTheUsersRanges() {
    AuthStore s = withAlice();
    Caller alice = new Caller("alice", s.revision());
    s.checkKeys(alice, b("/app/x"), null, Permission.Type.WRITE);
    s.checkKeys(alice, b("/app/"), b("/app0"), Permission.Type.READ);
    s.checkKeys(alice, b("/cfg"), null, Permission.Type.READ);
    assertEquals(EtcdError.PERMISSION_DENIED, assertThrows(EtcdError.EtcdException.class,
        () -> s.checkKeys(alice, b("/cfg"), null, Permission.Type.WRITE)).error());
    assertEquals(EtcdError.PERMISSION_DENIED, assertThrows(EtcdError.EtcdException.class,
        () -> s.checkKeys(alice, b("/"), b("0"), Permission.Type.READ)).error()); // wider than granted
    assertEquals(EtcdError.PERMISSION_DENIED, assertThrows(EtcdError.EtcdException.class,
        () -> s.checkKeys(alice, b("/app/"), new byte[] {0}, Permission.Type.READ)).error()); // to the end
    // Two ranges that meet cover the range across them; a gap does not.
    AuthStore joined = apply(s, grant("app", Permission.Type.READ, "/app0", "/b"));
    joined.checkKeys(new Caller("alice", joined.revision()), b("/app/a"), b("/az"), Permission.Type.READ);
    AuthStore gap = apply(s, grant("app", Permission.Type.READ, "/app1", "/b"));
    assertThrows(EtcdError.EtcdException.class,
        () -> gap.checkKeys(new Caller("alice", gap.revision()), b("/app/a"), b("/az"), Permission.Type.READ));
    // A permission from a key on ("\0" range end) covers every key after it.
    AuthStore fromKey = apply(s, grant("app", Permission.Type.READ, "/m", "\0"));
    fromKey.checkKeys(new Caller("alice", fromKey.revision()), b("/z/z/z"), new byte[] {0}, Permission.Type.READ);
  }

  @Test
  void aCallerWithNoUserAnOldRevisionOrNoSuchUserIsRefusedAndRootMayDoAnything() {
    AuthStore s = withAlice();
    assertEquals(EtcdError.USER_EMPTY, assertThrows(EtcdError.EtcdException.class,
        () -> s.checkKeys(Caller.NOBODY, b("/app/x"), null, Permission.Type.READ)).error());
    assertEquals(EtcdError.AUTH_OLD_REVISION, assertThrows(EtcdError.EtcdException.class,
        () -> s.checkKeys(new Caller("alice", s.revision() - 1), b("/app/x"), null, Permission.Type.READ)).error());
    assertEquals(EtcdError.PERMISSION_DENIED, assertThrows(EtcdError.EtcdException.class,
        () -> s.checkKeys(new Caller("ghost", s.revision()), b("/app/x"), null, Permission.Type.READ)).error());
    s.checkKeys(new Caller("root", s.revision()), b(""), new byte[] {0}, Permission.Type.WRITE);
    s.checkAdmin(new Caller("root", 1));
    assertEquals(EtcdError.PERMISSION_DENIED,
        assertThrows(EtcdError.EtcdException.class, () -> s.checkAdmin(new Caller("alice", 1))).error());
    assertEquals(EtcdError.USER_NOT_FOUND,
        assertThrows(EtcdError.EtcdException.class, () -> s.checkAdmin(new Caller("ghost", 1))).error());
    assertEquals(EtcdError.USER_EMPTY, assertThrows(EtcdError.EtcdException.class, () -> s.checkAdmin(Caller.NOBODY)).error());
    AuthStore.EMPTY.checkKeys(Caller.NOBODY, b("x"), null, Permission.Type.WRITE); // disabled: anyone
  }

  @Test
  void authenticateNamesTheTokenAfterTheEntryAndNeedsAuthEnabledAndAUser() {
    AuthStore s = withAlice();
    AuthChange.Builder auth = AuthChange.newBuilder().setAuthenticate(
        SimpleTokenGrant.newBuilder().setName("alice").setToken("abcdefghijklmnop").setRevision(s.revision()));
    assertEquals("abcdefghijklmnop.7", ((AuthenticateResponse) s.apply(auth.build(), 7).response()).getToken());
    assertEquals(EtcdError.AUTH_FAILED, refusal(s, AuthChange.newBuilder().setAuthenticate(
        SimpleTokenGrant.newBuilder().setName("ghost").setToken("x").setRevision(s.revision()))));
    // The password was checked against an older store (changed since): refused, to be tried again.
    assertEquals(EtcdError.AUTH_OLD_REVISION, refusal(s, AuthChange.newBuilder().setAuthenticate(
        SimpleTokenGrant.newBuilder().setName("alice").setToken("x").setRevision(s.revision() - 1))));
    assertEquals(EtcdError.AUTH_NOT_ENABLED, refusal(AuthStore.EMPTY, auth));
  }

  @Test
  void theRecordKeepsEverything() {
    AuthStore s = withAlice();
    AuthStore back = AuthStore.fromRecord(s.toRecord());
    assertArrayEquals(s.toRecord(), back.toRecord());
    assertTrue(back.enabled());
    assertEquals(s.revision(), back.revision());
    assertSame(AuthStore.EMPTY, AuthStore.fromRecord(null));
  }

  @Test
  void simpleTokensLiveTheirTtlPastTheLastUseAndDieWithTheirUser() {
    AtomicLong now = new AtomicLong();
    SimpleTokens tokens = new SimpleTokens(300, now::get);
    String prefix = tokens.newPrefix();
    assertTrue(prefix.matches("[a-zA-Z]{16}"), prefix);
    tokens.assign("t1.5", "alice");
    tokens.assign("t2.6", "bob");
    now.addAndGet(299_000_000_000L);
    assertEquals(new Caller("alice", 7), tokens.caller("t1.5", 7)); // used: another 300 s from now
    now.addAndGet(299_000_000_000L);
    assertEquals(new Caller("alice", 8), tokens.caller("t1.5", 8)); // as new as the store
    assertEquals(null, tokens.caller("t2.6", 8)); // unused for 598 s
    tokens.invalidate("alice");
    assertEquals(null, tokens.caller("t1.5", 8));
    assertEquals(null, tokens.caller("never.1", 8));
  }

  @Test
  void passwordsAreBcryptHashes() {
    byte[] hash = Passwords.hash("s3cret", Passwords.MIN_COST);
    assertTrue(new String(hash, StandardCharsets.US_ASCII).startsWith("$2a$04$"));
    assertTrue(Passwords.matches("s3cret", hash));
    assertFalse(Passwords.matches("s3cret!", hash));
    assertFalse(Passwords.matches("s3cret", new byte[0]));
    assertFalse(Passwords.matches("s3cret", b("not a bcrypt hash")));
  }
}
