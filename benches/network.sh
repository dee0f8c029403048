#!/bin/bash
# benches/network.sh [N_SETUP] [N_TENANTS]: per-tenant network timings (issue 5), as root.
#   bash benches/network.sh            # 200 single set-ups, 100 tenants
# 1. Time to set up one tenant's network: network/examples/setup_bench.rs, N_SETUP tenants set
#    up one after the other with Network::setup_tenant (veth, address, routes, lo, nft rules),
#    in a network namespace the example makes for itself. Median, p90, max.
# 2. Time to start N_TENANTS networked tenants: reeved (allow_no_limits, busybox gateway
#    serving HTTP on :8080) run inside a network namespace made here (`ip netns add`), from
#    `reeved run` to every tenant running, then to every tenant answering HTTP on its address;
#    the same without [network] for comparison; then SIGTERM to everything stopped.
# Nothing touches the machine's own interfaces or firewall. Prints numbers; never fails on one.
set -uo pipefail
N_SETUP=${1:-200}
N=${2:-100}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in nft ip nsenter python3 busybox; do
  command -v $t >/dev/null || { echo "missing $t" >&2; exit 2; }
done
echo "==> building (release)" >&2
(cd "$REPO" && cargo build --release -q -p reeve-runtime -p reeve-supervisor \
  && cargo build --release -q -p reeve-network --example setup_bench) || { echo "build failed" >&2; exit 2; }
REEVED=$TARGET/release/reeved

echo "== 1. one tenant's network (Network::setup_tenant, $N_SETUP tenants, one at a time)"
"$TARGET/release/examples/setup_bench" "$N_SETUP"

W=$(mktemp -d -t reeve-netbench.XXXXXX)
chmod 711 "$W"
NS=reeve-netbench-$$
cleanup() {
  [ -n "${RPID:-}" ] && kill -KILL "$RPID" 2>/dev/null
  for p in $(grep -l "REEVE_BENCH_ID=$NS" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
    kill -KILL "$p" 2>/dev/null
  done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "$W/rootfs/bin" "$W/rootfs/tmp" "$W/gw" "$W/l1"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
for a in sh mkdir echo sleep httpd; do ln -s busybox "$W/rootfs/bin/$a"; done
cat > "$W/gw/gw.sh" <<'GW'
#!/bin/sh
trap 'exit 0' TERM
mkdir -p /tmp/www && echo "hello from $REEVE_TENANT" > /tmp/www/index.html
httpd -p 8080 -h /tmp/www
while :; do sleep 5 & wait $!; done
GW
chmod -R a+rX "$W/rootfs" "$W/gw" "$W/l1"

# config MODE(on|off) DIR
config() {
  cat <<CFG
data_root = "$2/data"
state_dir = "$2/state"
layer1_dir = "$W/l1"
allow_no_limits = true
max_parallel_starts = 8

[gateway]
command = ["/bin/sh", "/opt/gateway/gw.sh"]
env = ["REEVE_BENCH_ID=$NS"]
dir = "$W/gw"
rootfs = "$W/rootfs"

[network]
enabled = $([ "$1" = on ] && echo true || echo false)
bridge = "rvbench0"
subnet = "10.78.0.0/16"
domain = "gw.bench"
CFG
}

now() { date +%s.%N; }
count_running() {
  "$REEVED" --config "$1" status --json 2>/dev/null | python3 -c '
import json, sys
try: v = json.load(sys.stdin)
except Exception: print(0); sys.exit()
print(sum(1 for t in v["tenants"] if t["phase"] == "running"))'
}

for mode in on off; do
  D=$W/$mode
  mkdir -p "$D"
  chmod 711 "$D"
  config $mode "$D" > "$D/reeved.toml"
  for i in $(seq 1 $N); do "$REEVED" --config "$D/reeved.toml" tenant create "t$i" >/dev/null || exit 1; done
  echo "== 2. $N tenants, network $mode: reeved run inside netns $NS"
  T0=$(now)
  REEVED_LOG=warn nsenter --net=/run/netns/$NS -- "$REEVED" --config "$D/reeved.toml" run > "$D/reeved.log" 2>&1 &
  RPID=$!
  while :; do
    c=$(count_running "$D/reeved.toml")
    [ "$c" -ge "$N" ] && break
    kill -0 $RPID 2>/dev/null || { echo "reeved died:"; tail "$D/reeved.log"; exit 1; }
    if python3 -c "import sys; sys.exit(0 if float('$(now)') - $T0 > 600 else 1)"; then
      echo "timeout: $c of $N running"; break
    fi
    sleep 0.1
  done
  T1=$(now)
  python3 -c "print('  all %d running after %.2f s' % ($N, $T1 - $T0))"
  if [ $mode = on ]; then
    # every gateway answering on its address (from the host-side namespace)
    "$REEVED" --config "$D/reeved.toml" routes --json > "$D/routes.json"
    nsenter --net=/run/netns/$NS -- python3 - "$D/routes.json" "$T0" <<'PY'
import json, socket, sys, time
routes = json.load(open(sys.argv[1]))["routes"]
t0 = float(sys.argv[2])
left = {r["tenant"]: r["upstream"] for r in routes}
deadline = time.time() + 120
while left and time.time() < deadline:
    for t, up in list(left.items()):
        host, port = up.split(":")
        try:
            s = socket.create_connection((host, int(port)), timeout=1)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if ("hello from " + t).encode() in s.recv(4096):
                del left[t]
            s.close()
        except OSError:
            pass
    time.sleep(0.05)
print("  all %d answering HTTP on their addresses after %.2f s%s" % (
    len(routes), time.time() - t0, "" if not left else " (%d never answered)" % len(left)))
PY
    echo "  nft: $(nsenter --net=/run/netns/$NS -- nft list ruleset | grep -c 'chain from-') tenant chains; bridge ports: $(ip -n $NS -o link show master rvbench0 | wc -l)"
    echo "  reeved RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$RPID/status)"
  fi
  T2=$(now)
  kill -TERM $RPID
  wait $RPID
  T3=$(now)
  python3 -c "print('  SIGTERM to all stopped (and network removed): %.2f s' % ($T3 - $T2))"
  RPID=
done
