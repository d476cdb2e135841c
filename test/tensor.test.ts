/**
 * `Tensor`: storage in WebAssembly memory, zero-copy views, disposal, input validation,
 * behaviour across memory growth, and that errors leave the instance usable.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AvgPool2d,
  concat,
  Conv2d,
  DataTypeError,
  DisposedError,
  Inception,
  InceptionWasmError,
  init,
  isInitialized,
  Linear,
  NotInitializedError,
  ReLU,
  ShapeError,
  StateDictError,
  Tensor,
  ValueError,
} from '../ts/index.js';
import * as ref from './reference.js';

/** Runs `fn` and returns what it throws (fails the test if it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return e as Error;
  }
  return expect.fail('expected the call to throw');
}

// Captured at import time, before `init()` has run in this (isolated) test file.
const beforeInit = {
  initialized: isInitialized(),
  error: (() => {
    try {
      Tensor.zeros([2]);
    } catch (e) {
      return e;
    }
    return undefined;
  })(),
};

beforeAll(async () => {
  await init();
});

describe('init', () => {
  it('before init(): isInitialized() is false and allocating throws NotInitializedError naming the op', () => {
    expect(beforeInit.initialized).toBe(false);
    expect(beforeInit.error).toBeInstanceOf(NotInitializedError);
    expect(beforeInit.error).toBeInstanceOf(InceptionWasmError);
    expect((beforeInit.error as NotInitializedError).op).toBe('Tensor.zeros');
    expect((beforeInit.error as Error).message).toContain('await init()');
  });

  it('after init(): isInitialized() is true and init() is idempotent', async () => {
    expect(isInitialized()).toBe(true);
    await init();
    await Promise.all([init(), init()]);
    const t = Tensor.fromArray([1, 2], [2]);
    expect(t.toArray()).toEqual(new Float32Array([1, 2]));
    t.dispose();
  });
});

describe('Tensor basics', () => {
  it('fromArray(Float32Array)/toArray round trip, shape and numel', () => {
    const vals = ref.randomArray(2 * 3 * 4 * 5, 1);
    const t = Tensor.fromArray(vals, [2, 3, 4, 5]);
    expect(t.shape).toEqual([2, 3, 4, 5]);
    expect(t.numel).toBe(120);
    expect(t.toArray()).toEqual(vals);
    expect(t.toArray()).not.toBe(vals); // a copy, not the caller's array
    expect(t.isDisposed).toBe(false);
    t.dispose();
  });

  it('fromArray(number[]) rounds to float32 and keeps the shape', () => {
    const vals = [0.1, -2.5, 3, 1e-8, -0, 65504.25];
    const t = Tensor.fromArray(vals, [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.numel).toBe(6);
    expect(t.toArray()).toEqual(Float32Array.from(vals));
    expect(Object.is(t.toArray()[4], -0)).toBe(true);
    t.dispose();
  });

  it('the shape is a frozen copy of the argument', () => {
    const shape = [3, 4];
    const t = Tensor.zeros(shape);
    shape[0] = 99;
    expect(t.shape).toEqual([3, 4]);
    expect(Object.isFrozen(t.shape)).toBe(true);
    t.dispose();
  });

  it('zeros([2,3,4]) is all zeros; zeros of an empty shape has numel 0; zeros([]) is a scalar', () => {
    const t = Tensor.zeros([2, 3, 4]);
    expect(t.numel).toBe(24);
    expect(t.toArray()).toEqual(new Float32Array(24));
    const e = Tensor.zeros([2, 0, 3]);
    expect(e.numel).toBe(0);
    expect(e.toArray().length).toBe(0);
    const s = Tensor.zeros([]);
    expect(s.numel).toBe(1);
    expect(s.toArray()).toEqual(new Float32Array(1));
    [t, e, s].forEach((x) => x.dispose());
  });

  it('zeros() after a disposed tensor gets zero-filled memory (no stale values)', () => {
    const a = Tensor.fromArray(new Float32Array(1000).fill(9), [1000]);
    a.dispose();
    const b = Tensor.zeros([1000]);
    expect(b.toArray().every((v) => v === 0)).toBe(true);
    b.dispose();
  });

  it('data is a zero-copy view: writes through data are seen by toArray and by layers', () => {
    const t = Tensor.fromArray([1, -2, 3, -4], [1, 1, 2, 2]);
    const view = t.data;
    expect(view).toBeInstanceOf(Float32Array);
    expect(view.length).toBe(4);
    expect(t.data).toBe(view); // same view while the memory does not grow
    view[1] = 42;
    t.data[3] = 7;
    expect(t.toArray()).toEqual(new Float32Array([1, 42, 3, 7]));
    const copy = t.toArray();
    copy[0] = 100; // toArray is a copy
    expect(t.data[0]).toBe(1);
    const relu = new ReLU();
    const y = relu.forward(t);
    expect(y.toArray()).toEqual(new Float32Array([1, 42, 3, 7]));
    view[0] = -5;
    const y2 = relu.forward(t);
    expect(y2.toArray()).toEqual(new Float32Array([0, 42, 3, 7]));
    [t, y, y2].forEach((x) => x.dispose());
  });

  it('tensors do not alias each other', () => {
    const a = Tensor.fromArray(new Float32Array(64).fill(1), [64]);
    const b = Tensor.fromArray(new Float32Array(64).fill(2), [64]);
    a.data.fill(-1);
    expect(b.toArray()).toEqual(new Float32Array(64).fill(2));
    expect(a.toArray()).toEqual(new Float32Array(64).fill(-1));
    a.dispose();
    b.dispose();
  });
});

describe('dispose', () => {
  it('dispose sets isDisposed, is idempotent, and toArray copies stay valid', () => {
    const t = Tensor.fromArray([1, 2, 3], [3]);
    const copy = t.toArray();
    expect(t.isDisposed).toBe(false);
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.dispose()).not.toThrow();
    expect(t.isDisposed).toBe(true);
    expect(copy).toEqual(new Float32Array([1, 2, 3]));
    expect(t.toString()).toContain('disposed');
    expect(t.shape).toEqual([3]); // metadata stays readable
  });

  it('[Symbol.dispose]() disposes', () => {
    const t = Tensor.zeros([4]);
    expect(typeof t[Symbol.dispose]).toBe('function');
    t[Symbol.dispose]();
    expect(t.isDisposed).toBe(true);
    expect(() => t[Symbol.dispose]()).not.toThrow();
  });

  it('using a disposed tensor throws DisposedError naming the op', () => {
    const t = Tensor.fromArray(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    t.dispose();

    const e1 = thrown(() => t.data);
    expect(e1).toBeInstanceOf(DisposedError);
    expect(e1).toBeInstanceOf(InceptionWasmError);
    expect((e1 as DisposedError).op).toBe('Tensor.data');
    expect(e1.message).toContain('Tensor.data');
    expect(e1.message).toContain('[2, 3, 4, 4]');

    const e2 = thrown(() => t.toArray());
    expect(e2).toBeInstanceOf(DisposedError);
    expect(e2.message).toContain('Tensor.data');

    const conv = new Conv2d({ inChannels: 3, outChannels: 2, kernelSize: 1, seed: 0 });
    const e3 = thrown(() => conv.forward(t));
    expect(e3).toBeInstanceOf(DisposedError);
    expect((e3 as DisposedError).op).toBe('Conv2d');
    expect(e3.message).toMatch(/^Error in Conv2d: .*disposed/);

    const live = Tensor.zeros([2, 1, 4, 4]);
    const e4 = thrown(() => concat([live, t]));
    expect(e4).toBeInstanceOf(DisposedError);
    expect((e4 as DisposedError).op).toBe('concat (input 1)');
    expect(e4.message).toContain('concat (input 1)');

    live.dispose();
    conv.dispose();
  });

  it('a disposed module throws DisposedError naming the layer', () => {
    const lin = new Linear({ inFeatures: 3, outFeatures: 2, seed: 0 });
    const x = Tensor.zeros([1, 3]);
    lin.dispose();
    expect(lin.isDisposed).toBe(true);
    const e = thrown(() => lin.forward(x));
    expect(e).toBeInstanceOf(DisposedError);
    expect((e as DisposedError).op).toBe('Linear');
    expect(e.message).toContain('Linear');
    expect(() => lin.stateDict()).toThrow(DisposedError);
    expect(() => lin.dispose()).not.toThrow();
    expect(x.isDisposed).toBe(false); // the input is never disposed by a layer
    x.dispose();
  });
});

describe('validation', () => {
  it('fromArray with the wrong length throws ShapeError', () => {
    const e = thrown(() => Tensor.fromArray(new Float32Array(5), [2, 3]));
    expect(e).toBeInstanceOf(ShapeError);
    expect((e as ShapeError).op).toBe('Tensor.fromArray');
    expect(e.message).toContain('5 elements');
    expect(() => Tensor.fromArray([1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => Tensor.fromArray([], [1])).toThrow(ShapeError);
  });

  it('fromArray with Int32Array / Float64Array / non-numbers throws DataTypeError', () => {
    const e1 = thrown(() => Tensor.fromArray(new Int32Array(4) as unknown as Float32Array, [4]));
    expect(e1).toBeInstanceOf(DataTypeError);
    expect(e1).toBeInstanceOf(InceptionWasmError);
    expect(e1.message).toContain('Int32Array');
    const e2 = thrown(() => Tensor.fromArray(new Float64Array(4) as unknown as Float32Array, [4]));
    expect(e2).toBeInstanceOf(DataTypeError);
    expect(e2.message).toContain('Float64Array');
    expect(() => Tensor.fromArray([1, '2', 3] as unknown as number[], [3])).toThrow(DataTypeError);
    expect(() => Tensor.fromArray('abcd' as unknown as number[], [4])).toThrow(DataTypeError);
  });

  it('negative, non-integer or NaN shapes throw ShapeError (zeros and fromArray)', () => {
    for (const shape of [[-1], [2, -3], [1.5], [2, 0.5, 2], [NaN], [Infinity]]) {
      const e = thrown(() => Tensor.zeros(shape));
      expect(e, `zeros([${shape.join(', ')}])`).toBeInstanceOf(ShapeError);
      expect((e as ShapeError).op).toBe('Tensor.zeros');
      expect(() => Tensor.fromArray([1, 2, 3], shape), `fromArray(…, [${shape.join(', ')}])`).toThrow(ShapeError);
    }
    expect(() => Tensor.zeros('3' as unknown as number[])).toThrow(ShapeError);
  });

  it('more than 2^30 elements throws ValueError without allocating', () => {
    const e = thrown(() => Tensor.zeros([2 ** 16, 2 ** 15]));
    expect(e).toBeInstanceOf(ValueError);
    expect(e.message).toContain('2^30');
  });
});

describe('memory growth', () => {
  it('a forward whose im2col workspace grows the memory: input and other tensors keep their values, output is right', () => {
    const probe = Tensor.zeros([1]);
    const mem = probe.data.buffer.byteLength;
    probe.dispose();
    // im2col needs c·k·k·h·w floats; make that exceed the whole current memory.
    const c = 4;
    const side = Math.ceil(Math.sqrt((mem / 4 / (c * 9)) * 1.25));
    const xShape = [1, c, side, side] as const;
    const x = ref.randomArray(c * side * side, 10);
    const other = ref.randomArray(100, 11);
    const weight = ref.randomArray(2 * c * 9, 12);
    const bias = ref.randomArray(2, 13);
    const xt = Tensor.fromArray(x, xShape);
    const ot = Tensor.fromArray(other, [100]);
    const conv = new Conv2d({ inChannels: c, outChannels: 2, kernelSize: 3, padding: 1, activation: 'relu', seed: 0 });
    conv.loadStateDict({ weight, bias });
    const oldView = ot.data;
    try {
      const y = conv.forward(xt);
      expect(oldView.byteLength, 'the forward grew the memory').toBe(0);
      expect(xt.toArray()).toEqual(x);
      expect(ot.toArray()).toEqual(other);
      expect(y.shape).toEqual([1, 2, side, side]);
      const want = ref.conv2d(x, xShape, weight, [2, c, 3, 3], bias, { stride: [1, 1], padding: [1, 1] }, true);
      ref.expectClose(y.data, want, 1e-5 * (1 + Math.sqrt(c * 9)), `conv x=[1,${c},${side},${side}] k=3 p=1`);
      y.dispose();
    } finally {
      xt.dispose();
      ot.dispose();
      conv.dispose();
    }
  });

  it('an allocation that grows the memory detaches old views; data re-creates the view with the values intact', () => {
    const vals = ref.randomArray(3 * 2 * 5 * 6, 7);
    const t = Tensor.fromArray(vals, [3, 2, 5, 6]);
    const conv = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, seed: 0 });
    const weight = ref.randomArray(3 * 2 * 9, 8);
    const bias = ref.randomArray(3, 9);
    conv.loadStateDict({ weight, bias });
    const old = t.data;
    const before = old.buffer.byteLength;
    expect(before).toBeGreaterThan(0);
    // More floats than the whole current memory holds: this allocation must grow it.
    const bigFloats = before / 4 + (1 << 20);
    const big = Tensor.zeros([bigFloats]);
    try {
      expect(old.byteLength, 'old view is detached').toBe(0);
      expect(old.buffer.byteLength, 'old buffer is detached').toBe(0);
      const fresh = t.data;
      expect(fresh === old, 'a new view').toBe(false);
      expect(fresh.buffer.byteLength).toBeGreaterThan(before + bigFloats * 4 - 1);
      expect(fresh).toEqual(vals);
      expect(t.toArray()).toEqual(vals);
      // The big tensor is usable end to end.
      big.data[bigFloats - 1] = 3.5;
      expect(big.data[bigFloats - 1]).toBe(3.5);
      expect(big.data[0]).toBe(0);
      // A layer on `t` after the growth still computes the right thing.
      const y = conv.forward(t);
      const want = ref.conv2d(vals, [3, 2, 5, 6], weight, [3, 2, 3, 3], bias, { stride: [1, 1], padding: [1, 1] }, false);
      ref.expectClose(y.data, want, 1e-5 * (1 + Math.sqrt(18)), 'conv after growth');
      y.dispose();
    } finally {
      big.dispose();
      t.dispose();
      conv.dispose();
    }
  });
});

describe('regressions: views of wasm memory as inputs while the memory grows', () => {
  /** Floats that surely do not fit in the current memory, so allocating them grows it. */
  const beyondMemory = () => {
    using probe = Tensor.zeros([1]);
    return probe.data.buffer.byteLength / 4 + (1 << 20);
  };

  it('fromArray(other.data) copies the source before allocating (was: TypeError on a detached buffer)', () => {
    const n = beyondMemory();
    using src = Tensor.zeros([n]);
    src.data[0] = 1.5;
    src.data[n - 1] = -2.5;
    using copy = Tensor.fromArray(src.data, [n]);
    expect([copy.data[0], copy.data[n - 1]]).toEqual([1.5, -2.5]);
  });

  it('loadStateDict({ weight: tensor.data }) survives packing that grows the memory (was: TypeError, half-loaded model)', () => {
    const out = Math.ceil(beyondMemory() / 1024);
    using lin = new Linear({ inFeatures: 1024, outFeatures: out, bias: false, seed: 1 });
    using w = Tensor.zeros([out, 1024]);
    w.data.fill(0.25);
    lin.loadStateDict({ weight: w.data });
    using x = Tensor.fromArray(new Float32Array(1024).fill(1), [1, 1024]);
    using y = lin.forward(x);
    expect([y.data[0], y.data[out - 1]]).toEqual([256, 256]);
  });
});

