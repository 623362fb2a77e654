package io.vetcd.it;

import static io.vetcd.it.EtcdctlDifferentialIT.cmd;

import io.vetcd.it.EtcdctlDifferentialIT.Step;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The auth session of etcdctl (users, roles, permissions, auth enable/disable, and what each user may
 * then do), against a fresh real etcd 3.4 and a fresh candidate: identical exit codes, stdout and
 * stderr, command by command, as {@link EtcdctlDifferentialIT} does for the KV commands. Transcripts go
 * to {@code target/it-logs/etcdctl-auth-differential-*.txt}.
 */
class EtcdctlAuthDifferentialIT {

    private static DifferentialSession session;

    @BeforeAll
    static void startServers() throws Exception {
        session = DifferentialSession.start("auth-differential");
    }

    @AfterAll
    static void stopServers() throws Exception {
        if (session != null) {
            session.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> candidatePrintsWhatEtcdPrints() {
        return session.compare(script());
    }

    private static final String ROOT = "--user=root:rootpw";
    private static final String ALICE = "--user=alice:alicepw";
    private static final String BOB = "--user=bob:bobpw";

    private static List<Step> script() {
        List<Step> s = new ArrayList<>();
        s.add(cmd("put", "/app/a", "1"));
        s.add(cmd("put", "/other/x", "2"));
        // Before auth: management works without a user; errors in etcd's words.
        s.add(cmd("auth", "enable"));                                   // no root user yet
        s.add(cmd("user", "add", "root", "--new-user-password=rootpw"));
        s.add(cmd("user", "add", "root", "--new-user-password=again"));  // exists
        s.add(cmd("user", "add", "alice", "--new-user-password=alicepw"));
        s.add(cmd("user", "add", "bob", "--new-user-password=bobpw", "-w", "json"));
        s.add(cmd("user", "add", "carol:carolpw"));
        s.add(cmd("user", "add", "dave", "--no-password"));             // a certificate's user only
        s.add(cmd("user", "list"));
        s.add(cmd("user", "list", "-w", "json"));
        s.add(cmd("user", "get", "alice"));
        s.add(cmd("user", "get", "nobody"));
        s.add(cmd("user", "delete", "carol"));
        s.add(cmd("user", "delete", "carol"));
        s.add(cmd("role", "add", "app"));
        s.add(cmd("role", "add", "app"));
        s.add(cmd("role", "add", "reader", "-w", "json"));
        s.add(cmd("role", "add", "scratch"));
        s.add(cmd("role", "list"));
        s.add(cmd("role", "list", "-w", "json"));
        s.add(cmd("role", "grant-permission", "app", "readwrite", "/app/", "--prefix"));
        s.add(cmd("role", "grant-permission", "app", "read", "/other/x"));
        s.add(cmd("role", "grant-permission", "app", "write", "/w1", "/w5"));
        s.add(cmd("role", "grant-permission", "reader", "read", "/", "--from-key"));
        s.add(cmd("role", "grant-permission", "nosuch", "read", "/x"));
        s.add(cmd("role", "grant-permission", "app", "readwrite", "/w1", "/w5")); // changes the type
        s.add(cmd("role", "get", "app"));
        s.add(cmd("role", "get", "app", "-w", "json"));
        s.add(cmd("role", "get", "reader"));
        s.add(cmd("role", "get", "nosuch"));
        s.add(cmd("role", "revoke-permission", "app", "/nothing"));
        s.add(cmd("role", "revoke-permission", "app", "/w1", "/w5"));
        s.add(cmd("role", "get", "app"));
        s.add(cmd("user", "grant-role", "alice", "app"));
        s.add(cmd("user", "grant-role", "alice", "app"));               // again: no error
        s.add(cmd("user", "grant-role", "alice", "nosuch"));
        s.add(cmd("user", "grant-role", "nobody", "app"));
        s.add(cmd("user", "grant-role", "bob", "reader"));
        s.add(cmd("user", "grant-role", "bob", "scratch"));
        s.add(cmd("user", "get", "alice", "--detail"));
        s.add(cmd("user", "get", "alice", "-w", "json"));
        s.add(cmd("user", "revoke-role", "bob", "app"));                // not granted
        s.add(cmd("role", "delete", "scratch"));                        // leaves bob too
        s.add(cmd("user", "get", "bob"));
        s.add(cmd("role", "delete", "scratch"));
        s.add(new Step("bobpw2\n", new String[] {"user", "passwd", "bob", "--interactive=false"}));
        s.add(new Step("bobpw\n", new String[] {"user", "passwd", "bob", "--interactive=false"}));
        s.add(new Step("x\n", new String[] {"user", "passwd", "nobody", "--interactive=false"}));
        // Enable: etcdctl adds the root role and grants it to root by itself.
        s.add(cmd("auth", "enable"));
        s.add(cmd("auth", "enable"));                                   // no user now
        s.add(cmd(ROOT, "auth", "enable"));                             // already: fine
        s.add(cmd(ROOT, "role", "get", "root"));
        s.add(cmd(ROOT, "user", "get", "root"));
        // Without a user, with a wrong password, with a user that lacks the permission.
        s.add(cmd("get", "/app/a"));
        s.add(cmd("put", "/app/a", "x"));
        s.add(cmd("--user=alice:wrong", "get", "/app/a"));
        s.add(cmd("--user=nobody:pw", "get", "/app/a"));
        s.add(cmd("--user=dave:any", "get", "/app/a"));                  // no password to check
        s.add(cmd(ALICE, "get", "/app/a"));
        s.add(cmd(ALICE, "put", "/app/b", "2"));
        s.add(cmd(ALICE, "get", "/app/", "--prefix"));
        s.add(cmd(ALICE, "get", "/", "--prefix"));                      // wider than granted
        s.add(cmd(ALICE, "get", "/other/x"));
        s.add(cmd(ALICE, "put", "/other/x", "3"));                      // read only
        s.add(cmd(ALICE, "del", "/app/b"));
        s.add(cmd(ALICE, "del", "/other/x"));
        s.add(cmd(ALICE, "put", "/app/c", "1", "--prev-kv"));
        s.add(cmd(BOB, "get", "/", "--prefix"));
        s.add(cmd(BOB, "get", "/other/x", "-w", "json"));
        s.add(cmd(BOB, "put", "/app/z", "1"));
        s.add(cmd(BOB, "compaction", "2"));                             // not checked in etcd 3.4
        s.add(cmd(BOB, "endpoint", "hashkv"));                          // root only, in the auth store's words
        s.add(cmd(BOB, "defrag"));
        s.add(cmd("endpoint", "hashkv"));
        s.add(cmd(BOB, "alarm", "list"));                               // not checked
        s.add(cmd("--user=bob", "--password=bobpw", "get", "/other/x"));
        // Management is root's: others are refused; a user may read itself and its roles.
        s.add(cmd(ALICE, "user", "list"));
        s.add(cmd(ALICE, "role", "list"));
        s.add(cmd(ALICE, "user", "get", "alice"));
        s.add(cmd(ALICE, "user", "get", "bob"));
        s.add(cmd(ALICE, "role", "get", "app"));
        s.add(cmd(ALICE, "role", "get", "reader"));
        s.add(cmd(ALICE, "user", "add", "eve", "--new-user-password=x"));
        s.add(cmd(ALICE, "auth", "disable"));
        s.add(cmd(ROOT, "user", "delete", "root"));
        s.add(cmd(ROOT, "user", "revoke-role", "root", "root"));
        s.add(cmd(ROOT, "role", "delete", "root"));
        s.add(cmd(ROOT, "user", "list"));
        s.add(cmd(ROOT, "get", "/", "--prefix"));
        // A revoked permission takes effect at once.
        s.add(cmd(ROOT, "role", "revoke-permission", "app", "/app/", "--prefix"));
        s.add(cmd(ALICE, "get", "/app/a"));
        s.add(new Step("alicepw2\n", new String[] {ROOT, "user", "passwd", "alice", "--interactive=false"}));
        s.add(cmd(ALICE, "get", "/other/x"));                           // the old password
        s.add(cmd("--user=alice:alicepw2", "get", "/other/x"));
        // Txn: compares need read, each operation its own permission.
        s.add(cmd(ROOT, "role", "grant-permission", "app", "readwrite", "/t/", "--prefix"));
        s.add(EtcdctlDifferentialIT.txnAs("value(\"/t/k\") = \"1\"\n\nput /t/k 2\n\nput /t/k 3\n",
                "--user=alice:alicepw2"));
        s.add(EtcdctlDifferentialIT.txnAs("value(\"/zzz\") = \"1\"\n\nput /t/k 2\n\nput /t/k 3\n",
                "--user=alice:alicepw2"));
        s.add(EtcdctlDifferentialIT.txnAs("\nput /t/k 2\n\nput /zzz 3\n", "--user=alice:alicepw2"));
        s.add(cmd(ROOT, "auth", "disable"));
        s.add(cmd("auth", "disable"));                                  // already: fine
        s.add(cmd("get", "/", "--prefix", "--keys-only"));
        s.add(cmd("user", "list"));
        return s;
    }
}
