package io.vetcd.tls;

import java.io.IOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * etcd's --auto-tls and --peer-auto-tls: a self-signed certificate and its key in
 * {@code <data-dir>/fixtures/client} or {@code .../peer} ({@code cert.pem}, {@code key.pem}), made at
 * the first start and used again after (as etcd's SelfCert), naming the hosts and addresses of the
 * listen URLs, valid for a year. etcd makes a P-521 key; this is P-256, which is as strong as the
 * handshake needs and several times cheaper to sign with on every connection.
 */
public final class SelfSignedCertificate {

  private static final Logger LOG = LoggerFactory.getLogger(SelfSignedCertificate.class);
  private static final String ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
  private static final long VALID_DAYS = 365;

  private SelfSignedCertificate() {}

  public static Path certFile(Path dir) {
    return dir.resolve("cert.pem");
  }

  public static Path keyFile(Path dir) {
    return dir.resolve("key.pem");
  }

  /** Makes the certificate and key in {@code dir} unless both are there already. */
  public static void ensure(Path dir, List<String> listenUrls) throws IOException {
    if (Files.exists(certFile(dir)) && Files.exists(keyFile(dir))) {
      return;
    }
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir.getParent());
      try {
        Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      } catch (UnsupportedOperationException notPosix) {
        Files.createDirectory(dir);
      }
    }
    byte[][] made;
    try {
      made = make(listenUrls);
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot make a self-signed certificate: " + e.getMessage(), e);
    }
    // The key first, owner-only; each file whole or not at all, so a crash cannot leave half of one to reuse.
    write(keyFile(dir), pem("PRIVATE KEY", made[1]), true);
    write(certFile(dir), pem("CERTIFICATE", made[0]), false);
    LOG.info("created a self-signed certificate {} and its key {} (auto TLS)", certFile(dir), keyFile(dir));
  }

  /** A new certificate (DER) and its private key (PKCS#8 DER) naming the listen URLs' hosts. */
  static byte[][] make(List<String> listenUrls) throws GeneralSecurityException {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(new ECGenParameterSpec("secp256r1"));
    KeyPair pair = generator.generateKeyPair();
    byte[] algorithm = Der.sequence(Der.oid(ECDSA_WITH_SHA256));
    byte[] name = Der.sequence(Der.set(Der.sequence(Der.oid("2.5.4.10"), Der.utf8("vetcd"))));
    ZonedDateTime now = ZonedDateTime.now();
    byte[] tbs = Der.sequence(
        Der.explicit(0, Der.integer(BigInteger.TWO)), // v3
        Der.integer(new BigInteger(127, new SecureRandom())),
        algorithm,
        name,
        // A minute back, so a peer whose clock is a little behind does not see it as not yet valid.
        Der.sequence(Der.time(now.minusMinutes(1)), Der.time(now.plusDays(VALID_DAYS))),
        name,
        pair.getPublic().getEncoded(),
        Der.explicit(3, Der.sequence(extensions(listenUrls))));
    Signature signer = Signature.getInstance("SHA256withECDSA");
    signer.initSign(pair.getPrivate());
    signer.update(tbs);
    byte[] certificate = Der.sequence(tbs, algorithm, Der.bits(signer.sign()));
    return new byte[][] {certificate, pair.getPrivate().getEncoded()};
  }

  /**
   * Key usage for signatures, server and client authentication (a member dials its peers with the same
   * certificate), not a CA, and the listen URLs' hosts as names or addresses.
   */
  private static byte[] extensions(List<String> listenUrls) {
    List<byte[]> names = new ArrayList<>();
    for (String url : listenUrls) {
      String host = URI.create(url).getHost();
      if (host == null || host.isEmpty()) {
        continue;
      }
      if (host.startsWith("[") || host.matches("\\d+\\.\\d+\\.\\d+\\.\\d+")) {
        try {
          names.add(Der.element(0x87, InetAddress.getByName(host.replaceAll("[\\[\\]]", "")).getAddress()));
        } catch (java.net.UnknownHostException notAnAddress) {
          // a literal that does not parse names nothing
        }
      } else {
        names.add(Der.element(0x82, host.getBytes(StandardCharsets.US_ASCII)));
      }
    }
    List<byte[]> extensions = new ArrayList<>();
    extensions.add(extension("2.5.29.15", true, Der.element(Der.BIT_STRING, new byte[] {5, (byte) 0xA0})));
    extensions.add(extension("2.5.29.37", false,
        Der.sequence(Der.oid("1.3.6.1.5.5.7.3.1"), Der.oid("1.3.6.1.5.5.7.3.2"))));
    extensions.add(extension("2.5.29.19", true, Der.sequence()));
    if (!names.isEmpty()) {
      extensions.add(extension("2.5.29.17", false, Der.sequence(names.toArray(byte[][]::new))));
    }
    return concat(extensions);
  }

  private static byte[] extension(String oid, boolean critical, byte[] value) {
    return critical ? Der.sequence(Der.oid(oid), Der.bool(true), Der.octets(value))
        : Der.sequence(Der.oid(oid), Der.octets(value));
  }

  private static byte[] concat(List<byte[]> parts) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    parts.forEach(out::writeBytes);
    return out.toByteArray();
  }

  private static byte[] pem(String type, byte[] der) {
    String body = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der);
    return ("-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n")
        .getBytes(StandardCharsets.US_ASCII);
  }

  private static void write(Path file, byte[] bytes, boolean secret) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.deleteIfExists(tmp);
    if (secret) {
      try {
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      } catch (UnsupportedOperationException notPosix) {
        Files.createFile(tmp);
      }
    }
    Files.write(tmp, bytes);
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
