#!/bin/bash
# tests/engines/vm.sh SCRIPT RUNTIME
#
# Boots one throw-away QEMU/TCG VM (Debian cloud kernel, initramfs, pure cgroup v2 at /sys/fs/cgroup
# with every controller enabled for the children of the root) that holds real container engines and
# runs SCRIPT (a bash script from tests/engines/) in it with
#
#   RUNTIME=runc|reevec  RUNTIME_BIN=/usr/bin/runc|/usr/local/bin/reevec  ENGINE_IMAGES=/opt/engine-images
#
# The guest has: busybox (/bin), bash, GNU timeout, util-linux script (a pty for -t steps), dockerd/docker/docker-proxy/docker-init,
# containerd/containerd-shim-runc-v2/ctr, podman/conmon/catatonit with /etc/containers and
# /usr/share/containers, iptables (nft) with its xtables extensions, iproute2, kmod, the CNI plugins in
# /usr/lib/cni, Debian's runc 1.1.5 at /usr/bin/runc, /usr/local/bin/reevec (target/release/reevec),
# /usr/local/bin/reeve-cri (target/release/reeve-cri, when built), the images of images.sh in
# /opt/engine-images, every tests/engines/* file in /engines, and the kernel modules for overlayfs,
# bridge, veth, br_netfilter and netfilter (loaded at boot; the rest load on demand via /sbin/modprobe).
# /run, /tmp, /var/lib are tmpfs, /dev/pts and /dev/shm mounted, lo is up.
#
#   stdout  SCRIPT's stdout+stderr (guest ttyS1), '\r' stripped, markers removed
#   stderr  harness messages and timings; the kernel console's tail when the run failed
#   exit    SCRIPT's exit status; 124 VM timed out; 125 no status marker (guest crash); 126 harness error
#
# The big part of the initramfs (engines, libraries, modules, images) is cached under
# $ENGINES_VM_CACHE (default /var/tmp/reeve-engines-vm) keyed by a hash of its inputs; reevec,
# reeve-cri and the scripts go into a small second cpio archive appended to it on every run.
#
# Environment:
#   VM_CPU (default qemu64: Go programs start faster than with "max" under TCG)
#   VM_KERNEL VM_MEM (default 2G) VM_SMP (default 1) VM_TIMEOUT (default 900 s) VM_BIOS VM_APPEND
#   VM_KEEP=1 VM_VERBOSE=1 (as in tests/vm/run.sh)
#   ENGINES_REEVEC     (default <repo>/target/release/reevec)
#   ENGINES_REEVE_CRI  (default <repo>/target/release/reeve-cri; copied when it exists)
#   ENGINES_IMAGES_DIR (default: built with images.sh into the cache)
#   ENGINES_ENV        extra "K=V" words exported in the guest
#   vm.sh --prepare    only builds (or finds) the cached base archive and prints its path
set -u -o pipefail

die() { echo "engines/vm.sh: $*" >&2; exit 126; }
HERE=$(cd "$(dirname "$0")" && pwd) || die "cannot find my directory"
REPO=$(cd "$HERE/../.." && pwd)
PREPARE=0
if [ "${1-}" = --prepare ]; then PREPARE=1; else
  [ $# = 2 ] || die "usage: tests/engines/vm.sh SCRIPT runc|reevec   (or vm.sh --prepare)"
  SCRIPT=$(readlink -f "$1") || die "no such script: $1"
  [ -f "$SCRIPT" ] || die "no such script: $1"
  RUNTIME=$2
  case $RUNTIME in
    runc) RUNTIME_BIN=/usr/bin/runc ;;
    reevec) RUNTIME_BIN=/usr/local/bin/reevec ;;
    *) die "RUNTIME must be runc or reevec, not '$RUNTIME'" ;;
  esac
fi

