package io.vetcd.auth;

import io.vertx.core.json.JsonObject;
import io.vetcd.tls.Pem;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECKey;
import java.security.interfaces.RSAKey;
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.RSAPublicKeySpec;
import java.util.Base64;
import java.util.function.LongSupplier;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * etcd's JWT tokens ({@code --auth-token jwt,sign-method=RS256,priv-key=...,pub-key=...,ttl=5m}): a
 * token is a JWT signed with the member's key whose claims are the user, the auth revision its
 * password was checked at, and an expiry ({@code ttl} from its making, etcd's default 5 minutes).
 * Nothing is remembered: any member with the key checks any token, also after restarts; a token from
 * before an auth change is "revision of auth store is old", and clients authenticate again. With only
 * a public key a member checks tokens and cannot make them (etcd's verify-only mode).
 */
public final class JwtTokens implements TokenProvider {

  private static final Logger LOG = LoggerFactory.getLogger(JwtTokens.class);
  private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();

  /** The sign methods etcd 3.4 accepts (golang-jwt's), with the JDK's algorithm for each. */
  public enum Method {
    HS256("HmacSHA256", null, 0), HS384("HmacSHA384", null, 0), HS512("HmacSHA512", null, 0),
    RS256("SHA256withRSA", "RSA", 0), RS384("SHA384withRSA", "RSA", 0), RS512("SHA512withRSA", "RSA", 0),
    PS256("SHA-256", "RSA", 32), PS384("SHA-384", "RSA", 48), PS512("SHA-512", "RSA", 64),
    ES256("SHA256withECDSAinP1363Format", "EC", 256), ES384("SHA384withECDSAinP1363Format", "EC", 384),
    ES512("SHA512withECDSAinP1363Format", "EC", 521);

    private final String jdkName;
    private final String keyAlgorithm;
    /** PS: the salt length (the hash's); ES: the curve's size in bits. */
    private final int size;

    Method(String jdkName, String keyAlgorithm, int size) {
      this.jdkName = jdkName;
      this.keyAlgorithm = keyAlgorithm;
      this.size = size;
    }

    boolean hmac() {
      return keyAlgorithm == null;
    }

    boolean pss() {
      return name().startsWith("PS");
    }
  }

  /** The options after "jwt," in --auth-token; file names as given (empty: not given). */
  public record Options(String signMethod, String publicKeyFile, String privateKeyFile, long ttlMillis) {
    /** etcd's default life of a JWT token. */
    public static final long DEFAULT_TTL_MILLIS = 5 * 60_000;
  }

  /** Options a member cannot start with, in etcd's words where it has them. */
  public static final class BadOptions extends Exception {
    public BadOptions(String message) {
      super(message);
    }
  }

  /** A token already checked: who it names, and until when (epoch seconds). */
  private record Checked(Caller caller, long expiresAt) {}

  /** Most tokens remembered as checked; past it the memory starts over. */
  private static final int CHECKED_MAX = 4096;

  private final Method method;
  private final Key signingKey; // a private key or an HMAC secret; null: verify only
  private final Key verifyingKey;
  private final long ttlMillis;
  private final LongSupplier epochMillis;
  /**
   * Tokens whose signature was checked: a client sends its token with every request, and a signature
   * check (tens of microseconds for RS256, more for PS and ES) on the event loop each time would cost
   * more than the request. Only good tokens enter, so the size bounds it against nobody.
   */
  private final java.util.Map<String, Checked> checked = new java.util.concurrent.ConcurrentHashMap<>();

  private JwtTokens(Method method, Key signingKey, Key verifyingKey, long ttlMillis, LongSupplier epochMillis) {
    this.method = method;
    this.signingKey = signingKey;
    this.verifyingKey = verifyingKey;
    this.ttlMillis = ttlMillis;
    this.epochMillis = epochMillis;
  }

  /**
   * Reads the keys the options name, refusing what etcd refuses (and a key on the wrong curve for an ES
   * method, which etcd takes and then fails to sign with).
   */
  public static JwtTokens load(Options options, LongSupplier epochMillis) throws BadOptions {
    Method method;
    try {
      method = Method.valueOf(options.signMethod());
    } catch (IllegalArgumentException unknown) {
      throw new BadOptions("auth: invalid auth options (auth: invalid auth signature method \"" + options.signMethod()
          + "\"; one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)");
    }
    byte[] priv = read(options.privateKeyFile());
    byte[] pub = read(options.publicKeyFile());
    try {
      if (method.hmac()) {
        if (priv == null || priv.length == 0) {
          throw new BadOptions("auth: missing key data");
        }
        SecretKeySpec secret = new SecretKeySpec(priv, method.jdkName);
        return new JwtTokens(method, secret, secret, options.ttlMillis(), epochMillis);
      }
      PrivateKey privateKey = priv == null ? null : Pem.privateKey(priv, method.keyAlgorithm);
      PublicKey publicKey = pub == null ? null : Pem.publicKey(pub, method.keyAlgorithm);
      if (privateKey == null && publicKey == null) {
        throw new BadOptions("auth: missing key data");
      }
      PublicKey verifying = publicKey;
      if (privateKey != null) {
        PublicKey own = publicOf(privateKey, priv, publicKey);
        if (publicKey != null && !publicKey.equals(own)) {
          throw new BadOptions("auth: public and private keys don't match");
        }
        verifying = own;
      }
      if (method.keyAlgorithm.equals("EC")
          && ((ECKey) verifying).getParams().getCurve().getField().getFieldSize() != method.size) {
        throw new BadOptions("auth: invalid auth options (sign-method " + method + " needs a P-" + method.size
            + " key)");
      }
      return new JwtTokens(method, privateKey, verifying, options.ttlMillis(), epochMillis);
    } catch (Pem.BadKey e) {
      throw new BadOptions("auth: invalid auth options (" + e.getMessage() + ")");
    }
  }

  /**
   * The public half of a private key: an RSA key's from its modulus and exponent; an EC key's from the
   * key file, which OpenSSL and Go write it into (the JDK cannot derive it), checked against pub-key by
   * signing when both are given.
   */
  private static PublicKey publicOf(PrivateKey key, byte[] keyFile, PublicKey given) throws BadOptions {
    try {
      if (key instanceof RSAPrivateCrtKey rsa) {
        return KeyFactory.getInstance("RSA")
            .generatePublic(new RSAPublicKeySpec(rsa.getModulus(), rsa.getPublicExponent()));
      }
      if (!(key instanceof ECKey ec)) {
        if (given != null) {
          return given; // a key without the parts its public half is made from: the one given (etcd checks no more)
        }
        throw new BadOptions("auth: invalid auth options (the private key lacks the parts its public key is made "
            + "from; give pub-key too, or a complete key)");
      }
      PublicKey own = Pem.ecPublicKeyIn(keyFile, ec.getParams());
      if (own != null) {
        return own;
      }
      if (given == null) {
        throw new BadOptions("auth: invalid auth options (the EC private key file holds no public key: give pub-key "
            + "too)");
      }
      Signature s = Signature.getInstance("SHA256withECDSA");
      s.initSign(key);
      s.update(new byte[] {1});
      byte[] signature = s.sign();
      s.initVerify(given);
      s.update(new byte[] {1});
      return s.verify(signature) ? given : null;
    } catch (GeneralSecurityException e) {
      throw new BadOptions("auth: invalid auth options (" + e.getMessage() + ")");
    }
  }

  private static byte[] read(String file) throws BadOptions {
    if (file == null || file.isEmpty()) {
      return null;
    }
    try {
      return Files.readAllBytes(Path.of(file));
    } catch (NoSuchFileException e) {
      throw new BadOptions("auth: invalid auth options (open " + file + ": no such file or directory)");
    } catch (IOException e) {
      throw new BadOptions("auth: invalid auth options (open " + file + ": " + e.getMessage() + ")");
    }
  }

  @Override
  public String newPrefix() {
    return "";
  }

  @Override
  public String issue(String applied, String user, long revision) {
    if (signingKey == null) {
      throw new VerifyOnly();
    }
    String header = b64(new JsonObject().put("alg", method.name()).put("typ", "JWT").encode());
    String claims = b64(new JsonObject().put("exp", (epochMillis.getAsLong() + ttlMillis) / 1000)
        .put("revision", revision).put("username", user).encode());
    String signed = header + "." + claims;
    try {
      return signed + "." + B64.encodeToString(sign(signed.getBytes(StandardCharsets.US_ASCII)));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign a JWT token: " + e.getMessage(), e);
    }
  }

  /** etcd's ErrVerifyOnly: this member has only the public key. */
  public static final class VerifyOnly extends RuntimeException {
    VerifyOnly() {
      super("auth: token signing attempted with verify-only key", null, false, false);
    }
  }

  @Override
  public void assign(String token, String user) {
    // nothing to remember: the token says who it is for
  }

  @Override
  public Caller caller(String token, long storeRevision) {
    Checked known = checked.get(token);
    if (known != null) {
      if (epochMillis.getAsLong() / 1000 > known.expiresAt()) {
        checked.remove(token);
        return null;
      }
      return known.caller();
    }
    String[] parts = token.split("\\.", -1);
    if (parts.length != 3) {
      return null;
    }
    try {
      JsonObject header = new JsonObject(new String(Base64.getUrlDecoder().decode(parts[0]), StandardCharsets.UTF_8));
      if (!method.name().equals(header.getValue("alg"))) {
        return null; // etcd: "invalid signing method" (no "none", no switching HS for RS)
      }
      byte[] signature = Base64.getUrlDecoder().decode(parts[2]);
      if (!verify((parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII), signature)) {
        return null;
      }
      JsonObject claims = new JsonObject(new String(Base64.getUrlDecoder().decode(parts[1]), StandardCharsets.UTF_8));
      long nowSeconds = epochMillis.getAsLong() / 1000;
      // golang-jwt's checks of the registered times, when present.
      if (claims.getValue("exp") instanceof Number exp && nowSeconds > exp.longValue()
          || claims.getValue("nbf") instanceof Number nbf && nowSeconds < nbf.longValue()
          || claims.getValue("iat") instanceof Number iat && nowSeconds < iat.longValue()) {
        return null;
      }
      if (!(claims.getValue("username") instanceof String user)
          || !(claims.getValue("revision") instanceof Number rev)) {
        return null;
      }
      Caller caller = new Caller(user, Math.max(0, rev.longValue()));
      if (checked.size() >= CHECKED_MAX) {
        checked.clear();
      }
      checked.put(token, new Checked(caller, claims.getValue("exp") instanceof Number exp ? exp.longValue()
          : Long.MAX_VALUE));
      return caller;
    } catch (RuntimeException | GeneralSecurityException malformed) {
      LOG.debug("refused a malformed JWT token: {}", malformed.toString());
      return null;
    }
  }

  private byte[] sign(byte[] input) throws GeneralSecurityException {
    if (method.hmac()) {
      Mac mac = Mac.getInstance(method.jdkName);
      mac.init(signingKey);
      return mac.doFinal(input);
    }
    Signature s = signature();
    s.initSign((PrivateKey) signingKey);
    s.update(input);
    return s.sign();
  }

  private boolean verify(byte[] input, byte[] signature) throws GeneralSecurityException {
    if (method.hmac()) {
      Mac mac = Mac.getInstance(method.jdkName);
      mac.init(verifyingKey);
      return MessageDigest.isEqual(mac.doFinal(input), signature);
    }
    Signature s = signature();
    s.initVerify((PublicKey) verifyingKey);
    s.update(input);
    return s.verify(signature);
  }

  private Signature signature() throws GeneralSecurityException {
    if (method.pss()) {
      Signature s = Signature.getInstance("RSASSA-PSS");
      s.setParameter(new PSSParameterSpec(method.jdkName, "MGF1", new MGF1ParameterSpec(method.jdkName),
          method.size, 1));
      return s;
    }
    return Signature.getInstance(method.jdkName);
  }

  private static String b64(String json) {
    return B64.encodeToString(json.getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public long grantedAt(String token) {
    return 0; // checked by its signature alone
  }

  @Override
  public void invalidate(String user) {
    // a JWT token cannot be taken back: the auth revision in it is what ages it (as etcd)
  }

  @Override
  public void clear() {
    // as invalidate
  }

  @Override
  public void expire() {
    // each token carries its expiry
  }

  /** The method and key, for the log line at start. */
  public String describe() {
    return method + (signingKey == null ? " (verify only: this member cannot make tokens)" : "")
        + ", tokens live " + ttlMillis / 1000 + " s" + (verifyingKey instanceof RSAKey r
            ? ", " + r.getModulus().bitLength() + "-bit RSA key" : "");
  }
}
