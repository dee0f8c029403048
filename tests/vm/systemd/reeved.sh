#!/bin/bash
# tests/vm/systemd/reeved.sh [DEB]
#
# The guest side of the systemd VM test (run it with tests/vm/systemd/run.sh, see
# tests/vm/systemd/run-all.sh): reeved.service from the reeve .deb, installed the way a user
# does, under systemd as PID 1 on a pure cgroup v2 host.
#
#   apt install ./reeve_*.deb; write /etc/reeve/reeved.toml; reeved tenant create alpha|beta;
#   systemctl enable --now reeved
#
# then proves: READY=1 only once both tenants run (systemctl start returns with them running),
# STATUS= in systemctl show/status, reeved alone in its (leaf) unit cgroup and each tenant in
# its transient scope reeve.slice/reeve-<name>.scope, limits in the scopes' files and unit
# properties (and unchanged by daemon-reload), gateways answer HTTP, logs reach the journal and
# each tenant's log file, `systemctl restart`, a SIGKILL of reeved and a watchdog kill of a
# SIGSTOPped reeved all keep every gateway (same pids, adopted, no duplicates, same limits),
# `systemctl stop` leaves no gateway, scope, cgroup, mount, netns or state, and `apt purge`
# removes the package's state but not the tenants' data.
#
# Each check prints `CHECK <name> ok` or `CHECK <name> FAIL <detail>`; each phase prints
# `TIME <phase> <seconds>`; the last line is `N passed, M failed`; exit 1 if any check failed.
# Refuses to run outside the systemd VM (it installs a package and starts services).
set -u -o pipefail

if [ "${REEVE_IN_SYSTEMD_VM:-0}" != 1 ] || [ "$(cat /proc/1/comm)" != systemd ]; then
  echo "reeved.sh: runs only in the systemd test VM (tests/vm/systemd/run.sh)" >&2
  exit 2
fi

PASS=0 FAIL=0
ok() { echo "CHECK $1 ok"; PASS=$((PASS + 1)); }
fail() { local n=$1; shift; echo "CHECK $n FAIL $*"; FAIL=$((FAIL + 1)); }
check() { # NAME DETAIL-ON-FAILURE COMMAND...
  local n=$1 d=$2; shift 2
  if "$@"; then ok "$n"; else fail "$n" "$d"; fi
}
now() { cut -d' ' -f1 /proc/uptime; }
T_PHASE=$(now)
phase() { # NAME: the time since the previous phase mark
  local t; t=$(now)
  awk -v a="$T_PHASE" -v b="$t" -v n="$1" 'BEGIN { printf "TIME %s %.1f\n", n, b-a }'
  T_PHASE=$t
}
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" = 0 ]
  exit $?
}

DEB=${1:-$(ls /root/reeve_*_amd64.deb 2>/dev/null | head -1)}
TENANTS="alpha beta"
UNIT_CG=/sys/fs/cgroup/system.slice/reeved.service
# cgroup_driver = "auto" under systemd: the tenants' cgroups are transient scopes in this slice
SLICE=reeve.slice
SLICE_CG=/sys/fs/cgroup/$SLICE
scope_of() { echo "reeve-$1.scope"; }
CFG=/etc/reeve/reeved.toml
DATA=/data/tenants
STATE=/run/reeve

