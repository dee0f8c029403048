#!/bin/bash
# benches/start.sh [RUNS]: start latency of `reevec run` of a busybox /bin/true bundle against
# `crun run` of the same bundle, in the same run, on this host. Writes
# benches/results/start-host.md (p50/p90/p99 and ratios) and prints it.
#
# crun refuses hybrid cgroup hosts; as the machines doc says, it runs inside `unshare -m` with an
# empty read-only tmpfs over /sys/fs/cgroup. Both runtimes get the same bundle (no cgroup mount,
# no limits), so neither creates a cgroup. runc has no cgroup-less mode: it is measured in the VM.
set -euo pipefail
RUNS=${1:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
echo "==> building reevec (release)" >&2
(cd "$REPO" && cargo build --release -q -p reeve-runtime)
REEVEC=$TARGET/release/reevec
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install hyperfine)" >&2; exit 2; }
command -v crun >/dev/null || { echo "install crun (apt-get install crun)" >&2; exit 2; }
W=$(mktemp -d -t reeve-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
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
c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
json.dump(c, open(p, "w"))
PY
cat > "$W/bench.sh" <<SH
set -e
mount -t tmpfs -o ro tmpfs /sys/fs/cgroup
cd "$B"
hyperfine -N --warmup 20 --runs $RUNS --export-json "$W/start.json" \\
  -n "reevec run" "$REEVEC --root $W/reevec-root run --bundle $B bench-r" \\
  -n "crun run" "crun --cgroup-manager=disabled --root $W/crun-root run --bundle $B bench-c" >&2
SH
echo "==> hyperfine, $RUNS runs each" >&2
unshare -m --propagation private bash "$W/bench.sh"
OUT=$HERE/results/start-host.md
python3 - "$W/start.json" "$OUT" "$RUNS" <<'PY'
import json, sys, statistics, platform, subprocess
data = json.load(open(sys.argv[1]))["results"]
def pct(xs, p):
    xs = sorted(xs); k = (len(xs) - 1) * p / 100; f = int(k); c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)
rows = {}
for r in data:
    t = [x * 1000 for x in r["times"]]
    rows[r["command"]] = (pct(t, 50), pct(t, 90), pct(t, 99), statistics.pstdev(t))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [f"# Start latency on the host ({sys.argv[3]} runs each, one hyperfine session)", "",
         f"Machine: {cpu}, {subprocess.getoutput('nproc')} cores, kernel {platform.release()}.", "",
         "| runtime | p50 ms | p90 ms | p99 ms | stddev ms |", "|---|---|---|---|---|"]
for name, (a, b, c, d) in rows.items():
    lines.append(f"| {name} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} |")
r, c = rows["reevec run"][0], rows["crun run"][0]
lines += ["", f"reevec p50 / crun p50 = {r / c:.2f} (crun is {c / r:.2f}x slower)"]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
