package io.vetcd.it;

import static io.vetcd.it.AuthClusterIT.authenticate;
import static io.vetcd.it.AuthClusterIT.gateway;
import static io.vetcd.it.AuthClusterIT.ok;
import static io.vetcd.it.AuthClusterIT.refused;
import static io.vetcd.it.AuthClusterIT.rootAndAlice;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * JWT tokens ({@code --auth-token jwt,...}) on a three-member cluster whose members share an RS256
 * key made by openssl at test time: the real etcdctl through every member; a token is a JWT signed
 * with that key, good on every member and after a member restarts (nothing is remembered, unlike a
 * simple token); an auth change ages every token ("revision of auth store is old") and etcdctl
 * authenticates again. Runs against etcd too ({@code -Dit.cluster.candidate=etcd}).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class JwtAuthClusterIT {

    private static final String ROOT = "--user=root:rootpw";
    private static final String ALICE = "--user=alice:alicepw";
    private static final String APP_K = "{\"key\":\"L2FwcC9r\"}"; // /app/k

    private static Path keys;
    private static ClusterProcess cluster;
    private static int leader;
    private static int follower;

    @BeforeAll
    static void startAndSecure() throws Exception {
        keys = Files.createTempDirectory("vetcd-jwt-");
        openssl("genrsa", "-out", "jwt.key", "2048");
        openssl("rsa", "-in", "jwt.key", "-pubout", "-out", "jwt.pub");
        cluster = ClusterProcess.start(ClusterProcess.candidateKind(), "jwt-auth", "--auth-token",
                "jwt,pub-key=" + keys.resolve("jwt.pub") + ",priv-key=" + keys.resolve("jwt.key")
                        + ",sign-method=RS256,ttl=10m");
        leader = cluster.leaderIndex();
        follower = cluster.anyRunningExcept(leader);
        String f = cluster.endpoint(follower);
        rootAndAlice(f);
        ok(f, "put", "/secret/key", "s3cret");
        ok(f, "put", "/app/k", "v");
        ok(f, "auth", "enable");
    }

    @AfterAll
    static void stop() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static void openssl(String... args) throws Exception {
        OpenSsl.run(keys, args);
    }

    @Test
    @Order(1)
    void etcdctlWorksThroughEveryMember() throws Exception {
        for (int m = 1; m <= 3; m++) {
            String e = cluster.endpoint(m);
            ok(e, ALICE, "put", "/app/m" + m, "v");
            assertEquals("/app/k\nv\n", ok(e, ALICE, "get", "/app/k").stdout());
            refused("etcdserver: permission denied", e, ALICE, "get", "/secret/key");
            refused("etcdserver: authentication failed, invalid user ID or password", e, "--user=alice:nope", "get",
                    "/app/k");
            assertEquals("/secret/key\ns3cret\n", ok(e, ROOT, "get", "/secret/key").stdout());
        }
    }

    @Test
    @Order(2)
    void aTokenIsASignedJwtGoodOnEveryMemberAndAfterARestart() throws Exception {
        String token = authenticate(cluster.endpoint(leader), "alice", "alicepw");
        String[] parts = token.split("\\.");
        assertEquals(3, parts.length, token);
        assertEquals(new JsonObject().put("alg", "RS256").put("typ", "JWT"), json(parts[0]));
        JsonObject claims = json(parts[1]);
        assertEquals("alice", claims.getString("username"), claims.encode());
        assertTrue(claims.getLong("revision") > 0, claims.encode());
        assertTrue(claims.getLong("exp") > System.currentTimeMillis() / 1000 + 300, "ttl=10m: " + claims.encode());
        Signature rs256 = Signature.getInstance("SHA256withRSA");
        rs256.initVerify(publicKey());
        rs256.update((parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII));
        assertTrue(rs256.verify(Base64.getUrlDecoder().decode(parts[2])), "not signed with the key given");

        for (int m = 1; m <= 3; m++) {
            HttpResponse<String> r = gateway(cluster.endpoint(m), "kv/range", APP_K, token);
            assertEquals(200, r.statusCode(), "range with the leader's token through infra" + m + ": " + r.body());
            assertTrue(r.body().contains("\"kvs\""), r.body());
        }
        cluster.stop(follower);
        cluster.restart(follower);
        HttpResponse<String> after = gateway(cluster.endpoint(follower), "kv/range", APP_K, token);
        assertTrue(after.statusCode() == 200 && after.body().contains("\"kvs\""), "after a restart: " + after.body());

        String asRoot = Base64.getUrlEncoder().withoutPadding().encodeToString(
                claims.copy().put("username", "root").encode().getBytes(StandardCharsets.UTF_8));
        HttpResponse<String> forged = gateway(cluster.endpoint(leader), "kv/range", APP_K,
                parts[0] + "." + asRoot + "." + parts[2]);
        assertTrue(forged.body().contains("etcdserver: invalid auth token"), "forged: " + forged.body());
    }

    @Test
    @Order(3)
    void anAuthChangeAgesTokensAndEtcdctlAuthenticatesAgain() throws Exception {
        String token = authenticate(cluster.endpoint(follower), "alice", "alicepw");
        assertEquals(200, gateway(cluster.endpoint(leader), "kv/range", APP_K, token).statusCode());
        ok(cluster.endpoint(leader), ROOT, "role", "grant-permission", "app", "read", "/shared/", "--prefix");
        for (int m = 1; m <= 3; m++) {
            // Each member has the change once it answers a linearizable read with a fresh token.
            ok(cluster.endpoint(m), ALICE, "get", "/app/k");
            HttpResponse<String> old = gateway(cluster.endpoint(m), "kv/range", APP_K, token);
            assertTrue(old.body().contains("etcdserver: revision of auth store is old"),
                    "infra" + m + ", a token from before the change: " + old.body());
        }
        String fresh = authenticate(cluster.endpoint(follower), "alice", "alicepw");
        assertEquals(200, gateway(cluster.endpoint(leader), "kv/range", APP_K, fresh).statusCode());
    }

    private static JsonObject json(String base64url) {
        return new JsonObject(new String(Base64.getUrlDecoder().decode(base64url), StandardCharsets.UTF_8));
    }

    private static PublicKey publicKey() throws Exception {
        String pem = Files.readString(keys.resolve("jwt.pub")).replaceAll("-----[A-Z ]+-----|\\s", "");
        return KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(pem)));
    }
}
