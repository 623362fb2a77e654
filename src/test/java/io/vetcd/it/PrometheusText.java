package io.vetcd.it;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A strict parser of Prometheus' text exposition format (version 0.0.4): {@code # HELP} and
 * {@code # TYPE} lines, then samples {@code name{label="value",...} value}. A line it cannot read, a
 * sample of a family whose TYPE is missing (histogram and summary samples belong to their family by
 * the suffixes {@code _bucket}, {@code _sum}, {@code _count}), or a family typed twice, fails the parse:
 * what Prometheus would refuse, a test refuses.
 */
final class PrometheusText {

    record Sample(String name, Map<String, String> labels, double value) {}

    record Family(String name, String type, String help, List<Sample> samples) {}

    private static final Pattern SAMPLE = Pattern.compile(
            "([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})?\\s+(\\S+)(\\s+-?\\d+)?");
    private static final Pattern LABEL = Pattern.compile("\\s*([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"\\s*,?");

    private PrometheusText() {}

    static Map<String, Family> parse(String text) {
        Map<String, String> types = new LinkedHashMap<>();
        Map<String, String> helps = new LinkedHashMap<>();
        Map<String, List<Sample>> samples = new LinkedHashMap<>();
        int n = 0;
        for (String line : text.split("\n")) {
            n++;
            if (line.isBlank()) {
                continue;
            }
            if (line.startsWith("# TYPE ")) {
                String[] parts = line.substring(7).split(" ");
                if (parts.length != 2 || types.put(parts[0], parts[1]) != null) {
                    throw new IllegalArgumentException("line " + n + ": bad or repeated TYPE: " + line);
                }
                continue;
            }
            if (line.startsWith("# HELP ")) {
                String rest = line.substring(7);
                int space = rest.indexOf(' ');
                helps.put(space < 0 ? rest : rest.substring(0, space), space < 0 ? "" : rest.substring(space + 1));
                continue;
            }
            if (line.startsWith("#")) {
                continue;
            }
            Matcher m = SAMPLE.matcher(line);
            if (!m.matches()) {
                throw new IllegalArgumentException("line " + n + " is not a sample: " + line);
            }
            Map<String, String> labels = new TreeMap<>();
            if (m.group(3) != null) {
                Matcher l = LABEL.matcher(m.group(3));
                int at = 0;
                while (l.find() && l.start() == at) {
                    labels.put(l.group(1), l.group(2));
                    at = l.end();
                }
                if (at != m.group(3).length()) {
                    throw new IllegalArgumentException("line " + n + ": bad labels: " + line);
                }
            }
            double value = switch (m.group(4)) {
                case "+Inf" -> Double.POSITIVE_INFINITY;
                case "-Inf" -> Double.NEGATIVE_INFINITY;
                case "NaN" -> Double.NaN;
                default -> Double.parseDouble(m.group(4));
            };
            String family = familyOf(m.group(1), types);
            if (family == null) {
                throw new IllegalArgumentException("line " + n + ": sample of a family with no TYPE: " + line);
            }
            samples.computeIfAbsent(family, k -> new ArrayList<>()).add(new Sample(m.group(1), labels, value));
        }
        Map<String, Family> out = new LinkedHashMap<>();
        types.forEach((name, type) -> out.put(name, new Family(name, type, helps.getOrDefault(name, ""),
                samples.getOrDefault(name, List.of()))));
        return out;
    }

    private static String familyOf(String sample, Map<String, String> types) {
        if (types.containsKey(sample)) {
            return sample;
        }
        for (String suffix : new String[] {"_bucket", "_sum", "_count"}) {
            if (sample.endsWith(suffix)) {
                String base = sample.substring(0, sample.length() - suffix.length());
                String type = types.get(base);
                if ("histogram".equals(type) || "summary".equals(type)) {
                    return base;
                }
            }
        }
        return null;
    }

    /** The sum of a family's plain samples (those named as the family), e.g. a counter over all labels. */
    static double total(Map<String, Family> families, String name) {
        Family f = families.get(name);
        return f == null ? Double.NaN
                : f.samples().stream().filter(s -> s.name().equals(name)).mapToDouble(Sample::value).sum();
    }
}
