#!/usr/bin/env bash
# Records real mm-bot runs for perf-gate's validation (docs/PERF_GATE.md, "Measured on real runs"):
# PAIRS interleaved A/A pairs (same binary, a distinct seed per run) and SLOW runs with
# fetch_md 30% slower (--slow-fetch-pct 30), interleaved with the pairs so that machine load hits
# all kinds alike. Each run writes one profile: OUT/aa-<i>-a.json, OUT/aa-<i>-b.json, OUT/slow-<i>.json.
#
#   perf-gate/scripts/record-real-runs.sh [OUT] [PAIRS] [SLOW]      # defaults: artifacts/real-runs 50 20
#   cargo test -p perf-gate --release --test real_runs -- --ignored --nocapture   # then: the figures
#
# Needs a release mm-bot: cargo build --release --bin mm-bot (MM_BOT=path overrides it).
set -euo pipefail
out=${1:-artifacts/real-runs}
pairs=${2:-50}
slow=${3:-20}
bin=${MM_BOT:-target/release/mm-bot}
ticks=${TICKS:-120}
mkdir -p "$out/tmp"
cat > "$out/bench-trace.yaml" <<'YAML'
trace:
  sample_rate: 1.0
  deadline_ms: 200.0
  export_golden: false
YAML
run() { # seed, file, extra args...
  local seed=$1 file=$2; shift 2
  "$bin" --mode sequential --ticks "$ticks" --time-scale 0.1 --listen off --seed "$seed" \
    --config "$out/bench-trace.yaml" --out "$out/tmp" "$@" >/dev/null 2>&1
  cp "$out/tmp/sequential/perf_profile.json" "$out/$file"
}
for i in $(seq -w 1 "$pairs"); do
  n=$((10#$i))
  run $((2 * n)) "aa-$i-a.json"
  run $((2 * n + 1)) "aa-$i-b.json"
  if [ "$n" -le "$slow" ]; then run $((5000 + n)) "slow-$i.json" --slow-fetch-pct 30; fi
  echo "pair $i of $pairs recorded" >&2
done
rm -rf "$out/tmp"
