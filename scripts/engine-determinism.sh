#!/usr/bin/env bash
# Tiny structured-ffn (dense, lowrank, SGT) and mtl-multifashion (stl, ew) runs with the build in DIST_DIR on one
# backend; prints every final metric except timings, one run per line (before/after comparisons of engine changes:
# plain `wasm` must match bit for bit, `wasm-blas` within float32 rounding).
# Usage: scripts/engine-determinism.sh DIST_DIR OUT_DIR [BACKEND]   (BACKEND: wasm (default) or wasm-blas)
set -euo pipefail
dist=$1; out=$2; backend=${3:-wasm}
nice -n 5 node "$dist/cli/main.js" run structured-ffn --backend "$backend" --methods dense,lowrank-32,lowrank-32-sgt --seeds 1 --workers 1 --quiet \
  --set steps=60 --set evalEvery=20 --set evalWindows=8 --set finalEvalWindows=16 --set saveModel=false --out "$out/sffn"
nice -n 5 node "$dist/cli/main.js" run mtl-multifashion --backend "$backend" --methods stl,ew --seeds 1 --workers 1 --quiet \
  --set nTrain=256 --set nVal=64 --set nTest=128 --set epochs=2 --set batchSize=32 --set 'channels=[4,8]' --out "$out/mf"
node -e '
const fs = require("fs");
const timing = new Set(["step_ms", "tokens_per_s", "train_seconds", "sec_per_epoch"]);
for (const e of ["sffn", "mf"]) {
  const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + e + "/results.json"));
  for (const x of r.runs) console.log(e, r.backend, x.method, x.seed, JSON.stringify(Object.fromEntries(Object.entries(x.metrics).filter(([k]) => !timing.has(k)))));
}' "$out"
