#!/usr/bin/env bash
# Every performance measurement of docs/PERFORMANCE.md, in order, with the settings used there:
#   bash benches/run_all.sh            (about 12 minutes on 2 vCPUs)
#   QUICK=1 bash benches/run_all.sh    (shorter criterion runs, wider intervals)
# Output: each bench's ratio table, the RSS lines and the instruction-count guard's table.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${QUICK:-}" = 1 ]; then
  crit=(--warm-up-time 0.5 --measurement-time 2 --noplot)
else
  crit=(--warm-up-time 1 --measurement-time 5 --noplot)
fi

echo "== machine"
lscpu | grep -E 'Model name|^CPU\(s\)|Hypervisor' || true
echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"
rustc --version

echo "== mm-trace hot path (benches/hot_path.rs)"
cargo bench --bench hot_path -- "${crit[@]}"

echo "== a real 10 us tick, bare and instrumented interleaved (benches/tick_ab.rs)"
if [ "${QUICK:-}" = 1 ]; then PAIRS=20000 cargo bench --bench tick_ab; else cargo bench --bench tick_ab; fi

echo "== peers (peer-bench/)"
cargo bench --manifest-path peer-bench/Cargo.toml -- "${crit[@]}"

echo "== peak RSS"
cargo run --quiet --release --manifest-path peer-bench/Cargo.toml --bin rss -- mm-trace 10
cargo run --quiet --release --manifest-path peer-bench/Cargo.toml --bin rss -- fastrace 4

echo "== instruction-count guard"
bash .ci/perf_guard.sh
