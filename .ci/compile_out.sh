#!/usr/bin/env bash
# Compile-out checks, in a crate outside the workspace (feature unification cannot re-enable it):
# the API still works and reads empty, and each instrumented function compiles to exactly the
# machine code of its uninstrumented twin in release.
set -euo pipefail
cd "$(dirname "$0")/../tests/compile-out"
cargo test --quiet
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
rm -rf "$target"/release/deps/compile_out-*.s
touch src/lib.rs  # force codegen even when the build is fresh
cargo rustc --quiet --release --lib -- --emit asm
asm=$(ls "$target"/release/deps/compile_out-*.s | head -n 1)
python3 - "$asm" <<'PY'
import re, sys
text = open(sys.argv[1]).read().splitlines()
funcs, cur, name, alias = {}, None, None, {}
for line in text:
    # LLVM folds byte-identical functions into aliases (`a = b`): the strongest proof of identity.
    m = re.match(r'^(_?[A-Za-z0-9_.$]+) = (_?[A-Za-z0-9_.$]+)\s*$', line)
    if m:
        alias[m.group(1)] = m.group(2); funcs.setdefault(m.group(1), []); cur = None; continue
    m = re.match(r'^(_?[A-Za-z0-9_.$]+):\s*$', line)
    if m and not m.group(1).startswith('.'):
        name = m.group(1); cur = funcs.setdefault(name, []); continue
    if cur is not None:
        s = line.strip()
        if s.startswith('.cfi') or s.startswith('.p2align') or s.startswith('#') or not s:
            continue
        if s.startswith('.size') or s.startswith('.Lfunc_end'):
            cur = None; continue
        cur.append(s)
def body(sym_part):
    keys = [k for k in funcs if sym_part in k]
    if len(keys) != 1:
        sys.exit(f"compile-out: expected one symbol containing {sym_part!r}, found {keys}")
    key = keys[0]
    while key in alias:
        key = alias[key]
    lines = funcs[key]
    # Local labels and the mangled names of the twins differ by name only.
    out = []
    for l in lines:
        l = re.sub(r'\.L\w+', '.L', l)
        l = l.replace('instrumented', 'X').replace('plain', 'X')
        l = re.sub(r'17h[0-9a-f]{16}E', 'HASH', l)
        l = re.sub(r'\d+X', 'X', l)
        out.append(l)
    return out
pairs = ['stage', 'tick', 'exchange', 'sections', 'async']
bad = 0
for p in pairs:
    a, b = body(f'instrumented_{p}' if p != 'async' else 'poll_instrumented_async'), body(f'plain_{p}' if p != 'async' else 'poll_plain_async')
    if a != b:
        bad += 1
        print(f"compile-out: `{p}` differs from its uninstrumented twin:")
        import difflib
        for d in difflib.unified_diff(b, a, 'plain', 'instrumented', lineterm=''):
            print('  ' + d)
    else:
        print(f"compile-out: {p}: identical machine code ({len(a)} instructions)")
sys.exit(1 if bad else 0)
PY
