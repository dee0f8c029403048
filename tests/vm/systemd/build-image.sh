#!/bin/bash
# tests/vm/systemd/build-image.sh
#
# Builds (or finds in the cache) the root filesystem of the systemd test VM: a Debian minimal
# root with systemd as PID 1 (mmdebstrap --variant=minbase, docs/man/locales excluded by dpkg
# path-exclude rules), packed as an uncompressed initramfs (newc cpio; the kernel needs no
# decompression, which is what costs under TCG).
#
# The image is cached under $REEVE_SYSTEMD_VM_CACHE (default /var/tmp/reeve-systemd-vm) in a
# directory named by the hash of its inputs: this script (which holds the package list, the boot
# script, the masked units and the test runner unit) and the suite/mirror. Change any of them and
# a new image is built; old ones are removed.
#
#   stdout  the path of the initramfs (…/<hash>/rootfs.cpio)
#   stderr  progress and the build time
#   exit    0, or 1 when the build failed
#
# Needs root (mmdebstrap's root mode) and network access to the Debian mirror.
#
# Environment:
#   VM_SUITE   Debian suite (default bookworm)
#   VM_MIRROR  mirror URL (default http://deb.debian.org/debian)
#   REEVE_SYSTEMD_VM_CACHE  cache directory
set -euo pipefail

SUITE=${VM_SUITE:-bookworm}
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
CACHE=${REEVE_SYSTEMD_VM_CACHE:-/var/tmp/reeve-systemd-vm}
# What the tests need: systemd as init, dbus (the systemd D-Bus API), procps (ps, pgrep),
# busybox (httpd as the tenants' gateway), and what reeve's .deb depends on (libc6, libgcc-s1,
# init-system-helpers: all in minbase/systemd already). The VM has no network: anything a test
# installs with apt must be satisfiable from what is here.
PACKAGES=systemd-sysv,dbus,procps,busybox

HASH=$( { cat "$0"; echo "$SUITE $MIRROR $PACKAGES"; } | sha256sum | cut -c1-16)
OUT=$CACHE/$HASH
if [ -f "$OUT/rootfs.cpio" ]; then
  echo "build-image: cached $OUT/rootfs.cpio" >&2
  echo "$OUT/rootfs.cpio"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "build-image: mmdebstrap missing: apt-get install mmdebstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "build-image: must run as root (mmdebstrap root mode)" >&2; exit 1; }

T0=$(date +%s.%N)
mkdir -p "$CACHE"
# one build at a time (another session may be building the same image)
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$OUT/rootfs.cpio" ]; then echo "$OUT/rootfs.cpio"; exit 0; fi
TMP=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
ROOT=$TMP/root

# The guest side, installed by the customize hook below.
mkdir -p "$TMP/files"

# Stage 1 (PID 1 on the initramfs): pivot_root(2) refuses to work while the root is the
# initramfs (the root mount has no parent). A bind mount of / moved onto / gives systemd a root
# mount that has one, without copying the image (switch_root(8) would also delete the
# initramfs' files, which are the same files here).
cat > "$TMP/files/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mkdir -p /newroot
mount --bind / /newroot
umount /proc
cd /newroot
mount --move . /
exec chroot . /lib/systemd/systemd --log-level=notice
EOF

# The runner: the test script and its files come in a second cpio archive appended to the
# initramfs (/reeve-vm/…). Output goes to ttyS1, kernel and systemd messages stay on ttyS0.
cat > "$TMP/files/reeve-vm-test" <<'EOF'
#!/bin/sh
# Runs /reeve-vm/test ARGS (from /reeve-vm/args, one per line) with its output on /dev/ttyS1,
# prints the status marker and powers the VM off.
out=/dev/ttyS1
stty -F $out raw -echo 2>/dev/null
up=$(cut -d' ' -f1 /proc/uptime)
echo "@@REEVE_VM_BEGIN@@ uptime=$up" > $out
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export REEVE_IN_VM=1 REEVE_IN_SYSTEMD_VM=1
[ -f /reeve-vm/env ] && . /reeve-vm/env
cd /reeve-vm/work 2>/dev/null || cd /
if [ -x /reeve-vm/test ]; then
  set --
  if [ -f /reeve-vm/args ]; then
    while IFS= read -r a; do set -- "$@" "$a"; done < /reeve-vm/args
  fi
  /reeve-vm/test "$@" > $out 2>&1 < /dev/null
  rc=$?
