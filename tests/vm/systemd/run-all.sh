#!/bin/bash
# tests/vm/systemd/run-all.sh: the systemd VM stage of CI.
#
#   1. host dependencies (tests/vm/systemd/install-deps.sh; idempotent)
#   2. release binaries: cargo build --release -p reeve-supervisor -p reeve-runtime
#   3. the package: cargo deb -p reeve-supervisor --no-build -> target/debian/reeve_<v>_amd64.deb
#   4. the VM image (tests/vm/systemd/build-image.sh; cached under /var/tmp by input hash)
#   5. boot it and run tests/vm/systemd/reeved.sh with the .deb (tests/vm/systemd/run.sh)
#
# Prints the guest's CHECK lines and a timing summary (each step, VM boot to test start, each
# guest phase). Exit status: that of the guest test (0 when every CHECK passed), or of the
# first step that failed. Run as root from anywhere in the repository.
#
# Environment: SKIP_DEPS=1 skips step 1; everything tests/vm/systemd/run.sh reads (VM_MEM,
# VM_TIMEOUT, ...).
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
cd "$TOP" || exit 126
now() { date +%s.%N; }
declare -a SUMMARY=()
step() { # NAME START END
  SUMMARY+=("$(awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "  %-28s %7.1f s", n, b-a }')")
}
T_ALL=$(now)

if [ "${SKIP_DEPS:-0}" != 1 ]; then
  t=$(now)
  "$HERE/install-deps.sh" || { echo "run-all: install-deps failed" >&2; exit 1; }
  step host-deps "$t" "$(now)"
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

t=$(now)
cargo build --release -p reeve-supervisor -p reeve-runtime || { echo "run-all: cargo build failed" >&2; exit 1; }
step cargo-build-release "$t" "$(now)"

t=$(now)
DEB=$(cargo deb -p reeve-supervisor --no-build 2>/dev/null | tail -1)
[ -n "$DEB" ] && [ -f "$DEB" ] || { echo "run-all: cargo deb failed" >&2; cargo deb -p reeve-supervisor --no-build; exit 1; }
step cargo-deb "$t" "$(now)"
echo "run-all: package $DEB ($(stat -c %s "$DEB") bytes)"

t=$(now)
IMAGE=$("$HERE/build-image.sh") || { echo "run-all: image build failed" >&2; exit 1; }
step vm-image "$t" "$(now)"
echo "run-all: image $IMAGE ($(stat -c %s "$IMAGE") bytes)"

TIMINGS=$(mktemp)
OUT=$(mktemp)
trap 'rm -f "$TIMINGS" "$OUT"' EXIT
t=$(now)
GUEST_DEB=/root/$(basename "$DEB")
VM_FILES="${VM_FILES:-} $DEB:$GUEST_DEB" VM_TIMINGS=$TIMINGS \
  "$HERE/run.sh" "$HERE/reeved.sh" "$GUEST_DEB" | tee "$OUT"
RC=${PIPESTATUS[0]}
step vm-run "$t" "$(now)"

echo
echo "== systemd VM stage: timings =="
printf '%s\n' "${SUMMARY[@]}"
BOOT=$(sed -n 's/.*boot_to_test_s=\([0-9.?]*\).*/\1/p' "$TIMINGS" | tail -1)
echo "  VM boot (kernel start to test start): ${BOOT:-?} s (guest uptime)"
grep '^TIME ' "$OUT" | awk '{ printf "  guest %-22s %7.1f s\n", $2, $3 }'
awk -v a="$T_ALL" -v b="$(now)" 'BEGIN { printf "  %-28s %7.1f s\n", "total", b-a }'
echo "== $(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT" | tail -1 || echo 'no result line') (guest rc=$RC) =="
exit "$RC"
