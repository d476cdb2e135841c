/**
 * The steady-state checks shared by the single-threaded and the threaded test files: a
 * compiled plan runs with no allocation inside WebAssembly beyond the tensor it returns,
 * and WebAssembly memory stops growing after the first forward of a shape.
 */
import { describe, expect, it } from 'vitest';
import type * as Lib from '../ts/index.js';

/**
 * `lib`: the package under test (the sources, or the built `dist/` for the threaded build;
 * its thread team wakes its workers without allocating).
 */
export function steadyStateTests(title: string, lib: typeof Lib): void {
  const { GoogLeNet, Inception, memoryInfo, Tensor } = lib;

  /** Allocations a new tensor costs (its buffer): all a steady-state forward may make. */
  function tensorCost(): number {
    const before = memoryInfo().allocations;
    Tensor.zeros([10]).dispose();
    return memoryInfo().allocations - before;
  }

  /** Allocations per forward beyond its output tensor's, and memory growth, over 20 forwards. */
  function steadyState(model: Lib.Module, shape: number[]): { extra: number; grew: number } {
    using x = Tensor.fromArray(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25), shape);
    model.forward(x).dispose(); // compiles the plan, sizes the arena and the scratch
    model.forward(x).dispose();
    const before = memoryInfo();
    for (let i = 0; i < 20; i++) model.forward(x).dispose();
    const after = memoryInfo();
    return { extra: (after.allocations - before.allocations) / 20 - tensorCost(), grew: after.wasmBytes - before.wasmBytes };
  }

  describe(title, () => {
    it("GoogLeNet x=[1,3,64,64]: a forward allocates nothing beyond its output tensor, memory does not grow", () => {
      using net = new GoogLeNet({ numClasses: 10, seed: 1 });
      const { extra, grew } = steadyState(net, [1, 3, 64, 64]);
      expect(grew).toBe(0);
      expect(extra).toBeLessThanOrEqual(0);
    });

    it('Inception 3a x=[2,192,28,28]: the same', () => {
      using block = new Inception(192, 64, 96, 128, 16, 32, 32);
      const { extra, grew } = steadyState(block, [2, 192, 28, 28]);
      expect(grew).toBe(0);
      expect(extra).toBeLessThanOrEqual(0);
    });
  });
}