# `reeved status --json` is pretty-printed, one key per line, keys sorted; the tenant objects are
# at brace depth 2 (limits and stats below them). tenant_fields KEY -> "name value" lines.
status_json() { reeved status --json 2>/dev/null; }
tenant_fields() {
  status_json | awk -v key="$1" '
    { line = $0 }
    depth == 2 && match(line, /^ *"[a-z_]+": /) {
      k = line; sub(/^ *"/, "", k); sub(/".*/, "", k)
      v = line; sub(/^ *"[a-z_]+": /, "", v); sub(/,$/, "", v); gsub(/"/, "", v)
      f[k] = v
    }
    { o = gsub(/\{/, "{", line); c = gsub(/\}/, "}", line)
      if (depth == 2 && depth - c + o < 2) { if ("name" in f) print f["name"], f[key]; delete f }
      depth += o - c }'
}
pids_of() { tenant_fields pid | sort | tr '\n' ' ' | sed 's/ $//'; } # -> "alpha 123 beta 456"
phase_of() { tenant_fields phase | awk -v t="$1" '$1 == t { print $2 }'; }
adopted_of() { tenant_fields adopted | awk -v t="$1" '$1 == t { print $2 }'; }
all_running() {
  local t
  for t in $TENANTS; do [ "$(phase_of "$t")" = running ] || return 1; done
}
gateway_count() { pgrep -c -f '^/bin/sh /opt/gateway/gw.sh' || true; }
main_pid() { systemctl show -p MainPID --value reeved; }
wait_for() { # SECONDS COMMAND...: poll every 0.5 s
  local until=$(( $(date +%s) + $1 )); shift
  while ! "$@"; do
    [ "$(date +%s)" -ge "$until" ] && return 1
    sleep 0.5
  done
}
diagnose() { # the unit's status and journal, when reeved is not active
  [ "$(systemctl is-active reeved)" = active ] && return 0
  systemctl status reeved --no-pager 2>&1 | sed 's/^/  | /'
  journalctl -u reeved --no-pager -o short-monotonic | tail -25 | sed 's/^/  journal: /'
}
limits_of() { # NAME -> "memory.max pids.max cpu.max" of the tenant's scope cgroup
  local d=$SLICE_CG/$(scope_of "$1")
  echo "$(cat "$d/memory.max" 2>/dev/null) $(cat "$d/pids.max" 2>/dev/null) $(cat "$d/cpu.max" 2>/dev/null)"
}
unit_limits_of() { # NAME -> "MemoryMax TasksMax" of the tenant's scope unit
  systemctl show "$(scope_of "$1")" -p MemoryMax -p TasksMax --value 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}
pid_of() { # NAME -> the gateway pid of NAME in "alpha 123 beta 456"
  echo "$2" | tr ' ' '\n' | awk -v t="$1" 'p == t { print; exit } { p = $0 }'
}
reeve_scopes() { # the reeve-*.scope units systemd knows (loaded, whatever their state)
  systemctl list-units --all --plain --no-legend 'reeve-*.scope' 2>/dev/null | awk '{ print $1 }' | tr '\n' ' '
}
scope_dirs() { find /sys/fs/cgroup -type d -name 'reeve-*.scope' 2>/dev/null | tr '\n' ' '; }
reeve_mounts() { grep -cE '/run/reeve|/run/reevec|/data/tenants' /proc/self/mountinfo || true; }
net_namespaces() { lsns -n -t net -o NS 2>/dev/null | sort -u | wc -l; }

echo "systemd $(systemctl --version | head -1 | cut -d' ' -f2), kernel $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
phase boot

# ---------------------------------------------------------------- install, as a user does
if [ -z "$DEB" ] || [ ! -f "$DEB" ]; then
  fail install "no reeve_*_amd64.deb (pass its guest path as the first argument)"
  finish
fi
DEB=$(readlink -f "$DEB")
# (the VM has no network: everything the package depends on must be in the image)
t0=$(now)
if out=$(DEBIAN_FRONTEND=noninteractive apt install -y "$DEB" 2>&1); then
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "TIME apt-install %.1f\n", b-a }'
  ok install
else
  fail install "apt install $DEB: $(echo "$out" | tail -5 | tr '\n' ' ')"
  finish
fi
files_ok=1
for f in /usr/bin/reeved /usr/bin/reevec /lib/systemd/system/reeved.service $CFG \
         /usr/share/reeve/seccomp/default.json; do
  [ -e "$f" ] || { files_ok=0; echo "  missing $f"; }
done
# (the image's dpkg excludes /usr/share/man: look in the package itself)
listing=$(dpkg-deb -c "$DEB")
for f in usr/share/man/man8/reeved.8.gz usr/share/man/man8/reevec.8.gz; do
  echo "$listing" | grep -q " ./$f\$" || { files_ok=0; echo "  not in the package: /$f"; }