describe('errors leave the instance usable', () => {
  it('conv forward with the wrong channel count throws ShapeError; a correct forward still matches and nothing else changed', () => {
    const weight = ref.randomArray(4 * 3 * 9, 20);
    const bias = ref.randomArray(4, 21);
    const conv = new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, seed: 0 });
    conv.loadStateDict({ weight, bias });
    const xv = ref.randomArray(2 * 3 * 6 * 5, 22);
    const badv = ref.randomArray(2 * 2 * 6 * 5, 23);
    const otherv = ref.randomArray(17, 24);
    const x = Tensor.fromArray(xv, [2, 3, 6, 5]);
    const bad = Tensor.fromArray(badv, [2, 2, 6, 5]);
    const other = Tensor.fromArray(otherv, [17]);

    const e = thrown(() => conv.forward(bad));
    expect(e).toBeInstanceOf(ShapeError);
    expect((e as ShapeError).op).toBe('Conv2d');
    expect(e.message).toBe('Error in Conv2d: input must have 3 channels, but got 2 (shape [2, 2, 6, 5])');
    expect(() => conv.forward(Tensor.zeros([3, 6, 5]))).toThrow(ShapeError); // rank 3
    expect(() => conv.forward(Tensor.zeros([1, 3, 0, 5]))).toThrow(ShapeError); // empty

    const y = conv.forward(x);
    const want = ref.conv2d(xv, [2, 3, 6, 5], weight, [4, 3, 3, 3], bias, { stride: [1, 1], padding: [1, 1] }, false);
    ref.expectClose(y.data, want, 1e-5 * (1 + Math.sqrt(27)), 'conv after error');
    expect(x.toArray()).toEqual(xv);
    expect(bad.toArray()).toEqual(badv);
    expect(other.toArray()).toEqual(otherv);
    [conv, x, bad, other, y].forEach((o) => o.dispose());
  });

  it('errors name nested layers by their state-dict path; the block still runs afterwards', () => {
    const block = new Inception(4, 2, 2, 3, 1, 2, 2, { seed: 3 });
    const bad = Tensor.zeros([1, 5, 4, 4]);
    const e = thrown(() => block.forward(bad));
    expect(e).toBeInstanceOf(ShapeError);
    expect((e as ShapeError).op).toBe('branch1 (Conv2d)');
    const x = Tensor.fromArray(ref.randomArray(64, 30), [1, 4, 4, 4]);
    const y1 = block.forward(x);
    const y2 = block.forward(x);
    expect(y1.shape).toEqual([1, 9, 4, 4]);
    expect(y1.toArray()).toEqual(y2.toArray()); // deterministic, unaffected by the failed call
    [block, bad, x, y1, y2].forEach((o) => o.dispose());
  });

  it('a rejected loadStateDict throws StateDictError naming the key and keeps the old weights', () => {
    const lin = new Linear({ inFeatures: 5, outFeatures: 3, seed: 0 });
    const weight = ref.randomArray(15, 40);
    const bias = ref.randomArray(3, 41);
    lin.loadStateDict({ weight, bias });
    const e = thrown(() => lin.loadStateDict({ weight: ref.randomArray(15, 42), bias: new Float32Array(4) }));
    expect(e).toBeInstanceOf(StateDictError);
    expect((e as StateDictError).key).toBe('bias');
    expect(() => lin.loadStateDict({ weight })).toThrow(StateDictError); // missing bias
    expect(() => lin.loadStateDict({ weight, bias, extra: bias })).toThrow(StateDictError); // unexpected key
    const xv = ref.randomArray(10, 43);
    const x = Tensor.fromArray(xv, [2, 5]);
    const y = lin.forward(x);
    ref.expectClose(y.data, ref.linear(xv, 2, weight, 5, 3, bias), 1e-5 * (1 + Math.sqrt(5)), 'linear keeps old weights');
    expect(lin.stateDict().get('weight')!.data).toEqual(weight);
    [lin, x, y].forEach((o) => o.dispose());
  });

  it('invalid layer options throw ValueError; later layers work', () => {
    expect(() => new AvgPool2d({ kernelSize: 3, padding: 2 })).toThrow(ValueError); // padding > k/2
    expect(() => new Conv2d({ inChannels: 0, outChannels: 1, kernelSize: 1 })).toThrow(ValueError);
    expect(() => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1, stride: 0 })).toThrow(ValueError);
    const pool = new AvgPool2d({ kernelSize: 2 });
    const x = Tensor.fromArray([1, 2, 3, 4], [1, 1, 2, 2]);
    const y = pool.forward(x);
    expect(y.toArray()).toEqual(new Float32Array([2.5]));
    [pool, x, y].forEach((o) => o.dispose());
  });
});
