// A worker that panics in the middle of a forward (fault injection in the threaded build,
// the built package): the forward fails at once with a WorkerError, one warning, and later
// forwards compute the same results on one thread.
import { beforeAll, expect, it, vi } from 'vitest';
import * as lib from '../dist/index.js';

interface Testing {
  injectWorkerFault(kind: 0 | 1, after: number): void;
}

beforeAll(async () => {
  await lib.init({ threads: 2 });
  expect(lib.threadCount()).toBe(2);
});

it('a panic in a worker mid-forward → WorkerError within a second; then one thread, same results', () => {
  using net = new lib.GoogLeNet({ numClasses: 10, seed: 5 });
  using x = lib.Tensor.fromArray(Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => Math.sin(i / 5)), [2, 3, 64, 64]);
  const want = net.forward(x).toArray();
  const testing = (globalThis as Record<symbol, Testing>)[Symbol.for('inception-wasm.testing')]!;
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  try {
    testing.injectWorkerFault(0, 5);
    const start = performance.now();
    expect(() => net.forward(x)).toThrow(lib.WorkerError);
    expect(performance.now() - start).toBeLessThan(1000);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(lib.threadCount()).toBe(1);
    using y = net.forward(x);
    expect(y.toArray()).toEqual(want);
    using fresh = new lib.GoogLeNet({ numClasses: 10, seed: 5 });
    using z = fresh.forward(x);
    expect(z.toArray()).toEqual(want);
    expect(warn).toHaveBeenCalledTimes(1);
  } finally {
    warn.mockRestore();
  }
});
