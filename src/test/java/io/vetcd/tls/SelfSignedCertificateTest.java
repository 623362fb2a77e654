package io.vetcd.tls;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SelfSignedCertificateTest {

  @TempDir
  Path dir;

  @Test
  void theCertificateNamesTheListenHostsAndIsSignedByItsOwnKey() throws Exception {
    SelfSignedCertificate.ensure(dir, List.of("https://127.0.0.1:2379", "https://localhost:2379", "https://[::1]:2379",
        "http://node1.example.com:2379"));
    X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
        .generateCertificate(new ByteArrayInputStream(Files.readAllBytes(SelfSignedCertificate.certFile(dir))));
    cert.verify(cert.getPublicKey()); // self-signed
    cert.checkValidity();
    assertTrue(cert.getNotAfter().toInstant().isAfter(Instant.now().plus(Duration.ofDays(364))));
    assertEquals(3, cert.getVersion());
    assertEquals(-1, cert.getBasicConstraints(), "not a CA");
    assertEquals(List.of("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"), cert.getExtendedKeyUsage());
    assertTrue(cert.getKeyUsage()[0] && cert.getKeyUsage()[2], "digital signature, key encipherment");
    assertEquals("O=vetcd", cert.getSubjectX500Principal().getName());
    List<String> names = cert.getSubjectAlternativeNames().stream().map(n -> n.get(0) + ":" + n.get(1)).toList();
    assertEquals(List.of("7:127.0.0.1", "2:localhost", "7:0:0:0:0:0:0:0:1", "2:node1.example.com"), names);

    PrivateKey key = Pem.privateKey(Files.readAllBytes(SelfSignedCertificate.keyFile(dir)), "EC");
    Signature s = Signature.getInstance("SHA256withECDSA");
    s.initSign(key);
    s.update(new byte[] {42});
    byte[] signature = s.sign();
    s.initVerify(cert.getPublicKey());
    s.update(new byte[] {42});
    assertTrue(s.verify(signature), "the key is the certificate's");
    assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
        Files.getPosixFilePermissions(SelfSignedCertificate.keyFile(dir))));
  }

  @Test
  void aSecondStartUsesTheSameCertificate() throws Exception {
    SelfSignedCertificate.ensure(dir, List.of("https://127.0.0.1:2379"));
    byte[] first = Files.readAllBytes(SelfSignedCertificate.certFile(dir));
    SelfSignedCertificate.ensure(dir, List.of("https://127.0.0.1:2379"));
    assertArrayEquals(first, Files.readAllBytes(SelfSignedCertificate.certFile(dir)));
  }

  @Test
  void derLengthsPastOneByteAndOidArcsPastSevenBits() {
    byte[] big = new byte[300];
    byte[] encoded = Der.octets(big);
    assertArrayEquals(new byte[] {0x04, (byte) 0x82, 0x01, 0x2C}, java.util.Arrays.copyOf(encoded, 4));
    assertEquals(300, Der.read(encoded).get(0).content().length);
    assertArrayEquals(new byte[] {0x06, 0x08, 0x2A, (byte) 0x86, 0x48, (byte) 0xCE, 0x3D, 0x04, 0x03, 0x02},
        Der.oid("1.2.840.10045.4.3.2"));
  }

  @Test
  void openSslKeyFormatsRead() throws Exception {
    // SEC1 with its curve and public point, as "openssl ecparam -genkey" and Go write it.
    var g = java.security.KeyPairGenerator.getInstance("EC");
    g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    var pair = g.generateKeyPair();
    var priv = (java.security.interfaces.ECPrivateKey) pair.getPrivate();
    var pub = (java.security.interfaces.ECPublicKey) pair.getPublic();
    byte[] point = new byte[65];
    point[0] = 4;
    copy32(pub.getW().getAffineX(), point, 1);
    copy32(pub.getW().getAffineY(), point, 33);
    byte[] d = new byte[32];
    copy32(priv.getS(), d, 0);
    byte[] sec1 = Der.sequence(Der.integer(java.math.BigInteger.ONE), Der.octets(d),
        Der.explicit(0, Der.oid("1.2.840.10045.3.1.7")), Der.explicit(1, Der.bits(point)));
    byte[] text = ("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
        + "-----BEGIN EC PRIVATE KEY-----\n" + java.util.Base64.getMimeEncoder().encodeToString(sec1)
        + "\n-----END EC PRIVATE KEY-----\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    assertEquals(priv.getS(), ((java.security.interfaces.ECPrivateKey) Pem.privateKey(text, "EC")).getS());
    assertEquals(pub, Pem.ecPublicKeyIn(text, priv.getParams()));
  }

  private static void copy32(java.math.BigInteger n, byte[] to, int at) {
    byte[] b = n.toByteArray();
    int skip = b.length > 32 ? b.length - 32 : 0;
    System.arraycopy(b, skip, to, at + 32 - (b.length - skip), b.length - skip);
  }
}
