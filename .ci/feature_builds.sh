#!/usr/bin/env bash
# Each cargo feature of mm-trace built alone, none, and all together, from a crate outside the
# workspace (tests/feature-builds), where feature unification cannot lend a feature what it
# forgot to turn on; then mm-trace's docs with `http,tokio`. Called by .ci/run; runnable alone:
# bash .ci/feature_builds.sh
set -euo pipefail
cd "$(dirname "$0")/../tests/feature-builds"
# Same dependency versions as the workspace (and no registry round trip when they are cached).
cp ../../Cargo.lock Cargo.lock

# Every feature mm-trace declares, read from its manifest, so a new feature is covered too (and
# fails here, by name, until tests/feature-builds forwards it).
meta=$(cargo metadata --format-version 1 --no-deps --manifest-path ../../mm-trace/Cargo.toml)
features=$(python3 - "$meta" <<'PY'
import json, sys, tomllib
pkg = next(p for p in json.loads(sys.argv[1])["packages"] if p["name"] == "mm-trace")
want = sorted(f for f in pkg["features"] if f != "default")
have = tomllib.load(open("Cargo.toml", "rb")).get("features", {})
missing = [f for f in want if have.get(f) != [f"mm-trace/{f}"]]
if missing:
    sys.exit("feature_builds.sh: tests/feature-builds/Cargo.toml must forward mm-trace's "
             + ", ".join(f'{f} (`{f} = ["mm-trace/{f}"]`)' for f in missing))
print(" ".join(want))
PY
)

build() {
  echo "--> cargo $1 ${2:-(no features)}"
  if [ -n "${2:-}" ]; then
    cargo "$1" --quiet --lib --features "$2"
  else
    cargo "$1" --quiet --lib
  fi
}

build check ""
for f in $features; do
  build check "$f"
done
build build "$(echo "$features" | tr ' ' ',')"

# Cargo takes `--features` only for workspace members, so this one runs in the workspace, where
# `-p mm-trace` resolves mm-trace's own dependencies without the suite package's tokio features.
echo "--> cargo doc -p mm-trace --features http,tokio"
cd ../..
RUSTDOCFLAGS=-Dwarnings cargo doc --quiet --no-deps -p mm-trace --features http,tokio
