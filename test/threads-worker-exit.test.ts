// A pool worker whose thread ends between forwards (terminated): the next forward does not
// hang; it runs on one thread, with one warning, and gives the same results.
import type { Worker } from 'node:worker_threads';
import { beforeAll, expect, it, vi } from 'vitest';
import * as lib from '../dist/index.js';

beforeAll(async () => {
  await lib.init({ threads: 2 });
  expect(lib.threadCount()).toBe(2);
});

it('terminating a worker: the next forward runs on one thread, same results, one warning', async () => {
  using block = new lib.Inception(192, 64, 96, 128, 16, 32, 32, { seed: 2 });
  using x = lib.Tensor.fromArray(Float32Array.from({ length: 192 * 28 * 28 }, (_, i) => Math.cos(i / 9)), [1, 192, 28, 28]);
  const want = block.forward(x).toArray();
  const { workers } = (globalThis as Record<symbol, { workers: Worker[] }>)[Symbol.for('inception-wasm.testing')]!;
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  try {
    await workers[0]!.terminate();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the 'exit' event
    expect(lib.threadCount()).toBe(1);
    const start = performance.now();
    using y = block.forward(x);
    expect(performance.now() - start).toBeLessThan(5000);
    expect(y.toArray()).toEqual(want);
    expect(warn).toHaveBeenCalledTimes(1);
  } finally {
    warn.mockRestore();
  }
});
