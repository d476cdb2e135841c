/**
 * Mutation fuzzing of the safetensors loader: a valid file of a small torchvision-style
 * Inception block, mutated (bytes flipped, cut, inserted; the header length rewritten;
 * numbers, dtypes and keys in the header changed), then parsed and, when it parses, loaded
 * into the block. Every outcome must be a loaded model or a `SafetensorsError` /
 * `StateDictError` with the model unchanged; afterwards the block computes what it did
 * before, bit for bit. Cases come from the weyl-fmix32 generator (test/weyl.ts), so a
 * failing case number reproduces.
 */
import { expect } from 'vitest';
import type * as Lib from '../ts/index.js';
import { fmix32 } from './weyl.js';

/** Case `i`'s random numbers: `next()` in [0, 2^32). */
function stream(i: number): () => number {
  let n = 0;
  return () => fmix32((fmix32(i) + Math.imul(++n, 0x9e3779b9)) >>> 0);
}

const HEADER_EDITS: [RegExp, (r: () => number) => string][] = [
  [/\d+/, (r) => String([0, 1, 2 ** 31, 2 ** 32, 2 ** 53, -1, r() % 4096][r() % 7])],
  [/"F32"/, (r) => ['"F16"', '"BF16"', '"F64"', '"I64"', '"U8"', '"F32 "', 'null'][r() % 7]!],
  [/"[a-z0-9_.]+":/, () => '"":'],
  [/\[[\d, ]*\]/, (r) => ['[]', '[0]', '[1, 2, 3, 4, 5]', '[-1]', '[1.5]', '"x"'][r() % 6]!],
];

/** One mutation of `file`. */
export function mutate(file: Uint8Array, r: () => number): Uint8Array {
  const out = Array.from(file);
  const kind = r() % 6;
  const headerEnd = 8 + Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  if (kind === 0) {
    for (let k = 1 + (r() % 4); k > 0; k--) out[r() % out.length] = r() & 255;
  } else if (kind === 1) {
    out.length = r() % out.length;
  } else if (kind === 2) {
    out.splice(r() % out.length, 0, ...Array.from({ length: 1 + (r() % 8) }, () => r() & 255));
  } else if (kind === 3) {
    const lengths = [0, 1, 7, headerEnd - 9, headerEnd - 7, file.length, 2 ** 32 + 16, 2 ** 40];
    const view = new DataView(new ArrayBuffer(8));
    view.setBigUint64(0, BigInt(lengths[r() % lengths.length]!), true);
    out.splice(0, 8, ...new Uint8Array(view.buffer));
  } else {
    // Edit the JSON header: one occurrence of a number, dtype, key or shape.
    const header = new TextDecoder().decode(file.subarray(8, headerEnd));
    const [pattern, replacement] = HEADER_EDITS[r() % HEADER_EDITS.length]!;
    const matches = [...header.matchAll(new RegExp(pattern.source, 'g'))];
    if (matches.length === 0) return new Uint8Array(out);
    const m = matches[r() % matches.length]!;
    const edited = header.slice(0, m.index) + replacement(r) + header.slice(m.index! + m[0].length);
    const bytes = new TextEncoder().encode(edited);
    const length = new DataView(new ArrayBuffer(8));
    length.setBigUint64(0, BigInt(bytes.length), true);
    return new Uint8Array([...new Uint8Array(length.buffer), ...bytes, ...file.subarray(headerEnd)]);
  }
  return new Uint8Array(out);
}

/** Runs cases `[first, first + count)`; returns how many loaded, and how many were refused by which error. */
export function fuzzSafetensors(lib: typeof Lib, first: number, count: number): Record<string, number> {
  const { Inception, Tensor, loadSafetensors, saveSafetensors, SafetensorsError, StateDictError } = lib;
  using block = new Inception(4, 2, 2, 3, 2, 3, 2, { style: 'torchvision', seed: 3 });
  const file = saveSafetensors(block.stateDict());
  using x = Tensor.fromArray(Float32Array.from({ length: 4 * 5 * 5 }, (_, i) => Math.sin(i)), [1, 4, 5, 5]);
  const reference = block.forward(x).toArray();
  const outcomes: Record<string, number> = {};
  for (let i = first; i < first + count; i++) {
    const bytes = mutate(file, stream(i));
    const before = saveSafetensors(block.stateDict());
    let outcome = 'loaded';
    try {
      block.loadStateDict(loadSafetensors(bytes));
    } catch (e) {
      if (!(e instanceof SafetensorsError || e instanceof StateDictError)) throw new Error(`case ${i}: ${String(e)}`, { cause: e });
      outcome = e.constructor.name;
      expect(Buffer.compare(saveSafetensors(block.stateDict()), before), `case ${i}: a failed load changed the model`).toBe(0);
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    // A file that loaded may hold other (finite or not) values: put the original back.
    if (outcome === 'loaded') block.loadStateDict(loadSafetensors(file));
  }
  using y = block.forward(x);
  expect(y.toArray()).toEqual(reference);
  return outcomes;
}
