#!/usr/bin/env bash
# λ_tsr × λ_csa grid of Rep-MTL on the VALIDATION split (evalSplit=val: the runs never build the test split).
# Usage: scripts/mtl-lambda-grid.sh EXPERIMENT OUT_ROOT "TSR_VALUES" "CSA_VALUES" [extra efftrain args...]
# e.g.   scripts/mtl-lambda-grid.sh mtl-multifashion runs/grid-mf "0.1 0.3 0.9 1.5" "0.01 0.1 0.9 1.5" --quick --seeds 1,2
# then   node scripts/mtl-select.mjs --method rep-mtl OUT_ROOT/*/
set -euo pipefail
exp=$1; root=$2; tsrs=$3; csas=$4; shift 4
for t in $tsrs; do
  for c in $csas; do
    out="$root/tsr$t-csa$c"
    if [ -f "$out/results.json" ]; then echo "skip $out"; continue; fi
    node dist/cli/main.js run "$exp" --methods rep-mtl --workers 1 --set evalSplit=val \
      --set "repmtl.lambdaTsr=$t" --set "repmtl.lambdaCsa=$c" --out "$out" "$@"
  done
done
