#!/usr/bin/env bash
# The whole test suite: the kernels crate natively (scalar kernels, proptest), then
# vitest (simd128 kernels through the wasm build, the API, the PyTorch fixtures, the
# packaged build). Ends with one summary line for vitest in the 'N passed, N failed' form.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo test (inception-kernels, native; then with rayon threads)"
cargo test --quiet -p inception-kernels
cargo test --quiet -p inception-kernels --features threads

echo "== vitest"
report=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report"
rm -f "$report"
exit "$status"
