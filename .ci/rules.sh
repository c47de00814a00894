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

echo "--> dashboard JSON parses"
DASH=deploy/grafana/mm-trace-dashboard.json
python3 -m json.tool "$DASH" >/dev/null

echo "--> dashboard queries, rule expressions and test inputs use only real metric names"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$DASH" "$TMP/panel_queries.yml" <<'PY'
import json, re, sys

dash_path, panel_rules_out = sys.argv[1], sys.argv[2]
P = "deploy/prometheus/"
errors = []

def read(path):
    try:
        return open(path).read()
    except OSError as e:
        errors.append(f"cannot read {path}: {e.strerror}")
        return ""

# What an mm-trace process exposes (docs/PERFORMANCE_DASHBOARD.md "The metrics",
# mm-trace/src/export/prometheus.rs, and the health counters' table in mm-trace/src/health.rs).
HISTOGRAMS = ["mm_stage_duration_ms", "mm_exchange_req_ms",              # default names
              "mm_stage_duration_seconds", "mm_exchange_req_seconds"]    # prometheus_base_units
SCALARS = ["mm_guard_trips_total", "mm_tick_deadline_miss_total", "mm_ticks_total",
           "mm_tick_partial_fail_total", "mm_parallel_symbols",
           "mm_trace_spans_dropped_total", "mm_trace_export_errors_total", "mm_trace_overhead_ratio",
           "mm_trace_traces_dropped_total", "mm_trace_slow_ticks_kept_total",
           "mm_trace_label_overflow_total", "mm_trace_spans_recorded_total", "mm_trace_late_spans_total",
           "mm_trace_slow_ticks_rate_limited_total", "mm_trace_ticks_cancelled_total",
           "mm_trace_stage_cancelled_total", "mm_trace_span_cost_seconds",
           "mm_stage_errors_total", "mm_exchange_req_errors_total", "mm_trace_annotations_dropped_total"]
BUILTIN = ["up", "ALERTS", "ALERTS_FOR_STATE"]     # made by Prometheus itself
EXPOSED = set(SCALARS) | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}

# The exporter must still emit these names (the dashboard and the alerts depend on them).
exporter = read("mm-trace/src/export/prometheus.rs") + read("mm-trace/src/health.rs")
for name in SCALARS + ["mm_stage_duration_", "mm_exchange_req_"]:
    if f'"{name}' not in exporter:
        errors.append(f"metric {name} is no longer in mm-trace/src/export/prometheus.rs or mm-trace/src/health.rs")

def rule_file_exprs(path):
    """(kind, name, expr) for every rule of a rule file (expr: plain or block scalar)."""
    out, name, kind = [], None, None
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-\s*(record|alert):\s*(\S+)", line)
        if m:
            kind, name = m.group(1), m.group(2)
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if m:
            indent, rest = len(m.group(1)), m.group(2).strip()
            if rest in ("|", ">", "|-", ">-"):
                body = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    body.append(lines[i].strip())
                    i += 1
                out.append((kind, name, " ".join(body)))
                continue
            out.append((kind, name, rest.strip("'\"")))
        i += 1
    return out

recording = rule_file_exprs(P + "recording_rules.yml")
RECORDED = {name for kind, name, _ in recording if kind == "record"}
alerts = rule_file_exprs(P + "alerts.yml")
KNOWN = EXPOSED | RECORDED | set(BUILTIN)

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan", "atan2", "start", "end"}

def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)   # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                                       # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                                      # ranges, subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names

# 1. rule and alert expressions
for kind, name, expr in recording + alerts:
    for n in metric_names(expr) - KNOWN:
        errors.append(f"{kind} {name}: unknown metric {n!r} in {expr!r}")

# 2. the dashboard
d = json.load(open(dash_path))
if not 36 <= d.get("schemaVersion", 0) <= 41:
    errors.append(f"dashboard schemaVersion {d.get('schemaVersion')} (expected ~39)")
tv = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
if tv.get("datasource", {}).get("type") != "datasource" or tv["datasource"].get("query") != "prometheus":
    errors.append("dashboard: no `datasource` template variable of type prometheus")
