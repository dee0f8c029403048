#!/bin/bash
# tests/engines/install-deps.sh: installs what the engine stage (tests/engines/run-all.sh) needs on a
# Debian 12 host: the container engines whose binaries are copied into the test VM, qemu, the cloud
# kernel, busybox-static and a C compiler. Idempotent.
#
# The engines' maintainer scripts would start dockerd/containerd on the host, which must never happen
# here (hybrid cgroups; they would grab host cgroup hierarchies). A policy-rc.d that answers 101 ("action
# forbidden") keeps invoke-rc.d from starting anything; it is removed afterwards only if this script
# created it.
set -u -o pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: must run as root" >&2; exit 1; }
PKGS=(docker.io containerd podman runc crun containernetworking-plugins iptables kmod iproute2
      catatonit conmon golang-github-containers-common
      qemu-system-x86 linux-image-cloud-amd64 busybox-static gcc libc6-dev cpio file binutils bc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} = 0 ]; then echo "install-deps.sh: all packages present"; exit 0; fi
echo "install-deps.sh: installing ${missing[*]}"
POLICY=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY" && chmod +x "$POLICY" || { echo "install-deps.sh: cannot write $POLICY" >&2; exit 1; }
  created=1
elif ! grep -q 'exit 101' "$POLICY"; then
  echo "install-deps.sh: $POLICY exists but does not 'exit 101'; refusing to install daemons" >&2; exit 1
fi
cleanup() { [ "$created" = 1 ] && rm -f "$POLICY"; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || { echo "install-deps.sh: apt-get update failed" >&2; exit 1; }
apt-get install -y -q --no-install-recommends "${missing[@]}" || { echo "install-deps.sh: apt-get install failed" >&2; exit 1; }
# belt and braces: nothing the packages shipped may be running on the host
for d in dockerd containerd; do
  if pgrep -x "$d" >/dev/null; then echo "install-deps.sh: WARNING: $d is running on the host (pids $(pgrep -x "$d" | tr '\n' ' '))" >&2; fi
done
echo "install-deps.sh: done"
