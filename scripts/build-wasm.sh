#!/usr/bin/env bash
# Builds crates/wasm four times, each into its own folder of wasm-bindgen `web` glue + .wasm:
#   ts/wasm/                  single-threaded, simd128 (every runtime)
#   ts/wasm-relaxed/          the same with relaxed SIMD (fused multiply-add), for runtimes
#                             that validate it (Chromium; Node 20 behind a flag)
#   ts/wasm-threads/          rayon over shared memory: +atomics, imported shared memory
#   ts/wasm-threads-relaxed/  both
# A relaxed build's glue is the same file as its plain twin's (same exports); the loader
# uses the plain glue with either .wasm.
# with std rebuilt by Debian's Rust (`-Z build-std`, see ../shared/TOOLCHAIN.md), then
# wasm-opt from the npm `binaryen` package. Skips a build when none of its inputs is
# newer than its output, so every npm script can call this unconditionally.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's cargo/rustc (1.96, can rebuild std for wasm32) ahead of rustup's, which has no
# wasm32 target here; wasm-pack and wasm-bindgen come from ~/.cargo/bin (scripts/setup.sh).
export PATH="/usr/bin:$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1   # -Z build-std on a stable compiler

# build <out dir> <rustflags> <extra cargo args...>: the inference module (crates/wasm).
# CRATE / NAME / SOURCES select another one (the image module, below).
build() {
  local out=$1 flags=$2 crate=${CRATE:-crates/wasm} name=${NAME:-inception_wasm}
  shift 2
  local wasm="$out/${name}_bg.wasm"
  # shellcheck disable=SC2086 # SOURCES is a list of paths
  if [[ -f "$wasm" && -z "$(find Cargo.toml Cargo.lock ${SOURCES:-crates/kernels crates/wasm} scripts/build-wasm.sh -newer "$wasm" -print -quit 2>/dev/null)" ]]; then
    echo "build:wasm: $out up to date ($(stat -c %s "$wasm") bytes)"
    return
  fi
  local start
  start=$(date +%s)
  # A target dir per flavour: different RUSTFLAGS (and rustup's 1.95 for host tests)
  # would otherwise invalidate each other's artifacts, std included, on every switch.
  # --mode force: wasm-pack's target check asks rustc for a wasm32 sysroot, which
  # Debian's toolchain does not have (std comes from -Z build-std instead).
  RUSTFLAGS="$flags" CARGO_TARGET_DIR="$PWD/target/$(basename "$out")" \
    wasm-pack --quiet build "$crate" --release --target web --mode force \
    --out-dir "$PWD/$out" --out-name "$name" --no-pack \
    -- -Z build-std=std,panic_abort "$@"
  rm -f "$out/.gitignore"
  # After a trap the loader starts a new instance (ts/backend.ts `reinstantiate`), but the
  # glue keeps one instance per realm and `initSync` returns it while it is set: give the
  # loader a way to clear it. Checked, so a glue of another shape fails the build here.
  grep -q '^let wasmModule, wasmInstance, wasm;$' "$out/$name.js" || { echo "build:wasm: unexpected wasm-bindgen glue in $out" >&2; exit 1; }
  printf '\n/** Added by scripts/build-wasm.sh: forgets a faulted instance, so that initSync makes a new one. */\nexport function __resetInstance() { wasm = undefined; wasmModule = undefined; wasmInstance = undefined; }\n' >> "$out/$name.js"
  printf 'export function __resetInstance(): void;\n' >> "$out/$name.d.ts"
  # -ocimfs 100: binaryen inlines every function that has one caller, whatever its size,
  # which merged all the kernels a plan runs into one 36 KB function; V8 compiles that
  # one far worse (conv2 64×56×56→192: 346 M instructions per forward instead of 288 M,
  # callgrind). Rust's own inlining (LTO) has already run; keep big kernels separate.
  # --low-memory-unused: constant address offsets fold into the loads and stores (7–9 %
  # faster kernels, measured). Safe: the stack comes first (data starts at 1 MiB), so
  # the low 1 KiB is reached only by a stack overflow.
  node_modules/.bin/wasm-opt -O3 -ocimfs 100 --low-memory-unused --enable-threads "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
  touch "$wasm"
  echo "build:wasm: $out $(stat -c %s "$wasm") bytes in $(($(date +%s) - start)) s"
}

# Threads: atomics + bulk memory for shared memory, the memory imported (every worker
# instantiates the module over the same one) with a 2 GiB maximum, and the TLS symbols
# wasm-bindgen's thread setup needs exported.
threads_link=""
for arg in --shared-memory --import-memory --max-memory=2147483648 \
  --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base; do
  threads_link+=" -C link-arg=$arg"
done
threads_features="+atomics,+bulk-memory,+mutable-globals,+simd128"

# WASM_BUILDS=single builds only the first (kernel work that needs no threads, in a quarter
# of the time); WASM_BUILDS=profile only the threaded build with per-stage timing, for
# bench/threads-profile.mjs; WASM_BUILDS=testing the single-threaded builds with the
# test and bench exports (feature `testing`: test/microkernels.test.ts, bench/gemm.mjs).
# The last two are never shipped: target/, not ts/.
if [[ "${WASM_BUILDS:-all}" == profile ]]; then
  build target/profile/wasm-threads "-C target-feature=$threads_features$threads_link" --features profile
  exit 0
fi
# WASM_BUILDS=threads: only the shipped threaded build (its size against the budget of
# test/package.test.ts, in a quarter of the time).
if [[ "${WASM_BUILDS:-all}" == threads ]]; then
  build ts/wasm-threads "-C target-feature=$threads_features$threads_link" --features threads
  exit 0
fi
if [[ "${WASM_BUILDS:-all}" == testing ]]; then
  build target/testing/wasm "-C target-feature=+simd128" --features testing
  build target/testing/wasm-relaxed "-C target-feature=+simd128,+relaxed-simd" --features testing
  exit 0
fi
build ts/wasm "-C target-feature=+simd128"
# The image module (decoders, resize): its own .wasm, loaded on the first image call.
CRATE=crates/image-wasm NAME=inception_image SOURCES="crates/image crates/image-wasm" \
  build ts/wasm-image "-C target-feature=+simd128"
[[ "${WASM_BUILDS:-all}" == single ]] && exit 0
build ts/wasm-relaxed "-C target-feature=+simd128,+relaxed-simd"
build ts/wasm-threads "-C target-feature=$threads_features$threads_link" --features threads
build ts/wasm-threads-relaxed "-C target-feature=$threads_features,+relaxed-simd$threads_link" --features threads
