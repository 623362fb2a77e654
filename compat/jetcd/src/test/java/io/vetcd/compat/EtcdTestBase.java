package io.vetcd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.common.exception.EtcdException;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.PutResponse;
import io.etcd.jetcd.options.GetOption;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.TestInstance;

/**
 * One fresh server (etcd or vetcd, see {@link ServerProcess}) per test class, one jetcd client.
 * Tests that share the server use a per-test key prefix ({@link #ns}) and assert revisions
 * relative to the store revision observed at the start of the test.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class EtcdTestBase {

    protected static final long TIMEOUT_S = 20;

    protected ServerProcess server;
    protected Client client;
    protected KV kv;
    /** Unique key prefix for the running test method, e.g. "/putOverwrite/". */
    protected String ns;

    @BeforeAll
    void startServer() {
        server = ServerProcess.start(getClass().getSimpleName());
        client = Client.builder().endpoints(server.clientUrl()).build();
        kv = client.getKVClient();
    }

    @AfterAll
    void stopServer() {
        try {
            if (client != null) {
                client.close();
            }
        } finally {
            if (server != null) {
                server.close();
            }
        }
    }

    @BeforeEach
    void setNamespace(TestInfo info) {
        ns = "/" + getClass().getSimpleName() + "/" + info.getTestMethod().map(m -> m.getName()).orElse("x") + "/";
    }

    // ---------------------------------------------------------------- helpers

    protected static ByteSequence bs(String s) {
        return ByteSequence.from(s, StandardCharsets.UTF_8);
    }

    protected static ByteSequence bs(byte[] b) {
        return ByteSequence.from(b);
    }

    protected ByteSequence k(String suffix) {
        return bs(ns + suffix);
    }

    protected static String str(ByteSequence b) {
        return b.toString(StandardCharsets.UTF_8);
    }

    /** Waits for a future, failing the test on timeout; rethrows the server error unwrapped. */
    protected static <T> T await(Future<T> f) {
        try {
            return f.get(TIMEOUT_S, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } catch (TimeoutException e) {
            throw new AssertionError("no answer within " + TIMEOUT_S + " s", e);
        } catch (ExecutionException e) {
            Throwable c = unwrap(e);
            if (c instanceof RuntimeException) {
                throw (RuntimeException) c;
            }
            throw new AssertionError(c);
        }
    }

    protected static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** Waits for a future that must fail; returns the (unwrapped) failure. */
    protected static Throwable awaitFailure(CompletableFuture<?> f) {
        try {
            Object v = f.get(TIMEOUT_S, TimeUnit.SECONDS);
            fail("expected the request to fail, but it succeeded with " + v);
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } catch (TimeoutException e) {
            throw new AssertionError("no answer within " + TIMEOUT_S + " s", e);
        } catch (ExecutionException e) {
            return unwrap(e);
        }
    }

    /** gRPC status code of a client failure, from jetcd's EtcdException or a plain gRPC exception. */
    protected static Status.Code statusCode(Throwable t) {
        if (t instanceof EtcdException) {
            return Status.Code.valueOf(((EtcdException) t).getErrorCode().name());
        }
        return Status.fromThrowable(t).getCode();
    }

    /** Asserts the failure has the given gRPC code and its message contains the text. */
    protected static void assertGrpcError(Throwable t, Status.Code code, String messagePart) {
        assertNotNull(t);
        String desc = String.valueOf(t.getMessage());
        assertTrue(desc.contains(messagePart),
                () -> "expected message containing [" + messagePart + "] but got " + t);
        assertEquals(code, statusCode(t), () -> "wrong status code for " + t);
    }

    protected static void assertGrpcError(CompletableFuture<?> f, Status.Code code, String messagePart) {
        assertGrpcError(awaitFailure(f), code, messagePart);
    }

    protected PutResponse put(String key, String value) {
        return await(kv.put(bs(key), bs(value)));
    }

    protected GetResponse get(String key) {
        return await(kv.get(bs(key)));
    }

    protected GetResponse get(String key, GetOption opt) {
        return await(kv.get(bs(key), opt));
    }

    /** Current store revision, read with a get on a key nobody uses. */
    protected long currentRevision() {
        return await(kv.get(bs("\u0000__revision_probe__"))).getHeader().getRevision();
    }

    protected static List<String> keys(GetResponse r) {
        return r.getKvs().stream().map(kv -> str(kv.getKey())).collect(Collectors.toList());
    }

    protected static List<String> values(GetResponse r) {
        return r.getKvs().stream().map(kv -> str(kv.getValue())).collect(Collectors.toList());
    }

    /** Keys of the response with the test namespace removed. */
    protected List<String> shortKeys(GetResponse r) {
        return r.getKvs().stream().map(kv -> str(kv.getKey()).substring(ns.length())).collect(Collectors.toList());
    }

    protected static void assertKv(KeyValue kv, String key, String value, long create, long mod, long version) {
        assertEquals(key, str(kv.getKey()), "key");
        assertEquals(value, str(kv.getValue()), "value of " + key);
        assertEquals(create, kv.getCreateRevision(), "create_revision of " + key);
        assertEquals(mod, kv.getModRevision(), "mod_revision of " + key);
        assertEquals(version, kv.getVersion(), "version of " + key);
    }
}
