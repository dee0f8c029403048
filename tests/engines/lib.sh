# tests/engines/lib.sh: sourced by the guest scripts (docker.sh, podman.sh, ctr.sh, ...).
#
# A script defines one shell function per step and calls `step NAME SECONDS FUNCTION` for each, in
# order. `step` runs the function in a child bash (`bash SCRIPT --run-step FUNCTION`) under
# `timeout`, so a hanging engine cannot stall the run, and a failing step never aborts the others.
# A step function ends with `ok DETAIL` or `fail DETAIL` (or any non-zero exit = FAIL); `step`
# prints exactly one line per step:
#
#   ROW <engine> <step> <runtime> ok|FAIL <short detail>
#
# On FAIL it also prints the step's own output and the tail of $DAEMON_LOG (if set) indented by
# "  | ", which the collector (run-all.sh) ignores.
set -u
: "${RUNTIME:?RUNTIME must be runc or reevec}" "${RUNTIME_BIN:?RUNTIME_BIN must be set}" "${ENGINE_IMAGES:?ENGINE_IMAGES must be set}"
STEP_DIR=${STEP_DIR:-/tmp/steps.$ENGINE}
mkdir -p "$STEP_DIR"
STEPS_FAILED=0

ok()   { echo "@@STEP ok $*"; exit 0; }
fail() { echo "@@STEP FAIL $*"; exit 1; }
# to SECONDS CMD...: one command, time-boxed
to() { local s=$1; shift; timeout -k 3 "$s" "$@"; }
# expect WHAT REGEX TEXT: fail the step unless TEXT matches REGEX
expect() { printf '%s' "$3" | grep -qE -- "$2" || fail "$1: got '$(printf '%s' "$3" | tr '\n\r' '  ' | cut -c1-120)'"; }
# retry SECONDS CMD...: rerun CMD every 0.5 s until it succeeds or SECONDS pass
retry() { local end=$(( $(date +%s) + $1 )); shift; until "$@"; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.5; done; }
# one line of an output, for details
oneline() { tr -d '\000' | tr '\n\r\t' '   ' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-${2:-160}; }
# tty_run CMD...: run CMD with a pseudo-terminal as its stdin/stdout (util-linux script)
tty_run() { script -qec "$(printf '%q ' "$@")" /dev/null </dev/null; }

# http_get PORT PATH: HTTP/1.0 GET from 127.0.0.1 with bash's /dev/tcp (busybox wget crashes in
# the guest); prints the response, fails on no connection or a non-200 status
http_get() {
  local r
  r=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1"' || exit 1; printf "GET %s HTTP/1.0\r\n\r\n" "'"$2"'" >&3; cat <&3' 2>&1) || { echo "$r"; return 1; }
  echo "$r" | tr -d '\r'
  echo "$r" | head -1 | grep -q ' 200 '
}

# runtime_state ID ROOT...: proves the container was made by $RUNTIME_BIN: the runtime's own `state`
# (against the --root the engine gave it) must know ID and call it running
runtime_state() {
  local id=$1 root o; shift
  for root in "$@"; do
    if [ -n "$root" ]; then o=$(to 20 "$RUNTIME_BIN" --root "$root" state "$id" 2>&1); else o=$(to 20 "$RUNTIME_BIN" state "$id" 2>&1); fi
    if printf '%s' "$o" | grep -qE '"status": ?"running"'; then
      ok "$RUNTIME_BIN ${root:+--root $root }state ${id:0:12}: running, pid $(printf '%s' "$o" | grep -oE '"pid": ?[0-9]+' | grep -oE '[0-9]+$')"
    fi
  done
  echo "state dirs that mention ${id:0:12}:"; find /run -maxdepth 6 -name "${id:0:12}*" 2>/dev/null | head
  fail "$RUNTIME_BIN state ${id:0:12} (roots: $*): $(printf '%s' "$o" | oneline)"
}

# no_errors WHAT TEXT: fail the step when an engine printed an error although the command succeeded
no_errors() { printf '%s' "$2" | grep -qE 'ERRO|level=error' && fail "$1 printed an error: $(printf '%s' "$2" | grep -E 'ERRO|level=error' | head -1 | sed 's/\x1b\[[0-9;]*m//g' | oneline)"; return 0; }

step() { # NAME SECONDS FUNCTION
  local name=$1 secs=$2 fn=$3 out=$STEP_DIR/${1//\//_}.out rc res detail t0 t1
  t0=$(date +%s)
  timeout -k 5 "$secs" bash "$SELF" --run-step "$fn" >"$out" 2>&1 </dev/null
  rc=$?
  t1=$(date +%s)
  res=$(grep -a '^@@STEP ' "$out" | tail -1)
  if [ "$rc" = 0 ] && [ "${res#@@STEP ok}" != "$res" ]; then
    detail=${res#@@STEP ok}; detail=${detail# }
    echo "ROW $ENGINE $name $RUNTIME ok ${detail:-done} ($((t1 - t0))s)"
  else
    if [ -n "$res" ] && [ "${res#@@STEP FAIL}" != "$res" ]; then detail=${res#@@STEP FAIL}; detail=${detail# }
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then detail="timed out after ${secs}s"
    else detail="exit $rc: $(grep -av '^@@STEP' "$out" | tail -3 | oneline)"; fi
    echo "ROW $ENGINE $name $RUNTIME FAIL ${detail:-exit $rc} ($((t1 - t0))s)"
    STEPS_FAILED=$((STEPS_FAILED + 1))
    grep -av '^@@STEP' "$out" | tail -25 | sed 's/^/  | /'
    if [ -n "${DAEMON_LOG:-}" ] && [ -f "$DAEMON_LOG" ]; then
      echo "  | ---- tail of $DAEMON_LOG ----"; tail -15 "$DAEMON_LOG" | cut -c1-400 | sed 's/^/  | /'
    fi
  fi
}

# a script calls `lib_main "$@"` after defining its functions: with --run-step F it runs only F
lib_main() {
  if [ "${1-}" = --run-step ]; then "$2"; exit $?; fi
}
