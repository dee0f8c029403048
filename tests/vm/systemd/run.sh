#!/bin/bash
# tests/vm/systemd/run.sh GUEST_SCRIPT [ARGS...]
#
# Runs GUEST_SCRIPT inside a throw-away QEMU/TCG virtual machine whose PID 1 is systemd: a
# Debian minimal root (tests/vm/systemd/build-image.sh, cached under /var/tmp by the hash of
# its inputs) booted as the initramfs of the Debian cloud kernel, with a pure cgroup v2
# hierarchy (all controllers). A unit in the image (reeve-vm-test.service, after
# multi-user.target) runs the script as root, then powers the VM off. The guest exit status of
# GUEST_SCRIPT becomes this script's exit status.
#
# GUEST_SCRIPT is any executable (usually a shell script); it runs with its stdout and stderr
# on the guest's second serial port (kernel and systemd messages stay on the first one), in the
# directory /reeve-vm/work, with REEVE_IN_VM=1 and REEVE_IN_SYSTEMD_VM=1 set. Extra files come
# from VM_FILES; they are appended to the cached image as a second cpio archive (the kernel
# unpacks both), so the image is not rebuilt for them.
#
#   stdout  the guest script's stdout+stderr ('\r' stripped, status markers removed)
#   stderr  harness messages and timings; the console's tail when the run failed
#   exit    the guest script's exit status; 124 VM timed out; 125 no status marker (kernel panic,
#           guest crash, boot never reached the test unit); 126 harness error
#
# Environment:
#   VM_KERNEL   kernel image (default: newest /boot/vmlinuz-*-cloud-amd64)
#   VM_MEM      guest RAM (default 1536M; the image is ~140 MB and stays in RAM)
#   VM_SMP      vCPUs (default 1: under TCG -smp 2 is slower)
#   VM_TIMEOUT  seconds before the VM is killed (default 600)
#   VM_FILES    extra host files or directories, space separated, "SRC" or "SRC:GUESTPATH"
#               (SRC alone lands at the same absolute path in the guest)
#   VM_ENV      extra "K=V" words exported in the guest before GUEST_SCRIPT runs
#   VM_BIOS     firmware file, or "seabios" (default /usr/share/qemu/qboot.rom when present)
#   VM_APPEND   extra kernel command line
#   VM_KEEP=1   keep the work directory; VM_VERBOSE=1 always print the console
#   VM_TIMINGS  file to append "boot_to_test_s=… vm_s=…" to (for run-all.sh)
set -u -o pipefail

die() { echo "vm/systemd/run.sh: $*" >&2; exit 126; }
[ $# -ge 1 ] || die "usage: tests/vm/systemd/run.sh GUEST_SCRIPT [ARGS...]"
SCRIPT=$(readlink -f "$1") || die "no such file: $1"
shift
[ -f "$SCRIPT" ] || die "not a file: $SCRIPT"
HERE=$(cd "$(dirname "$0")" && pwd)

KERNEL=${VM_KERNEL:-$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)}
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || die "no cloud kernel found: apt-get install linux-image-cloud-amd64 (or set VM_KERNEL)"
MEM=${VM_MEM:-1536M}
SMP=${VM_SMP:-1}
TIMEOUT=${VM_TIMEOUT:-600}
BIOS=${VM_BIOS-}
if [ -z "$BIOS" ] && [ -f /usr/share/qemu/qboot.rom ]; then BIOS=/usr/share/qemu/qboot.rom; fi
[ "$BIOS" = seabios ] && BIOS=""
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install qemu-system-x86"
command -v cpio >/dev/null || die "cpio missing: apt-get install cpio"

now() { date +%s.%N; }
T0=$(now)
IMAGE=$("$HERE/build-image.sh") || die "building the image failed"
T1=$(now)
WORK=$(mktemp -d -t reeve-sdvm.XXXXXX) || die "mktemp failed"
cleanup() { if [ "${VM_KEEP:-0}" = 1 ]; then echo "vm/systemd/run.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# The per-run archive: /reeve-vm/{test,args,env,work} and the files.
X=$WORK/extra
mkdir -p "$X/reeve-vm/work" || die mkdir
chmod 755 "$X" "$X/reeve-vm"
cp -L "$SCRIPT" "$X/reeve-vm/test" && chmod 755 "$X/reeve-vm/test" || die "copy $SCRIPT"
: > "$X/reeve-vm/args"
for a in "$@"; do
  case "$a" in *$'\n'*) die "arguments must not contain newlines" ;; esac
  printf '%s\n' "$a" >> "$X/reeve-vm/args"
