#!/usr/bin/env bash
# A member that was away (issue 21), one system at a time: bench/scale-catchup.sh vetcd|etcd [jar]
# 3 members on loopback, --snapshot-count 100; member 3 is stopped while N (400) puts of VAL (1 MiB)
# bytes go through member 1, then restarted. Prints the writes' time and the others' anonymous memory,
# then how long member 3 took to reach the same HashKV as member 1 (at one revision) and the peak
# anonymous memory (RssAnon, sampled every ~0.1 s) of each member meanwhile, and any blocked-thread or
# leader-change lines from the logs. Run it for vetcd and etcd alternately; compare the ratios.
# Needs: bench/target/vetcd-bench.jar and target/vetcd.jar (mvn package), etcd and etcdctl 3.4.
# Not yet part of bench/compare.sh (the scale section of issue 21 is still to be written).
set -u
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="$1"; jar="${2:-$home/target/vetcd.jar}"; N="${N:-400}"; VAL="${VAL:-1048576}"
work=$(mktemp -d /tmp/cu.XXXX)
export ETCDCTL_API=3
flags=$(sed -n '/^flags=(/,/^)/p' $home/bin/vetcd | grep -v '^\s*#' | grep -v 'flags=(' | grep -v '^)' | tr '\n' ' ')
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
init=""; declare -a cp pp pid
for i in 1 2 3; do cp[$i]=$(port); pp[$i]=$(port); init+="${init:+,}m$i=http://127.0.0.1:${pp[$i]}"; done
launch() {
  local i=$1 state=$2
  local args=(--name m$i --data-dir $work/m$i --listen-client-urls http://127.0.0.1:${cp[$i]} --advertise-client-urls http://127.0.0.1:${cp[$i]}
   --listen-peer-urls http://127.0.0.1:${pp[$i]} --initial-advertise-peer-urls http://127.0.0.1:${pp[$i]} --initial-cluster $init
   --initial-cluster-state $state --snapshot-count 100 --quota-backend-bytes 8589934592)
  if [ "$kind" = vetcd ]; then java $flags ${JVMX:-} -jar $jar "${args[@]}" >> $work/m$i.log 2>&1 &
  else etcd "${args[@]}" >> $work/m$i.log 2>&1 & fi
  pid[$i]=$!
}
for i in 1 2 3; do launch $i new; done
ep() { echo 127.0.0.1:${cp[$1]}; }
for t in $(seq 200); do etcdctl --endpoints $(ep 1),$(ep 2),$(ep 3) endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
kill ${pid[3]}; wait ${pid[3]} 2>/dev/null
bench=(java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xms384m -Xmn256m -jar $home/bench/target/vetcd-bench.jar)
t0=$(date +%s.%N)
"${bench[@]}" --endpoints $(ep 1) --conns 1 --clients 4 --json --no-progress put --total $N --val-size $VAL --key-space-size $N --key-size 8 --sequential-keys > $work/put.json 2>$work/put.err || "${bench[@]}" --endpoints $(ep 1) --conns 1 --clients 4 --json --no-progress put --total $N --val-size $VAL --key-space-size $N --key-size 8 > $work/put.json 2>>$work/put.err
t1=$(date +%s.%N)
anon() { awk '/RssAnon/{print int($2/1024)}' /proc/$1/status 2>/dev/null || echo 0; }
echo "$kind writes: $(python3 -c "print(round($t1-$t0,1))") s; anon MiB after writes: m1 $(anon ${pid[1]}) m2 $(anon ${pid[2]})"
rev=$(etcdctl --endpoints $(ep 1) put probe x -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
h1=$(etcdctl --endpoints $(ep 1) endpoint hashkv --rev=$rev -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["HashKV"]["hash"])')
launch 3 new
s0=$(date +%s.%N); peak1=0; peak2=0; peak3=0; done=""
while true; do
  for i in 1 2 3; do a=$(anon ${pid[$i]}); eval "p=\$peak$i"; [ "$a" -gt "$p" ] && eval "peak$i=$a"; done
  h3=$(timeout 2 etcdctl --endpoints $(ep 3) endpoint hashkv --rev=$rev -w json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["HashKV"]["hash"])' 2>/dev/null)
  now=$(date +%s.%N)
  if [ "$h3" = "$h1" ]; then done=yes; break; fi
  if python3 -c "import sys; sys.exit(0 if $now-$s0 > ${LIMIT:-180} else 1)"; then break; fi
  sleep 0.1
done
el=$(python3 -c "print(round($now-$s0,1))")
echo "$kind catch-up: ${done:-NOT within ${LIMIT:-180}s} after $el s; peak anon MiB m1 $peak1 m2 $peak2 m3 $peak3"
grep -h -E "has been blocked|elected leader|leader is now" $work/m*.log | tail -5
kill ${pid[1]} ${pid[2]} ${pid[3]} 2>/dev/null; wait 2>/dev/null; if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf $work; fi
