/**
 * The `weyl-fmix32` generator in JavaScript (`../shared/fixtures/README.md` §1): the tests'
 * own implementation, independent of the library's (in Rust, `crates/kernels/src/weyl.rs`),
 * to regenerate fixtures' weights and inputs and to check the library's against.
 */
const GOLDEN = 0x9e3779b9;

/** MurmurHash3's 32-bit finaliser. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Key of the stream of tensor number `t` under `seed`. */
export function streamKey(seed: number, t: number): number {
  return fmix32((fmix32(seed >>> 0) + Math.imul(t + 1, GOLDEN)) >>> 0);
}

import type { FillRule } from '../ts/weyl.js';

/** Fills `numel` values of tensor `t` of `seed` (README §1.3), each rounded as specified. */
export function fillTensor(seed: number, t: number, numel: number, rule: FillRule): Float32Array {
  const key = streamKey(seed, t);
  const s = Math.fround(rule.scale);
  const out = new Float32Array(numel);
  for (let i = 0; i < numel; i++) {
    const x = fmix32((key + Math.imul(i + 1, GOLDEN)) >>> 0);
    const u = ((x >>> 8) - 8388608) * 2 ** -23; // exact in [-1, 1)
    const v = Math.fround(s * (rule.abs ? Math.abs(u) : u));
    out[i] = rule.offset === 0 ? v : Math.fround(rule.offset + v);
  }
  return out;
}

/** The README's `checksum32`, to check a fill against a fixture's record. */
export function checksum32(a: Float32Array): number {
  const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  let h = 0;
  for (let i = 0; i < a.length; i++) h = (h + fmix32((bits[i]! + Math.imul(i, GOLDEN)) >>> 0)) >>> 0;
  return h;
}
