#!/bin/bash
# tests/engines/cri.sh: guest script (run by vm.sh). Drives containerd 1.6's CRI plugin the way a
# Kubernetes node does (kubelet -> CRI gRPC -> containerd -> containerd-shim-runc-v2 -> runtime), with
# /usr/local/bin/reeve-cri (tests/cri-client) as the CRI client, through one pod's lifecycle. One ROW
# line per step (see lib.sh).
#
# Both runtimes go through the same CRI runtime handler "reeve" (runtime_type io.containerd.runc.v2,
# options.BinaryName = $RUNTIME_BIN), as a RuntimeClass would select it; only the binary differs.
#
# Network: containerd 1.6 fails RunPodSandbox with "failed to find network info for sandbox" unless
# the CNI result has an address on eth0, and it adds a loopback network of its own: a conflist with
# only `loopback` cannot start any pod. So the conflist is `ptp` + `host-local` (a veth pair, no
# iptables): the pod gets its own netns with lo and eth0.
#
# CRI_TRACE=1 (e.g. ENGINES_ENV=CRI_TRACE=1) puts a wrapper between the shim and $RUNTIME_BIN that
# logs every call's arguments and exit status to /tmp/cri/runtime-calls.log; the pod-pid step then
# also checks the exit status of the shim's `kill --all ID 9` after the init exited.
ENGINE=cri
SELF=$(readlink -f "$0")
. "$(dirname "$SELF")/lib.sh"

export DAEMON_LOG=/tmp/containerd.log
SOCK=/run/containerd/containerd.sock
export CONTAINER_RUNTIME_ENDPOINT=unix://$SOCK
CRI_DIR=/tmp/cri                       # configs written by this script
SHIM_ROOT=/run/containerd/runc/k8s.io  # the shim's --root for the runtime (namespace k8s.io)
CG_PARENT=/reeve-cri                   # cgroup_parent of the pod: containers are $CG_PARENT/<id>
LOG_DIR=/var/log/pods/default_reeve-pod_uid-1
IMG=${CRI_IMAGE:-reeve.test/busybox:1}
PAUSE_IMG=${CRI_PAUSE_IMAGE:-reeve.test/pause:1}
MEM=67108864      # 64 MiB, container A's memory limit
MEM2=100663296    # 96 MiB, after `update`

cri() { to 90 reeve-cri --timeout 60 "$@"; }
id_of() { cat "$STEP_DIR/$1.id" 2>/dev/null; }
# ids NAME...: sets $NAME to the id an earlier step saved (pod, a, b, c), or fails the step
ids() { local n v; for n in "$@"; do v=$(id_of "$n"); [ -n "$v" ] || fail "no $n id (an earlier step failed)"; printf -v "$n" %s "$v"; done; }
field() { cri "$1" --field "$2" "$3" 2>&1; }              # inspect|inspectp FIELD ID
fieldq() { cri "$1" --field "$2" "$3" 2>/dev/null || true; } # the same, empty when absent
snapshotter() { if grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null; then echo overlayfs; else echo native; fi; }

write_configs() {
  mkdir -p "$CRI_DIR" /etc/cni/net.d /etc/containerd "$LOG_DIR" /var/lib/cni
  local snap bin=$RUNTIME_BIN; snap=$(snapshotter)
  if [ "${CRI_TRACE:-0}" = 1 ]; then
    bin=$CRI_DIR/runtime-trace
    printf '#!/bin/sh\n"%s" "$@"\nrc=$?\necho "rc=$rc $*" >> %s/runtime-calls.log\nexit $rc\n' "$RUNTIME_BIN" "$CRI_DIR" > "$bin"
    chmod 755 "$bin"
  fi
  cat > /etc/containerd/config.toml <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snap"
    default_runtime_name = "reeve"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.reeve]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.reeve.options]
        BinaryName = "$bin"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
