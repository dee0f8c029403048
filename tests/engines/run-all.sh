#!/bin/bash
# tests/engines/run-all.sh: the engine stage of CI. Proves that real container engines drive reevec
# exactly as they drive runc 1.1.5: builds reevec (release) and the images, then runs every engine
# script (docker.sh, podman.sh, ctr.sh, and cri.sh when it exists) in a fresh VM (vm.sh) once with
# runc and once with reevec, and compares the ROW lines.
#
# Fails (exit 1) when
#   - a step fails (or is missing) under runc: the script or the VM is broken, the comparison is void;
#   - a step passes under runc but not under reevec, unless differences.txt lists it with a reason;
#   - a step listed in differences.txt passes under reevec (the list must stay true);
#   - a VM run does not finish with status 0.
# Writes the table to tests/engines/results/latest.md and the full VM logs to tests/engines/results/logs/.
# Last line: "N passed, M failed", counting the reevec rows.
#
# Environment: ENGINES (default "docker podman ctr" + "cri" when cri.sh exists), ENGINES_PARALLEL
# (VMs at once, default 2), ENGINES_NO_BUILD=1 (use target/release as it is), plus vm.sh's knobs.
# Host prerequisites: tests/engines/install-deps.sh.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd) || exit 2
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO" || exit 2
die() { echo "engines/run-all.sh: $*" >&2; exit 2; }
T0=$(date +%s)
RES=$HERE/results
LOGS=$RES/logs
mkdir -p "$LOGS" || die "cannot create $LOGS"
rm -f "$LOGS"/*.log

if [ "${ENGINES_NO_BUILD:-0}" != 1 ]; then
  echo "==> cargo build --release -p reeve-runtime --bin reevec"
  cargo build --release -q -p reeve-runtime --bin reevec || die "building reevec failed"
  if [ -f tests/cri-client/Cargo.toml ]; then
    echo "==> cargo build --release (tests/cri-client: reeve-cri)"
    cargo build --release -q --manifest-path tests/cri-client/Cargo.toml --target-dir "$REPO/target" \
      || die "building reeve-cri from tests/cri-client failed"
  fi
fi
[ -x target/release/reevec ] || die "missing target/release/reevec"
CACHE=${ENGINES_VM_CACHE:-/var/tmp/reeve-engines-vm}
export ENGINES_VM_CACHE=$CACHE
echo "==> images ($CACHE/images)"
bash "$HERE/images.sh" "$CACHE/images" || die "images.sh failed"
export ENGINES_IMAGES_DIR=$CACHE/images
echo "==> VM base initramfs"
bash "$HERE/vm.sh" --prepare || die "vm.sh --prepare failed"

ENGS=${ENGINES:-"docker podman ctr$([ -f "$HERE/cri.sh" ] && echo ' cri')"}
for e in $ENGS; do [ -f "$HERE/$e.sh" ] || die "no engine script $HERE/$e.sh"; done
PAR=${ENGINES_PARALLEL:-2}

# one VM run: vm.sh SCRIPT RUNTIME > logs/ENGINE-RUNTIME.log; wall time and status beside it
run_one() { # ENGINE RUNTIME
  local s e rc; s=$(date +%s)
  bash "$HERE/vm.sh" "$HERE/$1.sh" "$2" >"$LOGS/$1-$2.log" 2>&1
  rc=$?; e=$(date +%s)
  echo "$rc $((e - s))" > "$LOGS/$1-$2.status"
  echo "    $1 under $2: VM rc=$rc, $((e - s))s"
}
echo "==> VM runs ($PAR at a time): $ENGS, each with runc and reevec"
running=0
for e in $ENGS; do
  for rt in runc reevec; do
    if [ "$running" -ge "$PAR" ]; then wait -n; running=$((running - 1)); fi
    run_one "$e" "$rt" & running=$((running + 1))
  done
done
wait

# ---- compare -----------------------------------------------------------------------------------
declare -A RES_OK RES_DETAIL DIFF
ORDER=()
for e in $ENGS; do
  for rt in runc reevec; do
    while read -r _ eng stp r res detail; do
      [ "$eng" = "$e" ] || continue
      k="$e|$stp"
      [[ " ${ORDER[*]-} " == *" $k "* ]] || ORDER+=("$k")
      RES_OK["$k|$r"]=$res; RES_DETAIL["$k|$r"]=$detail
    done < <(grep -a '^ROW ' "$LOGS/$e-$rt.log" 2>/dev/null)
  done
done
while read -r eng stp reason; do
  case "$eng" in ''|\#*) continue ;; esac
  DIFF["$eng|$stp"]=$reason
done < "$HERE/differences.txt"

problems=()
passed=0; failed=0
md=$RES/latest.md.tmp
{
  echo "# Engine stage: runc 1.1.5 vs reevec"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), reevec $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet -- runtime 2>/dev/null || echo '+dirty')"
  echo
  echo "| engine | step | runc | reevec | reevec detail / known difference |"
  echo "|---|---|---|---|---|"
} > "$md"
printf '%-7s %-26s %-5s %-6s %s\n' ENGINE STEP RUNC REEVEC "REEVEC DETAIL"
for k in "${ORDER[@]}"; do
  eng=${k%%|*}; stp=${k#*|}
  a=${RES_OK["$k|runc"]:-missing}; b=${RES_OK["$k|reevec"]:-missing}
  d=${RES_DETAIL["$k|reevec"]:-}
  note=$d
  if [ "$b" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  if [ "$a" != ok ]; then
    problems+=("$eng $stp: fails under runc (${RES_DETAIL["$k|runc"]:-no row}): the script is broken")
  elif [ "$b" != ok ] && [ -z "${DIFF[$k]+x}" ]; then
    problems+=("$eng $stp: passes under runc, fails under reevec: $d")
  elif [ "$b" = ok ] && [ -n "${DIFF[$k]+x}" ]; then
    problems+=("$eng $stp: listed in differences.txt (${DIFF[$k]}) but passes under reevec: delete the line")
  fi
  [ -n "${DIFF[$k]+x}" ] && note="known: ${DIFF[$k]} — $d"
  printf '%-7s %-26s %-5s %-6s %s\n' "$eng" "$stp" "$a" "$b" "$(printf '%s' "$note" | cut -c1-110)"
  printf '| %s | %s | %s | %s | %s |\n' "$eng" "$stp" "$a" "$b" "$(printf '%s' "$note" | sed 's/|/\\|/g' | cut -c1-200)" >> "$md"
done
for k in "${!DIFF[@]}"; do
  [[ " ${ORDER[*]-} " == *" $k "* ]] || { [[ " $ENGS " == *" ${k%%|*} "* ]] && problems+=("differences.txt lists ${k/|/ }, which no script runs"); }
done
{
  echo
  echo "| VM run | status | wall time |"
  echo "|---|---|---|"
} >> "$md"
echo
echo "VM runs:"
for e in $ENGS; do
  for rt in runc reevec; do
    read -r rc secs < "$LOGS/$e-$rt.status" 2>/dev/null || { rc=missing; secs=?; }
    [ "$rc" = 0 ] || problems+=("VM run $e/$rt ended with status $rc (see $LOGS/$e-$rt.log)")
    printf '  %-7s %-6s rc=%-3s %5ss\n' "$e" "$rt" "$rc" "$secs"
    echo "| $e $rt | rc=$rc | ${secs}s |" >> "$md"
  done
done
T1=$(date +%s)
{
  echo
  echo "Stage wall time: $((T1 - T0))s. reevec: $passed passed, $failed failed."
  if [ ${#problems[@]} -gt 0 ]; then echo; echo "Problems:"; for p in "${problems[@]}"; do echo "- $p"; done; fi
} >> "$md"
mv "$md" "$RES/latest.md"
echo "stage wall time: $((T1 - T0))s; table in $RES/latest.md, logs in $LOGS/"
if [ ${#problems[@]} -gt 0 ]; then
  echo; echo "FAILED:"; for p in "${problems[@]}"; do echo "  - $p"; done
fi
echo "$passed passed, $failed failed"
[ ${#problems[@]} = 0 ]
