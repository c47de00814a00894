#!/usr/bin/env bash
# Prometheus / Grafana operations kit checks (called by .ci/run; runnable alone: bash .ci/rules.sh).
#  1. promtool check rules  — recording rules and alerts are valid
#  2. promtool check config — the example scrape config and the rule files it loads
#  3. promtool test rules   — unit tests: rollback alerts fire past their thresholds, stay quiet under
#  4. dashboard checks      — JSON parses; every panel query uses only mm-trace metrics or recording rules
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "rules.sh: promtool not found; install it (Debian/Ubuntu: apt-get install prometheus)" >&2
  exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "rules.sh: python3 not found" >&2; exit 1; }

P=deploy/prometheus
RULE_FILES=("$P/recording_rules.yml" "$P/alerts.yml")

echo "--> promtool check rules"
promtool check rules "${RULE_FILES[@]}"

echo "--> promtool check config"
promtool check config "$P/prometheus.yml"

echo "--> promtool test rules"
promtool test rules "$P"/tests/*.yml
