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
  const { GoogLeNet, Inception, SGD, googlenetLoss, memoryInfo, Tensor } = lib;

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

    // Training re-packs the weights (and re-makes Winograd's transformed ones, in parallel
    // tasks) at every step into memory freed by the step before: the heap must reuse it.
    it('GoogLeNet with aux heads, training steps at x=[8,3,32,32]: memory stops growing after the first steps', () => {
      using net = new GoogLeNet({ variant: 'torchvision', numClasses: 10, auxLogits: true, seed: 2 }).train();
      const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
      using x = Tensor.fromArray(new Float32Array(8 * 3 * 32 * 32).map((_, i) => Math.sin(i)), [8, 3, 32, 32]);
      const targets = [0, 1, 2, 3, 4, 5, 6, 7];
      const step = () => {
        opt.zeroGrad();
        const out = net.forwardAll(x);
        const loss = googlenetLoss(out, targets);
        loss.backward();
        opt.step();
        const value = loss.item();
        for (const t of [loss, out.logits, out.aux1, out.aux2]) t?.dispose();
        return value;
      };
      for (let i = 0; i < 3; i++) step();
      const before = memoryInfo().wasmBytes;
      for (let i = 0; i < 8; i++) expect(Number.isFinite(step())).toBe(true);
      expect(memoryInfo().wasmBytes - before).toBe(0);
      opt.dispose();
    });

    it('Inception 3a x=[2,192,28,28]: the same', () => {
      using block = new Inception(192, 64, 96, 128, 16, 32, 32);
      const { extra, grew } = steadyState(block, [2, 192, 28, 28]);
      expect(grew).toBe(0);
      expect(extra).toBeLessThanOrEqual(0);
    });
  });
}
