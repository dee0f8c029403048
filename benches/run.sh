#!/bin/bash
# benches/run.sh [--quick]: the benchmark suite (issue 7), host part. One command:
#   bash benches/run.sh            # 200 runs per figure
#   bash benches/run.sh --quick    # 30 runs per figure
# Writes benches/results/RESULTS.md (p50/p90/p99, stddev, ratios, machine, load) and
# benches/results/start.svg (chart drawn by benches/report.py). Never fails on a number.
#
# Start latency, same /bin/true busybox bundle, same hyperfine session:
#   reevec run | reevec create+start+delete | crun run | crun create+start+delete | floor
# floor = benches/floor/floor.c: clone with the bundle's namespaces + pivot_root + exec, no runtime.
# crun refuses hybrid-cgroup hosts: everything runs inside `unshare -m` with an empty ro tmpfs
# over /sys/fs/cgroup (no cgroup is created by anybody). runc has no cgroup-less mode: VM only.
set -euo pipefail
RUNS=200
[ "${1:-}" = "--quick" ] && RUNS=30
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
if [ -z "${REEVEC:-}" ]; then
  echo "==> building reevec (release)" >&2
  (cd "$REPO" && cargo build --release -q -p reeve-runtime)
  REEVEC=$TARGET/release/reevec
fi
for t in hyperfine crun gcc python3 strace; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install $t)" >&2; exit 2; }
done
W=$(mktemp -d -t reeve-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
gcc -O2 -o "$W/floor" "$HERE/floor/floor.c"
B=$W/bundle
mkdir -p "$B/rootfs"/{bin,proc,dev,sys,tmp,etc}
cp /bin/busybox "$B/rootfs/bin/busybox"
ln -s busybox "$B/rootfs/bin/true"
"$REEVEC" spec --bundle "$B"
python3 - "$B/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["ociVersion"] = "1.0.2"          # crun 1.8.1 refuses newer versions
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
json.dump(c, open(p, "w"))
PY
# a second bundle whose process stays up, for the teardown figure
B2=$W/bundle2
mkdir -p "$B2"
ln -s "$B/rootfs" "$B2/rootfs"
python3 - "$B/config.json" "$B2/config.json" <<'PY2'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/sleep", "1000"]
json.dump(c, open(sys.argv[2], "w"))
PY2
ln -s busybox "$B/rootfs/bin/sleep"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
R="$REEVEC --root $W/rr"
C="crun --cgroup-manager=disabled --root $W/cr"
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
echo "==> hyperfine, $RUNS runs each" >&2
unshare -m --propagation private bash "$W/bench.sh"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$HERE/report.py" "$W" "$HERE/results" "$RUNS" "$LOAD_BEFORE" "$LOAD_AFTER" "$REEVEC"
cat "$HERE/results/RESULTS.md"
