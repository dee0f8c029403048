#!/bin/bash
# tests/engines/podman.sh: guest script (run by vm.sh). Drives Podman 4.3 (rootful, no daemon, no
# systemd: cgroupfs manager, file events backend, k8s-file logs, vfs storage on tmpfs) with
# `--runtime $RUNTIME_BIN`, one ROW line per step (see lib.sh), the same verbs as docker.sh.
# Networking: Debian's podman 4.3 has no netavark here, so it uses the CNI plugins in /usr/lib/cni
# (bridge, portmap, firewall, tuning, host-local) for its default "podman" network.
ENGINE=podman
SELF=$(readlink -f "$0")
. "$(dirname "$SELF")/lib.sh"
IMG=reeve.test/busybox:1
export CONTAINERS_CONF=/run/podman-engines.conf
cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
log_driver = "k8s-file"
[engine]
events_logger = "file"
cgroup_manager = "cgroupfs"
CONF
P=(podman --runtime "$RUNTIME_BIN" --storage-driver vfs --cgroup-manager cgroupfs --events-backend file
   --root /var/lib/containers/storage --runroot /run/containers/storage)
pm() { to 60 "${P[@]}" "$@"; }
cstate() { "${P[@]}" inspect -f '{{.State.Status}}' "$1" 2>&1; }

