#!/bin/bash
# tests/vm/run.sh BINARY [ARGS...]
#
# Runs BINARY inside a throw-away QEMU/TCG virtual machine that boots a Debian cloud kernel from an
# initramfs and has a real, pure cgroup v2 hierarchy mounted at /sys/fs/cgroup (all controllers).
# The guest exit status of BINARY becomes this script's exit status, so the script works as a
# cargo runner:
#
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=tests/vm/run.sh cargo test -p reeve-runtime --test cgroups_vm
#
# (tests/vm/cargo-vm-test.sh does exactly that.)
#
# The guest contains: busybox-static (as /bin/*), BINARY and the libraries `ldd` lists, runc and crun
# with their libraries (when installed on the host), the extra files of VM_FILES, and a small busybox
# root filesystem for OCI bundles at /var/lib/reeve-vm/rootfs (REEVE_VM_ROOTFS in the guest
# environment). The guest runs from a tmpfs (switch_root), so pivot_root(2) works.
# BINARY runs as root in the guest's root cgroup with REEVE_IN_VM=1 set, with its stdout and stderr
# on the guest's second serial port (kernel messages such as OOM reports stay on the first one).
#
# If BINARY lies in a cargo target directory (.../target/<profile>/deps/NAME-HASH or
# .../<profile>/NAME), the executables directly in <profile>/ (e.g. reevec) are copied to the same
# absolute paths, so `env!("CARGO_BIN_EXE_reevec")` works in the guest. The guest's working
# directory is the host's current directory (created empty in the guest).
#
#   stdout  the guest program's stdout+stderr ('\r' stripped, status markers removed)
#   stderr  harness messages and timings; the kernel console's tail when the run failed
#   exit    the guest program's exit status; 124 VM timed out; 125 no status marker (kernel panic,
#           guest crash, init died); 126 harness error
#
# Environment:
#   VM_KERNEL   kernel image (default: newest /boot/vmlinuz-*-cloud-amd64)
#   VM_MEM      guest RAM (default 1G; it must hold the initramfs twice)
#   VM_SMP      vCPUs (default 1: under TCG -smp 2 is slower)
#   VM_TIMEOUT  seconds before the VM is killed (default 300)
#   VM_FILES    extra host files or directories, space separated, "SRC" or "SRC:GUESTPATH";
#               ELF files bring the libraries ldd lists
#   VM_ENV      extra "K=V" words exported in the guest before BINARY runs
#   VM_PASS_ENV names of host variables passed to the guest when set (default: RUST_BACKTRACE
#               RUST_LOG RUST_TEST_THREADS RUST_TEST_NOCAPTURE and every REEVE_* variable)
#   VM_NO_CARGO_SIBLINGS=1  do not copy the executables next to a cargo test binary
#   VM_STRIP    1 (default) strips debug info from copied binaries (smaller initramfs, faster
#               boot); 0 copies them as they are
#   VM_BIOS     firmware file, or "seabios" (default /usr/share/qemu/qboot.rom when present)
#   VM_APPEND   extra kernel command line
#   VM_KEEP=1   keep the work directory; VM_VERBOSE=1 always print the kernel console
set -u -o pipefail

die() { echo "vm/run.sh: $*" >&2; exit 126; }
[ $# -ge 1 ] || die "usage: tests/vm/run.sh BINARY [ARGS...]"
BIN=$(readlink -f "$1") || die "no such binary: $1"
shift
[ -f "$BIN" ] && [ -x "$BIN" ] || die "not an executable file: $BIN"

KERNEL=${VM_KERNEL:-$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)}
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || die "no cloud kernel found: apt-get install linux-image-cloud-amd64 (or set VM_KERNEL)"
[ -r "$KERNEL" ] || die "kernel $KERNEL is not readable"
MEM=${VM_MEM:-1G}
SMP=${VM_SMP:-1}
TIMEOUT=${VM_TIMEOUT:-300}
STRIP=${VM_STRIP:-1}
BIOS=${VM_BIOS-}
if [ -z "$BIOS" ] && [ -f /usr/share/qemu/qboot.rom ]; then BIOS=/usr/share/qemu/qboot.rom; fi
[ "$BIOS" = seabios ] && BIOS=""
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install qemu-system-x86"
command -v cpio >/dev/null || die "cpio missing: apt-get install cpio"
BUSYBOX=${VM_BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
"$BUSYBOX" --list >/dev/null 2>&1 || die "$BUSYBOX does not run"
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked: apt-get install busybox-static"; fi

now() { date +%s.%N; }
T0=$(now)
WORK=$(mktemp -d -t reeve-vm.XXXXXX) || die "mktemp failed"
cleanup() { if [ "${VM_KEEP:-0}" = 1 ]; then echo "vm/run.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
R=$WORK/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,run,mnt,etc,root,newroot,lib,lib64,usr/lib,var/lib/reeve-vm} || die "mkdir"
cp "$BUSYBOX" "$R/bin/busybox" || die "copy busybox"
# a console for the kernel's init (needs root; without it stage 1 just runs without a console)
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true

is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }

