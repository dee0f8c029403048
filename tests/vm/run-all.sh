#!/bin/bash
# tests/vm/run-all.sh: every test binary that needs the test VM (a real cgroup v2 hierarchy),
# each in its own VM via tests/vm/cargo-vm-test.sh:
#   reeve-runtime:cgroups_vm  the cgroup v2 layer (reeve_runtime::cgroups) against the kernel
#   reeve-runtime:reevec_vm   reevec end to end through its CLI, and a cross-check with runc 1.1.5
#   reeve-tests:isolation_vm  the isolation probe under reevec and runc, and resource interference
#   reeve-supervisor:supervisor_vm  reeved with real limits, under reevec and under runc
#   reeve-tests:contract_vm   OCI hooks and the errors callers match, reevec against runc 1.1.5
# Exits non-zero when any of them fails; prints each binary's and the total VM time.
# The environment knobs of tests/vm/run.sh (VM_MEM, VM_TIMEOUT, ...) apply.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BINARIES=(reeve-runtime:cgroups_vm reeve-runtime:reevec_vm reeve-tests:isolation_vm reeve-supervisor:supervisor_vm reeve-tests:contract_vm)
# supervisor_vm boots nine sandboxes under runc, slow under TCG on a loaded host: a longer watchdog
export VM_TIMEOUT=${VM_TIMEOUT:-600}
failed=()
summary=()
total=0
for entry in "${BINARIES[@]}"; do
  pkg=${entry%%:*}; t=${entry#*:}
  echo "==> VM test binary $t (package $pkg)"
  log=$(mktemp -t "reeve-vm-$t.XXXXXX")
  start=$(date +%s.%N)
  "$HERE/cargo-vm-test.sh" -p "$pkg" --test "$t" -- --test-threads=1 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  end=$(date +%s.%N)
  # run.sh reports "VM 12.34s" on stderr; fall back to the wall time when the build failed
  vm=$(grep -oE 'VM [0-9.]+s' "$log" | tail -1 | grep -oE '[0-9.]+')
  rm -f "$log"
  [ -n "$vm" ] || vm=0
  total=$(awk -v a="$total" -v b="$vm" 'BEGIN { printf "%.2f", a + b }')
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -eq 0 ]; then
    summary+=("ok     $t (VM ${vm}s, wall ${wall}s)")
  else
    summary+=("FAILED $t (exit $rc, VM ${vm}s, wall ${wall}s)")
    failed+=("$t")
  fi
done
echo "==> VM test summary"
printf '  %s\n' "${summary[@]}"
echo "  total VM time: ${total}s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
