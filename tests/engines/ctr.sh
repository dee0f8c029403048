#!/bin/bash
# tests/engines/ctr.sh: guest script (run by vm.sh). Starts containerd 1.6 (CRI plugin off) and drives
# it with `ctr`, which runs every container through containerd-shim-runc-v2 with
# `--runc-binary $RUNTIME_BIN`, the way a Kubernetes node calls a runc replacement. The container
# verbs run once with the native and once with the overlayfs snapshotter (rows "native/run", ...).
# One ROW line per step (see lib.sh).
ENGINE=ctr
SELF=$(readlink -f "$0")
. "$(dirname "$SELF")/lib.sh"
IMG=reeve.test/busybox:1
export DAEMON_LOG=/tmp/containerd.log
CFG=/run/containerd-engines.toml
C=(ctr --address /run/containerd/containerd.sock)
R=(--runc-binary "$RUNTIME_BIN")
c() { to 60 "${C[@]}" "$@"; }
# task_status ID: RUNNING, PAUSED, STOPPED, ... or nothing
task_status() { "${C[@]}" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
nprocs() { "${C[@]}" task ps "$1" 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/' | wc -l; }

t_daemon() {
  cat > "$CFG" <<'TOML'
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "/run/containerd/containerd.sock"
TOML
  containerd --config "$CFG" --log-level info >"$DAEMON_LOG" 2>&1 </dev/null &
  echo $! > /run/containerd-engines.pid
  retry 60 "${C[@]}" version >/dev/null 2>&1 || fail "containerd did not answer within 60s"
  ok "containerd $("${C[@]}" version 2>/dev/null | awk '/Version/ { print $2 }' | tail -1) up"
}
t_import() {
  local o; o=$(to 120 "${C[@]}" images import "$ENGINE_IMAGES/busybox.tar" 2>&1) || fail "ctr images import: $(echo "$o" | oneline)"
  "${C[@]}" images ls -q | grep -qx "$IMG" || fail "$IMG not in ctr images ls: $(echo "$o" | oneline)"
  ok "$(echo "$o" | oneline)"
}
# the verbs, for snapshotter $SN; the long-running container is c-$SN
t_run() {
  local o; o=$(c run --rm "${R[@]}" --snapshotter "$SN" "$IMG" run-$SN sh -c 'echo hello-from-$(hostname) $((6*7))' 2>&1) || fail "ctr run: $(echo "$o" | oneline)"
  expect "output" '^hello-from-[a-z0-9-]+ 42$' "$o"; ok "$o"
}
t_run_d() {
  local o; o=$(c run -d "${R[@]}" --snapshotter "$SN" "$IMG" c-$SN sh -c 'echo started; exec sleep 1000' 2>&1) || fail "ctr run -d: $(echo "$o" | oneline)"
  retry 10 sh -c '[ "$1" = RUNNING ]' _ "$(task_status c-$SN)" || fail "task status '$(task_status c-$SN)'"
  ok "RUNNING, pid $("${C[@]}" task ls | awk -v id=c-$SN '$1 == id { print $2 }')"
}
t_runtime() { runtime_state c-$SN /run/containerd/runc/default; }
t_exec() {
  local o; o=$(c task exec --exec-id e1 c-$SN sh -c 'echo exec-in-$(cat /proc/1/comm)' 2>&1) || fail "ctr task exec: $(echo "$o" | oneline)"
  expect "output" '^exec-in-sleep$' "$o"; ok "$o"
}
t_exec_t() {
  local o; o=$(tty_run "${C[@]}" task exec -t --exec-id e2 c-$SN tty 2>&1) || fail "ctr task exec -t: $(echo "$o" | oneline)"
  expect "tty" '/dev/pts/[0-9]+' "$o"; no_errors "the engine" "$o"; ok "$(echo "$o" | oneline)"
}
t_exec_d_kill() {
  local o; o=$(c task exec -d --exec-id e3 c-$SN sleep 600 2>&1) || fail "ctr task exec -d: $(echo "$o" | oneline)"
  retry 10 sh -c '[ "$1" -ge 2 ]' _ "$(nprocs c-$SN)" || fail "ctr task ps shows $(nprocs c-$SN) processes, not 2"
  o=$(c task kill --exec-id e3 -s SIGKILL c-$SN 2>&1) || fail "ctr task kill --exec-id: $(echo "$o" | oneline)"
  local i n; for i in $(seq 20); do n=$(nprocs c-$SN); [ "$n" = 1 ] && break; sleep 0.5; done
  [ "$n" = 1 ] || fail "after kill --exec-id e3: $n processes"
  ok "exec -d e3 ran, kill --exec-id e3 removed it"
}
t_pause() {
  local o f=/sys/fs/cgroup/default/c-$SN/cgroup.freeze
  o=$(c task pause c-$SN 2>&1) || fail "ctr task pause: $(echo "$o" | oneline)"
  [ "$(task_status c-$SN)" = PAUSED ] || fail "status after pause '$(task_status c-$SN)'"
  [ "$(cat $f 2>&1)" = 1 ] || fail "$f is '$(cat $f 2>&1)', not 1"
  o=$(c task resume c-$SN 2>&1) || fail "ctr task resume: $(echo "$o" | oneline)"
  [ "$(task_status c-$SN)" = RUNNING ] || fail "status after resume '$(task_status c-$SN)'"
  o=$(c task exec --exec-id e4 c-$SN echo alive 2>&1); expect "exec after resume" '^alive$' "$o"
  ok "PAUSED ($f=1), RUNNING again, exec works"
}
t_kill_all() {
  local o; o=$(c task kill --all -s SIGKILL c-$SN 2>&1) || fail "ctr task kill --all: $(echo "$o" | oneline)"
  local i s; for i in $(seq 20); do s=$(task_status c-$SN); [ "$s" = STOPPED ] && break; sleep 0.5; done
  [ "$s" = STOPPED ] || fail "status after kill --all '$s'"
  ok "STOPPED"
}
t_rm() {
  local o; o=$(c task rm c-$SN 2>&1) || fail "ctr task rm: $(echo "$o" | oneline)"
  o=$(c containers rm c-$SN 2>&1) || fail "ctr c rm: $(echo "$o" | oneline)"
  "${C[@]}" containers ls -q | grep -qx c-$SN && fail "container c-$SN still listed"
  [ -e /sys/fs/cgroup/default/c-$SN ] && fail "cgroup /sys/fs/cgroup/default/c-$SN left behind"
  ok "task and container removed, cgroup gone"
}
t_run_t() {
  local o; o=$(tty_run "${C[@]}" run -t --rm "${R[@]}" --snapshotter "$SN" "$IMG" t-$SN tty 2>&1) || fail "ctr run -t: $(echo "$o" | oneline)"
  expect "tty" '/dev/pts/[0-9]+' "$o"; no_errors "the engine" "$o"; ok "$(echo "$o" | oneline)"
}
t_memory() {
  local o v f=/sys/fs/cgroup/default/mem/memory.max
  o=$(c run -d "${R[@]}" --memory-limit 67108864 "$IMG" mem sleep 1000 2>&1) || fail "ctr run --memory-limit: $(echo "$o" | oneline)"
  v=$(cat $f 2>&1)
  o=$(c task exec --exec-id m1 mem cat /proc/self/cgroup 2>&1)
  c task kill --all -s SIGKILL mem >/dev/null 2>&1; retry 10 sh -c '[ "$1" = STOPPED ]' _ "$(task_status mem)"
  c task rm -f mem >/dev/null 2>&1; c containers rm mem >/dev/null 2>&1
  [ "$v" = 67108864 ] || fail "$f is '$v'"
  expect "/proc/self/cgroup in the container" '^0::/default/mem$' "$o"
  ok "$f=$v, container in $(echo "$o" | oneline)"
}
t_cleanup() {
  local left; left=$("${C[@]}" containers ls -q | wc -l)
  [ "$left" = 0 ] || fail "$left containers left: $("${C[@]}" containers ls -q | oneline)"
  ok "no containers left"
}

lib_main "$@"

step daemon 90 t_daemon
step import 150 t_import
for SN in native overlayfs; do
  export SN
  step $SN/run 90 t_run
  step $SN/run-d 90 t_run_d
  step $SN/runtime 60 t_runtime
  step $SN/exec 60 t_exec
  step $SN/exec-t 60 t_exec_t
  step $SN/exec-d+kill 90 t_exec_d_kill
  step $SN/pause-resume 90 t_pause
  step $SN/kill-all 60 t_kill_all
  step $SN/rm 60 t_rm
  step $SN/run-t 90 t_run_t
done
step memory-limit 120 t_memory
step cleanup 30 t_cleanup
if [ -f /run/containerd-engines.pid ]; then kill "$(cat /run/containerd-engines.pid)" 2>/dev/null; sleep 1; fi
echo "ctr.sh: $STEPS_FAILED step(s) failed under $RUNTIME"
exit 0