# copy an ELF file (optionally stripped) and every library ldd resolves for it, paths preserved
add_elf() { # SRC DST
  local src=$1 dst=$2 lib
  mkdir -p "$R/$(dirname "$dst")" || die "mkdir for $dst"
  if [ "$STRIP" = 1 ] && command -v strip >/dev/null; then
    strip --strip-debug -o "$R/$dst" "$src" 2>/dev/null || cp -L "$src" "$R/$dst" || die "copy $src"
  else
    cp -L "$src" "$R/$dst" || die "copy $src"
  fi
  chmod +x "$R/$dst"
  # `ldd` prints "lib => /path (addr)" and "/lib64/ld-linux... (addr)"; static binaries print nothing useful
  while read -r lib; do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib" || die "copy library $lib for $src"
  done < <(ldd "$src" 2>/dev/null | grep -oE '(=> )?/[^ ]+' | sed 's/^=> //')
}

add_path() { # SRC [DST]
  local src=$1 dst=${2:-$1}
  [ -e "$src" ] || die "missing file: $src"
  if [ -d "$src" ]; then mkdir -p "$R/$dst" && cp -a "$src/." "$R/$dst/" || die "copy dir $src"
  elif is_elf "$src"; then add_elf "$src" "$dst"
  else mkdir -p "$R/$(dirname "$dst")" && cp -L "$src" "$R/$dst" || die "copy $src"; fi
}

# the program, at its host path (so paths baked in at build time stay valid)
add_elf "$BIN" "$BIN"

