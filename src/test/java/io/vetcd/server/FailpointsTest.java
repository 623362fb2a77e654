package io.vetcd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The terms of -Dvetcd.failpoints, as the chaos runs and the fail-stop tests write them. */
class FailpointsTest {

  @Test
  void termsNameAPointAnActionAndFromWhichPass() {
    var points = Failpoints.parse("append, after-sync=crash@40,apply=sleep(250)@3,snapshot-install=error");
    assertEquals(4, points.size());
    assertEquals("error", points.get("append").action());
    assertEquals(1, points.get("append").from());
    assertEquals("crash", points.get("after-sync").action());
    assertEquals(40, points.get("after-sync").from());
    assertEquals("sleep", points.get("apply").action());
    assertEquals(250, points.get("apply").sleepMillis());
    assertEquals(3, points.get("apply").from());
    assertEquals("error", points.get("snapshot-install").action());
  }

  @Test
  void anUnknownActionIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> Failpoints.parse("append=explode"));
  }
}
