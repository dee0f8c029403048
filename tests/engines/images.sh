#!/bin/bash
# tests/engines/images.sh OUTDIR
#
# Builds, without any image registry, the container images the engine tests use, as docker-save
# tarballs (manifest.json + repositories + config JSON + one layer tar) that `docker load`,
# `podman load` and `ctr images import` all accept:
#
#   OUTDIR/busybox.tar   reeve.test/busybox:1   busybox-static with its applet links, /etc/passwd,
#                                               Cmd ["sh"]
#   OUTDIR/pause.tar     reeve.test/pause:1     a static C program /pause that sleeps until SIGTERM
#                                               or SIGINT (the pod sandbox image for containerd CRI)
#
# The image names are printed, one "IMAGE <name> <file>" line each. The tarballs are reproducible
# (sorted entries, mtime 0, uid/gid 0), so their hashes can key a cache.
set -u -o pipefail
die() { echo "images.sh: $*" >&2; exit 1; }
[ $# = 1 ] || die "usage: tests/engines/images.sh OUTDIR"
OUT=$1
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(readlink -f "$OUT")
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked: apt-get install busybox-static"; fi
command -v gcc >/dev/null || die "gcc missing: apt-get install gcc libc6-dev"
command -v sha256sum >/dev/null || die "sha256sum missing"
W=$(mktemp -d -t reeve-images.XXXXXX) || die mktemp
trap 'rm -rf "$W"' EXIT

TAR=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu)

# pack_image NAME:TAG ROOTFSDIR OUTFILE CONFIG_CONFIG_JSON
pack_image() {
  local ref=$1 rootfs=$2 out=$3 cfg=$4 repo=${1%:*} tag=${1##*:} d layer_sha cfg_sha
  d=$W/img.$(basename "$out" .tar); rm -rf "$d"; mkdir -p "$d"
  ( cd "$rootfs" && "${TAR[@]}" -cf "$d/layer.tar" . ) || die "tar of $rootfs"
  layer_sha=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  mkdir -p "$d/$layer_sha"; mv "$d/layer.tar" "$d/$layer_sha/layer.tar"
  echo "1.0" > "$d/$layer_sha/VERSION"
  printf '{"id":"%s","created":"1970-01-01T00:00:00Z","os":"linux"}' "$layer_sha" > "$d/$layer_sha/json"
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"tests/engines/images.sh"}]}' \
    "$cfg" "$layer_sha" > "$d/config.json"
  cfg_sha=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$cfg_sha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg_sha" "$ref" "$layer_sha" > "$d/manifest.json"
  printf '{"%s":{"%s":"%s"}}' "$repo" "$tag" "$layer_sha" > "$d/repositories"
  ( cd "$d" && "${TAR[@]}" -cf "$out.tmp" manifest.json repositories "$cfg_sha.json" "$layer_sha" ) || die "tar of $out"
  mv "$out.tmp" "$out" || die "write $out"
  echo "IMAGE $ref $out"
}

base_fs() { # DIR: the directories and files every image has
  mkdir -p "$1"/{bin,dev,proc,sys,tmp,etc,root,run,var/tmp,usr/bin,usr/sbin,sbin} || die "mkdir $1"
  chmod 1777 "$1/tmp" "$1/var/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
  : > "$1/etc/hosts"; : > "$1/etc/resolv.conf"; : > "$1/etc/hostname"
}

# busybox
B=$W/busybox; base_fs "$B"
cp "$BUSYBOX" "$B/bin/busybox" || die "copy $BUSYBOX"
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || [ -e "$B/bin/$a" ] || ln -s busybox "$B/bin/$a"
done
pack_image reeve.test/busybox:1 "$B" "$OUT/busybox.tar" \
  '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"}'

# pause
P=$W/pause; base_fs "$P"
cat > "$W/pause.c" <<'C'
/* pause: the pod sandbox's PID 1. Sleeps until SIGTERM or SIGINT, reaps children meanwhile. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction q = {0}, r = {0};
  q.sa_handler = quit; r.sa_handler = reap; r.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGTERM, &q, NULL) || sigaction(SIGINT, &q, NULL) || sigaction(SIGCHLD, &r, NULL)) return 1;
  for (;;) pause();
}
C
gcc -static -O2 -s -o "$P/pause" "$W/pause.c" || die "gcc -static pause.c failed (apt-get install libc6-dev)"
pack_image reeve.test/pause:1 "$P" "$OUT/pause.tar" \
  '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/pause"],"WorkingDir":"/"}'