done
check package-files "a packaged file is missing" [ $files_ok = 1 ]
check conffile "$CFG is not a conffile" sh -c "dpkg-query -W -f '\${Conffiles}' reeve | grep -q '$CFG'"
check not-enabled-on-install "is-enabled: $(systemctl is-enabled reeved 2>&1)" \
  [ "$(systemctl is-enabled reeved 2>&1)" = disabled ]
# (in a delegated cgroup, as reeved.service has: this test's own unit has no controllers)
out=$(systemd-run --quiet --wait --pipe --collect -p Delegate=yes /usr/bin/reeved check-config 2>&1)
if [ $? = 0 ] && echo "$out" | grep -q '^limits: ' && ! echo "$out" | grep -q 'NOT ENFORCED'; then
  ok default-config-valid
else
  fail default-config-valid "$(echo "$out" | tr '\n' ' ')"
fi
phase install

# ---------------------------------------------------------------- configure: gateway, 2 tenants
mkdir -p /opt/reeve/gateway
cat > /opt/reeve/gateway/gw.sh <<'EOF'
#!/bin/sh
# The tenants' gateway: busybox httpd on :8080 in the tenant's netns, a heartbeat in the log.
trap 'echo "gateway $REEVE_TENANT: SIGTERM, bye"; exit 0' TERM
n=$(cat /data/.starts 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > /data/.starts
echo "gateway $REEVE_TENANT up (start $n, pid $$, uid $(id -u))"
mkdir -p /tmp/www && echo "hello from $REEVE_TENANT" > /tmp/www/index.html
busybox httpd -f -p 8080 -h /tmp/www &
while :; do sleep 2 & wait $!; echo "gateway $REEVE_TENANT beat"; done
EOF
cat > $CFG <<EOF
# written by tests/vm/systemd/reeved.sh
data_root = "$DATA"
state_dir = "$STATE"
runtime = "builtin"
layer1_dir = "/etc/reeve/layer1"
allow_no_limits = false

[gateway]
command = ["/bin/sh", "/opt/gateway/gw.sh"]
dir = "/opt/reeve/gateway"
host_binds = ["/usr", "/lib", "/lib64", "/bin"]

[limits]
memory = "64M"
pids = 64
cpu = 0.5

[tenants.beta]
memory = "96M"

[restart]
stop_grace_ms = 5000
EOF
for t in $TENANTS; do
  if out=$(reeved tenant create $t 2>&1) && [ -d $DATA/$t ]; then ok "tenant-create-$t"; else fail "tenant-create-$t" "$out"; fi
done
BASE_NETNS=$(net_namespaces)
BASE_MOUNTS=$(reeve_mounts)
phase configure

# ---------------------------------------------------------------- start: READY only once tenants run
t0=$(now)
if systemctl enable --now reeved 2>/dev/null; then ok enable-now; else fail enable-now "$(systemctl status reeved --no-pager 2>&1 | tail -5 | tr '\n' ' ')"; fi
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "TIME systemctl-start-to-ready %.1f\n", b-a }'
# no waiting: when `systemctl start` returns (READY=1), both gateways must already run
P0=$(pids_of)
running_now=1
for t in $TENANTS; do
  p=$(phase_of $t)
  [ "$p" = running ] || { running_now=0; echo "  $t is '$p' right after systemctl start returned"; }
done
check ready-after-tenants-run "pids: '$P0'" [ $running_now = 1 ]
check active "$(systemctl is-active reeved)" [ "$(systemctl is-active reeved)" = active ]
ST=$(systemctl show -p StatusText --value reeved)
echo "  StatusText: $ST"
check status-text "StatusText='$ST'" [ "$ST" = "2 tenants: 2 running; limits enforced" ]
check systemctl-status "no Status: line" sh -c 'systemctl status reeved --no-pager 2>&1 | grep -q "Status: \"2 tenants: 2 running"'
systemctl status reeved --no-pager 2>&1 | sed -n '1,12p' | sed 's/^/  | /'
phase start

