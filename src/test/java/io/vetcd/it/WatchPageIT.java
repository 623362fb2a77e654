package io.vetcd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The watch page ({@code /ui/watch}) in headless Chromium against one vetcd member: the page opens
 * the member's {@code /v3/watch} WebSocket, and what the real etcdctl writes under the watched prefix
 * shows up in its event list. vetcd only: etcd has no such page, whatever {@code -Dit.candidate} says.
 * Chromium's stderr goes to {@code target/it-logs/watch-page-chromium.log}.
 */
class WatchPageIT {

    private static final Duration PAGE_TIMEOUT = Duration.ofSeconds(15);
    private static final long POLL_INTERVAL_MS = 50;
    private static final Pattern HEADER_REVISION = Pattern.compile("\"header\":\\{[^}]*\"revision\":(\\d+)");
    private static final String STATUS = "document.querySelector('#status')?.textContent ?? null";
    private static final String EVENTS = "Array.from(document.querySelectorAll('#events li.event'), li => ({"
            + "type: li.dataset.type ?? null, key: li.dataset.key ?? null, revision: li.dataset.revision ?? null,"
            + "text: li.textContent, elements: li.childElementCount}))";

    private static MemberProcess member;
    private static Chromium chromium;

    @BeforeAll
    static void start() throws Exception {
        member = MemberProcess.start(MemberProcess.Kind.VETCD, "watch-page-vetcd");
        chromium = Chromium.launch("watch-page-chromium");
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (chromium != null) {
                chromium.close();
            }
        } finally {
            if (member != null) {
                member.close();
            }
        }
    }

    @Test
    void showsPutsAndDeletesUnderThePrefix() throws Exception {
        assertServesThePage();
        String unique = "watch-page-" + UUID.randomUUID().toString().substring(0, 8);
        String prefix = unique + "/";
        String key = prefix + "k";
        // Markup in the value must come out as text.
        String value = "hello <b>world</b> & <img src=x>";
        long revisionBefore = revisionOf(Etcdctl.run(member.endpoint(), "get", prefix, "--prefix", "-w", "json"));

        Chromium.Page page = chromium.newPage();
        try {
            page.navigate(member.endpoint() + "/ui/watch?prefix=" + URLEncoder.encode(prefix, StandardCharsets.UTF_8));
            String status = (String) awaitPage(page, "#status to say it is watching", STATUS,
                    s -> s instanceof String text && text.startsWith("watching"));
            assertEquals("watching " + prefix + " from revision " + (revisionBefore + 1), status);

            // Next to the prefix but not under it: must not show up.
            String outside = unique + "-outside";
            etcdctl("put", outside, "nope");
            long putRevision = revisionOf(etcdctl("put", key, value, "-w", "json"));
            JsonObject put = find(awaitPage(page, "the PUT of " + key, EVENTS, list -> find(list, "PUT", key) != null),
                    "PUT", key);
            assertTrue(put.getString("text").contains(value), "the PUT item should show the value as text: " + put);
            assertEquals(0, put.getInteger("elements"), "the value's markup became elements: " + put);
            assertEquals(String.valueOf(putRevision), put.getString("revision"), "data-revision of " + put);
            JsonArray events = (JsonArray) page.evaluate(EVENTS);
            assertEquals(1, events.size(), "only the PUT under " + prefix + " should be listed, not " + outside + ": " + events);

            long deleteRevision = revisionOf(etcdctl("del", key, "-w", "json"));
            awaitPage(page, "the DELETE of " + key, EVENTS, list -> find(list, "DELETE", key) != null);
            events = (JsonArray) page.evaluate(EVENTS);
            JsonObject delete = events.getJsonObject(0);
            assertEquals("DELETE", delete.getString("type"), "the newest event should be listed first: " + events);
            assertEquals(key, delete.getString("key"), "data-key of " + delete);
            assertEquals(String.valueOf(deleteRevision), delete.getString("revision"), "data-revision of " + delete);
            assertTrue(delete.getString("text").contains(key), "the DELETE item should name the key: " + delete);
            assertEquals(List.of(), page.consoleLog(), "the page logged or threw");
        } finally {
            page.close();
        }
    }

    @Test
    void watchButtonMovesTheWatchToAnotherPrefix() throws Exception {
        String unique = "watch-page-" + UUID.randomUUID().toString().substring(0, 8);
        assertServesThePage();
        String first = unique + "/first/";
        String second = unique + "/second/";
        Chromium.Page page = chromium.newPage();
        try {
            page.navigate(member.endpoint() + "/ui/watch?prefix=" + URLEncoder.encode(first, StandardCharsets.UTF_8));
            awaitPage(page, "#status to say it is watching " + first, STATUS,
                    s -> s instanceof String text && text.startsWith("watching " + first + " "));

            // The second watch on the page's socket gets a watch ID other than the default 0.
            long revisionBefore = revisionOf(etcdctl("get", second, "--prefix", "-w", "json"));
            page.evaluate("document.querySelector('#prefix').value = " + Json.encode(second) + ";"
                    + "document.querySelector('#watch').click()");
            String status = (String) awaitPage(page, "#status to say it is watching " + second, STATUS,
                    s -> s instanceof String text && text.startsWith("watching " + second + " "));
            assertEquals("watching " + second + " from revision " + (revisionBefore + 1), status);

            etcdctl("put", first + "k", "old");
            long putRevision = revisionOf(etcdctl("put", second + "k", "new", "-w", "json"));
            awaitPage(page, "the PUT of " + second + "k", EVENTS, list -> find(list, "PUT", second + "k") != null);
            JsonArray events = (JsonArray) page.evaluate(EVENTS);
            assertEquals(1, events.size(), "only the PUT under " + second + " should be listed: " + events);
            assertEquals(String.valueOf(putRevision), events.getJsonObject(0).getString("revision"), "data-revision");
            assertEquals(List.of(), page.consoleLog(), "the page logged or threw");
        } finally {
            page.close();
        }
    }

    /** The member answers GET /ui/watch with an HTML page; a plain failure here beats a timeout in the browser. */
    private static void assertServesThePage() throws IOException, InterruptedException {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(2)).build();
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(member.endpoint() + "/ui/watch"))
                .timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), "GET /ui/watch: " + response.body());
        String type = response.headers().firstValue("content-type").orElse("");
        assertTrue(type.startsWith("text/html"), "GET /ui/watch should be text/html, not '" + type + "'");
        assertTrue(response.body().contains("id=\"events\""), "GET /ui/watch is not the watch page:\n" + response.body());
    }

    /** Evaluates {@code expression} until {@code done} accepts its value, and returns that value. */
    private static Object awaitPage(Chromium.Page page, String what, String expression, Predicate<Object> done)
            throws Exception {
        long deadline = System.nanoTime() + PAGE_TIMEOUT.toNanos();
        Object last = null;
        RuntimeException lastError = null;
        while (true) {
            try {
                last = page.evaluate(expression);
                lastError = null;
                if (done.test(last)) {
                    return last;
                }
            } catch (Chromium.CdpException betweenDocuments) {
                lastError = betweenDocuments;
            }
            if (System.nanoTime() > deadline) {
                fail("waited " + PAGE_TIMEOUT + " for " + what + "\nlast value of `" + expression + "`: " + last
                        + (lastError == null ? "" : "\nlast error: " + lastError.getMessage())
                        + "\n" + describe(page) + "\n" + member.logTail() + "\n" + chromium.logTail());
            }
            Thread.sleep(POLL_INTERVAL_MS);
        }
    }

    /** Where the page is and what it shows, for failure messages. */
    private static String describe(Chromium.Page page) {
        String shown;
        try {
            shown = String.valueOf(page.evaluate(
                    "location.href + '\\n' + (document.body ? document.body.innerText.slice(0, 2000) : '(no body)')"));
        } catch (Exception | AssertionError e) {
            shown = "(cannot read the page: " + e.getMessage() + ")";
        }
        return "--- the page ---\n" + shown + "\n--- its console ---\n" + String.join("\n", page.consoleLog());
    }

    /** The list item for the event of that type on that key, or null. */
    private static JsonObject find(Object events, String type, String key) {
        if (events instanceof JsonArray list) {
            for (int i = 0; i < list.size(); i++) {
                JsonObject item = list.getJsonObject(i);
                if (type.equals(item.getString("type")) && key.equals(item.getString("key"))) {
                    return item;
                }
            }
        }
        return null;
    }

    private static Etcdctl.Result etcdctl(String... args) throws IOException, InterruptedException {
        Etcdctl.Result result = Etcdctl.run(member.endpoint(), args);
        assertTrue(result.ok(), "etcdctl " + String.join(" ", args) + ": " + result);
        return result;
    }

    private static long revisionOf(Etcdctl.Result json) {
        Matcher m = HEADER_REVISION.matcher(json.stdout());
        assertTrue(json.ok() && m.find(), "no header revision in " + json);
        return Long.parseLong(m.group(1));
    }
}