# executables next to a cargo test binary (target/<profile>/deps/X -> target/<profile>/*)
if [ "${VM_NO_CARGO_SIBLINGS:-0}" != 1 ]; then
  PROFILE_DIR=$(dirname "$BIN")
  [ "$(basename "$PROFILE_DIR")" = deps ] && PROFILE_DIR=$(dirname "$PROFILE_DIR")
  if [ -f "$PROFILE_DIR/.cargo-lock" ] || [ -d "$PROFILE_DIR/.fingerprint" ]; then
    for f in "$PROFILE_DIR"/*; do
      [ -f "$f" ] && [ -x "$f" ] && [ "$f" != "$BIN" ] && is_elf "$f" && add_elf "$f" "$f"
    done
  fi
fi

# reference runtimes, when installed
for rt in runc crun; do
  p=$(command -v "$rt" 2>/dev/null) && add_elf "$(readlink -f "$p")" "/usr/bin/$rt"
done

for f in ${VM_FILES:-}; do
  src=${f%%:*}; dst=${f#*:}; [ "$dst" = "$f" ] && dst=$src
  add_path "$src" "$dst"
done

# a small busybox root filesystem for OCI bundles
RFS=$R/var/lib/reeve-vm/rootfs
mkdir -p "$RFS"/{bin,dev,proc,sys,tmp,etc,root,run,var,usr/bin,sbin} || die "mkdir rootfs"
cp "$BUSYBOX" "$RFS/bin/busybox" || die "copy busybox into rootfs"
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || ln -s busybox "$RFS/bin/$a" 2>/dev/null
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$RFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$RFS/etc/group"
chmod 1777 "$RFS/tmp"

# arguments, single-quoted for the guest's busybox sh
q() { printf "'%s' " "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
ARGS=""; for a in "$@"; do ARGS+=$(q "$a"); done
GUEST_ENV="REEVE_IN_VM=1 REEVE_VM_ROOTFS=/var/lib/reeve-vm/rootfs"
PASS=${VM_PASS_ENV:-"RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS RUST_TEST_NOCAPTURE $(compgen -e | grep '^REEVE_' | tr '\n' ' ')"}
for n in $PASS; do
  [ "$n" = REEVE_IN_VM ] && continue
  if [ -n "${!n+x}" ]; then GUEST_ENV+=" $(q "$n=${!n}")"; fi
done
for kv in ${VM_ENV:-}; do GUEST_ENV+=" $(q "$kv")"; done
CWD=$(pwd)

# stage 1 (on the initramfs): copy everything onto a tmpfs and switch_root into it, because
# pivot_root(2) refuses to work while the root is the initramfs.
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t tmpfs -o mode=755 tmpfs /newroot
for d in /*; do
  case "$d" in /newroot|/proc) ;; *) /bin/busybox cp -a "$d" /newroot/ ;; esac
done
/bin/busybox mkdir -p /newroot/proc
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /init2
EOF
# stage 2: mounts, run the program on ttyS1, print the status marker, power off.
cat > "$R/init2" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# / is already a tmpfs: /tmp and /run need no mounts of their own (which would hide files copied
# there, e.g. a test binary under /tmp)
chmod 1777 /tmp
hostname reeve-vm
ip link set lo up 2>/dev/null
stty -F /dev/ttyS1 raw -echo 2>/dev/null
export $GUEST_ENV
mkdir -p $(q "$CWD")
cd $(q "$CWD") || cd /
exec 3>/dev/ttyS1
echo "@@REEVE_VM_BEGIN@@" >&3
$(q "$BIN") $ARGS >&3 2>&3 </dev/null
rc=\$?
echo "@@REEVE_VM_EXIT=\$rc@@" >&3
sync
poweroff -f
EOF
chmod +x "$R/init" "$R/init2"

( cd "$R" && find . -print0 | cpio --null -o -H newc --quiet ) > "$WORK/initramfs.cpio" || die "cpio failed"
T1=$(now)

QEMU=(qemu-system-x86_64 -accel tcg -machine pc -cpu max -m "$MEM" -smp "$SMP"
  -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio"
  -append "console=ttyS0 rdinit=/init panic=-1 oops=panic quiet loglevel=4 tsc=reliable ${VM_APPEND:-}"
  -display none -vga none -monitor none -no-reboot -nodefaults
  -serial "file:$WORK/console.log" -serial "file:$WORK/out.log")
[ -n "$BIOS" ] && QEMU+=(-bios "$BIOS")
timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$WORK/qemu.log" 2>&1
QRC=$?
T2=$(now)

tr -d '\r' < "$WORK/out.log" > "$WORK/out.txt"
STATUS=$(grep -aoE '@@REEVE_VM_EXIT=[0-9]+@@' "$WORK/out.txt" | tail -1 | grep -oE '[0-9]+')
sed -e '0,/@@REEVE_VM_BEGIN@@/d' -e '/@@REEVE_VM_EXIT=[0-9]*@@/d' "$WORK/out.txt"
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then RC=124; echo "vm/run.sh: VM timed out after ${TIMEOUT}s" >&2
elif [ -z "$STATUS" ]; then RC=125; echo "vm/run.sh: no exit-status marker (qemu rc=$QRC): guest crashed?" >&2
else RC=$STATUS; fi
if [ "$RC" -ge 124 ] || [ "${VM_VERBOSE:-0}" = 1 ]; then
  echo "---- kernel console (ttyS0), last 60 lines ----" >&2
  tr -d '\r' < "$WORK/console.log" | tail -60 >&2
  cat "$WORK/qemu.log" >&2
fi
awk -v t0="$T0" -v t1="$T1" -v t2="$T2" -v sz="$(stat -c %s "$WORK/initramfs.cpio")" -v rc="$RC" -v q="$QRC" \
  'BEGIN { printf "vm/run.sh: initramfs %d bytes built in %.2fs; VM %.2fs; total %.2fs; guest rc=%s qemu rc=%s\n", sz, t1-t0, t2-t1, t2-t0, rc, q }' >&2
exit "$RC"
