#!/usr/bin/env bash
# Smoke test of the load generator against one running member (vetcd or etcd): a few hundred
# operations of every command; fails if a command fails, counts an error, or reports no throughput.
# Starts nothing: start the member first.
#   bench/smoke.sh 2379                    (a port on 127.0.0.1)
#   bench/smoke.sh http://127.0.0.1:2379   (an endpoint, as --endpoints takes it)
# Takes about 15 s once the jar is built (bench/vetcd-bench builds it on first use).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -ne 1 ]; then
  echo "usage: $0 PORT|ENDPOINT" >&2
  exit 2
fi
case "$1" in
  *[!0-9]*) endpoint="$1" ;;
  *) endpoint="127.0.0.1:$1" ;;
esac
hostport="${endpoint#http://}"
host="${hostport%:*}"
port="${hostport##*:}"

# Build before the clock starts, and give the member up to 20 s to open its client port.
"$here/vetcd-bench" --help >/dev/null || { echo "smoke: cannot build the load generator" >&2; exit 1; }
listening=0
for _ in $(seq 1 200); do
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    listening=1
    break
  fi
  sleep 0.1
done
if [ "$listening" = 0 ]; then
  echo "smoke: nothing listens on $host:$port (waited 20 s)" >&2
  exit 1
fi

start=$SECONDS
failed=0
# Short runs: the JVM's start-up dominates, and C1 alone with the serial collector starts faster.
export VETCD_BENCH_JAVA_OPTS="${VETCD_BENCH_JAVA_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"

# check NAME ARGS...: one run with --json (killed after 120 s); prints a line per command, counts the
# failures. MAX_SECONDS, if set: the run's measured part must have taken no longer.
check() {
  local name="$1" out rc ops errors rps took
  shift
  out=$(timeout 120 "$here/vetcd-bench" --endpoints="$endpoint" --json --no-progress "$@" 2>/tmp/vetcd-bench-smoke.$$)
  rc=$?
  ops=$(sed -n 's/.*"ops":\([0-9]*\).*/\1/p' <<<"$out")
  errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$out")
  rps=$(sed -n 's/.*"requests_per_sec":\([0-9.]*\).*/\1/p' <<<"$out")
  took=$(sed -n 's/.*"total":\([0-9.]*\),"ops".*/\1/p' <<<"$out")
  if [ -n "${MAX_SECONDS:-}" ] && ! awk -v t="${took:-999999}" -v m="$MAX_SECONDS" 'BEGIN {exit !(t <= m)}'; then
    echo "smoke: FAIL $name: ran ${took:-?} s, more than $MAX_SECONDS s"
    failed=$((failed + 1))
  elif [ "$rc" -ne 0 ] || [ -z "$ops" ] || [ "$ops" = 0 ] || [ "${errors:-1}" != 0 ] || [ -z "$rps" ] || [ "$rps" = 0 ] || [ "$rps" = 0.0 ]; then
    echo "smoke: FAIL $name (exit $rc, ops ${ops:-?}, errors ${errors:-?}, ${rps:-?} ops/s)"
    sed 's/^/  /' /tmp/vetcd-bench-smoke.$$
    [ -n "$out" ] && echo "  $out"
    failed=$((failed + 1))
  else
    echo "smoke: ok   $name: $ops ops, $rps ops/s"
  fi
  rm -f /tmp/vetcd-bench-smoke.$$
}

check "put, 1 client" put --total=100 --key-space-size=100
check "put, 16 clients" --conns=2 --clients=16 put --total=400 --key-space-size=100 --sequential-keys
check "range, linearizable" --clients=4 range 00000000 --consistency=l --total=400
check "range, serializable" --clients=4 range 00000000 --consistency=s --total=400
check "txn-put, 4 puts a txn" --clients=4 txn-put --total=200 --txn-ops=4 --key-space-size=100
check "watch-latency, 100 watchers" --conns=2 watch-latency --watchers=100 --streams=4 --put-total=100 --put-rate=100
check "lease-keepalive, 4 leases" --clients=4 lease-keepalive --total=400
# --duration ends a run however large --total is (compare.sh's cold section measures 60 s with it).
MAX_SECONDS=5 check "put for 2 s (--duration)" --clients=4 put --total=100000000 --duration=2 --key-space-size=100

echo "smoke: $((8 - failed)) passed, $failed failed in $((SECONDS - start)) s"
[ "$failed" -eq 0 ]
