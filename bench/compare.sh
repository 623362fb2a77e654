#!/usr/bin/env bash
# Side-by-side comparison of vetcd and etcd 3.4.23 on this machine, in one run (issue 5):
#   - builds vetcd and the load generator (bench/vetcd-bench);
#   - starts a 3-member vetcd cluster and a 3-member etcd cluster on loopback, with the same flags
#     (both fsync every write before acknowledging it: etcd always does, vetcd always does);
#   - runs each workload against each, alternating which goes first, RUNS times;
#   - does the same for a single member, plus memory (RSS) after 1M keys and restart time;
#   - scale (issue 21): puts of 1 KiB, 64 KiB and 1 MiB values, a member away during 400 MiB of writes,
#     keyspaces of 1 and 4 GB; memory per member, the longest event-loop stall, leader changes;
#   - defrag (issue 14): puts at a fixed rate while one member of three defragments a 50 MB keyspace
#     that had as much again deleted: the slowest put, the defragmentation's duration, the sizes;
#   - cold (issue 18): fresh clusters with no warm-up beyond 2,000 unmeasured puts: their first 50,000
#     puts, their first 60 s of puts, the time from process start to the first answered put (single
#     members: five a round), and the RSS of an idle member;
#   - writes bench/RESULTS.md: medians and the vetcd/etcd ratio per metric.
# Usage: bench/compare.sh            (RUNS=3 by default; RUNS=1 for a quick look)
#        SECTIONS="scale" bench/compare.sh   (any of: cold cluster single memory scale defrag; all by default)
#        SCALE_KEYSPACE_MIB="1024 4096" (the keyspaces the scale section grows; 8 GB of disk for 4 GB)
#        SCALE_PARTS="puts catchup keyspace" (the parts of the scale section to run)
# Needs: etcd and etcdctl 3.4 on PATH (apt-get install -y etcd-server etcd-client), java, mvn, python3.
set -euo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$home"
RUNS="${RUNS:-3}"
SECTIONS="${SECTIONS:-cold cluster single memory scale defrag}"
DEFRAG_RUNS="${DEFRAG_RUNS:-2}"
SCALE_RUNS="${SCALE_RUNS:-2}"
SCALE_KEYSPACE_MIB="${SCALE_KEYSPACE_MIB:-1024 4096}"
SCALE_PARTS="${SCALE_PARTS:-puts catchup keyspace}"
KEYS_1M="${KEYS_1M:-1000000}"
work="$(mktemp -d /tmp/vetcd-compare.XXXXXX)"
raw="$work/raw.jsonl"
: > "$raw"
pids=()
SERVER_PIDS=()
export ETCDCTL_API=3

cleanup() {
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$work/data"
}
trap cleanup EXIT