EOF
  cat > /etc/cni/net.d/10-reeve.conflist <<'EOF'
{
  "cniVersion": "0.4.0",
  "name": "reeve-cri",
  "plugins": [
    { "type": "ptp", "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.88.77.0/24" }]] } }
  ]
}
EOF
  cat > "$CRI_DIR/pod.json" <<EOF
{
  "metadata": { "name": "reeve-pod", "namespace": "default", "uid": "uid-1", "attempt": 0 },
  "hostname": "reeve-pod",
  "log_directory": "$LOG_DIR",
  "dns_config": { "servers": ["127.0.0.1"] },
  "linux": {
    "cgroup_parent": "$CG_PARENT",
    "security_context": { "namespace_options": { "network": "POD", "pid": "CONTAINER", "ipc": "POD" } }
  }
}
EOF
  # $1 name, $2 command (JSON array), $3 extra "linux" members, $4 pid namespace mode (CONTAINER)
  ctr_json() {
    cat > "$CRI_DIR/$1.json" <<EOF
{
  "metadata": { "name": "$1" },
  "image": { "image": "$IMG" },
  "command": $2,
  "log_path": "$1.log",
  "linux": {
    $3
    "security_context": { "namespace_options": { "network": "POD", "pid": "${4:-CONTAINER}", "ipc": "POD" } }
  }
}
EOF
  }
  # a: handles SIGTERM (graceful stop), memory limit; b: pid 1 ignores SIGTERM (stop must SIGKILL);
  # c: exits by itself with status 7
  ctr_json a '["/bin/sh", "-c", "echo hello-a; trap \"echo term-a; exit 0\" TERM; while :; do sleep 1; done"]' \
    "\"resources\": { \"memory_limit_in_bytes\": $MEM },"
  ctr_json b '["/bin/sleep", "100000"]' ""
  ctr_json c '["/bin/sh", "-c", "echo bye-c; exit 7"]' ""
  # d: in the pod's PID namespace, so the shim runs `kill --all d 9` once d's init has exited
  ctr_json d '["/bin/sleep", "100000"]' "" POD
}

t_containerd() {
  write_configs
  containerd --config /etc/containerd/config.toml --log-level debug >"$DAEMON_LOG" 2>&1 </dev/null &
  echo $! > /run/reeve-cri-containerd.pid
  retry 60 sh -c "[ -S $SOCK ] && ctr --address $SOCK version >/dev/null 2>&1" || fail "containerd did not answer within 60s"
  local snap i o names
  snap=$(snapshotter)
  for i in pause busybox; do
    o=$(to 120 ctr --address "$SOCK" -n k8s.io images import --snapshotter "$snap" "$ENGINE_IMAGES/$i.tar" 2>&1) \
      || fail "ctr images import $i.tar: $(echo "$o" | oneline)"
  done
  o=$(cri images -q 2>&1) || fail "reeve-cri images: $(echo "$o" | oneline)"
  names=$(cri images 2>&1 | grep -oE '"reeve\.test/[^"]+"' | tr -d '"' | sort | tr '\n' ' ')
  expect "CRI images" "$IMG" "$names"; expect "CRI images" "$PAUSE_IMG" "$names"
  ok "containerd up ($snap snapshotter), CRI sees: $names"
}

t_version() {
  local o; o=$(cri version 2>&1) || fail "reeve-cri version: $(echo "$o" | oneline)"
  expect "version" '"runtime_name": "containerd"' "$o"
  expect "version" '"runtime_api_version": "v1"' "$o"
  ok "$(echo "$o" | grep -E 'runtime_(name|version|api_version)' | tr -d '",' | oneline)"
}

t_runp() {
  local pod o st
  pod=$(cri runp --runtime reeve "$CRI_DIR/pod.json" 2>&1) || fail "runp: $(echo "$pod" | oneline 300)"
  echo "$pod" > "$STEP_DIR/pod.id"
  st=$(field inspectp state "$pod"); expect "pod state" '^SANDBOX_READY$' "$st"
  o=$(field inspectp runtime_handler "$pod"); expect "runtime handler" '^reeve$' "$o"
  local pid; pid=$(field inspectp pid "$pod"); expect "pause pid" '^[1-9][0-9]*$' "$pid"
  local bin; bin=$(fieldq inspectp /info/info/runtimeOptions/binary_name "$pod")
  ok "pod ${pod:0:12} $st, handler reeve, pause pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)), ip $(field inspectp ip "$pod")${bin:+, binary $bin}"
}

# create_start NAME: creates and starts container NAME in the pod, waits for RUNNING
create_start() {
  local pod id o
  ids pod
  id=$(cri create "$pod" "$CRI_DIR/$1.json" "$CRI_DIR/pod.json" 2>&1) || fail "create $1: $(echo "$id" | oneline 300)"
  echo "$id" > "$STEP_DIR/$1.id"
  o=$(cri start "$id" 2>&1) || fail "start $1: $(echo "$o" | oneline 300)"
}

