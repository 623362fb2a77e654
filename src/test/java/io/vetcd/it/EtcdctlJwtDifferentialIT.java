package io.vetcd.it;

import static io.vetcd.it.EtcdctlDifferentialIT.cmd;

import io.vetcd.it.EtcdctlDifferentialIT.Step;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * A member given only the public half of the JWT key ({@code --auth-token jwt,pub-key=...}) checks
 * tokens and cannot make them: etcdctl's session against etcd 3.4.23 and the candidate, each so
 * started, prints the same, command by command ("auth: token signing attempted with verify-only
 * key", code Unknown). The key is made by openssl at test time.
 */
class EtcdctlJwtDifferentialIT {

    private static DifferentialSession session;

    @BeforeAll
    static void startServers() throws Exception {
        Path keys = Files.createTempDirectory("vetcd-jwt-verify-only-");
        OpenSsl.run(keys, "genrsa", "-out", "jwt.key", "2048");
        OpenSsl.run(keys, "rsa", "-in", "jwt.key", "-pubout", "-out", "jwt.pub");
        MemberProcess.Options verifyOnly = MemberProcess.Options.defaults()
                .withExtraArgs("--auth-token", "jwt,pub-key=" + keys.resolve("jwt.pub") + ",sign-method=RS256");
        session = DifferentialSession.start("jwt-differential", verifyOnly);
    }

    @AfterAll
    static void stopServers() throws Exception {
        if (session != null) {
            session.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> candidatePrintsWhatEtcdPrints() {
        List<Step> script = List.of(
                cmd("put", "k", "v"),
                cmd("user", "add", "root", "--new-user-password=rootpw"),
                cmd("auth", "enable"),
                cmd("--user=root:rootpw", "get", "k"),
                cmd("--user=root:wrong", "get", "k"),
                cmd("--user=nobody:pw", "get", "k"),
                cmd("get", "k"),
                cmd("--user=root:rootpw", "auth", "disable"),
                cmd("auth", "disable"));
        return session.compare(script);
    }
}