log() { echo "compare: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

log "building vetcd and the load generator"
mvn -B -q -DskipTests package
bench/vetcd-bench --help >/dev/null 2>&1 || true
# The generator is a fresh JVM per run: with C2 it spent half of its CPU compiling during a few-second
# run, CPU the servers on the same two cores then lacked. C1 alone halves its CPU per request (against
# etcd and vetcd alike). A young generation of 256 MiB: a run of 25,000 requests allocates ~100 MB,
# and a collection in the generator stalls every request in flight (18 ms), whichever server it measures.
bench=(java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xms384m -Xmn256m -jar "$home/bench/target/vetcd-bench.jar")
WARM_MAX="${WARM_MAX:-6}"

# start_cluster KIND SIZE NAME: starts SIZE members of KIND (vetcd|etcd); sets ENDPOINTS (client URLs,
# comma separated), MEMBER_PIDS and MEMBER_FLAGS (the last member's); waits until every member answers a
# linearizable read. SNAPSHOT_COUNT, if set, replaces the --snapshot-count of 100,000.
start_cluster() {
  local kind="$1" size="$2" name="$3"
  local initial="" i
  local -a cports pports
  for ((i = 1; i <= size; i++)); do
    cports[i]=$(free_port); pports[i]=$(free_port)
    initial+="${initial:+,}m$i=http://127.0.0.1:${pports[i]}"
  done
  ENDPOINTS=""
  MEMBER_PIDS=()
  for ((i = 1; i <= size; i++)); do
    local dir="$work/data/$name/m$i"
    mkdir -p "$dir"
    local -a flags=(--name "m$i" --data-dir "$dir"
      --listen-client-urls "http://127.0.0.1:${cports[i]}" --advertise-client-urls "http://127.0.0.1:${cports[i]}"
      --listen-peer-urls "http://127.0.0.1:${pports[i]}" --initial-advertise-peer-urls "http://127.0.0.1:${pports[i]}"
      --initial-cluster "$initial" --initial-cluster-token "$name" --initial-cluster-state new
      --snapshot-count "${SNAPSHOT_COUNT:-100000}" --quota-backend-bytes 8589934592)
    MEMBER_FLAGS=("${flags[@]}")
    launch "$kind" "$work/$name-m$i.log" "${flags[@]}"
    MEMBER_PIDS+=("$LAUNCHED")
    ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:${cports[i]}"
  done
  # NO_WAIT: the caller times the first answer itself (the cold section).
  [ -n "${NO_WAIT:-}" ] || wait_ready "$ENDPOINTS"
}

# launch KIND LOG FLAGS...: one member in the background; its pid in LAUNCHED.
launch() {
  local kind="$1" logfile="$2"
  shift 2
  if [ "$kind" = vetcd ]; then
    "$home/bin/vetcd" "$@" >"$logfile" 2>&1 &
  else
    etcd "$@" >"$logfile" 2>&1 &
  fi
  LAUNCHED=$!
  pids+=("$LAUNCHED")
}

# wait_ready ENDPOINTS: until a linearizable read succeeds through every endpoint (60 s at most).
wait_ready() {
  local deadline=$((SECONDS + 60)) ep
  for ep in ${1//,/ }; do
    until etcdctl --endpoints="$ep" --dial-timeout=300ms --command-timeout=1s get ready-probe >/dev/null 2>&1; do
      if ((SECONDS > deadline)); then
        log "no member answered at $ep within 60 s"; return 1
      fi
      sleep 0.05
    done
  done
}

stop_cluster() {
  local p
  for p in "${MEMBER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${MEMBER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# run SETUP WORKLOAD SYSTEM ROUND ENDPOINTS ARGS...: one load generator run, its JSON kept.
run() {
  local setup="$1" workload="$2" system="$3" round="$4" endpoints="$5"
  shift 5
  local out before after
  before=$(cpu_ticks)
  if out=$("${bench[@]}" --endpoints="$endpoints" --json --no-progress "$@" 2>>"$work/bench.log"); then
    after=$(cpu_ticks)
    printf '{"setup":"%s","workload":"%s","system":"%s","round":%s,"server_cpu_s":%s,"result":%s}\n' \
      "$setup" "$workload" "$system" "$round" "$(awk -v t=$((after - before)) 'BEGIN {print t / 100}')" "$out" >> "$raw"
  else
    log "$setup/$workload on $system failed (see $work/bench.log)"
  fi
}

# CPU time (user + system, in clock ticks of 1/100 s) used so far by the members in SERVER_PIDS:
# how much work a workload costs the servers, whatever the machine's noise does to its duration.
cpu_ticks() {
  local p total=0
  for p in "${SERVER_PIDS[@]}"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# CPU ticks used so far by the JIT compiler threads of the members in SERVER_PIDS.
jit_ticks() {
  local p t total=0
  for p in "${SERVER_PIDS[@]}"; do
    for t in /proc/"$p"/task/*; do
      case "$(cat "$t/comm" 2>/dev/null)" in
        C1\ Compiler* | C2\ Compiler*) total=$((total + $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0))) ;;
      esac
    done
  done
  echo "$total"
}

# The workloads of the issue; each is short so that the whole comparison stays under 15 minutes.
# Every run starts with requests that are not measured (--warm-up, --warm-up-puts): the load generator
# is a fresh JVM each time, and its own first thousands of requests run in the interpreter and
# compile (the first puts of a watch-latency run were its slowest, for both systems: they set p99).
# SETUP is cluster or single, optionally suffixed (cluster-cold: a warm-up round, kept apart).
workloads() {
  local setup="$1" system="$2" round="$3" ep="$4"
  run "$setup" put-1-client "$system" "$round" "$ep" --warm-up=300 --conns=1 --clients=1 put --total=1500 --key-size=8 --val-size=256 --key-space-size=10000
  run "$setup" put-64-clients "$system" "$round" "$ep" --warm-up=5000 --conns=8 --clients=64 put --total=20000 --key-size=8 --val-size=256 --key-space-size=10000
  if [[ "$setup" == cluster* ]]; then
    # etcd's benchmark writes one key unless told otherwise (--key-space-size=1): its history grows
    # by one revision per put, run after run.
    run "$setup" put-1-client-one-key "$system" "$round" "$ep" --warm-up=300 --conns=1 --clients=1 put --total=1500 --key-size=8 --val-size=256
    run "$setup" range-linearizable "$system" "$round" "$ep" --warm-up=5000 --conns=8 --clients=64 range foo --consistency=l --total=20000
    run "$setup" range-serializable "$system" "$round" "$ep" --warm-up=5000 --conns=8 --clients=64 range foo --consistency=s --total=20000
    run "$setup" txn-put "$system" "$round" "$ep" --warm-up=2000 --conns=8 --clients=64 txn-put --total=10000 --key-size=8 --val-size=256 --key-space-size=10000
    # etcd's benchmark default rate (100 puts/s: 100,000 events/s) saturates this 2-core machine with
    # the load generator's own work; 10 puts/s measures the servers' latency rather than the client's.
    # A put's latency is its slowest watcher's; 600 puts make the p99 the 6th-worst put rather than the
    # 2nd-worst of 200, which moved 3-4x from run to run for both systems.
    run "$setup" watch-latency-1000 "$system" "$round" "$ep" --conns=8 --clients=8 watch-latency --watchers=1000 --streams=100 --warm-up-puts=100 --put-total=600 --put-rate=100 --val-size=256
    run "$setup" watch-latency-1000-light "$system" "$round" "$ep" --conns=8 --clients=8 watch-latency --watchers=1000 --streams=100 --warm-up-puts=10 --put-total=50 --put-rate=10 --val-size=256
  fi
}

# warm SETUP SYSTEM ENDPOINTS: rounds of every workload before measuring, until the servers' JIT
# compilers took under 3 % of their CPU in a round (at most WARM_MAX rounds). A JVM compiles its hot
# code during its first minutes under load; etcd (Go) has nothing to warm and stops after one round.
# The first round is kept, as SETUP-cold: what a freshly started cluster does.
warm() {
  local setup="$1" system="$2" ep="$3" round cpu0 jit0 cpu jit start=$SECONDS
  for ((round = 1; round <= WARM_MAX; round++)); do
    cpu0=$(cpu_ticks); jit0=$(jit_ticks)
    if ((round == 1)); then
      workloads "$setup-cold" "$system" 1 "$ep"
    else
      workloads "$setup-warmup" "$system" "$round" "$ep"
    fi
    cpu=$(($(cpu_ticks) - cpu0)); jit=$(($(jit_ticks) - jit0))
    log "$setup: $system warm-up round $round: JIT compilers used $jit of $cpu CPU ticks"
    # 3 %, not 10 %: at 10 % the watch path was still compiling when measuring began (its tail follows
    # the JIT); three members reach 3 % in about five rounds.
    if ((jit * 33 < cpu)); then
      break
    fi
  done
  printf '{"setup":"%s","workload":"jit-warmup","system":"%s","round":1,"result":{"rounds":%s,"seconds":%s,"jit_share_last":%s}}\n' \
    "$setup" "$system" "$((round > WARM_MAX ? WARM_MAX : round))" "$((SECONDS - start))" \
    "$(awk -v j="$jit" -v c="$cpu" 'BEGIN {printf "%.3f", (c > 0 ? j / c : 0)}')" >> "$raw"
}

compare_setup() {
  local setup="$1" size="$2" round
  log "$setup: starting $size-member clusters"
  start_cluster vetcd "$size" "vetcd-$setup"; local vep="$ENDPOINTS"; local -a vpids=("${MEMBER_PIDS[@]}")
  start_cluster etcd "$size" "etcd-$setup"; local eep="$ENDPOINTS"; local -a epids=("${MEMBER_PIDS[@]}")
  etcdctl --endpoints="$vep" put foo bar >/dev/null
  etcdctl --endpoints="$eep" put foo bar >/dev/null
  SERVER_PIDS=("${vpids[@]}"); warm "$setup" vetcd "$vep"
  SERVER_PIDS=("${epids[@]}"); warm "$setup" etcd "$eep"
  for ((round = 1; round <= RUNS; round++)); do
    log "$setup: round $round of $RUNS"
    if ((round % 2 == 1)); then
      SERVER_PIDS=("${vpids[@]}"); workloads "$setup" vetcd "$round" "$vep"
      SERVER_PIDS=("${epids[@]}"); workloads "$setup" etcd "$round" "$eep"
    else
      SERVER_PIDS=("${epids[@]}"); workloads "$setup" etcd "$round" "$eep"
      SERVER_PIDS=("${vpids[@]}"); workloads "$setup" vetcd "$round" "$vep"
    fi
  done
  MEMBER_PIDS=("${vpids[@]}"); stop_cluster
  MEMBER_PIDS=("${epids[@]}"); stop_cluster
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# restart_timed KIND LOG ENDPOINT FLAGS...: launches a stopped member again (same flags, same data dir;
# a restarted member ignores --initial-cluster); RESTART_MS is the time from process start to its first
# successful linearizable read; its pid in LAUNCHED.
restart_timed() {
  local kind="$1" logfile="$2" ep="$3" t0
  shift 3
  t0=$(date +%s%N)
  launch "$kind" "$logfile" "$@"
  until etcdctl --endpoints="$ep" --dial-timeout=200ms --command-timeout=1s get ready-probe >/dev/null 2>&1; do
    sleep 0.02
  done
  RESTART_MS=$((($(date +%s%N) - t0) / 1000000))
}

# memory_and_restart SYSTEM: one member, 1M keys (64-byte keys, 256-byte values) loaded in txns of
# 100 puts; RSS after the load; then a restart, timed from process start to the first successful
# linearizable read.
memory_and_restart() {
  local system="$1"
  log "memory/restart: $system with $KEYS_1M keys"
  start_cluster "$system" 1 "$system-1m"
  local ep="$ENDPOINTS" pid="${MEMBER_PIDS[0]}"
  local -a flags=("${MEMBER_FLAGS[@]}")
  "${bench[@]}" --endpoints="$ep" --no-progress --conns=4 --clients=16 txn-put --txn-ops=100 \
    --total=$((KEYS_1M / 100)) --key-size=64 --val-size=256 --sequential-keys --key-space-size="$KEYS_1M" \
    >>"$work/bench.log" 2>&1
  local keys
  keys=$(etcdctl --endpoints="$ep" get "" --from-key --limit=1 -w json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count",0))')
  local rss
  rss=$(rss_kib "$pid")
  stop_cluster
  restart_timed "$system" "$work/$system-restart.log" "$ep" "${flags[@]}"
  local rpid="$LAUNCHED"
  printf '{"setup":"single","workload":"memory-1m","system":"%s","round":1,"result":{"keys":%s,"rss_mib":%s,"restart_ms":%s}}\n' \
    "$system" "$keys" "$((rss / 1024))" "$RESTART_MS" >> "$raw"
  MEMBER_PIDS=("$rpid"); stop_cluster
}

# ---- scale (issue 21) ----

# anon_sampler_start NAME PIDS...: samples the anonymous memory (RssAnon: heap and native, not mapped
# files) of each pid every 0.1 s in the background; anon_sampler_stop NAME prints the peak of each, in MiB.
declare -A SAMPLERS
anon_sampler_start() {
  local name="$1"
  shift
  # The peaks are rewritten after every sample: the file holds them whenever the sampler is stopped.
  rm -f "$work/anon.$name"
  python3 -c '
import sys, time
out, pids = sys.argv[1], sys.argv[2:]
peak = {p: 0 for p in pids}
while True:
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("RssAnon:"):
                    peak[p] = max(peak[p], int(line.split()[1]))
        except OSError:
            pass
    with open(out + ".tmp", "w") as f:
        f.write(" ".join(str(peak[p] // 1024) for p in pids) + "\n")
    __import__("os").replace(out + ".tmp", out)
    time.sleep(0.1)
' "$work/anon.$name" "$@" &
  SAMPLERS[$name]=$!
}
anon_sampler_stop() {
  kill -TERM "${SAMPLERS[$1]}" 2>/dev/null || true
  wait "${SAMPLERS[$1]}" 2>/dev/null || true
  cat "$work/anon.$1" 2>/dev/null || echo 0
}

# peak_rss_mib PIDS...: the largest VmHWM (peak resident set) among them, in MiB.
peak_rss_mib() {
  local p m=0 v
  for p in "$@"; do
    v=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$p/status" 2>/dev/null || echo 0)
    ((v > m)) && m=$v
  done
  echo "$m"
}

# stalls_and_elections SYSTEM LOGS...: a JSON object with the longest event-loop stall since the members
# served clients (vetcd's StallProbe, logged at exit; etcd has no event loop) and the leader changes after the first election (distinct terms
# in which a leader was seen, less one).
stalls_and_elections() {
  local system="$1"
  shift
  python3 - "$system" "$@" <<'PY'
import json, re, sys
system, logs = sys.argv[1], sys.argv[2:]
stall, terms = None, set()
for path in logs:
    for line in open(path, errors="replace"):
        m = re.search(r"longest event-loop stall since serving clients: (\d+) ms", line)
        if m:
            stall = max(stall or 0, int(m.group(1)))
        m = re.search(r"leader is now [0-9a-f]+ \(term (\d+)", line) or re.search(r"elected leader \S+ at term (\d+)", line)
        if m:
            terms.add(int(m.group(1)))
print(json.dumps({"longest_stall_ms": stall, "leader_changes": max(len(terms) - 1, 0)}))
PY
}

# record SETUP WORKLOAD SYSTEM ROUND RESULT-JSON [EXTRA-JSON]: one line of the raw results.
record() {
  python3 -c 'import json, sys; r = json.loads(sys.argv[5]); r.update(json.loads(sys.argv[6] or "{}")); print(json.dumps({"setup": sys.argv[1], "workload": sys.argv[2], "system": sys.argv[3], "round": int(sys.argv[4]), "result": r}))' \
    "$1" "$2" "$3" "$4" "$5" "${6:-}" >> "$raw"
}

# scale_puts SYSTEM ROUND: a fresh 3-member cluster; unmeasured puts of each size, then puts of 1 KiB,
# 64 KiB and 1 MiB values measured one after another, with each run's peak memory per member.
scale_puts() {
  local system="$1" round="$2" spec size total clients out
  log "scale: $system puts of large values, round $round"
  start_cluster "$system" 3 "$system-scale-puts-$round"
  local ep="$ENDPOINTS"
  local -a mp=("${MEMBER_PIDS[@]}")
  "${bench[@]}" --endpoints="$ep" --no-progress --conns=4 --clients=16 put --total=3000 --val-size=65536 --key-space-size=3000 >>"$work/bench.log" 2>&1
  "${bench[@]}" --endpoints="$ep" --no-progress --conns=4 --clients=16 put --total=5000 --val-size=1024 --key-space-size=5000 >>"$work/bench.log" 2>&1
  for spec in "1024 20000 64" "65536 3000 16" "1048576 300 8"; do
    read -r size total clients <<<"$spec"
    anon_sampler_start puts "${mp[@]}"
    if out=$("${bench[@]}" --endpoints="$ep" --json --no-progress --conns=4 --clients="$clients" put --total="$total" \
        --val-size="$size" --key-space-size="$total" 2>>"$work/bench.log"); then
      local anon
      anon=$(anon_sampler_stop puts)
      record scale "put-$size" "$system" "$round" "$out" \
        "{\"peak_rss_mib\": $(peak_rss_mib "${mp[@]}"), \"peak_anon_mib\": $(tr ' ' '\n' <<<"$anon" | sort -n | tail -1)}"
    else
      anon_sampler_stop puts >/dev/null
      log "scale: $system put-$size failed (see $work/bench.log)"
    fi
  done
  stop_cluster
  record scale puts-run "$system" "$round" "$(stalls_and_elections "$system" "$work/$system-scale-puts-$round"-m*.log)"
  rm -rf "$work/data/$system-scale-puts-$round"
}

# hashkv_of ENDPOINT REV: the HashKV of one member at a revision (empty if it cannot answer yet).
hashkv_of() {
  timeout 5 etcdctl --endpoints="$1" --command-timeout=4s endpoint hashkv --rev="$2" -w json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["HashKV"]["hash"])' 2>/dev/null || true
}

# leader_and_term ENDPOINTS: which endpoint (0-based) leads and the raft term, as "INDEX TERM".
leader_and_term() {
  etcdctl --endpoints="$1" endpoint status -w json | python3 -c 'import json, sys
s = json.load(sys.stdin)
ids = [e["Status"]["header"]["member_id"] for e in s]
print(ids.index(s[0]["Status"]["leader"]), max(e["Status"]["raftTerm"] for e in s))'
}

# member_id_hex ENDPOINT: the member's id, as etcdctl move-leader takes it.
member_id_hex() {
  etcdctl --endpoints="$1" endpoint status -w json | python3 -c 'import json, sys
print(format(json.load(sys.stdin)[0]["Status"]["header"]["member_id"], "x"))'
}

# scale_catchup SYSTEM ROUND: 3 members with --snapshot-count 100; member 3 (a follower: moved off the
# lead if it had it) stops while 400 values of 1 MiB go through member 1, then restarts: the time until
# its HashKV equals member 1's at the same revision, the peak anonymous memory of every member meanwhile,
# stalls, and leader changes from there on.
scale_catchup() {
  local system="$1" round="$2" name="$1-scale-catchup-$2"
  log "scale: $system catch-up after 400 MiB, round $round"
  # --snapshot-count 100: a member away is then far behind every snapshot point.
  SNAPSHOT_COUNT=100 start_cluster "$system" 3 "$name"
  local ep="$ENDPOINTS"
  local -a eps flags3=("${MEMBER_FLAGS[@]}")
  read -r -a eps <<<"${ep//,/ }"
  # The member stopped is a follower: stopping the leader would be an election of the bench's making.
  local leader term0
  read -r leader term0 < <(leader_and_term "$ep")
  if [ "$leader" = 2 ]; then
    etcdctl --endpoints="${eps[2]}" move-leader "$(member_id_hex "${eps[0]}")" >/dev/null
    read -r leader term0 < <(leader_and_term "$ep")
  fi
  kill -TERM "${MEMBER_PIDS[2]}"; wait "${MEMBER_PIDS[2]}" 2>/dev/null || true
  local t0 t1
  anon_sampler_start others "${MEMBER_PIDS[0]}" "${MEMBER_PIDS[1]}"
  t0=$(date +%s%N)
  "${bench[@]}" --endpoints="${eps[0]}" --no-progress --conns=1 --clients=4 put --total=400 --val-size=1048576 \
    --key-space-size=400 --key-size=8 --sequential-keys >>"$work/bench.log" 2>&1
  t1=$(date +%s%N)
  local rev h1
  rev=$(etcdctl --endpoints="${eps[0]}" put scale-probe x -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
  h1=$(hashkv_of "${eps[0]}" "$rev")
  launch "$system" "$work/$name-m3.restart.log" "${flags3[@]}"
  MEMBER_PIDS[2]=$LAUNCHED
  anon_sampler_start lagging "$LAUNCHED"
  local s0 s1 caught=false deadline=$((SECONDS + 300))
  s0=$(date +%s%N)
  while ((SECONDS < deadline)); do
    if [ -n "$h1" ] && [ "$(hashkv_of "${eps[2]}" "$rev")" = "$h1" ]; then caught=true; break; fi
    sleep 0.1
  done
  s1=$(date +%s%N)
  local others lagging term1
  others=$(anon_sampler_stop others)
  lagging=$(anon_sampler_stop lagging)
  read -r leader term1 < <(leader_and_term "$ep")
  stop_cluster
  local extra
  # Leader changes from the raft term (each election raises it; pre-vote keeps a lost one from it).
  extra=$(stalls_and_elections "$system" "$work/$name"-m*.log | python3 -c 'import json, sys
d = json.load(sys.stdin); d["leader_changes"] = int(sys.argv[1]); print(json.dumps(d))' $((term1 - term0)))
  # The restarted member catches up before it serves: its probe counts that as "while starting".
  local catchup_stall
  catchup_stall=$(grep -ho 'while starting: [0-9]* ms' "$work/$name-m3.restart.log" | grep -o '[0-9][0-9]*' | sort -n | tail -1 || true)
  record scale catchup-400mib "$system" "$round" \
    "{\"catchup_stall_ms\": ${catchup_stall:-null}, \"caught_up\": $caught, \"catchup_s\": $(awk -v d=$((s1 - s0)) 'BEGIN {printf "%.1f", d / 1e9}'), \"writes_s\": $(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 1e9}'), \"peak_anon_mib\": $(tr ' ' '\n' <<<"$others $lagging" | sort -n | tail -1), \"peak_anon_lagging_mib\": $lagging}" \
    "$extra"
  rm -rf "$work/data/$name"
}

# scale_keyspace SYSTEM MIB: one member grown to MIB of live data (64 KiB values, distinct keys);
# its RSS, HashKV time, then a restart timed from process start to the first linearizable read, and
# the RSS right after it.
scale_keyspace() {
  local system="$1" mib="$2" name="$1-scale-keyspace-$2"
  log "scale: $system keyspace of $mib MiB"
  start_cluster "$system" 1 "$name"
  local ep="$ENDPOINTS" pid="${MEMBER_PIDS[0]}"
  local -a flags=("${MEMBER_FLAGS[@]}")
  "${bench[@]}" --endpoints="$ep" --no-progress --conns=4 --clients=16 put --total=$((mib * 16)) --val-size=65536 \
    --key-size=16 --sequential-keys --key-space-size=$((mib * 16)) >>"$work/bench.log" 2>&1
  local rss rev h0 h1 size
  rss=$(rss_kib "$pid")
  rev=$(etcdctl --endpoints="$ep" put scale-probe x -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
  h0=$(date +%s%N); hashkv_of "$ep" "$rev" >/dev/null; h1=$(date +%s%N)
  size=$(du -sm "$work/data/$name" | awk '{print $1}')
  stop_cluster
  restart_timed "$system" "$work/$name-restart.log" "$ep" "${flags[@]}"
  local rpid="$LAUNCHED"
  record scale "keyspace-$mib" "$system" 1 \
    "{\"rss_mib\": $((rss / 1024)), \"hashkv_ms\": $(((h1 - h0) / 1000000)), \"restart_ms\": $RESTART_MS, \"rss_after_restart_mib\": $(($(rss_kib "$rpid") / 1024)), \"data_dir_mib\": $size}"
  MEMBER_PIDS=("$rpid"); stop_cluster
  rm -rf "$work/data/$name"
}

# db_size ENDPOINT: the member's dbSize (bytes of its file in use) from endpoint status.
db_size() {
  etcdctl --endpoints="$1" endpoint status -w json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])'
}

# defrag_run SYSTEM ROUND: a fresh 3-member cluster; 100,000 puts of 1 KiB, half of them deleted and
# compacted away; then puts at 500/s for 30 s (1 KiB, on the live half) while the first member
# defragments, 5 s in. etcd blocks its writes for the whole defragmentation; vetcd must not (issue 14).
defrag_run() {
  local system="$1" round="$2" out rev before after t0 t1 load
  log "defrag: $system round $round"
  start_cluster "$system" 3 "$system-defrag-$round"
  local ep="$ENDPOINTS" first="${ENDPOINTS%%,*}"
  "${bench[@]}" --endpoints="$ep" --no-progress --conns=4 --clients=32 put --total=100000 --val-size=1024 \
    --key-space-size=100000 --sequential-keys >>"$work/bench.log" 2>&1
  etcdctl --endpoints="$first" del 00050000 00100000 >/dev/null
  rev=$(etcdctl --endpoints="$first" endpoint status -w json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])')
  etcdctl --endpoints="$first" --command-timeout=120s compaction --physical "$rev" >/dev/null
  before=$(db_size "$first")
  "${bench[@]}" --endpoints="$ep" --json --no-progress --conns=4 --clients=8 put --total=15000 --val-size=1024 \
    --key-space-size=50000 --rate=500 >"$work/defrag-load.json" 2>>"$work/bench.log" &
  load=$!
  sleep 5
  t0=$(date +%s%N)
  etcdctl --endpoints="$first" --command-timeout=300s defrag >>"$work/bench.log" 2>&1 || log "defrag: $system defrag failed"
  t1=$(date +%s%N)
  after=$(db_size "$first")
  if wait "$load" && out=$(cat "$work/defrag-load.json") && [ -n "$out" ]; then
    record defrag put-during-defrag "$system" "$round" "$out" "$(awk -v d=$((t1 - t0)) -v b="$before" -v a="$after" \
      'BEGIN {printf "{\"defrag_s\": %.3f, \"db_before_mib\": %.1f, \"db_after_mib\": %.1f}", d / 1e9, b / 1048576, a / 1048576}')"
  else
    log "defrag: $system load failed (see $work/bench.log)"
  fi
  stop_cluster
  rm -rf "$work/data/$system-defrag-$round"
}

defrag() {
  local round
  for ((round = 1; round <= DEFRAG_RUNS; round++)); do
    if ((round % 2 == 1)); then defrag_run vetcd "$round"; defrag_run etcd "$round"
    else defrag_run etcd "$round"; defrag_run vetcd "$round"; fi
  done
}

scale() {
  local round mib part
  for ((round = 1; round <= SCALE_RUNS; round++)); do
    for part in puts catchup; do
      [[ " $SCALE_PARTS " == *" $part "* ]] || continue
      if ((round % 2 == 1)); then
        "scale_$part" vetcd "$round"; "scale_$part" etcd "$round"
      else
        "scale_$part" etcd "$round"; "scale_$part" vetcd "$round"
      fi
    done
  done
  if [[ " $SCALE_PARTS " == *" keyspace "* ]]; then
    for mib in $SCALE_KEYSPACE_MIB; do
      scale_keyspace vetcd "$mib"; scale_keyspace etcd "$mib"
    done
  fi
}

# ---- cold (issue 18) ----

# first_put_ms ENDPOINT T0: milliseconds from T0 (date +%s%N, taken just before the first process was
# launched) until a put through ENDPOINT is answered, asked every 5 ms by one process through the JSON
# gateway (/v3/kv/put, which etcd and vetcd both serve): no client start-up or gRPC reconnect backoff
# in the figure. "null" if none is answered within 60 s.
first_put_ms() {
  python3 - "$1" "$2" <<'PY'
import base64, json, sys, time, urllib.request
endpoint, t0 = sys.argv[1], int(sys.argv[2])
body = json.dumps({"key": base64.b64encode(b"cold-probe").decode(), "value": base64.b64encode(b"x").decode()}).encode()
request = urllib.request.Request(f"http://{endpoint}/v3/kv/put", data=body, method="POST")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            if r.status == 200 and b"header" in r.read():
                print((time.time_ns() - t0) // 1_000_000)
                sys.exit(0)
    except Exception:  # refused, reset, cut short: not serving yet
        time.sleep(0.005)
print("null")
PY
}

# cold_single SYSTEM ROUND [quick]: a fresh single member: the time from its process start to its
# first answered put; then, 10 s later with nothing asked of it, its RSS and anonymous memory (not with
# "quick": the start alone, for more samples of a figure that etcd's random election wait spreads).
cold_single() {
  local system="$1" round="$2" t0 ms
  t0=$(date +%s%N)
  NO_WAIT=1 start_cluster "$system" 1 "$system-cold-single-$round"
  ms=$(first_put_ms "$ENDPOINTS" "$t0")
  if [ "${3:-}" = quick ]; then
    record cold start-single "$system" "$round" "{\"first_put_ms\": $ms}"
    stop_cluster
    rm -rf "$work/data/$system-cold-single-$round"
    return 0
  fi
  sleep 10
  local pid="${MEMBER_PIDS[0]}" rss=null anon=null
  if kill -0 "$pid" 2>/dev/null; then
    rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null || true)
    anon=$(awk '/RssAnon/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null || true)
  else
    log "cold: the $system member exited while idle (see $work/$system-cold-single-$round-m1.log)"
  fi
  record cold start-single "$system" "$round" "{\"first_put_ms\": $ms, \"idle_rss_mib\": ${rss:-null}, \"idle_anon_mib\": ${anon:-null}}"
  stop_cluster
  rm -rf "$work/data/$system-cold-single-$round"
}

# cold_cluster SYSTEM ROUND WORKLOAD ARGS...: a fresh 3-member cluster, its members launched one after
# another: the time from the first launch to the first put answered through member 1 (so two samples a
# round: one per workload); then one load
# generator run (2,000 unmeasured puts, then ARGS), the first work the cluster is given.
cold_cluster() {
  local system="$1" round="$2" workload="$3" t0 ms
  shift 3
  t0=$(date +%s%N)
  NO_WAIT=1 start_cluster "$system" 3 "$system-cold-$workload-$round"
  ms=$(first_put_ms "${ENDPOINTS%%,*}" "$t0")
  record cold "start-cluster" "$system" "$round" "{\"first_put_ms\": $ms}"
  if ! wait_ready "$ENDPOINTS"; then
    log "cold: $system cluster not ready; $workload not measured this round"
    stop_cluster
    return 0
  fi
  SERVER_PIDS=("${MEMBER_PIDS[@]}")
  run cold "$workload" "$system" "$round" "$ENDPOINTS" --warm-up=2000 --conns=8 --clients=64 put --key-size=8 \
    --val-size=256 --key-space-size=10000 "$@"
  stop_cluster
  rm -rf "$work/data/$system-cold-$workload-$round"
}

cold() {
  local round system
  local -a order
  for ((round = 1; round <= RUNS; round++)); do
    if ((round % 2 == 1)); then order=(vetcd etcd); else order=(etcd vetcd); fi
    log "cold: round $round of $RUNS ($order first)"
    for system in "${order[@]}"; do cold_single "$system" "$round"; done
    for _ in 1 2 3 4; do
      for system in "${order[@]}"; do cold_single "$system" "$round" quick; done
    done
    for system in "${order[@]}"; do cold_cluster "$system" "$round" put-50k --total=50000; done
    for system in "${order[@]}"; do cold_cluster "$system" "$round" put-60s --total=100000000 --duration=60; done
  done
}

for section in $SECTIONS; do
  case "$section" in
    cold) cold ;;
    cluster) compare_setup cluster 3 ;;
    single) compare_setup single 1 ;;
    memory) memory_and_restart vetcd; memory_and_restart etcd ;;
    scale) scale ;;
    defrag) defrag ;;
    *) log "unknown section $section (cold cluster single memory scale defrag)"; exit 2 ;;
  esac
done

# Sections not run this time keep their figures from the run recorded before (RESULTS.md says which).
carried=""
for section in cold cluster single memory scale defrag; do
  [[ " $SECTIONS " == *" $section "* ]] || carried+="${carried:+ }$section"
done
if [ -n "$carried" ] && [ -f "$home/bench/results-raw.jsonl" ]; then
  python3 - "$home/bench/results-raw.jsonl" "$raw" "$carried" <<'PY'
import json, sys
old, raw, carried = sys.argv[1], sys.argv[2], sys.argv[3].split()
def section(r):
    if r["setup"] in ("cold", "scale", "defrag"):
        return r["setup"]
    if r["workload"] == "memory-1m":
        return "memory"
    return "cluster" if r["setup"].startswith("cluster") else "single"
kept = [line for line in open(old) if line.strip() and section(json.loads(line)) in carried]
with open(raw, "a") as f:
    f.writelines(kept)
PY
fi
log "writing bench/RESULTS.md"
CARRIED="$carried" python3 "$home/bench/results.py" "$raw" "$home/bench/RESULTS.md"
cp "$raw" "$home/bench/results-raw.jsonl"
log "done: bench/RESULTS.md"
