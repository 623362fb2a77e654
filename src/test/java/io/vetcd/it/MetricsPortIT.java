package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/**
 * An http {@code --listen-metrics-urls} port serves /metrics and the health endpoints over plain
 * HTTP/1.1, as etcd's does: Java's HttpClient, which first asks to upgrade to h2c, gets every answer
 * (Vert.x's upgraded connections lost some /metrics answers of 16 KiB or more). etcd and vetcd alike.
 */
class MetricsPortIT {

    @Test
    void everyScrapeOfTheMetricsPortIsAnsweredOverHttp11() throws Exception {
        for (MemberProcess.Kind kind : List.of(MemberProcess.Kind.ETCD, MemberProcess.Kind.VETCD)) {
            String metricsUrl = "http://127.0.0.1:" + MemberProcess.freePorts(1)[0];
            try (MemberProcess member = MemberProcess.start(kind, "metrics-port-" + kind.name().toLowerCase(),
                    MemberProcess.Options.defaults().withExtraArgs("--listen-metrics-urls", metricsUrl))) {
                for (int i = 1; i <= 60; i++) {
                    // A new client each time: each asks for the upgrade on a new connection.
                    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
                    HttpResponse<String> scrape;
                    try {
                        scrape = client.sendAsync(HttpRequest.newBuilder(URI.create(metricsUrl + "/metrics"))
                                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString())
                                .get(20, TimeUnit.SECONDS);
                    } catch (TimeoutException hung) {
                        throw new AssertionError(kind + ": scrape " + i + " of /metrics was never answered");
                    }
                    assertEquals(200, scrape.statusCode(), kind + " scrape " + i);
                    assertEquals(HttpClient.Version.HTTP_1_1, scrape.version(), kind + " scrape " + i);
                    assertTrue(scrape.body().contains("etcd_server_has_leader 1"), kind + " scrape " + i);
                }
            }
        }
    }
}