t_create_a() {
  create_start a
  local id; id=$(id_of a)
  retry 10 sh -c "[ \"\$(reeve-cri inspect --field state $id 2>&1)\" = CONTAINER_RUNNING ]" || fail "state $(field inspect state "$id")"
  local pid; pid=$(field inspect pid "$id"); expect "pid" '^[1-9][0-9]*$' "$pid"
  retry 10 grep -q 'stdout F hello-a' "$LOG_DIR/a.log" || fail "no 'hello-a' in $LOG_DIR/a.log: $(oneline < "$LOG_DIR/a.log" 2>&1)"
  ok "a ${id:0:12} running, pid $pid, log has hello-a"
}

t_create_b() {
  create_start b
  local id pod n; id=$(id_of b); ids pod
  retry 10 sh -c "[ \"\$(reeve-cri inspect --field state $id 2>&1)\" = CONTAINER_RUNNING ]" || fail "state $(field inspect state "$id")"
  n=$(cri ps --pod "$pod" -q 2>&1 | wc -l)
  [ "$n" = 2 ] || fail "ps --pod lists $n running containers, not 2: $(cri ps --pod "$pod" -q 2>&1 | oneline)"
  ok "b ${id:0:12} running, pid $(field inspect pid "$id"); 2 running in the pod"
}

t_namespaces() {
  local pod a b pp pa pb ns l0 la lb host detail="" o
  ids pod a b
  pp=$(field inspectp pid "$pod"); pa=$(field inspect pid "$a"); pb=$(field inspect pid "$b")
  for ns in net ipc uts pid; do
    l0=$(readlink /proc/"$pp"/ns/$ns); la=$(readlink /proc/"$pa"/ns/$ns); lb=$(readlink /proc/"$pb"/ns/$ns)
    host=$(readlink /proc/1/ns/$ns)
    [ -n "$l0" ] && [ -n "$la" ] && [ -n "$lb" ] || fail "cannot read /proc/{$pp,$pa,$pb}/ns/$ns"
    [ "$l0" != "$host" ] || fail "the pause process is in the host's $ns namespace ($host)"
    case $ns in
      pid) [ "$la" != "$l0" ] && [ "$lb" != "$l0" ] && [ "$la" != "$lb" ] \
             || fail "pid namespaces not separate: pause $l0 a $la b $lb" ;;
      *) [ "$la" = "$l0" ] && [ "$lb" = "$l0" ] || fail "$ns not shared: pause $l0 a $la b $lb" ;;
    esac
  done
  # the same from inside: exec'd processes see the sandbox's netns and their own PID 1
  o=$(cri exec --sync --timeout 20 "$a" readlink /proc/self/ns/net 2>&1) || fail "exec readlink: $(echo "$o" | oneline)"
  [ "$o" = "$(readlink /proc/"$pp"/ns/net)" ] || fail "exec in a sees net $o, pause has $(readlink /proc/"$pp"/ns/net)"
  o=$(cri exec --sync --timeout 20 "$b" cat /proc/1/comm 2>&1) || fail "exec cat /proc/1/comm: $(echo "$o" | oneline)"
  expect "b's PID 1" '^sleep$' "$o"
  o=$(cri exec --sync --timeout 20 "$a" sh -c 'hostname; ls /sys/class/net | tr "\n" " "' 2>&1) || fail "exec hostname: $(echo "$o" | oneline)"
  expect "a's hostname" '^reeve-pod' "$o"
  ok "net/ipc/uts shared with pause, pid separate; b's PID 1 is sleep; a: $(echo "$o" | oneline)"
}

t_exec() {
  local a o rc
  ids a
  o=$(cri exec --sync --timeout 20 "$a" sh -c 'echo out-$((6*7)); echo err-1 >&2; exit 3' 2>"$STEP_DIR/exec.err")
  rc=$?
  [ "$rc" = 3 ] || fail "exit code $rc, not 3: stdout '$(echo "$o" | oneline)' stderr '$(oneline < "$STEP_DIR/exec.err")'"
  expect stdout '^out-42$' "$o"
  expect stderr '^err-1$' "$(cat "$STEP_DIR/exec.err")"
  ok "stdout out-42, stderr err-1, exit 3"
}

cg_file() { # PID FILE: the host path of FILE in PID's cgroup
  local p; p=$(sed -n 's/^0:://p' /proc/"$1"/cgroup)
  echo "/sys/fs/cgroup$p/$2"
}

