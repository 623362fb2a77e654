package io.vetcd.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JwtTokensTest {

  @TempDir
  Path dir;

  private final AtomicLong now = new AtomicLong(1_700_000_000_000L);

  private String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
        + "\n-----END " + type + "-----\n";
  }

  private String write(String name, String text) throws Exception {
    Path f = dir.resolve(name);
    Files.writeString(f, text);
    return f.toString();
  }

  private KeyPair rsa() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    return g.generateKeyPair();
  }

  private KeyPair ec(String curve) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec(curve));
    return g.generateKeyPair();
  }

  private JwtTokens load(String method, String pub, String priv) throws Exception {
    return JwtTokens.load(new JwtTokens.Options(method, pub, priv, 300_000), now::get);
  }

  private static JsonObject part(String token, int i) {
    return new JsonObject(new String(Base64.getUrlDecoder().decode(token.split("\\.")[i]), StandardCharsets.UTF_8));
  }

  @Test
  void eachSignMethodMakesTokensItsKeyChecks() throws Exception {
    KeyPair rsa = rsa();
    String rsaPriv = write("rsa.key", pem("PRIVATE KEY", rsa.getPrivate().getEncoded()));
    String rsaPub = write("rsa.pub", pem("PUBLIC KEY", rsa.getPublic().getEncoded()));
    for (String m : new String[] {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}) {
      JwtTokens tokens = load(m, rsaPub, rsaPriv);
      String token = tokens.issue(".7", "alice", 4);
      assertEquals(new Caller("alice", 4), tokens.caller(token, 9), m);
      assertEquals(new Caller("alice", 4), load(m, rsaPub, "").caller(token, 9), m + ": verify-only member");
    }
    for (String[] m : new String[][] {{"ES256", "secp256r1"}, {"ES384", "secp384r1"}, {"ES512", "secp521r1"}}) {
      KeyPair ec = ec(m[1]);
      String priv = write(m[0] + ".key", pem("PRIVATE KEY", ec.getPrivate().getEncoded()));
      String pub = write(m[0] + ".pub", pem("PUBLIC KEY", ec.getPublic().getEncoded()));
      JwtTokens tokens = load(m[0], pub, priv);
      String token = tokens.issue("", "bob", 2);
      assertEquals(new Caller("bob", 2), load(m[0], pub, "").caller(token, 2), m[0]);
    }
    String secret = write("hmac", "a shared secret\n");
    for (String m : new String[] {"HS256", "HS384", "HS512"}) {
      String token = load(m, "", secret).issue("", "carol", 1);
      assertEquals(new Caller("carol", 1), load(m, "", secret).caller(token, 1), m);
    }
  }

  @Test
  void aTokenIsEtcdsJwt() throws Exception {
    KeyPair rsa = rsa();
    JwtTokens tokens = load("RS256", "", write("k", pem("PRIVATE KEY", rsa.getPrivate().getEncoded())));
    String token = tokens.issue("", "alice", 4);
    assertEquals(new JsonObject().put("alg", "RS256").put("typ", "JWT"), part(token, 0));
    assertEquals(new JsonObject().put("exp", 1_700_000_300L).put("revision", 4).put("username", "alice"),
        part(token, 1));
    assertTrue(part(token, 1).encode().startsWith("{\"exp\":1700000300,\"revision\":4,\"username\""),
        "claims in Go's key order: " + part(token, 1).encode());
  }

  @Test
  void expiredForgedAndMalformedTokensNameNobody() throws Exception {
    KeyPair rsa = rsa();
    String priv = write("k", pem("PRIVATE KEY", rsa.getPrivate().getEncoded()));
    JwtTokens tokens = load("RS256", "", priv);
    String token = tokens.issue("", "alice", 4);
    String[] parts = token.split("\\.");
    String root = Base64.getUrlEncoder().withoutPadding().encodeToString(
        "{\"exp\":1700000300,\"revision\":4,\"username\":\"root\"}".getBytes(StandardCharsets.UTF_8));
    assertNull(tokens.caller(parts[0] + "." + root + "." + parts[2], 4), "claims changed");
    String none = Base64.getUrlEncoder().withoutPadding().encodeToString(
        "{\"alg\":\"none\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8));
    assertNull(tokens.caller(none + "." + parts[1] + ".", 4), "alg none");
    assertNull(load("RS256", "", write("other", pem("PRIVATE KEY", rsa().getPrivate().getEncoded())))
        .caller(token, 4), "another key");
    for (String junk : new String[] {"", "a.b", "a.b.c", "x.y.z.w", "...", "abc.6", token + "x"}) {
      assertNull(tokens.caller(junk, 4), junk);
    }
    now.addAndGet(300_000);
    assertNotNull(tokens.caller(token, 4), "good through its exp second");
    now.addAndGet(1_000);
    assertNull(tokens.caller(token, 4), "expired");
  }

  @Test
  void keysAreReadAsEtcdReadsThemAndBadOnesRefusedAtStart() throws Exception {
    KeyPair rsa = rsa();
    byte[] pkcs8 = rsa.getPrivate().getEncoded();
    // PKCS#1 ("openssl genrsa" of OpenSSL 1.x): the PKCS#8 key's inner octet string.
    byte[] pkcs1 = java.util.Arrays.copyOfRange(pkcs8, pkcs8.length - innerLength(pkcs8), pkcs8.length);
    String pkcs1File = write("rsa1.key", pem("RSA PRIVATE KEY", pkcs1));
    JwtTokens fromPkcs1 = load("RS256", "", pkcs1File);
    String pub = write("rsa.pub", pem("PUBLIC KEY", rsa.getPublic().getEncoded()));
    assertEquals("alice", load("RS256", pub, "").caller(fromPkcs1.issue("", "alice", 1), 1).user());

    assertEquals("auth: missing key data", refusal("RS256", "", ""));
    assertEquals("auth: missing key data", refusal("HS256", pub, ""));
    assertTrue(refusal("XS256", "", pkcs1File).startsWith("auth: invalid auth options (auth: invalid auth signature "
        + "method \"XS256\""));
    assertEquals("auth: invalid auth options (open " + dir.resolve("nope") + ": no such file or directory)",
        refusal("RS256", "", dir.resolve("nope").toString()));
    assertEquals("auth: public and private keys don't match",
        refusal("RS256", write("other.pub", pem("PUBLIC KEY", rsa().getPublic().getEncoded())), pkcs1File));
    KeyPair ec = ec("secp256r1");
    String ecKey = write("ec.key", pem("PRIVATE KEY", ec.getPrivate().getEncoded()));
    String ecPub = write("ec.pub", pem("PUBLIC KEY", ec.getPublic().getEncoded()));
    assertTrue(refusal("RS256", "", ecKey).contains("key is not a valid RSA private key"), refusal("RS256", "", ecKey));
    assertTrue(refusal("ES384", ecPub, ecKey).contains("needs a P-384 key"));
    assertEquals("auth: public and private keys don't match",
        refusal("ES256", write("ec2.pub", pem("PUBLIC KEY", ec("secp256r1").getPublic().getEncoded())), ecKey));
    assertNotNull(load("ES256", ecPub, ecKey));
    assertTrue(refusal("RS256", "", write("junk", "not a key")).contains("must be a PEM encoded"));
  }

  /** The length of the last element's content in a DER SEQUENCE whose last element is an OCTET STRING. */
  private static int innerLength(byte[] pkcs8) {
    // PKCS#8: SEQUENCE { INTEGER, SEQUENCE, OCTET STRING }; find the OCTET STRING after the AlgorithmIdentifier.
    int at = 4; // past the outer tag and its two-byte long length
    at += 3; // INTEGER 0
    at += 2 + pkcs8[at + 1]; // AlgorithmIdentifier (short)
    int lengthBytes = pkcs8[at + 1] & 0x7F;
    int length = 0;
    for (int i = 0; i < lengthBytes; i++) {
      length = (length << 8) | (pkcs8[at + 2 + i] & 0xFF);
    }
    return length;
  }

  private String refusal(String method, String pub, String priv) {
    return assertThrows(JwtTokens.BadOptions.class, () -> load(method, pub, priv)).getMessage();
  }

  @Test
  void aMemberWithOnlyThePublicKeyCannotMakeTokens() throws Exception {
    KeyPair rsa = rsa();
    JwtTokens verifyOnly = load("RS256", write("p", pem("PUBLIC KEY", rsa.getPublic().getEncoded())), "");
    assertEquals("auth: token signing attempted with verify-only key",
        assertThrows(JwtTokens.VerifyOnly.class, () -> verifyOnly.issue("", "alice", 1)).getMessage());
  }
}
