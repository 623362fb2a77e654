#!/usr/bin/env python3
"""Turns compare.sh's raw results (one JSON object per run) into bench/RESULTS.md: the median of each
metric per system, the vetcd/etcd ratio, and whether the issue's target holds. Hand-written analysis
in bench/NOTES.md (profiles, what a missed target would take) is appended as it is."""
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

# (setup, workload, metric label, how to read it from a result, better: "higher"/"lower", target)
# target: a ratio vetcd/etcd that must hold (">= 1.5", "<= 1"), or None when the issue sets none.
# The headline: what a user meets, warm (after compare.sh's JIT warm-up) and cold (fresh processes).
HEADLINE = [
    ("cluster", "put-64-clients", "warm: put throughput, 3 members, 64 clients (req/s)", "rps", "higher", 1.5),
    ("cluster", "put-64-clients", "warm: put p99 latency, 3 members, 64 clients (ms)", "p99", "lower", 1.0),
    ("cluster", "range-linearizable", "warm: linearizable range throughput, 3 members (req/s)", "rps", "higher", 1.5),
    ("cluster", "watch-latency-1000", "warm: watch latency p99, 1000 watchers (ms)", "p99", "lower", 1.0),
    ("cold", "put-50k", "cold: put throughput, fresh 3 members, first 50,000 puts, 64 clients (req/s)", "rps", "higher", 1.5),
    ("cold", "put-50k", "cold: put p99 latency, fresh 3 members, first 50,000 puts (ms)", "p99", "lower", 1.0),
    ("cold", "put-60s", "cold: put throughput, fresh 3 members, first 60 s, 64 clients (req/s)", "rps", "higher", None),
    ("cold", "put-60s", "cold: put p99 latency, fresh 3 members, first 60 s (ms)", "p99", "lower", None),
    ("cold", "start-single", "cold: process start to first answered put, fresh single member (ms; five a round)", "first_put_ms", "lower", 1.0),
    ("cold", "start-cluster", "cold: first launch to first answered put, fresh 3-member cluster (ms; two clusters a round)", "first_put_ms", "lower", None),
    ("cold", "start-single", "cold: RSS of an idle member, 10 s after its first put (MiB)", "idle_rss_mib", "lower", 1.5),
    ("cold", "start-single", "cold: anonymous memory of that idle member (MiB)", "idle_anon_mib", "lower", None),
    ("cluster-cold", "put-64-clients", "cold: put throughput, 3 members, 64 clients, first round after start (req/s)", "rps", "higher", None),
    ("cluster-cold", "put-64-clients", "cold: put p99 latency, 3 members, 64 clients, first round after start (ms)", "p99", "lower", None),
]
ROWS = [
    ("cluster", "put-1-client", "put p50 latency, 3 members, 1 client (ms)", "p50", "lower", 1.0),
    ("cluster", "put-1-client", "put throughput, 3 members, 1 client (req/s)", "rps", "higher", None),
    ("cluster", "put-1-client-one-key", "put p50 latency, 3 members, 1 client, one key (ms)", "p50", "lower", None),
    ("cluster", "range-serializable", "serializable range throughput, 3 members (req/s)", "rps", "higher", 1.5),
    ("cluster", "txn-put", "txn-put throughput, 3 members (req/s)", "rps", "higher", None),
    ("cluster", "txn-put", "txn-put p99 latency, 3 members (ms)", "p99", "lower", None),
    ("cluster", "watch-latency-1000", "watch latency p50, 1000 watchers (ms)", "p50", "lower", None),
    ("cluster", "watch-latency-1000-light", "watch latency p99, 1000 watchers, 10 puts/s (ms)", "p99", "lower", None),
    ("cluster", "put-64-clients", "server CPU per 1000 puts, 3 members, 64 clients (s)", "cpu_per_1000", "lower", None),
    ("cluster", "range-linearizable", "server CPU per 1000 linearizable ranges, 3 members (s)", "cpu_per_1000", "lower", None),
    ("single", "put-64-clients", "put throughput, 1 member, 64 clients (req/s)", "rps", "higher", None),
    ("single", "put-64-clients", "put p99 latency, 1 member, 64 clients (ms)", "p99", "lower", None),
    ("single", "put-1-client", "put p50 latency, 1 member, 1 client (ms)", "p50", "lower", None),
    ("single", "put-64-clients", "server CPU per 1000 puts, 1 member, 64 clients (s)", "cpu_per_1000", "lower", None),
    ("single", "memory-1m", "RSS with 1M keys, 1 member (MiB)", "rss_mib", "lower", 1.0),
    ("single", "memory-1m", "restart to first linearizable read, 1M keys (ms)", "restart_ms", "lower", 1.0),
    # Scale (issue 21): fresh clusters per run; peak RSS is each member's VmHWM so far, the largest.
    ("scale", "put-1024", "put throughput, 1 KiB values, 3 members, 64 clients (req/s)", "rps", "higher", None),
    ("scale", "put-1024", "put p99 latency, 1 KiB values (ms)", "p99", "lower", None),
    ("scale", "put-65536", "put throughput, 64 KiB values, 3 members, 16 clients (req/s)", "rps", "higher", 1.5),
    ("scale", "put-65536", "put p99 latency, 64 KiB values (ms)", "p99", "lower", 1.0),
    ("scale", "put-65536", "peak RSS of a member, 64 KiB values (MiB)", "peak_rss_mib", "lower", 1.0),
    ("scale", "put-65536", "peak anonymous memory of a member, 64 KiB values (MiB)", "peak_anon_mib", "lower", None),
    ("scale", "put-1048576", "put throughput, 1 MiB values, 3 members, 8 clients (req/s)", "rps", "higher", 1.5),
    ("scale", "put-1048576", "put p99 latency, 1 MiB values (ms)", "p99", "lower", 1.0),
    ("scale", "put-1048576", "peak RSS of a member, 1 MiB values (MiB)", "peak_rss_mib", "lower", 1.0),
    ("scale", "put-1048576", "peak anonymous memory of a member, 1 MiB values (MiB)", "peak_anon_mib", "lower", None),
    ("scale", "puts-run", "longest event-loop stall in the large-value runs (ms; target 100)", "longest_stall_ms", "lower", None),
    ("scale", "puts-run", "leader changes in the large-value runs", "leader_changes", "lower", None),
    ("scale", "catchup-400mib", "catch-up of a member away during 400 x 1 MiB puts (s)", "catchup_s", "lower", 1.0),
    ("scale", "catchup-400mib", "peak anonymous memory of any member in it (MiB; target 300)", "peak_anon_mib", "lower", None),
    ("scale", "catchup-400mib", "peak anonymous memory of the member catching up (MiB)", "peak_anon_lagging_mib", "lower", None),
    ("scale", "catchup-400mib", "the 400 x 1 MiB puts while a member is away (s)", "writes_s", "lower", None),
    ("scale", "catchup-400mib", "longest event-loop stall in the catch-up run (ms; target 100)", "longest_stall_ms", "lower", None),
    ("scale", "catchup-400mib", "longest stall of the restarted member, from its start until it serves (ms)", "catchup_stall_ms", "lower", None),
    ("scale", "catchup-400mib", "leader changes in the catch-up run", "leader_changes", "lower", None),
    ("scale", "keyspace-1024", "restart to first linearizable read, 1 GB keyspace (ms)", "restart_ms", "lower", 1.0),
    ("scale", "keyspace-1024", "RSS with a 1 GB keyspace (MiB)", "rss_mib", "lower", 1.0),
    ("scale", "keyspace-1024", "RSS right after a restart, 1 GB keyspace (MiB)", "rss_after_restart_mib", "lower", None),
    ("scale", "keyspace-1024", "HashKV, 1 GB keyspace (ms)", "hashkv_ms", "lower", None),
    ("scale", "keyspace-4096", "restart to first linearizable read, 4 GB keyspace (ms)", "restart_ms", "lower", 1.0),
    ("scale", "keyspace-4096", "RSS with a 4 GB keyspace (MiB)", "rss_mib", "lower", 1.0),
    ("scale", "keyspace-4096", "RSS right after a restart, 4 GB keyspace (MiB)", "rss_after_restart_mib", "lower", None),
    ("scale", "keyspace-4096", "HashKV, 4 GB keyspace (ms)", "hashkv_ms", "lower", None),
    ("defrag", "put-during-defrag", "slowest put while a member defragments, 500 puts/s, 3 members (ms; target 100)", "max", "lower", None),
    ("defrag", "put-during-defrag", "put p99.9 while a member defragments (ms)", "p999", "lower", None),
    ("defrag", "put-during-defrag", "defragmentation of 50 MB live + 50 MB deleted (s)", "defrag_s", "lower", None),
    ("defrag", "put-during-defrag", "size in use before defragmentation (MiB)", "db_before_mib", "lower", None),
    ("defrag", "put-during-defrag", "size in use after defragmentation (MiB)", "db_after_mib", "lower", None),
]