t_resources() {
  local a pa f v o
  ids a; pa=$(field inspect pid "$a")
  f=$(cg_file "$pa" memory.max); v=$(cat "$f" 2>&1)
  case $f in /sys/fs/cgroup$CG_PARENT/*) ;; *) fail "a's cgroup $f is not under $CG_PARENT" ;; esac
  [ "$v" = "$MEM" ] || fail "$f = $v, not $MEM"
  o=$(cri exec --sync --timeout 20 "$a" cat /sys/fs/cgroup/memory.max 2>&1) || fail "exec cat memory.max: $(echo "$o" | oneline)"
  [ "$o" = "$MEM" ] || fail "memory.max inside a = $o, not $MEM"
  ok "memory.max = $v on the host (${f#/sys/fs/cgroup}) and inside"
}

t_update() {
  local a pa f v o
  ids a; pa=$(field inspect pid "$a")
  o=$(cri update "$a" --memory "$MEM2" 2>&1) || fail "update --memory: $(echo "$o" | oneline 300)"
  f=$(cg_file "$pa" memory.max); v=$(cat "$f" 2>&1)
  [ "$v" = "$MEM2" ] || fail "$f = $v after update, not $MEM2"
  o=$(field inspect memory_limit_in_bytes "$a")
  ok "memory.max = $v after UpdateContainerResources (status says $o)"
}

t_exited() {
  create_start c
  local c st code reason
  c=$(id_of c)
  retry 20 sh -c "[ \"\$(reeve-cri inspect --field state $c 2>&1)\" = CONTAINER_EXITED ]" || fail "state $(field inspect state "$c")"
  code=$(field inspect exit_code "$c"); reason=$(field inspect reason "$c")
  [ "$code" = 7 ] || fail "exit code $code, not 7 (reason $reason)"
  grep -q 'stdout F bye-c' "$LOG_DIR/c.log" || fail "no 'bye-c' in $LOG_DIR/c.log"
  ok "c exited by itself: exit code $code, reason $reason"
}

t_pod_pid() {
  create_start d
  local d pod pd pp o r
  ids pod d
  retry 10 sh -c "[ \"\$(reeve-cri inspect --field state $d 2>&1)\" = CONTAINER_RUNNING ]" || fail "state $(field inspect state "$d")"
  pd=$(field inspect pid "$d"); pp=$(field inspectp pid "$pod")
  [ "$(readlink /proc/"$pd"/ns/pid)" = "$(readlink /proc/"$pp"/ns/pid)" ] || fail "d is not in the pause's pid namespace"
  o=$(cri exec --sync --timeout 20 "$d" cat /proc/1/comm 2>&1) || fail "exec cat /proc/1/comm: $(echo "$o" | oneline)"
  expect "PID 1 seen by d" '^pause$' "$o"
  r=$(stop_one d 0 15) || { echo "$r"; exit 1; }
  # the shim's kill --all after the exit must not have failed
  o=$(grep -E "killall failed|failed to kill init's children" "$DAEMON_LOG" | grep -F "${d:0:12}" | tail -1)
  [ -z "$o" ] || fail "after d exited: $(echo "$o" | oneline 400)"
  if [ "${CRI_TRACE:-0}" = 1 ]; then
    o=$(grep -F "kill --all $d 9" "$CRI_DIR/runtime-calls.log" | sed "s/ --root .* kill --all [0-9a-f]* 9/ kill --all ${d:0:12} 9/" | tr '\n' ' ')
    [ -n "$o" ] || fail "the shim never ran kill --all $d 9"
    case $o in *rc=[1-9]*) fail "kill --all ${d:0:12} 9 failed ($o)" ;; esac
    r="$r; kill --all after exit: $o"
  fi
  o=$(cri rm "$d" 2>&1) || fail "rm d: $(echo "$o" | oneline 400)"
  ok "d shares the pause's pid namespace (PID 1 = pause); $r; kill --all after exit ok; removed"
}

# stop_one NAME GRACE LIMIT: StopContainer with GRACE seconds; must return within LIMIT seconds
stop_one() {
  local id t0 t1 o st
  id=$(id_of "$1"); [ -n "$id" ] || fail "no $1 id (an earlier step failed)"
  t0=$(date +%s)
  o=$(to $(($3 + 30)) reeve-cri --timeout "$3" stop --timeout "$2" "$id" 2>&1) || fail "stop $1 (grace ${2}s) after $(($(date +%s) - t0))s: $(echo "$o" | oneline 400)"
  t1=$(date +%s)
  st=$(field inspect state "$id")
  [ "$st" = CONTAINER_EXITED ] || fail "state after stop: $st"
  [ $((t1 - t0)) -le "$3" ] || fail "stop $1 took $((t1 - t0))s (limit $3s)"
  echo "$1 stopped in $((t1 - t0))s, exit code $(field inspect exit_code "$id")"
}

t_stop() {
  local r1 r2 r3
  r1=$(stop_one a 30 15) || { echo "$r1"; exit 1; }
  r2=$(stop_one b 2 15) || { echo "$r2"; exit 1; }
  r3=$(stop_one c 5 10) || { echo "$r3"; exit 1; }
  ok "$r1 (SIGTERM); $r2 (SIGKILL after 2s); $r3 (already exited)"
}

t_rm() {
  local pod n x o a b c
  ids pod a b c
  for x in "$a" "$b" "$c"; do
    o=$(cri rm "$x" 2>&1) || fail "rm ${x:0:12}: $(echo "$o" | oneline 400)"
  done
  n=$(cri ps -a --pod "$pod" -q 2>&1 | wc -l)
  [ "$n" = 0 ] || fail "$n containers left in the pod: $(cri ps -a --pod "$pod" -q | oneline)"
  ok "a, b, c removed; ps -a lists none"
}

t_stopp() {
  local pod o st pp
  ids pod; pp=$(field inspectp pid "$pod")
  o=$(cri stopp "$pod" 2>&1) || fail "stopp: $(echo "$o" | oneline 400)"
  st=$(field inspectp state "$pod")
  [ "$st" = SANDBOX_NOTREADY ] || fail "pod state after stopp: $st"
  [ ! -e /proc/"$pp"/ns ] || fail "pause process $pp still alive"
  ok "pod $st, pause $pp gone"
}

t_rmp() {
  local pod o
  ids pod
  o=$(cri rmp "$pod" 2>&1) || fail "rmp: $(echo "$o" | oneline 400)"
  o=$(cri inspectp "$pod" 2>&1) && fail "pod still there after rmp: $(echo "$o" | oneline)"
  ok "pod removed ($(echo "$o" | grep -oE 'code = [A-Za-z]+'))"
}

leftovers() {
  local o
  o=$(reeve-cri pods -q 2>&1); [ -z "$o" ] || echo "pods: $(echo "$o" | oneline)"
  o=$(reeve-cri ps -a -q 2>&1); [ -z "$o" ] || echo "containers: $(echo "$o" | oneline)"
  o=$(ls -A "$SHIM_ROOT" 2>/dev/null); [ -z "$o" ] || echo "state under $SHIM_ROOT: $(echo "$o" | oneline)"
  o=$(pgrep -f containerd-shim); [ -z "$o" ] || echo "shim processes: $(echo "$o" | oneline)"
  o=$(find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | grep -v "^/sys/fs/cgroup$CG_PARENT\$"); [ -z "$o" ] || echo "cgroups: $(echo "$o" | oneline 300)"
  o=$(grep -E '/run/containerd/io\.containerd\.(runtime|grpc)|/run/netns/' /proc/mounts | cut -d' ' -f2); [ -z "$o" ] || echo "mounts: $(echo "$o" | oneline 300)"
}

t_clean() {
  local o
  retry 15 sh -c "[ -z \"\$(bash $SELF --run-step leftovers)\" ]"
  o=$(leftovers)
  [ -z "$o" ] || fail "$(echo "$o" | oneline 400)"
  local calls=""
  if [ "${CRI_TRACE:-0}" = 1 ] && [ -f "$CRI_DIR/runtime-calls.log" ]; then
    # every runtime call that failed, verb and id only (some are expected, e.g. delete of a gone task)
    o=$(grep -v '^rc=0 ' "$CRI_DIR/runtime-calls.log" | sed -E 's/ --root [^ ]+ --log [^ ]+ --log-format json//; s/([0-9a-f]{12})[0-9a-f]{52}/\1/g' | oneline 400)
    calls="; $(wc -l < "$CRI_DIR/runtime-calls.log") runtime calls, failed: ${o:-none}"
  fi
  ok "no pods, containers, runtime state in $SHIM_ROOT, shims, container cgroups or mounts left$calls"
}

lib_main "$@"

step containerd 180 t_containerd
step version 60 t_version
step runp 150 t_runp
step create-a 150 t_create_a
step create-b 150 t_create_b
step namespaces 120 t_namespaces
step exec 60 t_exec
step resources 60 t_resources
step update 60 t_update
step exited 150 t_exited
step pod-pid 150 t_pod_pid
step stop 150 t_stop
step rm 120 t_rm
step stopp 120 t_stopp
step rmp 90 t_rmp
step clean 60 t_clean
if [ -f /run/reeve-cri-containerd.pid ]; then
  p=$(cat /run/reeve-cri-containerd.pid)
  kill "$p" 2>/dev/null
  for _ in $(seq 30); do [ -e /proc/"$p" ] || break; sleep 1; done
fi
echo "cri.sh: $STEPS_FAILED step(s) failed under $RUNTIME"
exit 0