# ---------------------------------------------------------------- cgroups: reeved's leaf, tenant scopes, limits
# reeved stays in its unit cgroup, which stays a leaf with no controllers handed down (else
# cgroup v2 refuses to put a restarted reeved there: 219/CGROUP)
check supervisor-cgroup "reeved is in $(cat /proc/$(main_pid)/cgroup)" \
  [ "$(cat /proc/"$(main_pid)"/cgroup)" = "0::/system.slice/reeved.service" ]
check unit-cgroup-is-leaf "subtree_control '$(cat $UNIT_CG/cgroup.subtree_control 2>&1)', children: $(find $UNIT_CG -mindepth 1 -type d 2>/dev/null | tr '\n' ' ')" \
  eval '[ -z "$(cat $UNIT_CG/cgroup.subtree_control)" ] && [ -z "$(find $UNIT_CG -mindepth 1 -type d)" ]'
unit_procs=$(tr '\n' ' ' < $UNIT_CG/cgroup.procs 2>/dev/null | sed 's/ $//')
check unit-cgroup-only-reeved "cgroup.procs of reeved.service: '$unit_procs' (reeved $(main_pid))" [ "$unit_procs" = "$(main_pid)" ]
in_cg=1
for t in $TENANTS; do
  pid=$(pid_of $t "$P0")
  sc=$(scope_of $t)
  grep -qx "$pid" "$SLICE_CG/$sc/cgroup.procs" 2>/dev/null || { in_cg=0; echo "  $t pid '$pid' not in $SLICE_CG/$sc ($(cat /proc/$pid/cgroup 2>&1))"; }
  [ "$(systemctl is-active $sc)" = active ] || { in_cg=0; echo "  $sc: $(systemctl is-active $sc)"; }
  [ "$(systemctl show $sc -p Slice --value)" = $SLICE ] || { in_cg=0; echo "  $sc slice: $(systemctl show $sc -p Slice --value)"; }
done
check tenants-in-scopes "see above" [ $in_cg = 1 ]
LA=$(limits_of alpha); LB=$(limits_of beta)
echo "  alpha: $LA; beta: $LB"
check limits-alpha "alpha memory.max pids.max cpu.max = $LA" [ "$LA" = "67108864 64 50000 100000" ]
check limits-beta "beta memory.max pids.max cpu.max = $LB" [ "$LB" = "100663296 64 50000 100000" ]
UA=$(unit_limits_of alpha); UB=$(unit_limits_of beta)
echo "  $(scope_of alpha): $UA; $(scope_of beta): $UB (MemoryMax TasksMax)"
check unit-limits-alpha "$(scope_of alpha) MemoryMax TasksMax = $UA" [ "$UA" = "67108864 64" ]
check unit-limits-beta "$(scope_of beta) MemoryMax TasksMax = $UB" [ "$UB" = "100663296 64" ]
systemctl daemon-reload
sleep 2
check daemon-reload-keeps-limits "after daemon-reload: alpha $(limits_of alpha), beta $(limits_of beta)" \
  eval '[ "$(limits_of alpha)" = "$LA" ] && [ "$(limits_of beta)" = "$LB" ]'
check daemon-reload-keeps-unit-limits "after daemon-reload: alpha $(unit_limits_of alpha), beta $(unit_limits_of beta)" \
  eval '[ "$(unit_limits_of alpha)" = "$UA" ] && [ "$(unit_limits_of beta)" = "$UB" ]'
check daemon-reload-keeps-gateways "pids $(pids_of) (were $P0)" [ "$(pids_of)" = "$P0" ]
phase limits

# ---------------------------------------------------------------- gateways serve, logs
http_ok=1
for t in $TENANTS; do
  pid=$(pid_of $t "$P0")
  body=""
  wait_for 20 sh -c "reeved netns-http-get $pid 8080 2>/dev/null | grep -q 'hello from $t'" || http_ok=0
  body=$(reeved netns-http-get "$pid" 8080 2>&1 | head -1)
  echo "  $t: GET / in its netns -> $body"