t_info() {
  local o; o=$(pm info -f '{{.Host.CgroupsVersion}} {{.Host.OCIRuntime.Path}} {{.Store.GraphDriverName}} {{.Host.NetworkBackend}}' 2>&1) || fail "podman info: $(echo "$o" | oneline)"
  expect "podman info" "^v2 $RUNTIME_BIN vfs " "$o"; ok "cgroups, runtime, driver, network = $o"
}
t_load() {
  local o; o=$(to 120 "${P[@]}" load -i "$ENGINE_IMAGES/busybox.tar" 2>&1) || fail "podman load: $(echo "$o" | oneline)"
  pm image exists "$IMG" || fail "$IMG not in podman images after load: $(echo "$o" | oneline)"
  ok "$(echo "$o" | tail -1 | oneline)"
}
t_run() {
  local o; o=$(pm run --rm "$IMG" sh -c 'echo hello-from-$(hostname) $((6*7))' 2>&1) || fail "podman run: $(echo "$o" | oneline)"
  expect "output" '^hello-from-[0-9a-f]{12} 42$' "$o"; ok "$o"
}
t_run_d() {
  local o; o=$(pm run -d --name main1 "$IMG" sh -c 'echo started-main1; exec sleep 1000' 2>&1) || fail "podman run -d: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = running ] || fail "state $(cstate main1)"
  ok "running, pid $("${P[@]}" inspect -f '{{.State.Pid}}' main1)"
}
t_runtime() {
  local id; id=$("${P[@]}" inspect -f '{{.Id}}' main1 2>&1) || fail "podman inspect main1: $id"
  runtime_state "$id" "" /run/$RUNTIME
}
t_exec() {
  local o; o=$(pm exec main1 sh -c 'echo exec-in-$(cat /proc/1/comm)' 2>&1) || fail "podman exec: $(echo "$o" | oneline)"
  expect "output" '^exec-in-sleep$' "$o"; ok "$o"
}
t_exec_t() {
  local o; o=$(pm exec -t main1 tty 2>&1) || fail "podman exec -t: $(echo "$o" | oneline)"
  expect "tty" '/dev/pts/[0-9]+' "$o"; no_errors "the engine" "$o"; ok "$(echo "$o" | oneline)"
}
t_exec_d() {
  local o; o=$(pm exec -d main1 sh -c 'echo detached > /tmp/execd' 2>&1) || fail "podman exec -d: $(echo "$o" | oneline)"
  retry 10 sh -c '"$@" exec main1 cat /tmp/execd 2>/dev/null | grep -q detached' _ "${P[@]}" || fail "/tmp/execd never written"
  ok "detached exec wrote /tmp/execd"
}
t_logs() {
  local o; o=$(pm logs main1 2>&1) || fail "podman logs: $(echo "$o" | oneline)"
  expect "logs" '^started-main1$' "$o"; ok "$o"
}
t_pause() {
  local o; o=$(pm pause main1 2>&1) || fail "podman pause: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = paused ] || fail "state after pause: $(cstate main1)"
  local f; f=$(grep -l '^1$' /sys/fs/cgroup/libpod_parent/libpod-*/cgroup.freeze /sys/fs/cgroup/machine.slice/libpod-*/cgroup.freeze 2>/dev/null | head -1)
  [ -n "$f" ] || fail "no container cgroup with cgroup.freeze=1"
  o=$(pm unpause main1 2>&1) || fail "podman unpause: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = running ] || fail "state after unpause: $(cstate main1)"
  o=$(pm exec main1 echo alive 2>&1); expect "exec after unpause" '^alive$' "$o"
  ok "paused ($f=1), unpaused, exec works"
}
t_stop() {
  local o; o=$(pm stop -t 2 main1 2>&1) || fail "podman stop: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = exited ] || fail "state after stop: $(cstate main1)"
  ok "exited, code $("${P[@]}" inspect -f '{{.State.ExitCode}}' main1)"
}
t_restart() {
  local o p1 p2; p1=$("${P[@]}" inspect -f '{{.State.StartedAt}}' main1)
  o=$(pm restart -t 2 main1 2>&1) || fail "podman restart: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = running ] || fail "state after restart: $(cstate main1)"
  p2=$("${P[@]}" inspect -f '{{.State.StartedAt}}' main1)
  [ "$p1" != "$p2" ] || fail "StartedAt unchanged ($p1)"
  o=$(pm exec main1 echo alive 2>&1); expect "exec after restart" '^alive$' "$o"
  ok "running again, pid $("${P[@]}" inspect -f '{{.State.Pid}}' main1)"
}
t_kill() {
  local o; o=$(pm kill main1 2>&1) || fail "podman kill: $(echo "$o" | oneline)"
  retry 10 sh -c '[ "$("$@" inspect -f {{.State.Status}} main1)" = exited ]' _ "${P[@]}" || fail "state after kill: $(cstate main1)"
  local c; c=$("${P[@]}" inspect -f '{{.State.ExitCode}}' main1)
  [ "$c" = 137 ] || fail "exit code $c, not 137"
  ok "exited 137"
}
t_rm() {
  local o; o=$(pm rm main1 2>&1) || fail "podman rm: $(echo "$o" | oneline)"
  pm container exists main1 && fail "main1 still exists"
  ok "removed"
}
# --memory, --pids-limit and --cpus in one container; three rows
t_limits() {
  pm run --rm --memory 64m --pids-limit 42 --cpus 0.5 "$IMG" \
    sh -c 'cd /sys/fs/cgroup && echo "memory.max=$(cat memory.max) pids.max=$(cat pids.max) cpu.max=$(cat cpu.max)"' \
    >"$STEP_DIR/limits.txt" 2>"$STEP_DIR/limits.err" || fail "podman run --memory --pids-limit --cpus: $(oneline <"$STEP_DIR/limits.err")"
  ok "$(cat "$STEP_DIR/limits.txt")"
}
limit_row() { # KEY REGEX
  [ -s "$STEP_DIR/limits.txt" ] || fail "the limits container did not run: $(oneline <"$STEP_DIR/limits.err" 2>/dev/null)"
  local v; v=$(grep -oE "$1=[^=]*( |$)" "$STEP_DIR/limits.txt" | sed 's/ $//')
  expect "$1" "^$1=$2\$" "$v"; ok "$v"
}
t_memory() { limit_row memory.max 67108864; }
t_pids() { limit_row pids.max 42; }
t_cpus() { limit_row cpu.max '50000 100000'; }
t_net_none() {
  local o; o=$(pm run --rm --network none "$IMG" sh -c 'ls /sys/class/net' 2>&1) || fail "podman run --network none: $(echo "$o" | oneline)"
  expect "interfaces" '^lo$' "$o"; ok "interfaces: $o"
}
t_bridge_port() {
  local o; o=$(pm run -d --name web -p 127.0.0.1:18081:8080 "$IMG" \
    sh -c 'echo web-ok-$(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp' 2>&1) || fail "podman run -p: $(echo "$o" | oneline)"
  local ip; ip=$("${P[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' web)
  [ -n "$ip" ] || fail "no bridge IP address for the container"
  retry 30 http_get 18081 /index.html >/tmp/web.out 2>&1 || fail "http://127.0.0.1:18081 unreachable: $(oneline </tmp/web.out)"
  o=$(sed -n '/^web-ok/p' /tmp/web.out); expect "page" '^web-ok-' "$o"
  ok "container $ip, 127.0.0.1:18081 -> '$o'"
}
t_net_host() {
  local o; o=$(pm run --rm --network host "$IMG" sh -c 'ls /sys/class/net | tr "\n" " "' 2>&1) || fail "podman run --network host: $(echo "$o" | oneline)"
  expect "interfaces" 'dummy0' "$o"; ok "interfaces: $o"
}
t_cleanup() {
  pm rm -f -t 1 web >/dev/null 2>&1
  local left; left=$("${P[@]}" ps -aq | wc -l)
  [ "$left" = 0 ] || fail "$left containers left: $("${P[@]}" ps -a | oneline)"
  ok "no containers left"
}

lib_main "$@"

# a host-only interface, so that --network host can be told apart from a fresh netns
ip link add dummy0 type dummy 2>/dev/null; ip link set dummy0 up 2>/dev/null
step info 90 t_info
step load 150 t_load
step run 90 t_run
step run-d 90 t_run_d
step runtime 60 t_runtime
step exec 60 t_exec
step exec-t 60 t_exec_t
step exec-d 60 t_exec_d
step logs 60 t_logs
step pause-unpause 120 t_pause
step stop 90 t_stop
step restart 120 t_restart
step kill 60 t_kill
step rm 60 t_rm
step limits 90 t_limits
step memory 10 t_memory
step pids-limit 10 t_pids
step cpus 10 t_cpus
step network-none 90 t_net_none
step bridge-port 120 t_bridge_port
step network-host 90 t_net_host
step cleanup 60 t_cleanup
echo "podman.sh: $STEPS_FAILED step(s) failed under $RUNTIME"
exit 0
