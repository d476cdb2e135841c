#!/usr/bin/env bash
# The wasm module (scripts/build-wasm.sh) and the package in dist/ (tsup), each rebuilt
# only when one of its inputs is newer than its output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-wasm.sh
WASM_BUILDS=testing bash scripts/build-wasm.sh
if [[ -f dist/index.js && -z "$(find ts tsup.config.ts package.json tsconfig.json -newer dist/index.js -print -quit)" ]]; then
  echo "build: dist/ up to date"
else
  rm -rf dist
  npx tsup --silent
  echo "build: dist/ rebuilt"
fi