KERNEL=${VM_KERNEL:-$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)}
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || die "no readable cloud kernel /boot/vmlinuz-*-cloud-amd64: apt-get install linux-image-cloud-amd64 (or set VM_KERNEL)"
KVER=${KERNEL##*/vmlinuz-}
MODDIR=/lib/modules/$KVER
[ -d "$MODDIR" ] || die "kernel modules of $KVER missing: $MODDIR"
MEM=${VM_MEM:-2G}
SMP=${VM_SMP:-1}
TIMEOUT=${VM_TIMEOUT:-900}
BIOS=${VM_BIOS-}
if [ -z "$BIOS" ] && [ -f /usr/share/qemu/qboot.rom ]; then BIOS=/usr/share/qemu/qboot.rom; fi
[ "$BIOS" = seabios ] && BIOS=""
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install qemu-system-x86"
command -v cpio >/dev/null || die "cpio missing: apt-get install cpio"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked: apt-get install busybox-static"; fi
REEVEC=${ENGINES_REEVEC:-$REPO/target/release/reevec}
REEVE_CRI=${ENGINES_REEVE_CRI:-$REPO/target/release/reeve-cri}
CACHE=${ENGINES_VM_CACHE:-/var/tmp/reeve-engines-vm}
mkdir -p "$CACHE" || die "cannot create cache dir $CACHE"

now() { date +%s.%N; }
T0=$(now)

# ---- inputs of the base archive: host path -> guest path -------------------------------------
# ELF programs (their ldd libraries come along)
PROGS=(
  /usr/sbin/dockerd:/usr/sbin/dockerd /usr/bin/docker:/usr/bin/docker /usr/sbin/docker-proxy:/usr/sbin/docker-proxy
  /usr/bin/docker-init:/usr/bin/docker-init
  /usr/bin/containerd:/usr/bin/containerd /usr/bin/containerd-shim-runc-v2:/usr/bin/containerd-shim-runc-v2
  /usr/bin/ctr:/usr/bin/ctr
  /usr/bin/podman:/usr/bin/podman /usr/bin/conmon:/usr/bin/conmon /usr/bin/catatonit:/usr/bin/catatonit
  /usr/sbin/runc:/usr/bin/runc
  /usr/sbin/xtables-nft-multi:/usr/sbin/xtables-nft-multi
  /usr/sbin/xtables-legacy-multi:/usr/sbin/xtables-legacy-multi
  /usr/bin/kmod:/usr/bin/kmod /usr/sbin/ip:/usr/sbin/ip
  /usr/bin/bash:/bin/bash /usr/bin/timeout:/usr/bin/timeout /usr/bin/script:/usr/bin/script
)
# plain files and directories (copied as they are; ELF files in directories bring their libraries)
FILES=(
  /usr/lib/cni:/usr/lib/cni
  /usr/lib/x86_64-linux-gnu/xtables:/usr/lib/x86_64-linux-gnu/xtables
  /etc/containers/policy.json:/etc/containers/policy.json
  /usr/share/containers:/usr/share/containers
)
[ -d /usr/lib/podman ] && FILES+=(/usr/lib/podman:/usr/lib/podman)
[ -f /etc/ethertypes ] && FILES+=(/etc/ethertypes:/etc/ethertypes)
[ -f /etc/protocols ] && FILES+=(/etc/protocols:/etc/protocols)
[ -f /etc/services ] && FILES+=(/etc/services:/etc/services)
for p in "${PROGS[@]}" "${FILES[@]}"; do
  src=${p%%:*}
  [ -e "$src" ] || die "missing $src (run tests/engines/install-deps.sh)"
done
# kernel modules: these and everything modules.dep says they need
MODULES=(overlay bridge br_netfilter veth nf_tables nft_compat nft_chain_nat nft_nat nft_masq nft_ct
  nft_reject_inet nft_fib_inet nf_nat nf_conntrack nf_conntrack_netlink xt_addrtype xt_conntrack xt_MASQUERADE
  xt_nat xt_tcpudp xt_mark xt_comment xt_multiport xt_state ipt_REJECT ip6t_REJECT nf_reject_ipv4
  ip_tables iptable_filter iptable_nat iptable_mangle ip6_tables ip6table_filter ip6table_nat
  nfnetlink nf_defrag_ipv4 nf_defrag_ipv6 xt_set ip_set ip_set_hash_ip xt_REDIRECT xt_DNAT 8021q macvlan ipvlan dummy)

mod_files() { # every .ko the MODULES need, relative to MODDIR
  local m f
  for m in "${MODULES[@]}"; do
    # `modprobe --show-depends` only reads modules.dep; it loads nothing
    modprobe -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }'
  done | sed "s#^$MODDIR/##" | sort -u
}
MODFILES=$(mod_files)
[ -n "$MODFILES" ] || die "modprobe --show-depends found no modules in $MODDIR"

IMAGES=${ENGINES_IMAGES_DIR:-}
if [ -z "$IMAGES" ]; then
  IMAGES=$CACHE/images
  bash "$HERE/images.sh" "$IMAGES" >/dev/null || die "images.sh $IMAGES failed"
fi
for i in busybox.tar pause.tar; do [ -f "$IMAGES/$i" ] || die "image tarball missing: $IMAGES/$i"; done

