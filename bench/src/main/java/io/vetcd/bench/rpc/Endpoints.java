package io.vetcd.bench.rpc;

import io.vertx.core.net.SocketAddress;
import io.vetcd.bench.cli.UsageException;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.List;

/** Parses etcd's {@code --endpoints} list: {@code host:port} or {@code http://host:port}, comma-separated. */
public final class Endpoints {

  private static final int ETCD_CLIENT_PORT = 2379;

  private Endpoints() {}

  public static List<SocketAddress> parse(String list) {
    List<SocketAddress> addresses = new ArrayList<>();
    for (String raw : list.split(",")) {
      String endpoint = raw.trim();
      if (endpoint.isEmpty()) {
        continue;
      }
      if (endpoint.startsWith("https://") || endpoint.startsWith("unixs://")) {
        throw new UsageException("endpoint " + endpoint + ": TLS is not supported by this tool; use http://");
      }
      String hostPort = endpoint.startsWith("http://") ? endpoint.substring("http://".length()) : endpoint;
      addresses.add(toAddress(endpoint, hostPort));
    }
    if (addresses.isEmpty()) {
      throw new UsageException("--endpoints is empty");
    }
    return addresses;
  }

  private static SocketAddress toAddress(String endpoint, String hostPort) {
    try {
      // URI does the host:port split, including IPv6 literals in brackets.
      URI uri = new URI("http://" + hostPort);
      if (uri.getHost() == null || uri.getPath() != null && !uri.getPath().isEmpty() && !uri.getPath().equals("/")) {
        throw new URISyntaxException(endpoint, "want host:port");
      }
      int port = uri.getPort() < 0 ? ETCD_CLIENT_PORT : uri.getPort();
      String host = uri.getHost().startsWith("[") ? uri.getHost().substring(1, uri.getHost().length() - 1) : uri.getHost();
      return SocketAddress.inetSocketAddress(port, host);
    } catch (URISyntaxException e) {
      throw new UsageException("bad endpoint \"" + endpoint + "\": want host:port or http://host:port");
    }
  }
}
