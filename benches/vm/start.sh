#!/bin/sh
# benches/vm/start.sh RUNS REEVEC FLOOR BUNDLES: runs INSIDE the test VM (tests/vm/run.sh, real cgroup v2),
# started by benches/run.sh. Start latency with cgroup limits for the floor, reevec, crun and runc
# on the same bundle, kill+delete of a running sandbox, and the memory each runtime charges to the
# sandbox's cgroup. Results go to stdout as "@@FILE name@@ ... @@END@@" blocks (hyperfine JSON
# and plain samples) that benches/run.sh splits on the host; progress lines start with "#".
# Never exits non-zero because of a number; a runtime that fails its sanity run is left out.
RUNS=$1 REEVEC=$2 FLOOR=$3 BUNDLES=$4
RFS=${REEVE_VM_ROOTFS:?not in the test VM}
W=/tmp/bench
mkdir -p $W
emit() { echo "@@FILE $1@@"; cat "$2"; echo "@@END@@"; }
say() { echo "# $*"; }

CG=/sys/fs/cgroup
echo "+cpu +memory +pids" > $CG/cgroup.subtree_control
mkdir -p $CG/bench
echo "+cpu +memory +pids" > $CG/bench/cgroup.subtree_control

# the bundles (written compact by benches/run.sh from `reevec spec`: all its namespaces incl.
# network, default seccomp profile, masked paths, caps; /bin/true; memory 64 MiB, 64 pids, half
# a core; cgroupsPath /bench/start) are at $BUNDLES/{bundle,bundle2}; the rootfs is the VM's
B=$W/bundle
B2=$W/bundle2
# (runc refuses a symlinked rootfs: root.path becomes the VM rootfs' absolute path)
for d in bundle bundle2; do
  mkdir -p $W/$d
  sed -e "s#\"path\":\"rootfs\"#\"path\":\"$RFS\"#" "$BUNDLES/$d/config.json" > $W/$d/config.json
done
RT_reevec="$REEVEC --root /run/b-reevec"
RT_crun="crun --root /run/b-crun"
RT_runc="runc --root /run/b-runc"
OK=""
for rt in reevec crun runc; do
  eval "cmd=\$RT_$rt"
  if [ $rt != reevec ] && ! command -v $rt >/dev/null; then say "$rt: not in the VM, left out"; continue; fi
  if out=$($cmd run --bundle $B sanity-$rt 2>&1); then OK="$OK $rt"
  else say "$rt run failed, left out: $out"; $cmd delete -f sanity-$rt >/dev/null 2>&1; fi
done
"$FLOOR" "$RFS" $CG/bench/floor || say "floor failed (exit $?)"
say "runtimes that work here:$OK; $(cat $CG/bench/cgroup.controllers 2>/dev/null)"
say "spec: $(cat $B/config.json | head -c 400)..."

set --
for rt in $OK; do eval "cmd=\$RT_$rt"; set -- "$@" -n "$rt run" "$cmd run --bundle $B s-$rt"; done
say "start latency: hyperfine -N, $RUNS runs each"
hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json $W/start.json \
  -n "floor (clone3 into cgroup+pivot_root+exec)" "$FLOOR $RFS $CG/bench/floor" "$@" 2>&1 | sed 's/^/# /'
emit vm-start.json $W/start.json

set --
for rt in $OK; do eval "cmd=\$RT_$rt"; set -- "$@" -n "$rt create+start+delete" "$cmd create --bundle $B c-$rt && $cmd start c-$rt && $cmd delete -f c-$rt"; done
say "create+start+delete: $RUNS runs each"
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json $W/csd.json "$@" 2>&1 | sed 's/^/# /'
emit vm-csd.json $W/csd.json

# kill+delete of a running sandbox: delete --force = SIGKILL, wait, remove cgroup and state
set --
for rt in $OK; do
  eval "cmd=\$RT_$rt"
  set -- "$@" --prepare "sh -c '$cmd create --bundle $B2 k-$rt && $cmd start k-$rt'" -n "$rt delete -f (running, cgroup)" "$cmd delete -f k-$rt"
done
say "kill+delete: $RUNS runs each"
hyperfine -N --style basic --runs "$RUNS" --export-json $W/td.json "$@" 2>&1 | sed 's/^/# /'
emit vm-td.json $W/td.json

# memory charged to the sandbox's cgroup right after start: M sleeping sandboxes per runtime,
# one at a time (the first, not counted, warms the page cache so busybox's pages are not charged)
M=$(( RUNS / 5 )); [ $M -lt 5 ] && M=5
: > $W/mem.txt
for rt in $OK; do
  eval "cmd=\$RT_$rt"
  i=0
  while [ $i -le $M ]; do
    sed -e "s/\"cgroupsPath\":\"[^\"]*\"/\"cgroupsPath\":\"\/bench\/mem-$rt-$i\"/" $B2/config.json > $B2/config.mem.json
    mkdir -p $W/m-$rt-$i && mv $B2/config.mem.json $W/m-$rt-$i/config.json
    if $cmd create --bundle $W/m-$rt-$i m-$rt-$i >/dev/null 2>&1 && $cmd start m-$rt-$i >/dev/null 2>&1; then
      pid=$($cmd state m-$rt-$i | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
      cgp=$(grep '^0::' /proc/$pid/cgroup | cut -d: -f3)
      cur=$(cat $CG$cgp/memory.current)
      st=$(grep -E '^(anon|file|kernel|kernel_stack|pagetables|percpu|sock|slab) ' $CG$cgp/memory.stat | tr ' \n' '= ')
      [ $i -gt 0 ] && echo "$rt $cur $st" >> $W/mem.txt
    else
      say "$rt: memory sample $i failed"
    fi
    $cmd delete -f m-$rt-$i >/dev/null 2>&1
    i=$((i + 1))
  done
done
emit vm-mem.txt $W/mem.txt

# where reevec's start time goes under TCG: one `reevec run` under strace
if command -v strace >/dev/null; then
  strace -f -tt -T -o $W/strace.txt $RT_reevec run --bundle $B st >/dev/null 2>$W/strace.err
  [ -s $W/strace.txt ] || say "strace failed: $(tail -2 $W/strace.err)"
  emit vm-strace.txt $W/strace.txt
fi
say "leftover cgroups under /bench: $(ls $CG/bench | grep -v '\.' | tr '\n' ' ')"
exit 0
