#!/bin/bash
# benches/run.sh [--quick]: the benchmark suite (issue 7). One command:
#   bash benches/run.sh            # host: 200 runs, 100/500/1000 tenants; VM: 20 runs, 100 tenants (~25 min)
#   bash benches/run.sh --quick    # host: 30 runs, 100 tenants; VM: 5 runs, 10 tenants (~8 min)
# Writes benches/results/RESULTS.md (p50/p90/p99, stddev, ratios, machine, load),
# benches/results/start.svg (host) and benches/results/vm.svg (VM) drawn by benches/report.py.
# Never fails on a number; a part that cannot run is reported as such in RESULTS.md.
#
# 1. Host, same /bin/true busybox bundle, same hyperfine session:
#    reevec run | reevec create+start+delete | crun run | crun create+start+delete | floor, and
#    delete -f of a running sandbox. floor = benches/floor/floor.c: clone with the bundle's
#    namespaces + pivot_root + exec, no runtime. crun refuses hybrid-cgroup hosts: everything runs
#    inside `unshare -m` with an empty ro tmpfs over /sys/fs/cgroup (no cgroup is created by
#    anybody). runc has no cgroup-less mode: VM only.
# 2. Test VM (tests/vm/run.sh: qemu TCG, 1 vCPU, pure cgroup v2), benches/vm/start.sh: the same
#    bundle with cgroup limits for floor (+cgroup), reevec, crun and runc: run, create+start+delete,
#    delete -f of a running sandbox, memory charged to the sandbox cgroup per runtime.
# 3. Test VM, benches/vm/density.sh: reeved with 100/500/1000 tenants: time to all running,
#    reeved RSS, memory.current per tenant cgroup, SIGTERM teardown.
# 4. Seccomp: the seccomp bench program of runtime/benches (when present), its output verbatim.
# 5. Engine: runtime/benches/engine.rs, the library's create/start/delete in process against the
#    floor, with a per-step table (host, no cgroups).
#
# Knobs: BENCH_PARTS (default "host vm density seccomp engine"), BENCH_VM_RUNS, BENCH_LEVELS,
# BENCH_VM_LEVELS, BENCH_BUDGET / BENCH_VM_BUDGET (seconds per density level on the host / in the
# VM), REEVEC/REEVED (prebuilt binaries).
set -uo pipefail
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
# density levels: on the host (real CPU, no limits) and in the VM (TCG: ~1-5 s per tenant, so
# only what fits; a level that misses BUDGET seconds is reported with how many were running)
if [ $QUICK = 1 ]; then RUNS=30 VMRUNS=5 LEVELS="100" VMLEVELS="10" BUDGET=120 VMBUDGET=300
else RUNS=200 VMRUNS=20 LEVELS="100 500 1000" VMLEVELS="100" BUDGET=300 VMBUDGET=900; fi
VMRUNS=${BENCH_VM_RUNS:-$VMRUNS}
LEVELS=${BENCH_LEVELS:-$LEVELS}
VMLEVELS=${BENCH_VM_LEVELS:-$VMLEVELS}
BUDGET=${BENCH_BUDGET:-$BUDGET}
VMBUDGET=${BENCH_VM_BUDGET:-$VMBUDGET}
PARTS=${BENCH_PARTS:-host vm density seccomp engine}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
T_START=$(date +%s)
step() { echo "==> [$(( $(date +%s) - T_START ))s] $*" >&2; }
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

if [ -z "${REEVEC:-}" ] || [ -z "${REEVED:-}" ]; then
  step "building reevec and reeved (release)"
  (cd "$REPO" && cargo build --release -q -p reeve-runtime -p reeve-supervisor) || { echo "build failed" >&2; exit 2; }
  REEVEC=$TARGET/release/reevec REEVED=$TARGET/release/reeved
