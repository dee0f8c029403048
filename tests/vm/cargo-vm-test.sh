#!/bin/bash
# tests/vm/cargo-vm-test.sh [CARGO TEST ARGS...] [-- TEST BINARY ARGS...]
#
# Builds test binaries with cargo and runs each one inside the test VM (tests/vm/run.sh is the
# cargo runner), where /sys/fs/cgroup is a real cgroup v2 hierarchy and REEVE_IN_VM=1 is set.
#
# Without arguments it runs the cgroup layer's VM tests:
#   cargo test -p reeve-runtime --test cgroups_vm -- --test-threads=1
# Any arguments replace the default selection, e.g.
#   tests/vm/cargo-vm-test.sh -p reeve-runtime --test cgroups_vm -- --nocapture cpu_max
#   tests/vm/cargo-vm-test.sh -p reeve-tests --test runc_compat
# Every test binary cargo runs boots its own VM (~4-5 s each), so select binaries with --test.
# The environment knobs of run.sh (VM_MEM, VM_TIMEOUT, VM_FILES, ...) apply.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
if [ $# -eq 0 ]; then
  set -- -p reeve-runtime --test cgroups_vm -- --test-threads=1
fi
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$HERE/run.sh"
cd "$REPO"
exec cargo test "$@"
