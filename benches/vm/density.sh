#!/bin/sh
# benches/vm/density.sh "LEVELS" BUDGET REEVED GATEWAY NOW ROOTFS: started by benches/run.sh INSIDE
# the test VM (REEVE_IN_VM=1: real cgroup v2, limits enforced) and on the host (in `unshare -m`
# with a ro tmpfs over /sys/fs/cgroup: no cgroup2 is visible, so reeved runs in its no-limits
# mode and nobody creates a cgroup; real CPU speed instead of TCG). For each level N (e.g. "100 500 1000"): N
# tenants exist, `reeved run` starts; measured: time until `reeved status --json` shows all N
# running, reeved's RSS at that point, memory.current of every tenant cgroup right after, and
# the time from SIGTERM until reeved has stopped them all and exited, and how many gateways
# outlived stop_grace_ms after their SIGTERM and were SIGKILLed. A level that is not all
# running within BUDGET seconds is reported with how many were, and bigger levels are skipped.
# Output: "@@FILE name@@ ... @@END@@" blocks; progress lines start with "#". Never fails on a number.
LEVELS=$1 BUDGET=$2 REEVED=$3 GATEWAY=$4 NOW=$5 RFS=$6
say() { echo "# $*"; }
if [ "${REEVE_IN_VM:-}" = 1 ]; then MODE=vm NOLIMITS=""; else MODE=host NOLIMITS="allow_no_limits = true"; fi
T=$(mktemp -d /tmp/reeve-density.XXXXXX)
mkdir -p $T/gateway $T/layer1 $T/data
chmod 711 $T
cp "$GATEWAY" $T/gateway/gw
chmod 755 $T/gateway $T/layer1 $T/gateway/gw
C=$T/reeved.toml
# the gateway: a tiny static program that waits for SIGTERM (benches/vm/gateway.c); default
# max_parallel_starts, limits as in the VM supervisor test; runtime = reevec next to reeved
cat > $C <<EOF
data_root = "$T/data"
state_dir = "$T/state"
layer1_dir = "$T/layer1"
$NOLIMITS

[gateway]
command = ["/opt/gateway/gw"]
dir = "$T/gateway"
rootfs = "$RFS"

[limits]
memory = "64M"
pids = 16
cpu = 0.1

[restart]
stop_grace_ms = 10000
EOF
say "config: $(tr '\n' ' ' < $C)"
say "$MODE: $(nproc) CPUs, $(grep MemTotal /proc/meminfo)"
running() { "$REEVED" --config $C status --json 2>/dev/null | grep -o '"phase": *"running"' | wc -l; }
have=0
OUT=$T/density.txt
: > $OUT
for N in $LEVELS; do
  t=$($NOW)
  while [ $have -lt $N ]; do
    have=$((have + 1))
    "$REEVED" --config $C tenant create "$(printf 't%04d' $have)" >/dev/null || say "tenant create t$have failed"
  done
  say "level $N: tenants created in $($NOW $t) ms (not part of any figure)"
  free_before=$(grep MemAvailable /proc/meminfo | grep -o '[0-9]*')
  t0=$($NOW)
  "$REEVED" --config $C run > $T/reeved-$N.log 2>&1 &
  pid=$!
  n=0
  while :; do
    n=$(running)
    [ "$n" -ge $N ] && break
    kill -0 $pid 2>/dev/null || { say "reeved exited early"; break; }
    el=$($NOW $t0); el=${el%.*}
    [ "$el" -gt $((BUDGET * 1000)) ] && { say "level $N: budget ${BUDGET}s over with $n running"; break; }
    sleep 0.2
  done
  up=$($NOW $t0)
  rss=$(grep VmRSS /proc/$pid/status | grep -o '[0-9]*')
  hwm=$(grep VmHWM /proc/$pid/status | grep -o '[0-9]*')
  free_after=$(grep MemAvailable /proc/meminfo | grep -o '[0-9]*')
  say "level $N: $n running after $up ms; reeved RSS $rss kB (peak $hwm kB)"
  echo "level $N running $n up_ms $up rss_kb $rss hwm_kb $hwm memavail_drop_kb $((free_before - free_after))" >> $OUT
  [ $MODE = vm ] && for d in /sys/fs/cgroup/tenants/*/; do
    [ -f $d/memory.current ] && echo "cg $N $(basename $d) $(cat $d/memory.current) $(grep -E '^(anon|file|kernel|kernel_stack|pagetables|percpu|sock|slab) ' $d/memory.stat | tr ' \n' '= ')" >> $OUT
  done
  t1=$($NOW)
  kill -TERM $pid
  wait $pid
  rc=$?
  down=$($NOW $t1)
  left=$(ls -d /sys/fs/cgroup/tenants/*/ 2>/dev/null | wc -l)
  procs=$(cat /proc/[0-9]*/comm 2>/dev/null | grep -cx gw)
  # gateways that did not exit within stop_grace_ms of their SIGTERM and were SIGKILLed
  killed=$(grep -c 'ignored SIGTERM' $T/reeved-$N.log)
  say "level $N: SIGTERM to exit $down ms (rc $rc), $left tenant cgroups and $procs gateways left, $killed SIGKILLed after the grace period"
  grep 'ignored SIGTERM' $T/reeved-$N.log | head -3 | sed 's/^/# reeved: /'
  echo "level $N teardown_ms $down rc $rc cgroups_left $left sigkilled $killed" >> $OUT
  tail -3 $T/reeved-$N.log | sed 's/^/# reeved: /'
  if [ "$n" -lt $N ]; then
    for f in $T/state/logs/*.log; do [ -s "$f" ] && { say "a tenant log, $f:"; tail -5 "$f" | sed 's/^/#   /'; break; }; done
    say "levels above $N skipped"
    break
  fi
done
echo "@@FILE $MODE-density.txt@@"; cat $OUT; echo "@@END@@"
rm -rf $T
exit 0
