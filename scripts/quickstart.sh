#!/usr/bin/env bash
# One command on a fresh Debian machine: installs Fashion-MNIST and OpenBLAS (apt, when available), the
# npm dependencies, builds (including the optional OpenBLAS addon), and runs the default experiment
# (fashion-baseline --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
if ! [ -f /usr/include/x86_64-linux-gnu/cblas.h ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq gcc libc6-dev libopenblas-dev || echo "warning: could not install libopenblas-dev; training runs on plain wasm"
fi
npm ci --no-audit --no-fund
bash scripts/build-native.sh
npm run build
node dist/cli/main.js run "${1:-fashion-baseline}" --quick "${@:2}"
