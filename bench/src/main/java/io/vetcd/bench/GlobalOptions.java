package io.vetcd.bench;

import io.vertx.core.net.SocketAddress;
import io.vetcd.bench.cli.FlagSet;
import io.vetcd.bench.rpc.Endpoints;
import java.util.List;

/**
 * The flags every command takes, named as in etcd's benchmark tool.
 *
 * @param endpoints the members to talk to; conn i goes to endpoint i mod n
 * @param conns gRPC (HTTP/2) connections; clients are spread over them
 * @param clients concurrent clients, that is requests in flight at once
 * @param json print one JSON object on stdout instead of the text report
 * @param progress draw a progress bar on stderr (only when stderr is a terminal)
 * @param requestTimeoutMillis a unary request slower than this counts as failed
 * @param warmUp requests of put, range and txn-put sent before the clock starts, not counted
 */
public record GlobalOptions(List<SocketAddress> endpoints, int conns, int clients, boolean json,
    boolean progress, long requestTimeoutMillis, int warmUp) {

  public static FlagSet flags() {
    return new FlagSet()
        .stringFlag("endpoints", "127.0.0.1:2379", "comma-separated gRPC endpoints, host:port or http://host:port")
        .intFlag("conns", 1, "number of gRPC connections")
        .intFlag("clients", 1, "number of concurrent clients (requests in flight)")
        .boolFlag("json", "print the result as one JSON object on stdout, and nothing else")
        .boolFlag("no-progress", "never draw the progress bar (it is drawn only when stderr is a terminal)")
        .intFlag("request-timeout", 10, "seconds after which a request counts as failed")
        .intFlag("warm-up", 0, "requests of put, range and txn-put sent first and not measured (this tool is a JVM: its own code is compiled while they run)");
  }

  public static GlobalOptions from(FlagSet flags) {
    return new GlobalOptions(
        Endpoints.parse(flags.string("endpoints")),
        flags.integer("conns", 1),
        flags.integer("clients", 1),
        flags.bool("json"),
        !flags.bool("no-progress"),
        flags.integer("request-timeout", 1) * 1000L,
        flags.integer("warm-up", 0));
  }
}