fi
for t in hyperfine crun gcc python3 strace; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install $t)" >&2; exit 2; }
done
W=$(mktemp -d -t reeve-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"   # the sandboxes of reeved run as their tenant uid range: the rootfs must be reachable
gcc -O2 -o "$W/floor" "$HERE/floor/floor.c" || exit 2
gcc -O2 -o "$W/now" "$HERE/vm/now.c" || exit 2
gcc -Os -static -o "$W/gw" "$HERE/vm/gateway.c" || exit 2
B=$W/bundle
mkdir -p "$B/rootfs"/{bin,proc,dev,sys,tmp,etc}
cp /bin/busybox "$B/rootfs/bin/busybox"
ln -s busybox "$B/rootfs/bin/true"
ln -s busybox "$B/rootfs/bin/sleep"
"$REEVEC" spec --bundle "$B"
# host bundles (no cgroup mount, no resources) and VM bundles (cgroup limits), from one spec
mkdir -p "$W/bundle2" "$W/vmb/bundle" "$W/vmb/bundle2"
ln -s "$B/rootfs" "$W/bundle2/rootfs"
python3 - "$B/config.json" "$W" <<'PY'
import json, sys
src, w = sys.argv[1:3]
c = json.load(open(src))
c["ociVersion"] = "1.0.2"          # crun 1.8.1 refuses newer versions
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
vm = json.loads(json.dumps(c))
c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
c["linux"].pop("resources", None)
json.dump(c, open(src, "w"))
c["process"]["args"] = ["/bin/sleep", "1000"]
json.dump(c, open(w + "/bundle2/config.json", "w"))
# the VM bundle: same spec, with limits and an explicit cgroup (compact: start.sh seds cgroupsPath)
vm["linux"]["resources"] = dict(vm["linux"].get("resources") or {},
                                memory={"limit": 64 << 20}, pids={"limit": 64},
                                cpu={"quota": 50000, "period": 100000})
vm["linux"]["cgroupsPath"] = "/bench/start"
json.dump(vm, open(w + "/vmb/bundle/config.json", "w"), separators=(",", ":"))
vm["process"]["args"] = ["/bin/sleep", "100000"]
json.dump(vm, open(w + "/vmb/bundle2/config.json", "w"), separators=(",", ":"))
PY
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

if has host; then
  R="$REEVEC --root $W/rr"
  C="crun --cgroup-manager=disabled --root $W/cr"
  B2=$W/bundle2
  cat > "$W/bench.sh" <<SH
set -e
mount -t tmpfs -o ro tmpfs /sys/fs/cgroup
cd "$B"
"$W/floor" "$B/rootfs"   # sanity: the floor must work before it is timed
hyperfine -N --warmup 20 --runs $RUNS --export-json "$W/start.json" \\
  -n "floor (clone+pivot_root+exec)" "$W/floor $B/rootfs" \\
  -n "reevec run" "$R run --bundle $B b1" \\
  -n "crun run" "$C run --bundle $B b2" >&2
hyperfine --warmup 10 --runs $RUNS --export-json "$W/csd.json" \\
  -n "reevec create+start+delete" "$R create --bundle $B b3 && $R start b3 && $R delete -f b3" \\
  -n "crun create+start+delete" "$C create --bundle $B b4 && $C start b4 && $C delete -f b4" >&2
# teardown of a running sandbox: delete --force = SIGKILL + wait + remove state
hyperfine -N --runs $RUNS --export-json "$W/td.json" \\
  --prepare "sh -c '$R create --bundle $B2 k1 && $R start k1'" -n "reevec delete -f (running)" "$R delete -f k1" \\
  --prepare "sh -c '$C create --bundle $B2 k2 && $C start k2'" -n "crun delete -f (running)" "$C delete -f k2" >&2
# where reevec's start time goes: relative timestamps of every syscall, all processes
strace -f -tt -T -o "$W/strace.txt" $R run --bundle $B b5 >/dev/null 2>&1 || true
SH
  step "host: start latency, create+start+delete, delete -f; hyperfine, $RUNS runs each"
  unshare -m --propagation private bash "$W/bench.sh" || echo "host part failed (see above)" >&2
fi

# split "@@FILE name@@ ... @@END@@" blocks of $W/LOG.out into $W/name; show the rest
split_out() { # LOG
  local log=$1
  awk -v dir="$W" '/^@@FILE .*@@$/ { f = dir "/" substr($2, 1, length($2) - 2); printf "" > f; next }
    /^@@END@@$/ { close(f); f = ""; next }
    f != "" { print >> f; next }
    { print }' "$W/$log.out" > "$W/$log.progress"
  sed 's/^/    /' "$W/$log.progress" >&2
}

# run a guest script in the test VM
vm_run() { # LOGNAME VM_MEM VM_TIMEOUT VM_FILES SCRIPT ARGS...
  local log=$1 mem=$2 to=$3 files=$4
  shift 4
  VM_MEM=$mem VM_TIMEOUT=$to VM_FILES=$files VM_NO_CARGO_SIBLINGS=1 \
    bash "$REPO/tests/vm/run.sh" "$@" > "$W/$log.out" 2> "$W/$log.err"
  local rc=$?
  split_out "$log"
  tail -1 "$W/$log.err" | sed 's/^/    /' >&2
  [ $rc = 0 ] || { echo "    VM part $log: exit $rc" >&2; tail -20 "$W/$log.err" | sed 's/^/    /' >&2; }
  echo "$rc" > "$W/$log.rc"
}

if has density; then
  step "host: reeved density without limits, levels $LEVELS (budget ${BUDGET}s each)"
  # in `unshare -m` with a ro tmpfs over /sys/fs/cgroup: reeved sees no cgroup2, runs its
  # no-limits mode, and no cgroup is created on this hybrid host
  unshare -m --propagation private sh -c 'mount -t tmpfs -o ro tmpfs /sys/fs/cgroup && exec sh "$@"' density \
    "$HERE/vm/density.sh" "$LEVELS" "$BUDGET" "$REEVED" "$W/gw" "$W/now" "$B/rootfs" > "$W/host-density.out" 2>&1
  split_out host-density
fi
# bench_program NAME OUT ARGS...: `cargo bench -p reeve-runtime --bench NAME -- ARGS`, its
# stdout to $W/OUT.txt (echoed indented), its stderr to $W/OUT.err (tail shown on failure).
bench_program() {
  local name=$1 out=$2; shift 2
  step "$name: cargo bench -p reeve-runtime --bench $name -- $*"
  (cd "$REPO" && cargo bench -q -p reeve-runtime --bench "$name" -- "$@") \
    > "$W/$out.txt" 2> "$W/$out.err" \
    || { echo "    $name bench failed:" >&2; tail -5 "$W/$out.err" >&2; }
  sed 's/^/    /' "$W/$out.txt" >&2
}
if has seccomp; then
  SQ=(); [ $QUICK = 1 ] && SQ=(--quick)
  bench_program seccomp seccomp-seccomp --json "$W/seccomp-seccomp.json" "${SQ[@]}"
fi
if has engine; then
  ER=200; [ $QUICK = 1 ] && ER=30
  bench_program engine engine --runs "$ER" --json "$W/engine.json"
fi

# the two VM parts run side by side (each qemu TCG vCPU is one host thread): ~12 min instead of
# ~22. Within-VM ratios stay comparable (every runtime shares the same contention); say so.
if has density; then
  step "VM: reeved density with cgroup limits, levels $VMLEVELS (budget ${VMBUDGET}s each); TCG, takes minutes"
  vm_run vm-density 4G $((300 + VMBUDGET * 2)) \
    "$REEVEC $REEVED $W/gw $W/now" \
    "$HERE/vm/density.sh" "$VMLEVELS" "$VMBUDGET" "$REEVED" "$W/gw" "$W/now" /var/lib/reeve-vm/rootfs
fi &
DENS_JOB=$!
if has vm; then
  step "VM: start latency with cgroup limits (floor, reevec, crun, runc), $VMRUNS runs each; TCG, takes minutes"
  vm_run vm-start 2G $((600 + VMRUNS * 40)) \
    "$REEVEC $W/floor /usr/bin/hyperfine $(command -v strace) $W/vmb:/bench-bundles" \
    "$HERE/vm/start.sh" "$VMRUNS" "$REEVEC" "$W/floor" /bench-bundles
fi
wait $DENS_JOB
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
step "report"
python3 "$HERE/report.py" "$W" "$HERE/results" "$RUNS" "$VMRUNS" "$LOAD_BEFORE" "$LOAD_AFTER" "$REEVEC" "$QUICK" \
  || { echo "report.py failed" >&2; exit 1; }
cat "$HERE/results/RESULTS.md"
step "done"