track = tv.get("track", {})
q = track.get("query")
q = q.get("query") if isinstance(q, dict) else q
if q != "label_values(mm_ticks_total, track)" or not track.get("multi"):
    errors.append("dashboard: `track` variable must be multi-select label_values(mm_ticks_total, track)")

def all_panels(ps):
    for p in ps:
        yield p
        yield from all_panels(p.get("panels", []))

ids, exprs, used_rules = set(), [], set()
for p in all_panels(d.get("panels", [])):
    if p.get("id") in ids:
        errors.append(f"panel id {p.get('id')} used twice")
    ids.add(p.get("id"))
    if "gridPos" not in p:
        errors.append(f"panel {p.get('title')!r}: no gridPos")
    if p.get("type") == "row":
        continue
    targets = p.get("targets") or []
    if not targets:
        errors.append(f"panel {p.get('title')!r}: no targets")
    for t in targets:
        expr = t.get("expr", "")
        if not expr:
            errors.append(f"panel {p.get('title')!r} target {t.get('refId')}: empty expr")
            continue
        if (t.get("datasource") or p.get("datasource") or {}).get("uid") != "${datasource}":
            errors.append(f"panel {p.get('title')!r}: datasource is not ${{datasource}}")
        names = metric_names(expr)
        for n in names - KNOWN:
            errors.append(f"panel {p.get('title')!r}: unknown metric {n!r} in {expr!r}")
        used_rules |= names & RECORDED
        exprs.append((p.get("title"), expr))
for a in d.get("annotations", {}).get("list", []):
    if a.get("expr"):
        for n in metric_names(a["expr"]) - KNOWN:
            errors.append(f"annotation {a.get('name')!r}: unknown metric {n!r}")
if len(exprs) < 10:
    errors.append(f"dashboard has only {len(exprs)} queries")

# 3. test inputs: real metric names, and `le` values that the exporter really emits
src = read("mm-trace/src/histogram.rs")
m = re.search(r"PROMETHEUS_BOUNDS_MS\s*:\s*&\[f64\]\s*=\s*&\[([^\]]*)\]", src)
bounds = [float(x) for x in m.group(1).replace("\n", " ").split(",") if x.strip()] if m else []
if src and not bounds:
    errors.append("cannot read PROMETHEUS_BOUNDS_MS from mm-trace/src/histogram.rs")
import glob
for tf in sorted(glob.glob(P + "tests/*.yml")):
    for s in re.findall(r"series:\s*'([^']*)'", open(tf).read()):
        name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", s).group(0)
        if name not in EXPOSED and name not in BUILTIN:
            errors.append(f"{tf}: input series of unknown metric {name}")
        le = re.search(r'le="([^"]*)"', s)
        if le and le.group(1) != "+Inf":
            v = float(le.group(1)) * (1000 if "_seconds_" in name else 1)
            if not any(abs(v - b) <= 1e-9 * max(1, b) for b in bounds):
                errors.append(f"{tf}: {name} le={le.group(1)} is not a PROMETHEUS_BOUNDS_MS bucket")

# 4. every dashboard query must be valid PromQL: write them as recording rules for promtool
with open(panel_rules_out, "w") as f:
    f.write("groups:\n  - name: dashboard-panels\n    rules:\n")
    for i, (title, expr) in enumerate(exprs):
        e = expr.replace("$track", "canary|baseline").replace("$stage", ".*")
        f.write(f"      - record: dashboard:panel_{i}:query\n        expr: {json.dumps(e)}\n")

if errors:
    print("\n".join("  FAIL: " + e for e in errors))
    sys.exit(1)
print(f"  SUCCESS: {len(exprs)} panel queries over {len(used_rules)} recording rules; "
      f"{len(recording)} recording rules, {len(alerts)} alerts reference only exposed metrics")
PY

echo "--> dashboard queries are valid PromQL"
promtool check rules "$TMP/panel_queries.yml"

echo "rules.sh: all Prometheus/Grafana checks passed"
