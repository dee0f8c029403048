#!/bin/bash
# tests/vm/systemd/install-deps.sh: what the host needs for the systemd VM stage
# (tests/vm/systemd/run-all.sh), from Debian's and crates.io's registries only. Idempotent:
# installs only what is missing, and does not run `apt-get update` when nothing is.
#
#   mmdebstrap            builds the VM's Debian root
#   qemu-system-x86       runs the VM (TCG), with qboot firmware
#   linux-image-cloud-amd64  the guest kernel (/boot/vmlinuz-*-cloud-amd64)
#   cpio                  packs the initramfs
#   cargo-deb             builds reeve_<version>_amd64.deb (cargo install, from crates.io)
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "install-deps: run as root" >&2; exit 1; }
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || need+=(linux-image-cloud-amd64)
# dpkg-deb (cargo-deb's fallback) and the keyring mmdebstrap checks the mirror with
command -v dpkg-deb >/dev/null || need+=(dpkg)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! command -v cargo-deb >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deb" ]; then
  echo "install-deps: cargo install cargo-deb" >&2
  cargo install --locked cargo-deb >&2
fi
echo "install-deps: ok ($(mmdebstrap --version), $(qemu-system-x86_64 --version | head -1), $(cargo deb --version 2>/dev/null || echo cargo-deb), kernel $(ls -1 /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -1))" >&2