else
  echo "reeve-vm-test: no /reeve-vm/test in the initramfs" > $out
  rc=126
fi
echo "@@REEVE_VM_EXIT=$rc@@" > $out
sync
systemctl --force --force poweroff
EOF

cat > "$TMP/files/reeve-vm-test.service" <<'EOF'
[Unit]
Description=reeve systemd VM test runner
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/reeve-vm-test
StandardInput=null
StandardOutput=journal
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
EOF

# Units a throw-away test VM without disks, network, users or a clock to keep does not need.
MASK="getty.target getty@.service serial-getty@.service console-getty.service
 systemd-logind.service systemd-user-sessions.service
 apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer
 systemd-tmpfiles-clean.timer e2scrub_reap.service
 systemd-update-utmp.service systemd-update-utmp-runlevel.service
 systemd-remount-fs.service systemd-fsck-root.service systemd-pstore.service
 systemd-journal-flush.service systemd-random-seed.service systemd-firstboot.service
 systemd-machine-id-commit.service systemd-sysusers.service ldconfig.service
 systemd-hwdb-update.service systemd-modules-load.service kmod-static-nodes.service
 modprobe@.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
 sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
 sys-fs-fuse-connections.mount dev-hugepages.mount
 systemd-ask-password-console.path systemd-ask-password-wall.path
 systemd-networkd.service systemd-networkd-wait-online.service systemd-resolved.service
 systemd-timesyncd.service systemd-network-generator.service systemd-repart.service
 cryptsetup.target remote-fs.target systemd-boot-update.service
 systemd-journald-audit.socket systemd-update-done.service"

echo "build-image: mmdebstrap $SUITE ($PACKAGES) into $ROOT" >&2
mmdebstrap --variant=minbase --mode=root --format=directory \
  --include="$PACKAGES" \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/bash-completion/*' \
  --dpkgopt='path-exclude=/usr/share/zsh/*' \
  --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/cache/debconf/*-old' \
  "$SUITE" "$ROOT" "$MIRROR" >&2

F=$TMP/files
install -m 0755 "$F/init" "$ROOT/init"
install -m 0755 "$F/reeve-vm-test" "$ROOT/usr/local/sbin/reeve-vm-test"
install -m 0644 "$F/reeve-vm-test.service" "$ROOT/etc/systemd/system/reeve-vm-test.service"
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf ../reeve-vm-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/reeve-vm-test.service"
for u in $MASK; do ln -sf /dev/null "$ROOT/etc/systemd/system/$u"; done
# A fixed machine id: no first-boot handling (preset-all) on every boot.
echo 7265657665000000000000000000fe01 > "$ROOT/etc/machine-id"
echo reeve-systemd-vm > "$ROOT/etc/hostname"
: > "$ROOT/etc/fstab"
# The journal stays in memory (/run/log/journal); no log files to keep.
mkdir -p "$ROOT/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$ROOT/etc/systemd/journald.conf.d/reeve-vm.conf"
mkdir -p "$ROOT/reeve-vm"
rm -rf "$ROOT/var/cache/apt/archives/"*.deb

( cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet ) > "$TMP/rootfs.cpio"
SIZE=$(stat -c %s "$TMP/rootfs.cpio")
mkdir -p "$OUT"
mv "$TMP/rootfs.cpio" "$OUT/rootfs.cpio.tmp"
echo "$PACKAGES" > "$OUT/packages"
chroot "$ROOT" dpkg-query -W -f '${Package} ${Version}\n' > "$OUT/manifest" 2>/dev/null || true
mv "$OUT/rootfs.cpio.tmp" "$OUT/rootfs.cpio"
# older images (other hashes) are garbage now
for d in "$CACHE"/*/; do
  [ "$d" = "$OUT/" ] || [ ! -f "$d/rootfs.cpio" ] || rm -rf "$d"
done
T1=$(date +%s.%N)
awk -v a="$T0" -v b="$T1" -v s="$SIZE" 'BEGIN { printf "build-image: built %.1f MB in %.1fs\n", s/1048576, b-a }' >&2
echo "$OUT/rootfs.cpio"
