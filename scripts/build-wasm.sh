#!/usr/bin/env bash
# Builds crates/wasm into ts/wasm/ (wasm-bindgen's `web` glue + the .wasm), with simd128,
# std rebuilt by Debian's Rust (`-Z build-std`, see ../shared/TOOLCHAIN.md), then runs
# wasm-opt from the npm `binaryen` package. Skips everything when no input is newer than
# the output, so every npm script can call it unconditionally.
set -euo pipefail
cd "$(dirname "$0")/.."

out=ts/wasm
wasm="$out/inception_wasm_bg.wasm"
inputs=(Cargo.toml Cargo.lock crates scripts/build-wasm.sh)
if [[ -f "$wasm" && -z "$(find "${inputs[@]}" -newer "$wasm" -print -quit 2>/dev/null)" ]]; then
  echo "build:wasm: up to date ($(stat -c %s "$wasm") bytes)"
  exit 0
fi

# Debian's cargo/rustc (1.96, can rebuild std for wasm32) ahead of rustup's, which has no
# wasm32 target here; wasm-pack and wasm-bindgen come from ~/.cargo/bin (scripts/setup.sh).
export PATH="/usr/bin:$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1   # -Z build-std on a stable compiler
export RUSTFLAGS="-C target-feature=+simd128"
# A target dir of its own: the host build (rustup 1.95) and this one (1.96) would
# otherwise invalidate each other's artifacts on every switch.
export CARGO_TARGET_DIR="$PWD/target/wasm"

start=$(date +%s)
# --mode force: wasm-pack's target check asks rustc for a wasm32 sysroot, which Debian's
# toolchain does not have (std comes from -Z build-std instead).
wasm-pack --quiet build crates/wasm --release --target web --mode force \
  --out-dir "$PWD/$out" --out-name inception_wasm --no-pack \
  -- -Z build-std=std,panic_abort
rm -f "$out/.gitignore"
node_modules/.bin/wasm-opt -O3 "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
touch "$wasm"
echo "build:wasm: $(stat -c %s "$wasm") bytes in $(( $(date +%s) - start )) s"
