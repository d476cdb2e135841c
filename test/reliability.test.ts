// Hostile sizes and exhausted memory in the single-threaded build (the sources), plus what
// only the sources can show: a trap (simulated in the glue) and re-initialisation, the
// lifetime of `.data` views, modules shared between containers, forwardInto offsets.
import { beforeAll, describe, expect, it } from 'vitest';
import * as lib from '../ts/index.js';
import * as glue from '../ts/wasm/inception_wasm.js';
import { RELIABILITY_CAP, reliabilityTests } from './reliability.js';

beforeAll(() => lib.init({ maximumMemory: RELIABILITY_CAP }));

reliabilityTests('single-threaded build', lib);

/** Runs the garbage collector and lets the finalizers it queued run. */
async function collectGarbage(): Promise<void> {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('silent wrong results', () => {
  const { Conv2d, Inception, Sequential, Tensor, ValueError, memoryInfo } = lib;

  it('a `.data` view outlives its dropped tensor: after garbage collection and new tensors it still shows its own values', async () => {
    using conv = new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 1, seed: 2 });
    using x = Tensor.fromArray(Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => i % 7), [1, 3, 16, 16]);
    const view = conv.forward(x).data; // the tensor itself is dropped at once
    const expected = view.slice();
    await collectGarbage();
    const others = Array.from({ length: 20 }, () => conv.forward(x));
    const zeros = Array.from({ length: 20 }, () => Tensor.zeros([8 * 16 * 16]));
    expect(view).toEqual(expected);
    for (const t of [...others, ...zeros]) t.dispose();
  });

  it('a layer shared by two containers: loading new weights changes what both compute', () => {
    using shared = new Conv2d({ inChannels: 4, outChannels: 4, kernelSize: 1, seed: 1 });
    using a = new Sequential(shared);
    using b = new Sequential(shared);
    using x = Tensor.fromArray(Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.sin(i)), [1, 4, 8, 8]);
    a.forward(x).dispose(); // both containers cache a plan holding the old weights
    b.forward(x).dispose();
    const weight = new Float32Array(16).map((_, i) => (i % 5 === 0 ? 2 : 0));
    shared.loadStateDict({ weight: { shape: [4, 4, 1, 1], data: weight }, bias: { shape: [4], data: new Float32Array(4) } });
    using direct = shared.forward(x);
    for (const container of [a, b]) {
      using y = container.forward(x);
      expect(y.toArray()).toEqual(direct.toArray());
    }
    expect(direct.toArray()).toEqual(x.toArray().map((v) => Math.fround(2 * v)));
  });

  it.each([1.5, Number.NaN, null, undefined, -1, 2 ** 32])('forwardInto with channel offset %s → ValueError, `out` untouched and disposable', (offset) => {
    using conv = new Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 1, seed: 4 });
    using x = Tensor.fromArray(new Float32Array(2 * 4 * 4).fill(1), [1, 2, 4, 4]);
    const out = Tensor.fromArray(new Float32Array(4 * 4 * 4).fill(9), [1, 4, 4, 4]);
    expect(() => conv.forwardInto(x, out, offset as number)).toThrow(ValueError);
    expect(out.toArray().every((v) => v === 9)).toBe(true);
    out.dispose();
    expect(out.isDisposed).toBe(true);
  });

  it('dropped models are reclaimed by their finalizers: memory comes back after garbage collection', async () => {
    await collectGarbage();
    const before = memoryInfo().heldBytes;
    for (let i = 0; i < 40; i++) new Inception(192, 64, 96, 128, 16, 32, 32, { seed: i }); // dropped, never disposed
    const held = memoryInfo().heldBytes - before;
    expect(held).toBeGreaterThan(40 * 4 * 150_000); // 40 blocks of ~160 k weights each
    await collectGarbage();
    expect(memoryInfo().heldBytes - before).toBeLessThan(held / 20);
  });
});

describe('a trap inside WebAssembly (simulated in the glue): typed errors, then init() starts a new instance', () => {
  const { Inception, Tensor, WasmFaultError, init, memoryInfo } = lib;

  it('every call and every live tensor and model throw WasmFaultError; after init() new ones compute the same results', async () => {
    const block = new Inception(192, 64, 96, 128, 16, 32, 32, { seed: 11 });
    const x = Tensor.fromArray(Float32Array.from({ length: 192 * 14 * 14 }, (_, i) => Math.cos(i / 3)), [1, 192, 14, 14]);
    const expected = block.forward(x).toArray();
    const original = glue.Plan.prototype.run;
    glue.Plan.prototype.run = () => {
      throw new WebAssembly.RuntimeError('unreachable');
    };
    try {
      expect(() => block.forward(x)).toThrow(WasmFaultError);
    } finally {
      glue.Plan.prototype.run = original;
    }
    expect(() => block.forward(x)).toThrow(WasmFaultError);
    expect(() => x.toArray()).toThrow(WasmFaultError);
    expect(() => Tensor.zeros([4])).toThrow(/await init\(\)/);
    expect(() => memoryInfo()).toThrow(WasmFaultError);
    await init({ maximumMemory: RELIABILITY_CAP });
    expect(() => x.toArray()).toThrow(/belongs to a WebAssembly instance that faulted/);
    x.dispose(); // nothing to free: must not touch the new instance
    block.dispose();
    using fresh = new Inception(192, 64, 96, 128, 16, 32, 32, { seed: 11 });
    using x2 = Tensor.fromArray(Float32Array.from({ length: 192 * 14 * 14 }, (_, i) => Math.cos(i / 3)), [1, 192, 14, 14]);
    using y = fresh.forward(x2);
    expect(y.toArray()).toEqual(expected);
    expect(memoryInfo().maximumBytes).toBe(RELIABILITY_CAP);
  });
});
