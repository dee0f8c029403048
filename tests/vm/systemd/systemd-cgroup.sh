#!/bin/bash
# tests/vm/systemd/systemd-cgroup.sh: the systemd cgroup driver, in the systemd VM (guest
# script for tests/vm/systemd/run.sh). The same bundle (cgroupsPath slice:prefix:name, memory,
# pids and cpu limits) runs under `reevec --systemd-cgroup` and `runc --systemd-cgroup`; for
# each, every check prints `CHECK <runtime>/<name> ok|FAIL <detail>`:
#   the transient scope is active with the init in it; its unit properties (MemoryMax,
#   TasksMax, CPUQuotaPerSecUSec) and its files (memory.max, pids.max, cpu.max) hold the
#   limits; `systemctl daemon-reload` changes none of them; `update --memory` changes both the
#   property and the file, and survives another daemon-reload; exec works; delete stops the
#   scope and leaves no cgroup. Then the two runtimes' values are compared.
# Run it on the host (as root): it boots the systemd VM (tests/vm/systemd/run.sh) on itself
# with target/release/reevec, the host's runc and busybox. Ends with "N passed, M failed" and
# exits 1 when anything failed.
set -u
if [ "${REEVE_IN_SYSTEMD_VM:-0}" != 1 ]; then
  HERE=$(cd "$(dirname "$0")" && pwd)
  TOP=$(cd "$HERE/../../.." && pwd)
  REEVEC=$TOP/target/release/reevec
  RUNC=$(command -v runc || ls /usr/sbin/runc 2>/dev/null)
  [ -x "$REEVEC" ] || { echo "systemd-cgroup.sh: build $REEVEC first (cargo build --release -p reeve-runtime)" >&2; exit 126; }
  [ -n "$RUNC" ] || { echo "systemd-cgroup.sh: no runc on the host (apt-get install runc)" >&2; exit 126; }
  export VM_FILES="${VM_FILES:-} $REEVEC:/reeve-vm/bin/reevec $RUNC:/reeve-vm/bin/runc /bin/busybox:/reeve-vm/bin/busybox"
  export VM_TIMEOUT=${VM_TIMEOUT:-400}
  exec "$HERE/run.sh" "$HERE/systemd-cgroup.sh"
fi
BIN=/reeve-vm/bin
pass=0
fail=0
# Every runtime call is time-boxed: a hang is a FAIL with its name, not a dead VM.
to() { timeout -k 5 60 "$@"; }
check() { # NAME OK(0/1) DETAIL
  if [ "$2" = 0 ]; then echo "CHECK $1 ok $3"; pass=$((pass + 1))
  else echo "CHECK $1 FAIL $3"; fail=$((fail + 1)); fi
}

B=$(mktemp -d /tmp/sdcg.XXXXXX)
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/dev" "$B/rootfs/sys" "$B/rootfs/tmp"
cp "$BIN/busybox" "$B/rootfs/bin/busybox"
for a in sh sleep cat echo; do ln -s busybox "$B/rootfs/bin/$a"; done
echo "bundle in $B"
to "$BIN/reevec" spec --bundle "$B" || { echo "reevec spec failed"; exit 1; }
# The runtime's own spec with a cgroupsPath, limits and a long sleep: exact-line edits of its
# pretty-printed JSON (2 spaces: top-level keys; 4 spaces: fields of linux and process).
spec_with() { # CGROUPS_PATH
  "$BIN/busybox" sed \
    -e '/^  "linux": {$/a\    "cgroupsPath": "'"$1"'",' \
    -e 's/^    "resources": {$/    "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 42}, "cpu": {"quota": 50000, "period": 100000},/' \
    -e '/^    "args": \[$/{n;s/.*/      "sleep", "300"/}' \
    "$B/config.json.orig" > "$B/config.json"
}
cp "$B/config.json" "$B/config.json.orig"

prop() { systemctl show "$1" -p "$2" --value 2>/dev/null; }
file() { cat "/sys/fs/cgroup/system.slice/$1/$2" 2>/dev/null; }

declare -A VALUES
for rt in reevec runc; do
  id="c-$rt"
  unit="reeve-test-$id.scope"
  echo "== $rt"
  spec_with "system.slice:reeve-test:$id"
  R=(--root "/run/sdcg-$rt" --systemd-cgroup)
  # The init inherits create's stdio: a file, not a $(...) pipe that would stay open.
  to "$BIN/$rt" "${R[@]}" create --bundle "$B" "$id" >"$B/$rt.create.out" 2>&1 </dev/null
  check "$rt/create" $? "$(cat "$B/$rt.create.out")"
  out=$(to "$BIN/$rt" "${R[@]}" start "$id" 2>&1)
  check "$rt/start" $? "$out"
  pid=$(to "$BIN/$rt" "${R[@]}" state "$id" | "$BIN/busybox" sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
  state=$(systemctl is-active "$unit" 2>&1)
  [ "$state" = active ]; check "$rt/scope-active" $? "$unit: $state"
  cg=$(cat "/proc/$pid/cgroup" 2>/dev/null)
  [ "$cg" = "0::/system.slice/$unit" ]; check "$rt/init-in-scope" $? "pid $pid: $cg"
  p="$(prop "$unit" MemoryMax) $(prop "$unit" TasksMax) $(prop "$unit" CPUQuotaPerSecUSec)"
  [ "$p" = "67108864 42 500ms" ]; check "$rt/properties" $? "MemoryMax TasksMax CPUQuotaPerSecUSec = $p"
  f="$(file "$unit" memory.max) $(file "$unit" pids.max) $(file "$unit" cpu.max)"
  [ "$f" = "67108864 42 50000 100000" ]; check "$rt/files" $? "memory.max pids.max cpu.max = $f"
  systemctl daemon-reload
  f2="$(file "$unit" memory.max) $(file "$unit" pids.max) $(file "$unit" cpu.max)"
  [ "$f2" = "$f" ]; check "$rt/daemon-reload-keeps-files" $? "after daemon-reload: $f2"
  out=$(to "$BIN/$rt" "${R[@]}" update --memory 134217728 "$id" 2>&1)
  check "$rt/update" $? "$out"
  u="$(prop "$unit" MemoryMax) $(file "$unit" memory.max)"
  [ "$u" = "134217728 134217728" ]; check "$rt/update-applied" $? "MemoryMax memory.max = $u"
  systemctl daemon-reload
  u2="$(prop "$unit" MemoryMax) $(file "$unit" memory.max)"
  [ "$u2" = "$u" ]; check "$rt/update-survives-reload" $? "after daemon-reload: $u2"
  out=$(to "$BIN/$rt" "${R[@]}" exec "$id" echo exec-ok 2>&1)
  [ "$out" = exec-ok ]; check "$rt/exec" $? "$out"
  out=$(to "$BIN/$rt" "${R[@]}" delete --force "$id" 2>&1)
  check "$rt/delete" $? "$out"
  sleep 1
  state=$(systemctl is-active "$unit" 2>&1)
  [ "$state" != active ] && [ ! -d "/sys/fs/cgroup/system.slice/$unit" ]
  check "$rt/scope-gone" $? "$unit: ${state:-none}, dir $(ls -d /sys/fs/cgroup/system.slice/$unit 2>&1)"
  VALUES[$rt]="$p | $f | $u"
done
[ "${VALUES[reevec]}" = "${VALUES[runc]}" ]
check "reevec-equals-runc" $? "reevec: ${VALUES[reevec]}; runc: ${VALUES[runc]}"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
