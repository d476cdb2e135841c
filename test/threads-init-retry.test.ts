// A failed threaded init can be retried (the built package: its workers load dist/worker.js).
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as lib from '../dist/index.js';

it('init({ threads: 2 }) with the wrong module rejects; the next init({ threads: 2 }) loads the right one and computes', async () => {
  const single = readFileSync(new URL('../dist/wasm/inception_wasm_bg.wasm', import.meta.url));
  await expect(lib.init({ threads: 2, threadedWasm: single })).rejects.toThrow();
  expect(lib.isInitialized()).toBe(false);
  await lib.init({ threads: 2 });
  expect(lib.threadCount()).toBe(2);
  using conv = new lib.Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, seed: 1 });
  using x = lib.Tensor.fromArray(Float32Array.from({ length: 2 * 9 * 9 }, (_, i) => i / 10), [1, 2, 9, 9]);
  using y = conv.forward(x);
  expect(y.shape).toEqual([1, 3, 9, 9]);
  expect(y.toArray().every(Number.isFinite)).toBe(true);
});