# ---- the base archive, cached by a hash of its inputs ------------------------------------------
inputs_hash() {
  {
    sha256sum "$0" "$IMAGES"/*.tar "$BUSYBOX"
    for p in "${PROGS[@]}" "${FILES[@]}"; do find -L "${p%%:*}" -printf '%p %s %T@\n' 2>/dev/null; done
    echo "$KERNEL $MODFILES"
  } | sha256sum | cut -c1-16
}
HASH=$(inputs_hash)
BASE=$CACHE/base-$HASH.cpio

is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }
add_libs() { # SRC: copy the libraries ldd resolves for SRC into $R
  local lib
  while read -r lib; do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib" || die "copy library $lib for $1"
  done < <(ldd "$1" 2>/dev/null | grep -oE '(=> )?/[^ ]+' | sed 's/^=> //')
}
add_elf() { # SRC DST
  mkdir -p "$R/$(dirname "$2")" || die "mkdir for $2"
  strip --strip-debug -o "$R/$2" "$1" 2>/dev/null || cp -L "$1" "$R/$2" || die "copy $1"
  chmod 755 "$R/$2"
  add_libs "$1"
}

build_base() {
  local W R p src dst f
  W=$(mktemp -d "$CACHE/build.XXXXXX") || die mktemp
  R=$W/root
  mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,run,mnt,etc,root,newroot,lib,lib64,usr/lib,usr/bin,usr/sbin,usr/local/bin,var/lib,var/tmp,opt/engine-images} || die mkdir
  cp "$BUSYBOX" "$R/bin/busybox" || die "copy busybox"
  mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
  for p in "${PROGS[@]}"; do add_elf "${p%%:*}" "${p#*:}"; done
  for p in "${FILES[@]}"; do
    src=${p%%:*}; dst=${p#*:}
    if [ -d "$src" ]; then
      mkdir -p "$R/$dst" && cp -aL "$src/." "$R/$dst/" || die "copy dir $src"
      while read -r f; do is_elf "$f" && add_libs "$f"; done < <(find "$src" -type f)
    else mkdir -p "$R/$(dirname "$dst")" && cp -L "$src" "$R/$dst" || die "copy $src"; fi
  done
  # iptables front ends (nft backend, as Debian 12 defaults to)
  for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$R/usr/sbin/$t"
    ln -sf xtables-legacy-multi "$R/usr/sbin/${t/tables/tables-legacy}"
  done
  for t in modprobe insmod rmmod lsmod depmod modinfo; do ln -sf ../bin/kmod "$R/usr/sbin/$t"; ln -sf ../usr/bin/kmod "$R/sbin/$t"; done
  # kernel modules
  mkdir -p "$R/lib/modules/$KVER" || die mkdir
  cp "$MODDIR"/modules.* "$R/lib/modules/$KVER/" || die "copy $MODDIR/modules.*"
  for f in $MODFILES; do
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$f")" && cp "$MODDIR/$f" "$R/lib/modules/$KVER/$f" || die "copy module $f"
  done
  # users, groups, configuration
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
  printf 'root:x:0:\ndocker:x:110:\nnogroup:x:65534:\n' > "$R/etc/group"
  printf 'root:x:100000:65536\n' > "$R/etc/subuid"; cp "$R/etc/subuid" "$R/etc/subgid"
  printf 'hosts: files dns\n' > "$R/etc/nsswitch.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' > "$R/etc/hosts"
  : > "$R/etc/resolv.conf"
  printf 'unqualified-search-registries = []\n' > "$R/etc/containers/registries.conf"
  printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' > "$R/etc/containers/storage.conf"
  cp "$IMAGES"/*.tar "$R/opt/engine-images/" || die "copy images from $IMAGES"
  ( cd "$R" && find . -print0 | cpio --null -o -H newc --quiet ) > "$W/base.cpio" || die "cpio of the base failed"
  mv "$W/base.cpio" "$BASE" || die "cannot write $BASE"
  rm -rf "$W"
  # keep the cache small: only the newest 2 base archives
  ls -1t "$CACHE"/base-*.cpio 2>/dev/null | tail -n +3 | xargs -r rm -f
}

exec 9>"$CACHE/lock" || die "cannot open $CACHE/lock"
flock 9 || die "flock $CACHE/lock"
if [ ! -s "$BASE" ]; then
  echo "engines/vm.sh: building base initramfs $BASE" >&2
  build_base
fi
flock -u 9
if [ "$PREPARE" = 1 ]; then echo "$BASE"; exit 0; fi

# ---- the per-run archive: reevec, reeve-cri, scripts, init ------------------------------------
[ -x "$REEVEC" ] || die "reevec missing: $REEVEC (cargo build --release -p reeve-runtime --bin reevec)"
WORK=$(mktemp -d -t reeve-engines-vm.XXXXXX) || die mktemp
cleanup() { if [ "${VM_KEEP:-0}" = 1 ]; then echo "engines/vm.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
R=$WORK/root
mkdir -p "$R/usr/local/bin" "$R/engines" || die mkdir
add_elf "$REEVEC" /usr/local/bin/reevec
[ -x "$REEVE_CRI" ] && add_elf "$REEVE_CRI" /usr/local/bin/reeve-cri
cp "$HERE"/*.sh "$R/engines/" || die "copy $HERE/*.sh"
cp "$SCRIPT" "$R/engines/$(basename "$SCRIPT")" 2>/dev/null
GSCRIPT=/engines/$(basename "$SCRIPT")

q() { printf "'%s' " "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
GUEST_ENV="RUNTIME=$RUNTIME RUNTIME_BIN=$RUNTIME_BIN ENGINE_IMAGES=/opt/engine-images"
for kv in ${ENGINES_ENV:-}; do GUEST_ENV+=" $(q "$kv")"; done

# stage 1 (on the initramfs): copy everything onto a tmpfs and switch_root into it (pivot_root(2)
# refuses to work while the root is the initramfs; switch_root frees the initramfs copy).
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
cat > "$R/init2" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in \$(cat /sys/fs/cgroup/cgroup.controllers); do echo "+\$c" > /sys/fs/cgroup/cgroup.subtree_control; done
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /var/lib
mkdir -p /run/lock /var/lib/cni
ln -sf /run /var/run
hostname engines-vm
ip link set lo up
modprobe -a ${MODULES[*]} 2>/tmp/modprobe.err || { echo "engines/vm.sh: guest: modprobe failed:"; cat /tmp/modprobe.err; }
echo 1 > /proc/sys/net/ipv4/ip_forward
stty -F /dev/ttyS1 raw -echo 2>/dev/null
export $GUEST_ENV
cd /
exec 3>/dev/ttyS1
echo "@@ENGINES_VM_BEGIN@@" >&3
/bin/bash $(q "$GSCRIPT") >&3 2>&3 </dev/null
rc=\$?
echo "@@ENGINES_VM_EXIT=\$rc@@" >&3
sync
poweroff -f
EOF
chmod +x "$R/init" "$R/init2"
( cd "$R" && find . -print0 | cpio --null -o -H newc --quiet ) > "$WORK/run.cpio" || die "cpio failed"
cat "$BASE" "$WORK/run.cpio" > "$WORK/initramfs.cpio" || die "cannot write $WORK/initramfs.cpio"
T1=$(now)

QEMU=(qemu-system-x86_64 -accel "tcg${VM_TCG_OPTS:-}" -machine pc -cpu "${VM_CPU:-qemu64}" -m "$MEM" -smp "$SMP"
  -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio"
  -append "console=ttyS0 rdinit=/init panic=-1 oops=panic quiet loglevel=4 tsc=reliable ${VM_APPEND:-}"
  -display none -vga none -monitor none -no-reboot -nodefaults
  -serial "file:$WORK/console.log" -serial "file:$WORK/out.log")
[ -n "$BIOS" ] && QEMU+=(-bios "$BIOS")
timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$WORK/qemu.log" 2>&1
QRC=$?
T2=$(now)

tr -d '\r' < "$WORK/out.log" > "$WORK/out.txt"
STATUS=$(grep -aoE '@@ENGINES_VM_EXIT=[0-9]+@@' "$WORK/out.txt" | tail -1 | grep -oE '[0-9]+')
sed -e '0,/@@ENGINES_VM_BEGIN@@/d' -e '/@@ENGINES_VM_EXIT=[0-9]*@@/d' "$WORK/out.txt"
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then RC=124; echo "engines/vm.sh: VM timed out after ${TIMEOUT}s" >&2
elif [ -z "$STATUS" ]; then RC=125; echo "engines/vm.sh: no exit-status marker (qemu rc=$QRC): guest crashed?" >&2
else RC=$STATUS; fi
if [ "$RC" -ge 124 ] || [ "${VM_VERBOSE:-0}" = 1 ]; then
  echo "---- kernel console (ttyS0), last 60 lines ----" >&2
  tr -d '\r' < "$WORK/console.log" | tail -60 >&2
  cat "$WORK/qemu.log" >&2
fi
awk -v t0="$T0" -v t1="$T1" -v t2="$T2" -v sz="$(stat -c %s "$WORK/initramfs.cpio")" -v rc="$RC" -v q="$QRC" -v s="$(basename "$SCRIPT")" -v rt="$RUNTIME" \
  'BEGIN { printf "engines/vm.sh: %s %s: initramfs %d MB, prepared in %.1fs; VM %.1fs; guest rc=%s qemu rc=%s\n", s, rt, sz/1048576, t1-t0, t2-t1, rc, q }' >&2
exit "$RC"
