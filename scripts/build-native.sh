#!/usr/bin/env bash
# Builds the optional OpenBLAS addon (native/blas.c -> native/build/efftrain_blas.node) with the
# system C compiler against Debian's libopenblas-dev and the running Node's headers.
# Never fails: when something is missing it prints one line saying why, and efftrain runs on wasm.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-native-shift.sh  # the S3 shift-engine addon (needs no OpenBLAS)
out=native/build/efftrain_blas.node
why() { echo "efftrain: BLAS addon not built ($1); training uses plain wasm"; rm -f "$out"; exit 0; }
source scripts/native-toolchain.sh
blasinc=""
for d in /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/include/openblas /usr/include; do
  [ -f "$d/cblas.h" ] && grep -q openblas_set_num_threads "$d/cblas.h" && { blasinc="$d"; break; }
done
[ -n "$blasinc" ] || why "OpenBLAS headers not found; apt-get install libopenblas-dev"
mkdir -p native/build
# -ffp-contract=off: no fused multiply-adds, so the fused AdamW pass rounds exactly like tfjs's separate
# float32 ops (bit-identical updates); -fno-math-errno lets sqrtf vectorise.
if ! err=$("$cc" -O3 -fno-math-errno -ffp-contract=off -shared -fPIC -std=c11 -Wall -Werror -I"$inc" -I"$blasinc" native/blas.c -o "$out.tmp" -lopenblas 2>&1); then
  rm -f "$out.tmp"
  why "compile failed: $(echo "$err" | grep -m1 -i error || echo "$err" | head -1)"
fi
mv "$out.tmp" "$out"
if ! msg=$(node -e "const m=require('./$out'); process.stdout.write(m.config())" 2>&1); then
  why "built but does not load: $(echo "$msg" | grep -m1 -i error)"
fi
echo "efftrain: BLAS addon built ($out, $msg)"
