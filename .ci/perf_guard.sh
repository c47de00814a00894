#!/usr/bin/env bash
# Instruction-count guard of mm-trace's hot path (wall-clock independent).
#
# Builds benches/perf_probe.rs (bench profile), runs each case under callgrind at two operation
# counts, and takes instructions per operation = (Ir(n2) - Ir(n1)) / (n2 - n1): start-up, clock
# calibration and anything done once cancel out. Only instructions inside `probe_loop` (and what
# it calls) are counted (`--toggle-collect`), so the trace worker thread does not add noise.
# MM_TRACE_CLOCK=tsc makes every x86_64 machine take the same clock path (one `rdtsc`), whatever
# its kernel clocksource, so with the same toolchain and glibc the counts are the same on any
# machine (a sampled tick's count includes one malloc, which depends on the glibc version).
#
# Fails if a case exceeds its limit in .ci/perf_limits.txt, or if peak RSS while recording
# 10 M spans/s for 5 s exceeds 32 MB (benches/perf_probe.rs `rss`). To accept a deliberate
# change, run `.ci/perf_guard.sh --update` and commit the new limits (measured + 10% margin)
# with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

limits=.ci/perf_limits.txt
update=false
[ "${1:-}" = "--update" ] && update=true

if [ "$(uname -m)" != "x86_64" ]; then
  echo "perf_guard: limits are for x86_64; skipped on $(uname -m)"
  exit 0
fi
command -v valgrind >/dev/null || { echo "perf_guard: valgrind is not installed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

probe=$(cargo bench --bench perf_probe --no-run --message-format=json 2>"$tmp/build.log" |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "perf_probe" and m.get("executable"):
        print(m["executable"])')
[ -x "$probe" ] || { cat "$tmp/build.log" >&2; echo "perf_guard: could not build benches/perf_probe.rs" >&2; exit 1; }

# Instructions executed inside probe_loop for `case n`.
count() {
  MM_TRACE_CLOCK=tsc valgrind --tool=callgrind --toggle-collect='*probe_loop*' \
    --callgrind-out-file="$tmp/cg.out" "$probe" "$1" "$2" >"$tmp/log" 2>&1 ||
    { cat "$tmp/log" >&2; exit 1; }
  sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$tmp/log"
}

# case  n1  n2
cases=(
  "recorded 10000 30000"
  "unsampled_capture_on 10000 30000"
  "unsampled_capture_off 10000 30000"
  "disabled 10000 30000"
  "tick_sampled 2000 6000"
  "tick_unsampled 2000 6000"
)

fail=0
new_limits=""
printf '%-24s %12s %12s  %s\n' "case (Ir per operation)" "measured" "limit" "verdict"
for c in "${cases[@]}"; do
  read -r name n1 n2 <<<"$c"
  a=$(count "$name" "$n1")
  b=$(count "$name" "$n2")
  per=$(python3 -c "print(f'{($b - $a) / ($n2 - $n1):.1f}')")
  limit=$(awk -v k="$name" '$1 == k { print $2 }' "$limits" 2>/dev/null || true)
  if $update; then
    new_limits+="$name $(python3 -c "import math; print(math.ceil($per * 1.10 + 1))")"$'\n'
    verdict="(updating)"
  elif [ -z "$limit" ]; then
    verdict="FAIL (no limit in $limits)"
    fail=1
  elif python3 -c "import sys; sys.exit(0 if $per <= $limit else 1)"; then
    verdict="ok"
  else
    verdict="FAIL (regression)"
    fail=1
  fi
  printf '%-24s %12s %12s  %s\n' "$name" "$per" "${limit:--}" "$verdict"
done

if $update; then
  {
    echo "# Instruction-count limits of .ci/perf_guard.sh: case, max instructions per operation."
    echo "# Measured with MM_TRACE_CLOCK=tsc under callgrind, plus a 10% margin. A span case is one"
    echo "# stage (enter + drop) with 1/1000 of its tick; a tick case is one tick of 5 empty stages."
    printf '%s' "$new_limits"
  } >"$limits"
  echo "perf_guard: wrote $limits"
  exit 0
fi
if [ "$fail" -ne 0 ]; then
  echo "perf_guard: the hot path got more expensive (instructions per operation above the limit)." >&2
  echo "If intended, run .ci/perf_guard.sh --update and commit .ci/perf_limits.txt with the reason." >&2
  exit 1
fi
echo "perf_guard: all cases within limits"

# Memory: 10 M spans/s (5-stage sampled ticks) for 5 s; fails above 32 MB peak RSS (VmHWM).
"$probe" rss 5