done
check gateways-serve-http "a gateway did not answer" [ $http_ok = 1 ]
check journal "journalctl -u reeved has no 'reeved ready' line" sh -c 'journalctl -u reeved --no-pager -o cat | grep -q "reeved ready"'
journalctl -u reeved --no-pager -o cat | grep -m3 -E 'ready|started' | sed 's/^/  journal: /'
logs_ok=1
for t in $TENANTS; do
  grep -q "gateway $t up" "$STATE/logs/$t.log" 2>/dev/null || { logs_ok=0; echo "  no 'gateway $t up' in $STATE/logs/$t.log"; }
done
check tenant-log-files "see above" [ $logs_ok = 1 ]
check reeved-logs-cli "reeved logs alpha: $(reeved logs alpha -n 3 2>&1 | tail -1)" sh -c 'reeved logs alpha -n 20 | grep -q "gateway alpha"'
phase http-logs

# ---------------------------------------------------------------- systemctl restart: re-adoption
M0=$(main_pid)
t0=$(now)
systemctl restart reeved
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "TIME systemctl-restart %.1f\n", b-a }'
diagnose
M1=$(main_pid)
P1=$(pids_of)
check restart-new-reeved "MainPID $M0 -> $M1" eval '[ "$M1" != "$M0" ] && [ "$M1" != 0 ]'
check restart-same-gateways "pids '$P1' (were '$P0')" [ "$P1" = "$P0" ]
check restart-adopted "adopted: alpha=$(adopted_of alpha) beta=$(adopted_of beta)" \
  eval '[ "$(adopted_of alpha)" = true ] && [ "$(adopted_of beta)" = true ]'
check restart-no-duplicates "$(gateway_count) gateway processes" [ "$(gateway_count)" = 2 ]
check restart-keeps-limits "alpha $(limits_of alpha) / $(unit_limits_of alpha), beta $(limits_of beta) / $(unit_limits_of beta)" \
  eval '[ "$(limits_of alpha)" = "$LA" ] && [ "$(limits_of beta)" = "$LB" ] && [ "$(unit_limits_of alpha)" = "$UA" ] && [ "$(unit_limits_of beta)" = "$UB" ]'
check restart-unit-cgroup-is-leaf "reeved in $(cat /proc/$M1/cgroup 2>&1), children: $(find $UNIT_CG -mindepth 1 -type d 2>/dev/null | tr '\n' ' ')" \
  eval '[ "$(cat /proc/$M1/cgroup)" = "0::/system.slice/reeved.service" ] && [ -z "$(find $UNIT_CG -mindepth 1 -type d)" ]'
check restart-status-text "$(systemctl show -p StatusText --value reeved)" \
  [ "$(systemctl show -p StatusText --value reeved)" = "2 tenants: 2 running; limits enforced" ]
phase restart

# ---------------------------------------------------------------- crash: SIGKILL of reeved
# Restart=always: systemd starts a new reeved in the same unit cgroup (a delegated inner node
# would fail it with 219/CGROUP), which adopts the running gateways
NR0=$(systemctl show -p NRestarts --value reeved)
systemctl kill --kill-whom=main --signal=SIGKILL reeved
t0=$(now)
wait_for 60 sh -c "m=\$(systemctl show -p MainPID --value reeved); [ \"\$m\" != $M1 ] && [ \"\$m\" != 0 ] && [ \"\$(systemctl is-active reeved)\" = active ]"
awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "TIME sigkill-to-active %.1f\n", b-a }'
diagnose
M3=$(main_pid)
NR1=$(systemctl show -p NRestarts --value reeved)
check crash-restarts-reeved "MainPID $M1 -> $M3, NRestarts $NR0 -> $NR1, $(systemctl is-active reeved)" \
  eval '[ "$M3" != "$M1" ] && [ "$M3" != 0 ] && [ "$NR1" -gt "$NR0" ] && [ "$(systemctl is-active reeved)" = active ]'