def metric(result, name):
    if name == "cpu_per_1000":
        # The servers' CPU is read around the whole generator run, its unmeasured --warm-up requests
        # included: count them too.
        ops = (result.get("ops") or 0) + int((result.get("options") or {}).get("warm-up") or 0)
        cpu = result.get("_server_cpu_s")
        return cpu / ops * 1000 if cpu is not None and ops else None
    if name == "rps":
        return result.get("requests_per_sec")
    if name in ("p50", "p90", "p99", "p999", "max"):
        return (result.get("latency_ms") or {}).get(name)
    return result.get(name)


def command(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # the description is best effort
        return "?"


def machine():
    model = command("lscpu | sed -n 's/^Model name: *//p' | head -1")
    mem = command("free -g | awk '/Mem:/ {print $2}'")
    java = command("java -version 2>&1 | head -1")
    etcd = command("etcd --version | head -1")
    return (f"{os.cpu_count()} cores ({model}), {mem} GiB RAM, {platform.system()} {platform.release()}; "
            f"{java}; {etcd}")


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def table(lines, runs, rows):
    lines += [
        "| metric | vetcd | etcd | vetcd/etcd | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for setup, workload, label, name, better, target in rows:
        values = {}
        for system in ("vetcd", "etcd"):
            xs = [metric(r, name) for r in runs.get((setup, workload, system), [])]
            xs = [x for x in xs if x is not None]
            values[system] = statistics.median(xs) if xs else None
        v, e = values["vetcd"], values["etcd"]
        ratio = v / e if v is not None and e else None
        if target is None:
            goal, met = "–", ""
        elif better == "higher":
            goal, met = f"≥ {target}×", ("yes" if ratio is not None and ratio >= target else "**no**")
        else:
            goal, met = f"≤ {target}×", ("yes" if ratio is not None and ratio <= target else "**no**")
        lines.append(f"| {label} | {fmt(v)} | {fmt(e)} | {fmt(ratio) if ratio is not None else '–'} | {goal} | {met} |")
    lines.append("")


def main(raw_path, out_path):
    runs = {}
    for line in open(raw_path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        result = dict(r["result"])
        if "server_cpu_s" in r:
            result["_server_cpu_s"] = r["server_cpu_s"]
        runs.setdefault((r["setup"], r["workload"], r["system"]), []).append(result)
    # Warm-up rounds (cluster-warmup, ...) are kept in the raw file but are not what the table shows.
    rounds = max((len(v) for k, v in runs.items() if k[0] in ("cluster", "single")), default=0)
    lines = [
        "# vetcd vs etcd 3.4.23, side by side",
        "",
        f"Written by `bench/compare.sh` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        f"Machine: {machine()}.",
        "",
        "Both systems ran on this machine in the same run, on loopback, with the same flags (both fsync "
        "every write before acknowledging it), each workload alternating which system goes first; "
        f"each figure is the median of {rounds} run(s). The machine is shared and noisy: read the ratios, "
        "not the absolute numbers. Ratio = vetcd / etcd; for latencies and memory lower is better.",
        "",
    ]
    carried = os.environ.get("CARRIED", "").split()
    if carried:
        lines += [
            f"This run measured only some sections; the rows of {', '.join(carried)} are carried over from the "
            "run recorded before it (`bench/results-raw.jsonl`), on an earlier commit.",
            "",
        ]
    lines += ["## Headline: warm and cold", ""]
    table(lines, runs, HEADLINE)
    lines += ["## Everything measured", ""]
    table(lines, runs, ROWS)
    for setup, label in (("cluster", "3 members"), ("single", "1 member")):
        warm = {s: runs.get((setup, "jit-warmup", s)) for s in ("vetcd", "etcd")}
        if warm["vetcd"]:
            w = warm["vetcd"][0]
            lines.append(
                f"Warm-up ({label}): before measuring, each system ran rounds of every workload until its JIT "
                f"compilers used under 3 % of its CPU in a round. vetcd took {w['rounds']} round(s), "
                f"{w['seconds']} s (compilers' share in the last round: {100 * w['jit_share_last']:.0f} %); "
                f"etcd, which has no JIT, one round. The first round after start is the \"first round after "
                f"start\" row.")
    lines.append("")
    lines.append("Raw results (every run, the load generator's `--json`): `bench/results-raw.jsonl`.")
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
    if os.path.exists(notes):
        lines.append("")
        lines.append(open(notes).read().rstrip())
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
