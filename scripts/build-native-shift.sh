#!/usr/bin/env bash
# Builds the optional shift-engine addon (native/shift.c -> native/build/efftrain_shift.node) with the
# system C compiler and the running Node's headers (no other library). Called by scripts/build-native.sh.
# Never fails: when something is missing it prints one line saying why, and the S3 shift engine runs
# in TypeScript.
set -uo pipefail
cd "$(dirname "$0")/.."
out=native/build/efftrain_shift.node
why() { echo "efftrain: shift addon not built ($1); the S3 shift engine runs in TypeScript"; rm -f "$out"; exit 0; }
source scripts/native-toolchain.sh
mkdir -p native/build
# -march=native: the addon is built where it runs (SIMD width of this CPU); retried without it for
# compilers that lack it. -ffp-contract=off: no fused multiply-adds, so the float layers round exactly
# like the TypeScript engine; -fwrapv: int32 wrap-around as in JavaScript.
flags=(-O3 -fwrapv -ffp-contract=off -shared -fPIC -std=c11 -Wall -Werror -I"$inc")
if ! err=$("$cc" "${flags[@]}" -march=native native/shift.c -o "$out.tmp" -lm 2>&1) &&
   ! err=$("$cc" "${flags[@]}" native/shift.c -o "$out.tmp" -lm 2>&1); then
  rm -f "$out.tmp"
  why "compile failed: $(echo "$err" | grep -m1 -i error || echo "$err" | head -1)"
fi
mv "$out.tmp" "$out"
if ! msg=$(node -e "const m=require('./$out'); process.stdout.write(m.config())" 2>&1); then
  why "built but does not load: $(echo "$msg" | grep -m1 -i error)"
fi
echo "efftrain: shift addon built ($out, $msg)"
