#!/bin/bash
# benches/supervisor-100.sh [N]: how long reeved takes to bring N tenants (default 100) from
# nothing to "running", and reeved's own memory at that point. Root only.
#
# Builds reeved and reevec (release; PROFILE=debug for the dev build), makes N tenants on a
# temporary data root with a tiny busybox gateway, starts `reeved run`, polls `reeved status
# --json` until every gateway runs, then prints the time, reeved's VmRSS/VmHWM and thread count,
# the sum of the sandboxes' RSS, and the time of the SIGTERM shutdown. Nothing is asserted.
#
# On a host without cgroup v2 controllers (the hybrid development machines) reeved runs with
# allow_no_limits (said in the output); on a cgroup v2 host it enforces limits and creates
# a cgroup per tenant below its own cgroup (run it in a scratch scope, e.g.
# `systemd-run --scope -p Delegate=yes benches/supervisor-100.sh`).
#
# Environment: CARGO_TARGET_DIR (default target), PROFILE (release), PARALLEL (reeved's
# max_parallel_starts, default 8), KEEP=1 keeps the temporary directory.
set -euo pipefail
N=${1:-100}
PROFILE=${PROFILE:-release}
PARALLEL=${PARALLEL:-8}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
[ "$(id -u)" = 0 ] || { echo "supervisor-100.sh: run as root" >&2; exit 2; }
BUSYBOX=$(command -v busybox) || { echo "supervisor-100.sh: needs busybox(-static)" >&2; exit 2; }

flag=--release; [ "$PROFILE" = debug ] && flag=
(cd "$REPO" && cargo build -q $flag -p reeve-runtime -p reeve-supervisor)
REEVED=$TARGET/$PROFILE/reeved
[ -x "$TARGET/$PROFILE/reevec" ] || { echo "no reevec next to $REEVED" >&2; exit 1; }

TOP=$(mktemp -d -t reeved-bench.XXXXXX)
chmod 711 "$TOP"
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $TOP"; else rm -rf "$TOP"; fi
}
trap cleanup EXIT

mkdir -p "$TOP/rootfs/bin" "$TOP/gateway" "$TOP/layer1"
cp "$BUSYBOX" "$TOP/rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$TOP/rootfs/bin/$a"; done
cat > "$TOP/gateway/gw.sh" <<'EOF'
#!/bin/sh
trap 'exit 0' TERM
while :; do sleep 60 & wait $!; done
EOF
chmod -R a+rX "$TOP/rootfs" "$TOP/gateway" "$TOP/layer1"
cat > "$TOP/reeved.toml" <<EOF
data_root = "$TOP/data"
state_dir = "$TOP/state"
layer1_dir = "$TOP/layer1"
allow_no_limits = true
max_parallel_starts = $PARALLEL

[gateway]
command = ["/bin/sh", "/opt/gateway/gw.sh"]
dir = "$TOP/gateway"
rootfs = "$TOP/rootfs"

[limits]
memory = "64M"
pids = 64
cpu = 0.25

[restart]
stop_grace_ms = 5000
EOF
R() { "$REEVED" --config "$TOP/reeved.toml" "$@"; }

for i in $(seq 1 "$N"); do R tenant create "t$i" >/dev/null; done
running() { R status --json 2>/dev/null | grep -c '"phase": "running"' || true; }

now() { date +%s.%N; }
T0=$(now)
REEVED_LOG=warn "$REEVED" --config "$TOP/reeved.toml" run >"$TOP/reeved.log" 2>&1 &
PID=$!
while :; do
  n=$(running)
  [ "$n" -ge "$N" ] && break
  kill -0 "$PID" 2>/dev/null || { echo "reeved died:"; cat "$TOP/reeved.log"; exit 1; }
  sleep 0.2
done
T1=$(now)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$PID/status")
# the sandbox inits are reeved's children (reparented to it, a subreaper, when `create` exits)
sb_rss=0
for c in $(cat "/proc/$PID/task/"*/children 2>/dev/null); do
  r=$(awk '/^VmRSS/ {print $2}' "/proc/$c/status" 2>/dev/null || echo 0)
  sb_rss=$((sb_rss + ${r:-0}))
done
summary=$(R status --json | grep '"summary"' | sed 's/.*"summary": //')
T2=$(now)
kill -TERM "$PID"
wait "$PID" || true
PID=""
T3=$(now)
awk -v n="$N" -v t0="$T0" -v t1="$T1" -v t2="$T2" -v t3="$T3" -v rss="$rss" -v hwm="$hwm" \
  -v th="$threads" -v sb="$sb_rss" -v p="$PROFILE" -v par="$PARALLEL" -v s="$summary" 'BEGIN {
  printf "reeved (%s build, max_parallel_starts %d): %d tenants running after %.2f s (%.1f ms/tenant)\n", p, par, n, t1 - t0, (t1 - t0) * 1000 / n
  printf "reeved memory at that point: VmRSS %.1f MiB, VmHWM %.1f MiB, %d threads\n", rss / 1024, hwm / 1024, th
  printf "sandbox inits (direct children of reeved): %.1f MiB RSS in total\n", sb / 1024
  printf "status: %s\n", s
  printf "SIGTERM to exit (all %d stopped): %.2f s\n", n, t3 - t2
}'
