#!/usr/bin/env bash
# Large values (issue 21), one system at a time: bench/scale-puts.sh vetcd|etcd
# 3 members on loopback; 500 unmeasured puts of 64 KiB, then 2,000 puts of 64 KiB values (16 clients)
# and 300 of 1 MiB (8 clients); prints req/s and p99 of each, the peak RSS (VmHWM) of every member, and
# any blocked-thread lines. Run it for vetcd and etcd alternately; compare the ratios.
# Needs: bench/target/vetcd-bench.jar and target/vetcd.jar (mvn package), etcd and etcdctl 3.4.
# Not yet part of bench/compare.sh (the scale section of issue 21 is still to be written).
set -u
kind="$1"
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jar=$home/target/vetcd.jar
work=$(mktemp -d /tmp/bp.XXXX)
export ETCDCTL_API=3
flags=$(sed -n '/^flags=(/,/^)/p' $home/bin/vetcd | grep -v '^\s*#' | grep -v 'flags=(' | grep -v '^)' | tr '\n' ' ')
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
init=""; declare -a cp pp pid
for i in 1 2 3; do cp[$i]=$(port); pp[$i]=$(port); init+="${init:+,}m$i=http://127.0.0.1:${pp[$i]}"; done
for i in 1 2 3; do
  args=(--name m$i --data-dir $work/m$i --listen-client-urls http://127.0.0.1:${cp[$i]} --advertise-client-urls http://127.0.0.1:${cp[$i]}
   --listen-peer-urls http://127.0.0.1:${pp[$i]} --initial-advertise-peer-urls http://127.0.0.1:${pp[$i]} --initial-cluster $init
   --initial-cluster-state new --quota-backend-bytes 8589934592)
  if [ "$kind" = vetcd ]; then java $flags -jar $jar "${args[@]}" > $work/m$i.log 2>&1 &
  else etcd "${args[@]}" > $work/m$i.log 2>&1 & fi
  pid[$i]=$!
done
eps="127.0.0.1:${cp[1]},127.0.0.1:${cp[2]},127.0.0.1:${cp[3]}"
for t in $(seq 200); do etcdctl --endpoints $eps endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
bench=(java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xms384m -Xmn256m -jar $home/bench/target/vetcd-bench.jar)
rss() { for i in 1 2 3; do awk '/VmHWM/{printf "%d ", $2/1024}' /proc/${pid[$i]}/status; done; }
"${bench[@]}" --endpoints $eps --conns 4 --clients 16 --json --no-progress put --total 500 --val-size 65536 --key-space-size 500 >/dev/null 2>&1
for spec in "65536 2000 16" "1048576 300 8"; do
  set -- $spec
  "${bench[@]}" --endpoints $eps --conns 4 --clients $3 --json --no-progress put --total $2 --val-size $1 --key-space-size $2 2>/dev/null \
   | python3 -c "import json,sys; d=json.load(sys.stdin); print(\"$kind val=$1\", round(d[\"requests_per_sec\"]), 'req/s p99', d[\"latency_ms\"][\"p99\"], 'ms')"
done
echo "$kind peak RSS MiB (VmHWM) m1 m2 m3: $(rss)"
grep -h "has been blocked" $work/m*.log | head -2
kill ${pid[@]}; wait 2>/dev/null; rm -rf $work
