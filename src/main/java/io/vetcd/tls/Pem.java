package io.vetcd.tls;

import java.io.ByteArrayInputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Keys from PEM text in the forms OpenSSL and Go write: a private key as PKCS#8 ("PRIVATE KEY"),
 * PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"); a public key as X.509 SubjectPublicKeyInfo
 * ("PUBLIC KEY") or inside a certificate. Used for the JWT signing keys of --auth-token, which
 * etcd reads with the same formats.
 */
public final class Pem {

  private static final Pattern BLOCK =
      Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----\\s*([A-Za-z0-9+/=\\s]*?)-----END \\1-----");
  private static final String RSA = "1.2.840.113549.1.1.1";
  private static final String EC = "1.2.840.10045.2.1";

  /** A PEM block: its type ("PRIVATE KEY") and the DER it holds. */
  public record Block(String type, byte[] der) {}

  /** Why a key could not be read, in words for the operator. */
  public static final class BadKey extends Exception {
    public BadKey(String message) {
      super(message);
    }
  }

  private Pem() {}

  public static List<Block> blocks(byte[] text) {
    List<Block> blocks = new ArrayList<>();
    Matcher m = BLOCK.matcher(new String(text, StandardCharsets.US_ASCII));
    while (m.find()) {
      try {
        blocks.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
      } catch (IllegalArgumentException notBase64) {
        // not a block after all
      }
    }
    return blocks;
  }

  /** The first private key in {@code text}, of the JDK's algorithm {@code algorithm} ("RSA" or "EC"). */
  public static PrivateKey privateKey(byte[] text, String algorithm) throws BadKey {
    for (Block b : blocks(text)) {
      byte[] pkcs8 = switch (b.type()) {
        case "PRIVATE KEY" -> b.der();
        case "RSA PRIVATE KEY" -> Der.sequence(Der.integer(BigInteger.ZERO),
            Der.sequence(Der.oid(RSA), new byte[] {0x05, 0x00}), Der.octets(b.der()));
        case "EC PRIVATE KEY" -> ecToPkcs8(b.der());
        default -> null;
      };
      if (pkcs8 == null) {
        continue;
      }
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
      } catch (GeneralSecurityException | IllegalArgumentException e) {
        throw new BadKey("key is not a valid " + algorithm + " private key (" + b.type() + ")");
      }
    }
    throw new BadKey("key must be a PEM encoded PKCS1, PKCS8 or SEC1 private key");
  }

  /** The first public key in {@code text} (a PUBLIC KEY block, or a certificate's), of {@code algorithm}. */
  public static PublicKey publicKey(byte[] text, String algorithm) throws BadKey {
    for (Block b : blocks(text)) {
      try {
        PublicKey key = switch (b.type()) {
          case "PUBLIC KEY" -> KeyFactory.getInstance(algorithm).generatePublic(new X509EncodedKeySpec(b.der()));
          case "CERTIFICATE" -> CertificateFactory.getInstance("X.509")
              .generateCertificate(new ByteArrayInputStream(b.der())).getPublicKey();
          default -> null;
        };
        if (key == null) {
          continue;
        }
        if (!key.getAlgorithm().equals(algorithm)) {
          throw new BadKey("key is not a valid " + algorithm + " public key");
        }
        return key;
      } catch (GeneralSecurityException | IllegalArgumentException e) {
        throw new BadKey("key is not a valid " + algorithm + " public key (" + b.type() + ")");
      }
    }
    throw new BadKey("key must be a PEM encoded PKIX public key or certificate");
  }

  /**
   * The public key written with an EC private key in {@code text} (SEC1's optional [1] field, inside
   * PKCS#8 too), on the curve {@code params}; null if the file has none.
   */
  public static PublicKey ecPublicKeyIn(byte[] text, java.security.spec.ECParameterSpec params) {
    for (Block b : blocks(text)) {
      try {
        byte[] sec1 = switch (b.type()) {
          case "EC PRIVATE KEY" -> b.der();
          case "PRIVATE KEY" -> Der.read(b.der()).get(0).children().get(2).content();
          default -> null;
        };
        if (sec1 == null) {
          continue;
        }
        for (Der.Element e : Der.read(sec1).get(0).children()) {
          if (e.tag() == 0xA1) {
            byte[] bits = e.children().get(0).content(); // unused-bits byte, then 04 || X || Y
            int size = (params.getCurve().getField().getFieldSize() + 7) / 8;
            if (bits.length != 2 + 2 * size || bits[1] != 4) {
              return null;
            }
            java.security.spec.ECPoint w = new java.security.spec.ECPoint(
                new BigInteger(1, java.util.Arrays.copyOfRange(bits, 2, 2 + size)),
                new BigInteger(1, java.util.Arrays.copyOfRange(bits, 2 + size, bits.length)));
            return KeyFactory.getInstance("EC").generatePublic(new java.security.spec.ECPublicKeySpec(w, params));
          }
        }
        return null;
      } catch (RuntimeException | GeneralSecurityException notThere) {
        return null;
      }
    }
    return null;
  }

  /** SEC1's ECPrivateKey wrapped as PKCS#8, with the curve its [0] parameters name. */
  private static byte[] ecToPkcs8(byte[] sec1) {
    byte[] curve = null;
    try {
      for (Der.Element e : Der.read(sec1).get(0).children()) {
        if (e.tag() == 0xA0) {
          Der.Element oid = e.children().get(0);
          curve = Der.element(oid.tag(), oid.content());
        }
      }
    } catch (RuntimeException notSec1) {
      return sec1; // the key factory says what is wrong
    }
    if (curve == null) {
      return sec1; // no curve named: nothing to wrap it with
    }
    return Der.sequence(Der.integer(BigInteger.ZERO), Der.sequence(Der.oid(EC), curve), Der.octets(sec1));
  }
}
