#!/bin/bash
# tests/engines/docker.sh: guest script (run by vm.sh). Drives Docker 20.10 (dockerd with its own
# containerd, vfs storage on tmpfs, iptables on) with $RUNTIME_BIN as the OCI runtime, through the
# verbs a user types, one ROW line per step (see lib.sh). The runtime comes from
# /etc/docker/daemon.json exactly as the README shows it ("runtimes": {"reeve": {"path": ...}},
# "default-runtime": "reeve"); under runc the same file names docker's own runc as the default.
ENGINE=docker
SELF=$(readlink -f "$0")
. "$(dirname "$SELF")/lib.sh"
IMG=reeve.test/busybox:1
export DAEMON_LOG=/tmp/dockerd.log
export DOCKER_HOST=unix:///run/docker.sock
if [ "$RUNTIME" = runc ]; then DRT=runc; else DRT=reeve; fi

cstate() { docker inspect -f '{{.State.Status}}' "$1" 2>&1; }

t_daemon() {
  mkdir -p /etc/docker
  printf '{\n  "runtimes": { "reeve": { "path": "/usr/local/bin/reevec" } },\n  "default-runtime": "%s"\n}\n' \
    "$DRT" > /etc/docker/daemon.json
  dockerd --config-file /etc/docker/daemon.json --storage-driver vfs --data-root /var/lib/docker \
    --exec-root /run/docker --host "$DOCKER_HOST" --pidfile /run/docker.pid --iptables=true \
    --ip-masq=true --log-level info >"$DAEMON_LOG" 2>&1 </dev/null &
  retry 90 docker version >/dev/null 2>&1 || fail "dockerd did not answer within 90s"
  local rt; rt=$(docker info -f '{{.DefaultRuntime}} {{.CgroupVersion}} {{.Driver}}' 2>&1)
  expect "docker info" "^$DRT 2 vfs" "$rt"
  ok "dockerd up: default runtime, cgroup version, driver = $rt"
}
t_load() {
  local o; o=$(to 120 docker load -i "$ENGINE_IMAGES/busybox.tar" 2>&1) || fail "docker load: $(echo "$o" | oneline)"
  docker image inspect "$IMG" >/dev/null 2>&1 || fail "$IMG not in docker images after load: $(echo "$o" | oneline)"
  ok "$(echo "$o" | oneline)"
}
t_run() {
  local o; o=$(to 60 docker run --rm "$IMG" sh -c 'echo hello-from-$(hostname) $((6*7))' 2>&1) || fail "docker run: $(echo "$o" | oneline)"
  expect "output" '^hello-from-[0-9a-f]{12} 42$' "$o"; ok "$o"
}
t_run_d() {
  local o; o=$(to 60 docker run -d --name main1 "$IMG" sh -c 'echo started-main1; exec sleep 1000' 2>&1) || fail "docker run -d: $(echo "$o" | oneline)"
  retry 10 sh -c '[ "$(docker inspect -f {{.State.Status}} main1)" = running ]' || fail "state $(cstate main1)"
  ok "running, pid $(docker inspect -f '{{.State.Pid}}' main1)"
}
t_runtime() {
  local id; id=$(docker inspect -f '{{.Id}} {{.HostConfig.Runtime}}' main1 2>&1) || fail "docker inspect main1: $id"
  [ "${id#* }" = "$DRT" ] || fail "HostConfig.Runtime is '${id#* }', not $DRT"
  # dockerd 20.10 gives containerd-shim-runc-v2 the root runtime-runc for every runtime (newer
  # releases say so in defaultV2ShimConfig); runtime-<name> is tried too
  runtime_state "${id%% *}" /run/docker/runtime-runc/moby /run/docker/runtime-$DRT/moby
}
t_exec() {
  local o; o=$(to 30 docker exec main1 sh -c 'echo exec-in-$(cat /proc/1/comm)' 2>&1) || fail "docker exec: $(echo "$o" | oneline)"
  expect "output" '^exec-in-sleep$' "$o"; ok "$o"
}
t_exec_t() {
  local o; o=$(to 30 docker exec -t main1 tty 2>&1) || fail "docker exec -t: $(echo "$o" | oneline)"
  expect "tty" '/dev/pts/[0-9]+' "$o"; no_errors "the engine" "$o"; ok "$(echo "$o" | oneline)"
}
t_exec_d() {
  local o; o=$(to 30 docker exec -d main1 sh -c 'echo detached > /tmp/execd' 2>&1) || fail "docker exec -d: $(echo "$o" | oneline)"
  retry 10 sh -c 'docker exec main1 cat /tmp/execd 2>/dev/null | grep -q detached' || fail "/tmp/execd never written"
  ok "detached exec wrote /tmp/execd"
}
t_logs() {
  local o; o=$(to 30 docker logs main1 2>&1) || fail "docker logs: $(echo "$o" | oneline)"
  expect "logs" '^started-main1$' "$o"; ok "$o"
}
t_pause() {
  local o; o=$(to 30 docker pause main1 2>&1) || fail "docker pause: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = paused ] || fail "state after pause: $(cstate main1)"
  local cg; cg=$(cat /sys/fs/cgroup/system.slice/docker-*.scope/cgroup.freeze /sys/fs/cgroup/docker/*/cgroup.freeze 2>/dev/null | head -1)
  [ "$cg" = 1 ] || fail "cgroup.freeze of the container is '$cg', not 1"
  o=$(to 30 docker unpause main1 2>&1) || fail "docker unpause: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = running ] || fail "state after unpause: $(cstate main1)"
  o=$(to 30 docker exec main1 echo alive 2>&1); expect "exec after unpause" '^alive$' "$o"
  ok "paused (cgroup.freeze=1), unpaused, exec works"
}
t_stop() {
  local o; o=$(to 60 docker stop -t 2 main1 2>&1) || fail "docker stop: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = exited ] || fail "state after stop: $(cstate main1)"
  ok "exited, code $(docker inspect -f '{{.State.ExitCode}}' main1)"
}
t_restart() {
  local o p1 p2; p1=$(docker inspect -f '{{.State.StartedAt}}' main1)
  o=$(to 60 docker restart -t 2 main1 2>&1) || fail "docker restart: $(echo "$o" | oneline)"
  [ "$(cstate main1)" = running ] || fail "state after restart: $(cstate main1)"
  p2=$(docker inspect -f '{{.State.StartedAt}}' main1)
  [ "$p1" != "$p2" ] || fail "StartedAt unchanged ($p1)"
  o=$(to 30 docker exec main1 echo alive 2>&1); expect "exec after restart" '^alive$' "$o"
  ok "running again, pid $(docker inspect -f '{{.State.Pid}}' main1)"
}
t_kill() {
  local o; o=$(to 30 docker kill main1 2>&1) || fail "docker kill: $(echo "$o" | oneline)"
  retry 10 sh -c '[ "$(docker inspect -f {{.State.Status}} main1)" = exited ]' || fail "state after kill: $(cstate main1)"
  local c; c=$(docker inspect -f '{{.State.ExitCode}}' main1)
  [ "$c" = 137 ] || fail "exit code $c, not 137"
  ok "exited 137"
}
t_rm() {
  local o; o=$(to 30 docker rm main1 2>&1) || fail "docker rm: $(echo "$o" | oneline)"
  docker container inspect main1 >/dev/null 2>&1 && fail "main1 still exists after docker rm returned: $(docker inspect -f 'status={{.State.Status}} dead={{.State.Dead}} removal-in-progress={{.State.RemovalInProgress}}' main1 2>&1 | oneline)"
  ok "removed"
}
# --memory, --pids-limit and --cpus in one container (each docker run costs ~15 s under TCG); three rows
t_limits() {
  to 60 docker run --rm --memory 64m --pids-limit 42 --cpus 0.5 "$IMG" \
    sh -c 'cd /sys/fs/cgroup && echo "memory.max=$(cat memory.max) pids.max=$(cat pids.max) cpu.max=$(cat cpu.max)"' \
    >"$STEP_DIR/limits.txt" 2>"$STEP_DIR/limits.err" || fail "docker run --memory --pids-limit --cpus: $(oneline <"$STEP_DIR/limits.err")"
  ok "$(cat "$STEP_DIR/limits.txt")"
}
limit_row() { # FILE-KEY REGEX
  [ -s "$STEP_DIR/limits.txt" ] || fail "the limits container did not run: $(oneline <"$STEP_DIR/limits.err" 2>/dev/null)"
  local v; v=$(grep -oE "$1=[^=]*( |$)" "$STEP_DIR/limits.txt" | sed 's/ $//')
  expect "$1" "^$1=$2\$" "$v"; ok "$v"
}
t_memory() { limit_row memory.max 67108864; }
t_pids() { limit_row pids.max 42; }
t_cpus() { limit_row cpu.max '50000 100000'; }
t_net_none() {
  local o; o=$(to 60 docker run --rm --network none "$IMG" sh -c 'ls /sys/class/net' 2>&1) || fail "docker run --network none: $(echo "$o" | oneline)"
  expect "interfaces" '^lo$' "$o"; ok "interfaces: $o"
}
t_bridge_port() {
  local o; o=$(to 60 docker run -d --name web -p 127.0.0.1:18080:8080 "$IMG" \
    sh -c 'echo web-ok-$(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp' 2>&1) || fail "docker run -p: $(echo "$o" | oneline)"
  local ip; ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' web)
  [ -n "$ip" ] || fail "no bridge IP address for the container"
  retry 30 http_get 18080 /index.html >/tmp/web.out 2>&1 || fail "http://127.0.0.1:18080 unreachable: $(oneline </tmp/web.out)"
  o=$(sed -n '/^web-ok/p' /tmp/web.out); expect "page" '^web-ok-' "$o"
  iptables -t nat -S DOCKER 2>/dev/null | grep -q 'dport 18080' || fail "no DNAT rule for 18080 in iptables -t nat DOCKER"
  ok "container $ip, 127.0.0.1:18080 -> '$o', DNAT rule present"
}
t_net_host() {
  local o; o=$(to 60 docker run --rm --network host "$IMG" sh -c 'ls /sys/class/net | tr "\n" " "' 2>&1) || fail "docker run --network host: $(echo "$o" | oneline)"
  expect "interfaces" 'docker0' "$o"; ok "interfaces: $o"
}
t_cleanup() {
  docker rm -f web >/dev/null 2>&1
  local left; left=$(docker ps -aq | wc -l)
  [ "$left" = 0 ] || fail "$left containers left: $(docker ps -a | oneline)"
  ok "no containers left"
}

lib_main "$@"

step daemon 120 t_daemon
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
if [ -f /run/docker.pid ]; then
  kill "$(cat /run/docker.pid)" 2>/dev/null
  for _ in $(seq 30); do [ -e /proc/"$(cat /run/docker.pid 2>/dev/null)" ] || break; sleep 1; done
fi
echo "docker.sh: $STEPS_FAILED step(s) failed under $RUNTIME"
exit 0
