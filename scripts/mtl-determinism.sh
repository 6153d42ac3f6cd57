#!/usr/bin/env bash
# Tiny runs of STL, every MTL weighting but GLS, rep-mtl and rep-mtl@ew on both MTL experiments with the build in DIST_DIR;
# prints every final metric except sec/epoch, one run per line (for before/after comparisons of refactors).
# Usage: scripts/mtl-determinism.sh DIST_DIR OUT_DIR   (e.g. build a commit into another dir, run both, diff the output)
dist=$1; out=$2
M=stl,ew,log-ew,uw,dwa,rlw,famo,gradnorm,mgda,pcgrad,cagrad,imtl,nash-mtl,aligned-mtl,db-mtl,rep-mtl,rep-mtl@ew
nice -n 5 node $dist/cli/main.js run mtl-multifashion --backend wasm --methods $M,mgda-ub --seeds 1 --workers 1 --quiet \
  --set nTrain=256 --set nVal=64 --set nTest=128 --set epochs=2 --set batchSize=32 --set 'channels=[4,8]' --out $out/mf
nice -n 5 node $dist/cli/main.js run mtl-fashion-domains --backend wasm --methods $M --seeds 1 --workers 1 --quiet \
  --set nPerDomain=128 --set nVal=32 --set nTest=64 --set epochs=2 --set batchSize=32 --set 'channels=[4,8]' --out $out/dom
node -e '
const fs=require("fs");for(const e of ["mf","dom"]){const r=JSON.parse(fs.readFileSync(process.argv[1]+"/"+e+"/results.json"));
for(const x of r.runs){const m={...x.metrics};delete m.sec_per_epoch;console.log(e,x.method,x.seed,JSON.stringify(m));}}' $out