done
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
: > "$X/reeve-vm/env"
for kv in ${VM_ENV:-}; do
  case "$kv" in *=*) ;; *) die "VM_ENV word $kv is not K=V" ;; esac
  echo "export ${kv%%=*}=$(q "${kv#*=}")" >> "$X/reeve-vm/env"
done
for f in ${VM_FILES:-}; do
  src=${f%%:*}; dst=${f#*:}; [ "$dst" = "$f" ] && dst=$src
  [ -e "$src" ] || die "missing file: $src"
  case "$dst" in /*) ;; *) die "guest path $dst is not absolute" ;; esac
  mkdir -p "$X$(dirname "$dst")" || die "mkdir for $dst"
  if [ -d "$src" ]; then mkdir -p "$X$dst" && cp -a "$src/." "$X$dst/" || die "copy dir $src"
  else cp -L --preserve=mode "$src" "$X$dst" || die "copy $src"; fi
done
# (no "." entry: it would set the mode of the guest's /)
( cd "$X" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet -R 0:0 ) > "$WORK/extra.cpio" || die "cpio failed"
cat "$IMAGE" "$WORK/extra.cpio" > "$WORK/initrd.cpio" || die "concatenate initramfs"
T2=$(now)

QEMU=(qemu-system-x86_64 -accel tcg -machine pc -cpu max -m "$MEM" -smp "$SMP"
  -kernel "$KERNEL" -initrd "$WORK/initrd.cpio"
  -append "console=ttyS0 rdinit=/init panic=-1 oops=panic quiet loglevel=3 tsc=reliable systemd.show_status=0 udev.log_level=3 ${VM_APPEND:-}"
  -display none -vga none -monitor none -no-reboot -nodefaults
  -serial "file:$WORK/console.log" -serial "file:$WORK/out.log")
[ -n "$BIOS" ] && QEMU+=(-bios "$BIOS")
timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$WORK/qemu.log" 2>&1
QRC=$?
T3=$(now)

tr -d '\r' < "$WORK/out.log" > "$WORK/out.txt"
STATUS=$(grep -aoE '@@REEVE_VM_EXIT=[0-9]+@@' "$WORK/out.txt" | tail -1 | grep -oE '[0-9]+')
BOOT=$(grep -aoE '@@REEVE_VM_BEGIN@@ uptime=[0-9.]+' "$WORK/out.txt" | head -1 | sed 's/.*uptime=//')
sed -e '0,/@@REEVE_VM_BEGIN@@/d' -e '/@@REEVE_VM_EXIT=[0-9]*@@/d' "$WORK/out.txt"
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then RC=124; echo "vm/systemd/run.sh: VM timed out after ${TIMEOUT}s" >&2
elif [ -z "$STATUS" ]; then RC=125; echo "vm/systemd/run.sh: no exit-status marker (qemu rc=$QRC): guest crashed or never ran the test?" >&2
else RC=$STATUS; fi
if [ "$RC" -ge 124 ] || [ "${VM_VERBOSE:-0}" = 1 ]; then
  echo "---- console (ttyS0), last 80 lines ----" >&2
  tr -d '\r' < "$WORK/console.log" | tail -80 >&2
  cat "$WORK/qemu.log" >&2
fi
awk -v t0="$T0" -v t1="$T1" -v t2="$T2" -v t3="$T3" -v boot="${BOOT:-?}" -v rc="$RC" -v q="$QRC" \
  'BEGIN { printf "vm/systemd/run.sh: image %.1fs; initramfs %.1fs; VM %.1fs (kernel start to test start %ss guest uptime); total %.1fs; guest rc=%s qemu rc=%s\n", t1-t0, t2-t1, t3-t2, boot, t3-t0, rc, q }' >&2
if [ -n "${VM_TIMINGS:-}" ]; then
  awk -v t1="$T1" -v t0="$T0" -v t3="$T3" -v t2="$T2" -v boot="${BOOT:-?}" \
    'BEGIN { printf "image_s=%.1f vm_s=%.1f boot_to_test_s=%s\n", t1-t0, t3-t2, boot }' >> "$VM_TIMINGS"
fi
exit "$RC"
