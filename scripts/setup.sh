#!/usr/bin/env bash
# Brings a fresh machine of this project's kind to a working state, then builds.
# Idempotent: every step checks first and is skipped when already done, so a repeated
# run takes seconds. Needs root for apt-get (as on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# 1. Debian's Rust 1.96 with std sources (rebuilds std for wasm32, see
#    ../shared/TOOLCHAIN.md: rustup has no wasm32 target here), its linker, and wabt
#    (wasm-objdump, used by a test to show the SIMD instructions in the module).
debs=(rustc-web cargo-web rust-web-src lld-22 wabt)
missing=()
for p in "${debs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
apt_updated=
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  apt-get update -qq && apt_updated=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 1b. Debian's Chromium (/usr/bin/chromium) for the browser test (test/e2e/browser.test.ts,
#     driven by playwright-core: `npx playwright install` cannot download a browser here).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'ok installed'; then
  step "apt-get install chromium (for npm run test:e2e)"
  [[ -n "$apt_updated" ]] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# 2. Host tools built from source with cargo (nothing may download a binary here).
#    wasm-bindgen-cli must equal the crate pin in crates/wasm/Cargo.toml exactly.
#    It is installed without --locked: its lockfile pins webpki-roots 1.0.11, which the
#    registry reachable here does not serve; cargo resolves 1.0.10 instead.
wb_version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' crates/wasm/Cargo.toml)
wp_version=0.15.1
host_cargo=$(command -v cargo || echo /usr/bin/cargo)
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wb_version" ]]; then
  step "cargo install wasm-bindgen-cli $wb_version (a few minutes, once)"
  "$host_cargo" install --quiet wasm-bindgen-cli --version "=$wb_version" --force
fi
if [[ "$(wasm-pack --version 2>/dev/null)" != "wasm-pack $wp_version" ]]; then
  step "cargo install wasm-pack $wp_version (a few minutes, once)"
  "$host_cargo" install --quiet wasm-pack --version "=$wp_version" --locked --force
fi

# 3. npm dependencies, when package-lock.json changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 4. The build (each part skips itself when up to date).
bash scripts/build.sh
