#!/bin/sh
# Build the isolation probe as a static binary: tests/probe/build.sh OUT
# (gcc and libc6-dev; no other dependency).
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 OUT" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
exec "${CC:-gcc}" -static -O2 -Wall -Wextra -Wno-unused-parameter -o "$1" "$here/reeve-probe.c"
