#!/bin/bash
# Every test of the project: formatting and lints, the host tests (unit tests and the
# end-to-end tests of reevec, as root), then the tests that need real cgroup v2 controllers,
# inside a qemu TCG VM booting Debian's cloud kernel (tests/vm/), then the real container
# engines driving reevec and runc side by side in that VM (tests/engines/), then reeved as a
# user installs it (.deb) under systemd as PID 1 (tests/vm/systemd/).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "==> cargo build --workspace"
cargo build --workspace -q
echo "==> host tests (cargo test --workspace)"
cargo test --workspace
host=$(date +%s)
echo "==> VM tests (tests/vm/run-all.sh)"
if [ -x tests/vm/run-all.sh ]; then
  bash tests/vm/run-all.sh
else
  bash tests/vm/cargo-vm-test.sh
fi
vm=$(date +%s)
echo "==> engine tests: Docker, containerd (ctr, CRI) and Podman with runc and reevec (tests/engines/run-all.sh)"
bash tests/engines/run-all.sh
engines=$(date +%s)
echo "==> systemd VM tests: the .deb, reeved.service, the systemd cgroup driver (tests/vm/systemd/run-all.sh)"
SKIP_DEPS=1 bash tests/vm/systemd/run-all.sh
bash tests/vm/systemd/systemd-cgroup.sh
end=$(date +%s)
echo "==> all tests passed: host $((host - start))s, VM $((vm - host))s, engines $((engines - vm))s, systemd VM $((end - engines))s"
