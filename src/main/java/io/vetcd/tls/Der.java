package io.vetcd.tls;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * Just enough ASN.1 DER to write a self-signed certificate and to unwrap the PEM key formats OpenSSL
 * writes (PKCS#1, SEC1) into the PKCS#8 the JDK reads. The JDK has no public encoder, and a crypto
 * library for these few structures would be most of the distribution's size.
 */
final class Der {

  static final int INTEGER = 0x02;
  static final int BIT_STRING = 0x03;
  static final int OCTET_STRING = 0x04;
  static final int OID = 0x06;
  static final int SEQUENCE = 0x30;

  /** One element: its tag byte and its content. */
  record Element(int tag, byte[] content) {
    /** The elements inside a constructed element (a SEQUENCE, SET or explicit tag). */
    List<Element> children() {
      return read(content);
    }
  }

  private Der() {}

  static byte[] element(int tag, byte[]... parts) {
    ByteArrayOutputStream content = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      content.writeBytes(p);
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(tag);
    int length = content.size();
    if (length < 0x80) {
      out.write(length);
    } else {
      byte[] digits = BigInteger.valueOf(length).toByteArray();
      int skip = digits[0] == 0 ? 1 : 0;
      out.write(0x80 | (digits.length - skip));
      out.write(digits, skip, digits.length - skip);
    }
    out.writeBytes(content.toByteArray());
    return out.toByteArray();
  }

  static byte[] sequence(byte[]... parts) {
    return element(SEQUENCE, parts);
  }

  static byte[] set(byte[]... parts) {
    return element(0x31, parts);
  }

  static byte[] integer(BigInteger value) {
    return element(INTEGER, value.toByteArray());
  }

  static byte[] octets(byte[] value) {
    return element(OCTET_STRING, value);
  }

  /** A BIT STRING of whole bytes. */
  static byte[] bits(byte[] value) {
    return element(BIT_STRING, new byte[] {0}, value);
  }

  static byte[] utf8(String value) {
    return element(0x0C, value.getBytes(StandardCharsets.UTF_8));
  }

  static byte[] bool(boolean value) {
    return element(0x01, new byte[] {(byte) (value ? 0xFF : 0)});
  }

  /** A time as X.509 wants it: UTCTime through 2049, GeneralizedTime after. */
  static byte[] time(ZonedDateTime at) {
    ZonedDateTime utc = at.withZoneSameInstant(ZoneOffset.UTC);
    String pattern = utc.getYear() < 2050 ? "yyMMddHHmmss'Z'" : "yyyyMMddHHmmss'Z'";
    return element(utc.getYear() < 2050 ? 0x17 : 0x18,
        utc.format(DateTimeFormatter.ofPattern(pattern)).getBytes(StandardCharsets.US_ASCII));
  }

  /** A context-specific constructed tag ([n] EXPLICIT). */
  static byte[] explicit(int n, byte[]... parts) {
    return element(0xA0 | n, parts);
  }

  static byte[] oid(String dotted) {
    String[] arcs = dotted.split("\\.");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(Integer.parseInt(arcs[0]) * 40 + Integer.parseInt(arcs[1]));
    for (int i = 2; i < arcs.length; i++) {
      long arc = Long.parseLong(arcs[i]);
      int groups = 1;
      while ((arc >>> (7 * groups)) != 0) {
        groups++;
      }
      for (int g = groups - 1; g >= 0; g--) {
        out.write((int) ((arc >>> (7 * g)) & 0x7F) | (g > 0 ? 0x80 : 0));
      }
    }
    return element(OID, out.toByteArray());
  }

  /** The elements one after another in {@code der}; throws IllegalArgumentException if it is not DER. */
  static List<Element> read(byte[] der) {
    List<Element> elements = new ArrayList<>();
    int at = 0;
    while (at < der.length) {
      if (at + 2 > der.length) {
        throw new IllegalArgumentException("truncated DER");
      }
      int tag = der[at++] & 0xFF;
      int length = der[at++] & 0xFF;
      if (length >= 0x80) {
        int octets = length & 0x7F;
        if (octets == 0 || octets > 3 || at + octets > der.length) {
          throw new IllegalArgumentException("bad DER length");
        }
        length = 0;
        for (int i = 0; i < octets; i++) {
          length = (length << 8) | (der[at++] & 0xFF);
        }
      }
      if (at + length > der.length) {
        throw new IllegalArgumentException("truncated DER");
      }
      elements.add(new Element(tag, java.util.Arrays.copyOfRange(der, at, at + length)));
      at += length;
    }
    return elements;
  }
}