check crash-no-cgroup-error "journal: $(journalctl -u reeved --no-pager -o cat | grep -m1 -i 'attach to cgroup')" \
  sh -c '! journalctl -u reeved --no-pager -o cat | grep -qi "failed to attach to cgroup"'
P3=$(pids_of)
check crash-same-gateways "pids '$P3' (were '$P0')" [ "$P3" = "$P0" ]
check crash-adopted "adopted: alpha=$(adopted_of alpha) beta=$(adopted_of beta)" \
  eval '[ "$(adopted_of alpha)" = true ] && [ "$(adopted_of beta)" = true ]'
check crash-no-duplicates "$(gateway_count) gateway processes" [ "$(gateway_count)" = 2 ]
phase crash

# ---------------------------------------------------------------- stop: nothing left behind
t0=$(now)
systemctl stop reeved
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "TIME systemctl-stop %.1f\n", b-a }'
check stop-inactive "$(systemctl is-active reeved)" [ "$(systemctl is-active reeved)" = inactive ]
check stop-no-gateways "$(gateway_count) gateway processes left: $(pgrep -a -f gw.sh | tr '\n' ';')" [ "$(gateway_count)" = 0 ]
bye=1
for t in $TENANTS; do grep -q "gateway $t: SIGTERM, bye" "$STATE/logs/$t.log" || bye=0; done
check stop-graceful "a gateway did not log its SIGTERM" [ $bye = 1 ]
check stop-no-cgroup "left: $(find $UNIT_CG -type d 2>/dev/null | tr '\n' ' ')" [ ! -e "$UNIT_CG" ]
wait_for 10 eval '[ -z "$(reeve_scopes)" ] && [ -z "$(scope_dirs)" ]'
check stop-no-scopes "units: '$(reeve_scopes)', cgroups: '$(scope_dirs)'" \
  eval '[ -z "$(reeve_scopes)" ] && [ -z "$(scope_dirs)" ]'
check stop-no-tenant-cgroups "left in $SLICE_CG: $(find $SLICE_CG -mindepth 1 -type d 2>/dev/null | tr '\n' ' ')" \
  eval '[ -z "$(find $SLICE_CG -mindepth 1 -type d 2>/dev/null)" ]'
check stop-no-mounts "$(reeve_mounts) reeve mounts (were $BASE_MOUNTS): $(grep -E '/run/reeve|/data/tenants' /proc/self/mountinfo | cut -d' ' -f5 | tr '\n' ' ')" \
  [ "$(reeve_mounts)" = "$BASE_MOUNTS" ]
check stop-no-netns "$(net_namespaces) net namespaces (were $BASE_NETNS)" [ "$(net_namespaces)" = "$BASE_NETNS" ]
left=$(cd $STATE 2>/dev/null && ls -A | grep -vxE 'uids.json|logs|stopped' | tr '\n' ' ')
check stop-no-state "left in $STATE: $left; stopped/: $(ls -A $STATE/stopped 2>/dev/null | tr '\n' ' ')" \
  sh -c "[ -z '$left' ] && [ -z \"\$(ls -A $STATE/stopped 2>/dev/null)\" ]"
check stop-keeps-data "tenant data: $(ls $DATA 2>&1 | tr '\n' ' ')" eval '[ -f $DATA/alpha/.starts ] && [ -f $DATA/beta/.starts ]'
phase stop

