package io.vetcd.it;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What the differential tests share: learning ids from an output, replacing them, and the first differing line. */
final class OutputDiff {

    private OutputDiff() {}

    /** The id the pattern's first group finds in {@code text}, unless one is {@code known} already. */
    static String learn(Pattern pattern, String text, String known) {
        if (known != null) {
            return known;
        }
        Matcher m = pattern.matcher(text);
        return m.find() ? m.group(1) : null;
    }

    /** Replaces an id (given in decimal) in both its decimal and its hex spelling. */
    static String replaceId(String text, String decimal, String placeholder) {
        if (decimal == null) {
            return text;
        }
        String hex = Long.toHexString(Long.parseUnsignedLong(decimal));
        return text.replaceAll("\\b" + decimal + "\\b", placeholder)
                .replaceAll("\\b" + hex + "\\b", placeholder);
    }

    /** The first line where etcd's output and the candidate's differ, for an assertion message. */
    static String firstDifference(String expected, String actual) {
        String[] e = expected.split("\n", -1);
        String[] a = actual.split("\n", -1);
        for (int i = 0; i < Math.max(e.length, a.length); i++) {
            String el = i < e.length ? e[i] : "<end of output>";
            String al = i < a.length ? a[i] : "<end of output>";
            if (!el.equals(al)) {
                return "first difference at line " + (i + 1) + ":\n  etcd:      " + el + "\n  candidate: " + al;
            }
        }
        return "";
    }
}
