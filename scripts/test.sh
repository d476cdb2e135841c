#!/usr/bin/env bash
# The whole test suite: the kernels crate natively (scalar kernels, proptest), then
# vitest (simd128 kernels through the wasm build, the API, the PyTorch fixtures, the
# packaged build). Ends with one summary line for vitest in the 'N passed, N failed' form.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo test (inception-kernels, native; then with rayon threads; then the thread profiler's own test; inception-image)"
cargo test --quiet -p inception-kernels
cargo test --quiet -p inception-kernels --features threads
cargo test --quiet -p inception-kernels --features profile profile
cargo test --quiet -p inception-image

status=0
# vitest <title> <files...>: one run, then its 'N passed, N failed' line.
run_vitest() {
  local title=$1 report
  shift
  report=$(mktemp)
  npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`vitest (${process.argv[2]}): ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  ' "$report" "$title"
  rm -f "$report"
}

echo "== vitest (simd128 build)"
run_vitest simd128
# The relaxed-SIMD build (fused multiply-add) through the kernel, fixture and API suites.
echo "== vitest (relaxed-SIMD build)"
TEST_SIMD=relaxed run_vitest relaxed-SIMD test/kernels.test.ts test/microkernels.test.ts test/fixtures.test.ts test/api.test.ts test/steady-state.test.ts test/simd-flavour.test.ts
exit "$status"