# ---------------------------------------------------------------- watchdog: a hung reeved
# (after the stop checks, so that those see a reeved that started normally)
systemctl start reeved
W0=$(pids_of)
M1=$(main_pid)
NR0=$(systemctl show -p NRestarts --value reeved)
echo "  reeved $M1 running gateways '$W0'; SIGSTOP"
# (never `kill -STOP 0`: that would stop this script's own process group)
[ "$M1" -gt 1 ] && kill -STOP "$M1"
t0=$(now)
# WatchdogSec=30s: systemd aborts it (SIGABRT + SIGCONT), Restart=always, RestartSec=2s
wait_for 120 sh -c "m=\$(systemctl show -p MainPID --value reeved); [ \"\$m\" != $M1 ] && [ \"\$m\" != 0 ] && [ \"\$(systemctl is-active reeved)\" = active ]"
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "TIME watchdog-kill-to-active %.1f\n", b-a }'
diagnose
M2=$(main_pid)
NR1=$(systemctl show -p NRestarts --value reeved)
check watchdog-in-journal "no watchdog message" sh -c 'journalctl -u reeved --no-pager | grep -qi "watchdog timeout"'
check watchdog-old-reeved-gone "pid $M1 still exists" [ ! -e "/proc/$M1" ]
check watchdog-restarts-reeved "MainPID $M1 -> $M2, NRestarts $NR0 -> $NR1, $(systemctl is-active reeved)" \
  eval '[ "$M2" != "$M1" ] && [ "$M2" != 0 ] && [ "$NR1" -gt "$NR0" ] && [ "$(systemctl is-active reeved)" = active ]'
P2=$(pids_of)
check watchdog-same-gateways "pids '$P2' (were '$W0')" [ "$P2" = "$W0" ]
check watchdog-adopted "adopted: alpha=$(adopted_of alpha) beta=$(adopted_of beta)" \
  eval '[ "$(adopted_of alpha)" = true ] && [ "$(adopted_of beta)" = true ]'
check watchdog-no-duplicates "$(gateway_count) gateway processes" [ "$(gateway_count)" = 2 ]
check watchdog-keeps-limits "alpha $(limits_of alpha) / $(unit_limits_of alpha), beta $(limits_of beta) / $(unit_limits_of beta)" \
  eval '[ "$(limits_of alpha)" = "$LA" ] && [ "$(limits_of beta)" = "$LB" ] && [ "$(unit_limits_of alpha)" = "$UA" ] && [ "$(unit_limits_of beta)" = "$UB" ]'
# leave nothing running for the purge: stop, or (if reeved never came back) kill the unit's
# every process and the tenants' scopes, gateways included
if [ "$(systemctl is-active reeved)" = active ]; then
  systemctl stop reeved
  wait_for 10 eval '[ -z "$(reeve_scopes)" ]'
  check watchdog-then-stop-no-scopes "units: '$(reeve_scopes)', cgroups: '$(scope_dirs)', $(gateway_count) gateways" \
    eval '[ -z "$(reeve_scopes)" ] && [ -z "$(scope_dirs)" ] && [ "$(gateway_count)" = 0 ]'
else
  systemctl kill --kill-whom=all --signal=SIGKILL reeved 2>/dev/null
  systemctl stop reeved 2>/dev/null; systemctl reset-failed reeved 2>/dev/null
  systemctl kill --signal=SIGKILL 'reeve-*.scope' 2>/dev/null
  systemctl stop 'reeve-*.scope' 2>/dev/null
  wait_for 20 [ "$(gateway_count)" = 0 ]
fi
phase watchdog

# ---------------------------------------------------------------- purge: state goes, data stays
t0=$(now)
if out=$(DEBIAN_FRONTEND=noninteractive apt-get purge -y reeve 2>&1); then
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "TIME apt-purge %.1f\n", b-a }'
  ok purge; else fail purge "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi
gone=1
for f in /usr/bin/reeved /usr/bin/reevec /lib/systemd/system/reeved.service $CFG $STATE \
         /etc/systemd/system/multi-user.target.wants/reeved.service; do
  [ -e "$f" ] && { gone=0; echo "  still there after purge: $f"; }
done
check purge-removes-package-and-state "see above" [ $gone = 1 ]
check purge-keeps-tenant-data "$DATA: $(ls -A $DATA 2>&1 | tr '\n' ' ')" \
  eval '[ -f $DATA/alpha/.starts ] && [ -f $DATA/beta/.starts ]'
check purge-unit-unknown "$(systemctl show -p LoadState --value reeved)" \
  [ "$(systemctl show -p LoadState --value reeved)" = not-found ]
phase purge

finish
