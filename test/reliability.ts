/**
 * Failure under hostile sizes and exhausted memory, shared by the single-threaded and the
 * threaded test files: every failure is a typed error thrown before anything is written,
 * and afterwards the library computes bit-identical results. Memory is capped
 * (`init({ maximumMemory })`, see {@link RELIABILITY_CAP}) so that exhausting it costs
 * seconds, not gigabytes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type * as Lib from '../ts/index.js';

/** The cap both test files initialise with: 384 MiB. */
export const RELIABILITY_CAP = 384 * 2 ** 20;

export function reliabilityTests(title: string, lib: typeof Lib): void {
  const { AdaptiveAvgPool2d, AvgPool2d, Conv2d, Dropout, Flatten, GoogLeNet, Inception, Linear, MaxPool2d, ReLU, Sequential, Tensor, concat, memoryInfo, releaseMemory, rgbToGray, OutOfMemoryError, ValueError } = lib;

  /** A fixed Inception 3a (its 3×3 branch runs Winograd F(4×4) at 28×28) and input. */
  let reference: { block: Lib.Inception; x: Lib.Tensor; y: Float32Array };

  beforeAll(() => {
    // wasm-bindgen keeps JavaScript values (an error) in a table whose bookkeeping grows in
    // steps, once: one error first, so that the tests below see only their own memory.
    expect(() => Tensor.zeros([2 ** 30])).toThrow(OutOfMemoryError);
    const block = new Inception(192, 64, 96, 128, 16, 32, 32, { seed: 7 });
    const x = Tensor.fromArray(Float32Array.from({ length: 192 * 28 * 28 }, (_, i) => Math.sin(i)), [1, 192, 28, 28]);
    using y = block.forward(x);
    reference = { block, x, y: y.toArray() };
  });

  /** The library still works, bit for bit: the reference block again, and a new one of the same seed. */
  function expectUsable(): void {
    using y = reference.block.forward(reference.x);
    expectSameBits(y.toArray(), reference.y);
    using fresh = new Inception(192, 64, 96, 128, 16, 32, 32, { seed: 7 });
    using z = fresh.forward(reference.x);
    expectSameBits(z.toArray(), reference.y);
  }

  /** Bit for bit (vitest's `toEqual` walks million-element arrays one element at a time). */
  function expectSameBits(a: Float32Array, b: Float32Array): void {
    expect(a.length).toBe(b.length);
    expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(0);
  }

  /** `f` throws `type`, holding no more memory afterwards than before (a failed forward may free its arena). */
  function expectRefused(f: () => unknown, type: new (...args: never[]) => Error): Error {
    const before = memoryInfo().heldBytes;
    let error: unknown;
    try {
      f();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(type);
    expect(memoryInfo().heldBytes).toBeLessThanOrEqual(before);
    return error as Error;
  }

  describe(`${title}: sizes past 2^30 elements are refused at construction`, () => {
    it.each([
      ['Linear(65536, 65536): 2^32 weights', () => new Linear({ inFeatures: 65536, outFeatures: 65536 })],
      ['Conv2d 65536→65536 1×1: 2^32 weights', () => new Conv2d({ inChannels: 65536, outChannels: 65536, kernelSize: 1 })],
      ['Conv2d 100000→100000 1×1', () => new Conv2d({ inChannels: 100000, outChannels: 100000, kernelSize: 1 })],
      ['GoogLeNet({ numClasses: 4194304 }): an fc of 2^32 weights', () => new GoogLeNet({ numClasses: 4194304 })],
      ['Conv2d stride 2^32', () => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1, stride: 2 ** 32 })],
      ['Conv2d kernel 2^32 + 1', () => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 2 ** 32 + 1 })],
      ['Conv2d padding 2^32', () => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1, padding: 2 ** 32 })],
      ['MaxPool2d stride 2^32', () => new MaxPool2d({ kernelSize: 2, stride: 2 ** 32 })],
      ['Tensor.zeros([2^16, 2^16])', () => Tensor.zeros([2 ** 16, 2 ** 16])],
      ['Tensor.zeros([2^30 + 1])', () => Tensor.zeros([2 ** 30 + 1])],
      ['Tensor.zeros of 2^64 elements (a product past 2^53)', () => Tensor.zeros([2 ** 32, 2 ** 32])],
    ])('%s → ValueError, nothing allocated', (_, f) => {
      const e = expectRefused(f, ValueError);
      expect(e.message).toMatch(/2\^30/);
      expectUsable();
    });

    it('an intermediate of 2^32 floats (Conv2d 1→65536 then 65536→1 on [1,1,256,256]) → ValueError at forward', () => {
      using net = new Sequential(new Conv2d({ inChannels: 1, outChannels: 65536, kernelSize: 1 }), new Conv2d({ inChannels: 65536, outChannels: 1, kernelSize: 1 }));
      using x = Tensor.zeros([1, 1, 256, 256]);
      const e = expectRefused(() => net.forward(x), ValueError);
      expect(e.message).toContain('[1, 65536, 256, 256]');
      expectUsable();
    });
  });

  describe(`${title}: exhausted memory is an OutOfMemoryError, and nothing is poisoned`, () => {
    it('Tensor.zeros of 2^29 floats (2 GiB) → OutOfMemoryError with bytesNeeded and bytesAvailable', () => {
      const e = expectRefused(() => Tensor.zeros([2 ** 29]), OutOfMemoryError) as Lib.OutOfMemoryError;
      expect(e.bytesNeeded).toBe(2 ** 31);
      expect(e.bytesAvailable).toBeGreaterThan(0);
      expect(e.bytesAvailable).toBeLessThan(RELIABILITY_CAP);
      expect(e.op).toBe('Tensor.zeros');
      expectUsable();
    });

    it('20,000 failed allocations in a row (tensors, and every 100th a forward) leak nothing (no stack, no heap)', () => {
      using net = new Conv2d({ inChannels: 1, outChannels: 512, kernelSize: 1 });
      using x = Tensor.zeros([1, 1, 1024, 1024]); // its 2 GiB output does not fit
      expect(() => net.forward(x)).toThrow(OutOfMemoryError); // compiles (and keeps) the plan
      const before = memoryInfo();
      for (let i = 0; i < 20_000; i++) {
        try {
          if (i % 100 === 0) net.forward(x);
          else Tensor.zeros([2 ** 30]);
          throw new Error('allocated 2 GiB or more under a cap');
        } catch (e) {
          if (!(e instanceof OutOfMemoryError)) throw e;
        }
      }
      expect(memoryInfo().heldBytes).toBe(before.heldBytes);
      expectUsable();
    });

    it('a forward whose activations do not fit (1→512→512→1 1×1 convs on [1,1,1024,1024]) → OutOfMemoryError; the model then runs smaller inputs', () => {
      using net = new Sequential(
        new Conv2d({ inChannels: 1, outChannels: 512, kernelSize: 1, seed: 1 }),
        new Conv2d({ inChannels: 512, outChannels: 512, kernelSize: 1, seed: 2 }),
        new Conv2d({ inChannels: 512, outChannels: 1, kernelSize: 1, seed: 3 }),
      );
      using big = Tensor.zeros([1, 1, 1024, 1024]);
      const e = expectRefused(() => net.forward(big), OutOfMemoryError) as Lib.OutOfMemoryError;
      expect(e.bytesNeeded).toBeGreaterThan(RELIABILITY_CAP);
      using small = Tensor.fromArray(Float32Array.from({ length: 64 }, (_, i) => i / 64), [1, 1, 8, 8]);
      using a = net.forward(small);
      using twin = new Sequential(
        new Conv2d({ inChannels: 1, outChannels: 512, kernelSize: 1, seed: 1 }),
        new Conv2d({ inChannels: 512, outChannels: 512, kernelSize: 1, seed: 2 }),
        new Conv2d({ inChannels: 512, outChannels: 1, kernelSize: 1, seed: 3 }),
      );
      using b = twin.forward(small);
      expect(a.toArray()).toEqual(b.toArray());
      expectUsable();
    });

    it('GoogLeNet on [4,3,1024,1024] → OutOfMemoryError; then [1,3,64,64] gives the same logits as a new twin', () => {
      using net = new GoogLeNet({ numClasses: 10, seed: 3 });
      using big = Tensor.zeros([4, 3, 1024, 1024]);
      // The first attempt compiles the plan, and the plan keeps the Winograd filters its
      // sizes need (as after a forward that worked); no attempt holds memory beyond that.
      expect(() => net.forward(big)).toThrow(OutOfMemoryError);
      expectRefused(() => net.forward(big), OutOfMemoryError);
      using x = Tensor.fromArray(Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.cos(i)), [1, 3, 64, 64]);
      using a = net.forward(x);
      using twin = new GoogLeNet({ numClasses: 10, seed: 3 });
      using b = twin.forward(x);
      expect(a.toArray()).toEqual(b.toArray());
      expectUsable();
    });

    it('GoogLeNet({ numClasses: 300000 }): weights past the cap → OutOfMemoryError, the partial model freed', () => {
      expectRefused(() => new GoogLeNet({ numClasses: 300000 }), OutOfMemoryError);
      expectUsable();
    });

    it("out of memory while the first forward prepares a layer's Winograd filters: the layer is not broken, the next forward works", () => {
      // 512→512 3×3: 9.4 MB of weights, whose F(4×4) transform takes 4× that (37.7 MB).
      using conv = new Conv2d({ inChannels: 512, outChannels: 512, kernelSize: 3, padding: 1, seed: 5 });
      using x = Tensor.fromArray(Float32Array.from({ length: 512 * 16 * 16 }, (_, i) => Math.sin(i / 7)), [1, 512, 16, 16]);
      expect(conv.algorithmFor(16, 16)).toBe('winograd4');
      // Fill memory with 1 MiB tensors until one does not fit, then free twelve: room for
      // the input and output (1 MiB each) and the scratch, not for the transform's 36
      // matrices of 1 MiB.
      const hogs: Lib.Tensor[] = [];
      try {
        for (;;) {
          try {
            hogs.push(Tensor.zeros([2 ** 18]));
          } catch (e) {
            if (!(e instanceof OutOfMemoryError)) throw e;
            break;
          }
        }
        for (const h of hogs.splice(-12)) h.dispose();
        expectRefused(() => conv.forward(x), OutOfMemoryError);
        expectRefused(() => conv.forward(x), OutOfMemoryError); // again: still refused, not broken
      } finally {
        for (const h of hogs) h.dispose();
      }
      using a = conv.forward(x);
      using twin = new Conv2d({ inChannels: 512, outChannels: 512, kernelSize: 3, padding: 1, seed: 5 });
      using b = twin.forward(x);
      expect(a.toArray()).toEqual(b.toArray());
      expectUsable();
    });
  });

  describe(`${title}: every op, with memory filled up to its last 2 MiB`, () => {
    /** `f` with the heap filled by 1 MiB tensors until one no longer fits, then two freed. */
    function whenFull<T>(f: () => T): T {
      const hogs: Lib.Tensor[] = [];
      try {
        // 32 MiB tensors first, then 1 MiB ones: few objects, and no 1 MiB hole left.
        for (const floats of [2 ** 23, 2 ** 18]) {
          for (;;) {
            try {
              hogs.push(Tensor.zeros([floats]));
            } catch (e) {
              if (!(e instanceof OutOfMemoryError)) throw e;
              break;
            }
          }
        }
        for (const h of hogs.splice(-2)) h.dispose();
        return f();
      } finally {
        for (const h of hogs) h.dispose();
      }
    }

    // Each op on an input whose output (or activations) need 4 MiB or more.
    const input = (shape: number[]) => Tensor.fromArray(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i / 3)), shape);
    const cases: [string, () => Lib.Module, number[]][] = [
      ['Conv2d 3×3 (Winograd)', () => new Conv2d({ inChannels: 16, outChannels: 64, kernelSize: 3, padding: 1, seed: 1 }), [1, 16, 128, 128]],
      ['Conv2d 5×5 (im2col)', () => new Conv2d({ inChannels: 4, outChannels: 64, kernelSize: 5, padding: 2, seed: 2 }), [1, 4, 128, 128]],
      ['rgbToGray (1×1)', () => rgbToGray(), [4, 3, 512, 512]],
      ['MaxPool2d', () => new MaxPool2d({ kernelSize: 3, stride: 1, padding: 1 }), [1, 16, 256, 256]],
      ['AvgPool2d', () => new AvgPool2d({ kernelSize: 3, stride: 1, padding: 1 }), [1, 16, 256, 256]],
      ['AdaptiveAvgPool2d', () => new AdaptiveAvgPool2d([128, 128]), [1, 64, 128, 128]],
      ['Linear', () => new Linear({ inFeatures: 16, outFeatures: 4096, seed: 3 }), [512, 16]],
      ['ReLU', () => new ReLU(), [1, 16, 256, 256]],
      ['Dropout (inference: identity)', () => new Dropout(0.4), [1, 16, 256, 256]],
      ['Flatten', () => new Flatten(), [16, 16, 64, 64]],
      ['Inception', () => new Inception(16, 16, 8, 16, 4, 8, 8, { seed: 4 }), [1, 16, 128, 128]],
    ];
    it.each(cases)('%s → OutOfMemoryError, then the same result as a twin when memory is back', (_, make, shape) => {
      using model = make();
      using x = input(shape);
      whenFull(() => {
        // The first attempt may compile (and keep) the plan; no attempt holds more.
        expect(() => model.forward(x)).toThrow(OutOfMemoryError);
        expectRefused(() => model.forward(x), OutOfMemoryError);
      });
      using y = model.forward(x);
      using twin = make();
      using z = twin.forward(x);
      expectSameBits(y.toArray(), z.toArray());
    });

    it('concat → OutOfMemoryError, then the same result', () => {
      using a = input([1, 64, 128, 128]);
      using b = input([1, 64, 128, 128]);
      whenFull(() => expectRefused(() => concat([a, b]), OutOfMemoryError));
      using y = concat([a, b]);
      expectSameBits(y.toArray().subarray(0, a.numel), a.toArray());
      expectUsable();
    });
  });

  describe(`${title}: memory a user controls`, () => {
    it('memoryInfo reports the cap, the arena and the scratch; releaseMemory frees them and results stay the same', () => {
      using y = reference.block.forward(reference.x);
      const info = memoryInfo();
      expect(info.maximumBytes).toBe(RELIABILITY_CAP);
      expect(info.arenaBytes).toBeGreaterThan(0);
      expect(info.heldBytes).toBeGreaterThanOrEqual(info.arenaBytes + info.scratchBytes);
      releaseMemory();
      const released = memoryInfo();
      expect(released.arenaBytes).toBe(0);
      expect(released.scratchBytes).toBe(0);
      // …and the small vector of per-thread workspaces that holds the scratch.
      expect(info.heldBytes - released.heldBytes - (info.arenaBytes + info.scratchBytes)).toBeLessThan(1024);
      expectUsable();
    });

    it('one outsized forward does not keep its arena: the next small forward shrinks it', () => {
      using conv = new Conv2d({ inChannels: 3, outChannels: 32, kernelSize: 3, padding: 1, seed: 9 });
      using net = new Sequential(conv, new Conv2d({ inChannels: 32, outChannels: 4, kernelSize: 1, seed: 10 }));
      using big = Tensor.zeros([1, 3, 900, 900]); // a 32×900×900 intermediate: 104 MB of arena
      net.forward(big).dispose();
      expect(memoryInfo().arenaBytes).toBeGreaterThanOrEqual(32 * 900 * 900 * 4);
      using small = Tensor.zeros([1, 3, 32, 32]);
      net.forward(small).dispose();
      expect(memoryInfo().arenaBytes).toBeLessThanOrEqual(64 * 2 ** 20);
    });
  });
}
