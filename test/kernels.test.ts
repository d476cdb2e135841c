/**
 * The simd128 kernels, exercised through the wasm build and the public layers, against
 * the float64 loop-nest oracles of `reference.ts`.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdaptiveAvgPool2d,
  AvgPool2d,
  concat,
  Conv2d,
  Inception,
  init,
  Linear,
  MaxPool2d,
  type Module,
  ReLU,
  Sequential,
  ShapeError,
  Tensor,
} from '../ts/index.js';
import * as ref from './reference.js';

beforeAll(async () => {
  await init();
});

const FC_SEED = 42;

/** Relative tolerance for a dot product of length `k`. */
const convTol = (k: number): number => 1e-5 * (1 + Math.sqrt(k));

/** FNV-1a of a string: a stable per-test seed derived from the test's name. */
function seedOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const pairStr = (p: readonly [number, number]): string => (p[0] === p[1] ? String(p[0]) : `[${p[0]},${p[1]}]`);
const shapeStr = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Runs `body` with the given tensors/modules and disposes them all afterwards. */
function using<T>(owned: { dispose(): void }[], body: () => T): T {
  try {
    return body();
  } finally {
    for (const o of owned) o.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// Conv2d
// ---------------------------------------------------------------------------------------

/** How the ReLU (if any) is applied: none, Conv2d's `activation`, or a following ReLU in a Sequential (fused). */
type ReluMode = 'none' | 'activation' | 'sequential';

interface ConvCase {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: readonly [number, number];
  s: readonly [number, number];
  p: readonly [number, number];
  bias: boolean;
  relu: ReluMode;
  /** Forced algorithm (default: the selection table's choice). */
  algorithm?: 'gemm' | 'winograd2' | 'winograd4';
}

function convName(t: ConvCase): string {
  const tags = [t.bias ? 'bias' : 'nobias'];
  if (t.relu === 'activation') tags.push('relu');
  if (t.relu === 'sequential') tags.push('Sequential(Conv2d,ReLU)');
  if (t.algorithm) tags.push(t.algorithm);
  return `conv2d x=${shapeStr([t.n, t.c, t.h, t.w])} o=${t.o} k=${pairStr(t.k)} s=${pairStr(t.s)} p=${pairStr(t.p)} ${tags.join(' ')}`;
}

const convFits = (t: Pick<ConvCase, 'h' | 'w' | 'k' | 'p'>): boolean => t.h + 2 * t.p[0] >= t.k[0] && t.w + 2 * t.p[1] >= t.k[1];

/** Builds the layer with random weights, runs it, and compares with the reference. */
function checkConv(t: ConvCase): void {
  const what = convName(t);
  const seed = seedOf(what);
  const xShape = [t.n, t.c, t.h, t.w] as const;
  const wShape = [t.o, t.c, t.k[0], t.k[1]] as const;
  const x = ref.randomArray(t.n * t.c * t.h * t.w, seed);
  const weight = ref.randomArray(t.o * t.c * t.k[0] * t.k[1], seed + 1);
  const bias = ref.randomArray(t.o, seed + 2);
  const g = { stride: t.s, padding: t.p };
  const want = ref.conv2d(x, xShape, weight, wShape, t.bias ? bias : undefined, g, t.relu !== 'none');
  const wantShape = ref.conv2dShape(xShape, wShape, g);

  const conv = new Conv2d({
    inChannels: t.c,
    outChannels: t.o,
    kernelSize: t.k,
    stride: t.s,
    padding: t.p,
    bias: t.bias,
    activation: t.relu === 'activation' ? 'relu' : null,
    seed: 0,
    algorithm: t.algorithm ?? 'auto',
  });
  conv.loadStateDict(t.bias ? { weight, bias } : { weight });
  if (t.algorithm) expect(conv.algorithmFor(t.h, t.w), `${what}: algorithm`).toBe(t.k[0] === 3 && t.k[1] === 3 && t.s[0] === 1 && t.s[1] === 1 ? t.algorithm : 'gemm');
  const model: Module = t.relu === 'sequential' ? new Sequential(conv, new ReLU()) : conv;
  const xt = Tensor.fromArray(x, xShape);
  using([model, xt], () => {
    const y = model.forward(xt);
    using([y], () => {
      expect(y.shape, `${what}: output shape`).toEqual(wantShape);
      ref.expectClose(y.data, want, convTol(t.c * t.k[0] * t.k[1]), what);
    });
  });
}

/** Output spatial sizes whose pixel count is below / at / above multiples of NR = 8. */
const PIXELS: readonly (readonly [number, number])[] = [
  [1, 1], // 1
  [1, 7], // 7
  [2, 4], // 8
  [3, 3], // 9
  [4, 4], // 16
  [1, 17], // 17
];
/** Output channels below / at / above multiples of MR = 4. */
const OUT_CHANNELS = [1, 3, 4, 5, 8, 9];
/** Reduction lengths K = inChannels·kh·kw (with a 1×1 kernel, K = inChannels). */
const K_VALUES = [1, 2, 7, 8, 33];

describe('Conv2d: 1×1 stride-1 direct GEMM path, edges of the 4×8 tile', () => {
  let i = 0;
  for (const o of OUT_CHANNELS) {
    for (const [h, w] of PIXELS) {
      for (const c of K_VALUES) {
        const idx = i++;
        const t: ConvCase = { n: 1, c, h, w, o, k: [1, 1], s: [1, 1], p: [0, 0], bias: idx % 2 === 0, relu: (['none', 'activation', 'sequential'] as const)[idx % 3]! };
        it(convName(t), () => checkConv(t));
      }
    }
  }
});

describe('Conv2d: im2col path (1×1 stride 2), edges of the 4×8 tile', () => {
  let i = 0;
  for (const o of OUT_CHANNELS) {
    for (const [oh, ow] of PIXELS) {
      for (const c of K_VALUES) {
        const idx = i++;
        // 1×1 stride 2 unpadded: output (oh, ow) from input (2·oh − 1, 2·ow − 1), K = c.
        const t: ConvCase = { n: 1, c, h: 2 * oh - 1, w: 2 * ow - 1, o, k: [1, 1], s: [2, 2], p: [0, 0], bias: idx % 2 === 1, relu: (['activation', 'none', 'sequential'] as const)[idx % 3]! };
        it(convName(t), () => checkConv(t));
      }
    }
  }
});

describe('Conv2d: im2col path (3×3 same padding), edges of the 4×8 tile', () => {
  let i = 0;
  for (const o of OUT_CHANNELS) {
    for (const [h, w] of PIXELS) {
      for (const c of [1, 4]) {
        const idx = i++;
        const t: ConvCase = { n: 1, c, h, w, o, k: [3, 3], s: [1, 1], p: [1, 1], bias: idx % 2 === 0, relu: (['none', 'sequential', 'activation'] as const)[idx % 3]! };
        it(convName(t), () => checkConv(t));
      }
    }
  }
});

describe('Conv2d: Winograd F(2×2,3×3) and F(4×4,3×3) vs GEMM on the same 3×3 stride-1 layers', () => {
  // odd and even output sizes (clipped last tile), padding 0..2, tile blocks of 8+ tiles
  const shapes: [number, number, number, number, number][] = [
    [8, 4, 7, 7, 1], [9, 5, 8, 6, 1], [16, 13, 14, 14, 1], [12, 7, 5, 9, 0], [10, 3, 6, 5, 2], [64, 24, 28, 28, 1], [32, 40, 7, 7, 1],
  ];
  for (const [c, o, h, w, p] of shapes) {
    for (const algorithm of ['winograd2', 'winograd4', 'gemm'] as const) {
      const t: ConvCase = { n: 2, c, h, w, o, k: [3, 3], s: [1, 1], p: [p, p], bias: true, relu: 'activation', algorithm };
      it(convName(t), () => checkConv(t));
    }
  }

  it('conv2d x=[1,16,14,13] o=12 k=3 p=1 winograd2/winograd4 regression (issue 12): with ±∞, NaN or 3e38 at corner, edge and interior pixels, outputs are non-finite exactly where the GEMM path\'s are, NaN and ±∞ alike', () => {
    const [c, o, h, w] = [16, 12, 14, 13];
    const weight = ref.randomArray(o * c * 9, 7);
    const bias = ref.randomArray(o, 8);
    const layer = (algorithm: 'gemm' | 'winograd2' | 'winograd4') => {
      const conv = new Conv2d({ inChannels: c, outChannels: o, kernelSize: 3, padding: 1, seed: 0, algorithm });
      conv.loadStateDict({ weight, bias });
      return conv;
    };
    const kind = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+inf' : v === -Infinity ? '-inf' : 'finite');
    const [gemm, f2, f4] = [layer('gemm'), layer('winograd2'), layer('winograd4')];
    using([gemm, f2, f4], () => {
      for (const value of [Infinity, -Infinity, NaN, 3e38]) {
        for (const [ch, y, x] of [[0, 0, 0], [c - 1, h - 1, w - 1], [5, 0, 6], [9, 6, 5], [3, 4, 4]] as const) {
          const input = ref.randomArray(c * h * w, 9);
          input[(ch * h + y) * w + x] = value;
          const xt = Tensor.fromArray(input, [1, c, h, w]);
          const [want, ...got] = [gemm, f2, f4].map((m) => m.forward(xt));
          using([xt, want!, ...got], () => {
            const wantKinds = Array.from(want!.data, kind);
            expect(wantKinds.filter((k) => k !== 'finite').length, `x[${ch}][${y}][${x}] = ${value}: GEMM non-finite outputs`).toBeLessThanOrEqual(9 * o);
            got.forEach((g, i) => expect(Array.from(g.data, kind), `${['winograd2', 'winograd4'][i]}: x[${ch}][${y}][${x}] = ${value}`).toEqual(wantKinds));
          });
        }
      }
    });
  });

  it('the selection table, per input size: 3×3 stride 1 with ≥ 8 channels runs F(4×4) from 11×11 outputs, F(2×2) from 3×3, GEMM below and otherwise', () => {
    const pick = (c: number, k: number, s: number, size: number) => {
      using conv = new Conv2d({ inChannels: c, outChannels: 4, kernelSize: k, stride: s, padding: 1, seed: 0 });
      return conv.algorithmFor(size, size);
    };
    expect([pick(8, 3, 1, 56), pick(160, 3, 1, 14), pick(160, 3, 1, 11), pick(160, 3, 1, 10), pick(192, 3, 1, 7), pick(64, 3, 1, 2), pick(7, 3, 1, 56)]).toEqual(['winograd4', 'winograd4', 'winograd4', 'winograd2', 'winograd2', 'gemm', 'gemm']);
    expect([pick(64, 3, 2, 56), pick(64, 5, 1, 56), pick(64, 1, 1, 56)]).toEqual(['gemm', 'gemm', 'gemm']);
    using conv = new Conv2d({ inChannels: 8, outChannels: 4, kernelSize: 3, seed: 0 });
    expect(() => conv.algorithmFor(2, 2)).toThrow(/smaller than the 3×3 kernel/);
  });
});

describe('Conv2d: kernel sizes × strides × paddings on non-square inputs', () => {
  let i = 0;
  for (const k of [1, 3, 5, 7]) {
    for (const s of [1, 2, 3]) {
      for (const p of [0, 1, 2, 3, 4]) {
        const idx = i++;
        // Padding 2..4 with k = 1 or 3, and 4 with k = 5, is larger than half the kernel.
        const t: ConvCase = { n: 1 + (idx % 3), c: 3, h: 11, w: 8, o: 5, k: [k, k], s: [s, s], p: [p, p], bias: idx % 2 === 0, relu: (['activation', 'none'] as const)[(idx >> 1) % 2]! };
        it(convName(t), () => checkConv(t));
      }
    }
  }
});

describe('Conv2d: rectangular kernels, strides and paddings', () => {
  const cases: ConvCase[] = [
    { n: 1, c: 2, h: 7, w: 5, o: 3, k: [3, 1], s: [2, 1], p: [1, 0], bias: true, relu: 'none' },
    { n: 1, c: 2, h: 4, w: 10, o: 3, k: [1, 5], s: [1, 3], p: [0, 2], bias: false, relu: 'none' },
    { n: 2, c: 3, h: 9, w: 13, o: 6, k: [3, 5], s: [2, 3], p: [1, 2], bias: true, relu: 'activation' },
    { n: 1, c: 4, h: 6, w: 15, o: 9, k: [5, 3], s: [1, 2], p: [4, 0], bias: true, relu: 'sequential' },
    { n: 3, c: 1, h: 1, w: 1, o: 2, k: [1, 2], s: [1, 3], p: [0, 1], bias: false, relu: 'none' },
    { n: 1, c: 5, h: 1, w: 23, o: 4, k: [1, 7], s: [1, 1], p: [0, 3], bias: true, relu: 'none' },
    { n: 2, c: 2, h: 3, w: 3, o: 7, k: [7, 7], s: [1, 1], p: [3, 3], bias: true, relu: 'activation' },
    { n: 1, c: 3, h: 2, w: 2, o: 5, k: [3, 3], s: [3, 3], p: [4, 4], bias: true, relu: 'none' },
  ];
  for (const t of cases) it(convName(t), () => checkConv(t));
});

describe('Conv2d: batch N = 1..3 on both paths', () => {
  for (const n of [1, 2, 3]) {
    for (const [k, s, p] of [[1, 1, 0], [3, 1, 1], [3, 2, 0], [1, 1, 1]] as const) {
      for (const bias of [true, false]) {
        const t: ConvCase = { n, c: 6, h: 5, w: 7, o: 9, k: [k, k], s: [s, s], p: [p, p], bias, relu: bias ? 'activation' : 'none' };
        it(convName(t), () => checkConv(t));
      }
    }
  }
});

describe('Conv2d: GoogLeNet-sized layers', () => {
  const cases: ConvCase[] = [
    { n: 1, c: 192, h: 28, w: 28, o: 64, k: [1, 1], s: [1, 1], p: [0, 0], bias: true, relu: 'activation' },
    { n: 1, c: 3, h: 32, w: 30, o: 16, k: [7, 7], s: [2, 2], p: [3, 3], bias: true, relu: 'sequential' },
    // conv1 at 80×80: 1600 output pixels = two im2col blocks of 1024, 40-wide rows (5 strips each)
    { n: 1, c: 3, h: 80, w: 80, o: 10, k: [7, 7], s: [2, 2], p: [3, 3], bias: true, relu: 'activation' },
    { n: 1, c: 32, h: 14, w: 14, o: 24, k: [3, 3], s: [1, 1], p: [1, 1], bias: true, relu: 'activation' },
    { n: 1, c: 16, h: 14, w: 14, o: 12, k: [5, 5], s: [1, 1], p: [2, 2], bias: true, relu: 'none' },
    { n: 2, c: 64, h: 9, w: 9, o: 13, k: [1, 1], s: [1, 1], p: [0, 0], bias: false, relu: 'sequential' },
  ];
  for (const t of cases) it(convName(t), () => checkConv(t));
});

describe('Conv2d: long dot products and ragged strips (k in the thousands, n % 8 tails)', () => {
  const cases: ConvCase[] = [
    // K = 1024, 100 pixels: 12 full strips and a 4-column tail (the 8×4 tail kernel).
    { n: 1, c: 1024, h: 10, w: 10, o: 5, k: [1, 1], s: [1, 1], p: [0, 0], bias: true, relu: 'none' },
    // K = 1152 through im2col (forced GEMM), 81 pixels: a 1-column tail.
    { n: 2, c: 128, h: 9, w: 9, o: 6, k: [3, 3], s: [1, 1], p: [1, 1], bias: true, relu: 'activation', algorithm: 'gemm' },
    // K = 9000, 15 pixels: one strip and a 7-column tail.
    { n: 1, c: 1000, h: 3, w: 5, o: 3, k: [3, 3], s: [1, 1], p: [1, 1], bias: false, relu: 'none', algorithm: 'gemm' },
  ];
  for (const t of cases) it(convName(t), () => checkConv(t));
});

describe('Conv2d: ReLU fusion and channel slices', () => {
  it('conv2d x=[2,5,6,7] o=6 k=3 p=1: Sequential(Conv2d,ReLU) == Conv2d(activation relu) == reference with relu', () => {
    const x = ref.randomArray(2 * 5 * 6 * 7, 11);
    const weight = ref.randomArray(6 * 5 * 9, 12);
    const bias = ref.randomArray(6, 13);
    const want = ref.conv2d(x, [2, 5, 6, 7], weight, [6, 5, 3, 3], bias, { stride: [1, 1], padding: [1, 1] }, true);
    const plain = new Conv2d({ inChannels: 5, outChannels: 6, kernelSize: 3, padding: 1, seed: 0 });
    const fusedAct = new Conv2d({ inChannels: 5, outChannels: 6, kernelSize: 3, padding: 1, activation: 'relu', seed: 0 });
    plain.loadStateDict({ weight, bias });
    fusedAct.loadStateDict({ weight, bias });
    const seq = new Sequential(plain, new ReLU());
    // A Conv2d that already has its ReLU, followed by another ReLU: not fused, still relu.
    const seq2 = new Sequential(fusedAct, new ReLU());
    const xt = Tensor.fromArray(x, [2, 5, 6, 7]);
    using([seq, seq2, xt], () => {
      const a = seq.forward(xt);
      const b = seq2.forward(xt);
      using([a, b], () => {
        expect(a.data.some((v) => v === 0) && a.data.some((v) => v > 0), 'relu clamps some outputs and keeps others').toBe(true);
        ref.expectClose(a.data, want, convTol(45), 'Sequential(Conv2d,ReLU)');
        ref.expectClose(b.data, want, convTol(45), 'Sequential(Conv2d[relu],ReLU)');
      });
    });
  });

  it('Sequential(Conv2d 4→9 k=1, ReLU, Conv2d 9→5 k=3 p=1, ReLU, Conv2d 5→3 k=3 s=2) x=[2,4,9,10] matches chained references', () => {
    const xShape = [2, 4, 9, 10] as const;
    const x = ref.randomArray(2 * 4 * 9 * 10, 21);
    const w1 = ref.randomArray(9 * 4, 22), b1 = ref.randomArray(9, 23);
    const w2 = ref.randomArray(5 * 9 * 9, 24), b2 = ref.randomArray(5, 25);
    const w3 = ref.randomArray(3 * 5 * 9, 26), b3 = ref.randomArray(3, 27);
    const y1 = ref.conv2d(x, xShape, w1, [9, 4, 1, 1], b1, { stride: [1, 1], padding: [0, 0] }, true);
    const y2 = ref.conv2d(y1, [2, 9, 9, 10], w2, [5, 9, 3, 3], b2, { stride: [1, 1], padding: [1, 1] }, true);
    const want = ref.conv2d(y2, [2, 5, 9, 10], w3, [3, 5, 3, 3], b3, { stride: [2, 2], padding: [0, 0] }, false);
    const seq = new Sequential(
      new Conv2d({ inChannels: 4, outChannels: 9, kernelSize: 1, seed: 0 }),
      new ReLU(),
      new Conv2d({ inChannels: 9, outChannels: 5, kernelSize: 3, padding: 1, seed: 0 }),
      new ReLU(),
      new Conv2d({ inChannels: 5, outChannels: 3, kernelSize: 3, stride: 2, seed: 0 }),
    );
    seq.loadStateDict({ '0.weight': w1, '0.bias': b1, '2.weight': w2, '2.bias': b2, '4.weight': w3, '4.bias': b3 });
    const xt = Tensor.fromArray(x, xShape);
    using([seq, xt], () => {
      const y = seq.forward(xt);
      using([y], () => {
        expect(y.shape).toEqual([2, 3, 4, 4]);
        ref.expectClose(y.data, want, convTol(45) * 4, 'three-layer Sequential');
      });
    });
  });

  for (const [k, p] of [[1, 0], [3, 1]] as const) {
    it(`conv2d x=[2,3,5,6] o=5 k=${k} p=${p} forwardInto channels [2,7) of [2,9,5,6] leaves the other channels untouched`, () => {
      const x = ref.randomArray(2 * 3 * 5 * 6, 31 + k);
      const weight = ref.randomArray(5 * 3 * k * k, 32 + k);
      const bias = ref.randomArray(5, 33 + k);
      const want = ref.conv2d(x, [2, 3, 5, 6], weight, [5, 3, k, k], bias, { stride: [1, 1], padding: [p, p] }, false);
      const conv = new Conv2d({ inChannels: 3, outChannels: 5, kernelSize: k, padding: p, seed: 0 });
      conv.loadStateDict({ weight, bias });
      const sentinel = -777.5;
      const xt = Tensor.fromArray(x, [2, 3, 5, 6]);
      const out = Tensor.fromArray(new Float32Array(2 * 9 * 30).fill(sentinel), [2, 9, 5, 6]);
      using([conv, xt, out], () => {
        conv.forwardInto(xt, out, 2);
        const got = out.toArray();
        const hw = 30;
        for (let b = 0; b < 2; b++) {
          const slice = got.subarray((b * 9 + 2) * hw, (b * 9 + 7) * hw);
          ref.expectClose(slice, want.subarray(b * 5 * hw, (b + 1) * 5 * hw), convTol(3 * k * k), `image ${b} slice`);
          const outside = [...got.subarray(b * 9 * hw, (b * 9 + 2) * hw), ...got.subarray((b * 9 + 7) * hw, (b + 1) * 9 * hw)];
          expect(outside.every((v) => v === sentinel), `image ${b}: wrote outside its channel slice`).toBe(true);
        }
      });
    });
  }
});

describe('Conv2d: property tests (fast-check)', () => {
  const reluMode = fc.constantFrom<ReluMode>('none', 'activation', 'sequential');

  it('random shapes, kernels, strides and paddings match the reference (60 runs, seed 42)', () => {
    const arb = fc
      .record({
        n: fc.integer({ min: 1, max: 3 }),
        c: fc.integer({ min: 1, max: 12 }),
        o: fc.integer({ min: 1, max: 12 }),
        h: fc.integer({ min: 1, max: 16 }),
        w: fc.integer({ min: 1, max: 16 }),
        k: fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 })),
        s: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
        p: fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })),
        bias: fc.boolean(),
        relu: reluMode,
      })
      .filter(convFits);
    let runs = 0;
    fc.assert(
      fc.property(arb, (t) => {
        runs++;
        checkConv(t);
      }),
      { seed: FC_SEED, numRuns: 60 },
    );
    expect(runs).toBe(60);
  });

  it('random shapes on the 1×1 stride-1 direct path match the reference (60 runs, seed 42)', () => {
    const arb = fc.record({
      n: fc.integer({ min: 1, max: 3 }),
      c: fc.integer({ min: 1, max: 12 }),
      o: fc.integer({ min: 1, max: 12 }),
      h: fc.integer({ min: 1, max: 16 }),
      w: fc.integer({ min: 1, max: 16 }),
      bias: fc.boolean(),
      relu: reluMode,
    });
    let runs = 0;
    fc.assert(
      fc.property(arb, (t) => {
        runs++;
        checkConv({ ...t, k: [1, 1], s: [1, 1], p: [0, 0] });
      }),
      { seed: FC_SEED, numRuns: 60 },
    );
    expect(runs).toBe(60);
  });
});

describe('ReLU', () => {
  it('relu x=[7]: clamps negatives, keeps positives, NaN stays NaN', () => {
    const relu = new ReLU();
    const x = Tensor.fromArray([-1, 0, 2.5, Number.NaN, -3e-20, 1e30, -Infinity], [7]);
    using([relu, x], () => {
      const y = relu.forward(x);
      using([y], () => {
        const got = Array.from(y.data);
        expect(got.slice(0, 3)).toEqual([0, 0, 2.5]);
        expect(Number.isNaN(got[3])).toBe(true);
        expect(got.slice(4)).toEqual([0, Math.fround(1e30), 0]);
        expect(Number.isNaN(x.data[3]!) && x.data[0] === -1, 'input untouched').toBe(true);
      });
    });
  });

  it('relu x=[2,3,5,7] (rank 4, odd length) matches the reference', () => {
    const xv = ref.randomArray(210, 77);
    const relu = new ReLU();
    const x = Tensor.fromArray(xv, [2, 3, 5, 7]);
    using([relu, x], () => {
      const y = relu.forward(x);
      using([y], () => {
        expect(y.shape).toEqual([2, 3, 5, 7]);
        expect(y.toArray()).toEqual(Float32Array.from(ref.relu(xv)));
      });
    });
  });
});

// ---------------------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------------------

interface PoolCase {
  x: ref.Shape4;
  k: readonly [number, number];
  s: readonly [number, number];
  p: readonly [number, number];
  ceil: boolean;
}

const poolName = (kind: string, t: PoolCase, extra = ''): string =>
  `${kind} x=${shapeStr(t.x)} k=${pairStr(t.k)} s=${pairStr(t.s)} p=${pairStr(t.p)} ceil=${t.ceil}${extra}`;

const poolGeometry = (t: PoolCase): ref.PoolGeometry => ({ kernel: t.k, stride: t.s, padding: t.p, ceilMode: t.ceil });

const poolOpts = (t: PoolCase) => ({ kernelSize: t.k, stride: t.s, padding: t.p, ceilMode: t.ceil });

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function checkMaxPool(t: PoolCase, input?: Float32Array): void {
  const what = poolName('maxpool2d', t);
  const x = input ?? ref.randomArray(numel(t.x), seedOf(what));
  const want = Float32Array.from(ref.maxPool2d(x, t.x, poolGeometry(t)));
  const pool = new MaxPool2d(poolOpts(t));
  const xt = Tensor.fromArray(x, t.x);
  using([pool, xt], () => {
    const y = pool.forward(xt);
    using([y], () => {
      expect(y.shape, `${what}: output shape`).toEqual(ref.pool2dShape(t.x, poolGeometry(t)));
      // Max pooling only selects input values: the result must be exact.
      expect(y.toArray(), what).toEqual(want);
    });
  });
}

function checkAvgPool(t: PoolCase, countIncludePad: boolean): void {
  const what = poolName('avgpool2d', t, ` countIncludePad=${countIncludePad}`);
  const x = ref.randomArray(numel(t.x), seedOf(what));
  const want = ref.avgPool2d(x, t.x, poolGeometry(t), countIncludePad);
  const pool = new AvgPool2d({ ...poolOpts(t), countIncludePad });
  const xt = Tensor.fromArray(x, t.x);
  using([pool, xt], () => {
    const y = pool.forward(xt);
    using([y], () => {
      expect(y.shape, `${what}: output shape`).toEqual(ref.pool2dShape(t.x, poolGeometry(t)));
      ref.expectClose(y.data, want, 1e-6 * (1 + Math.sqrt(t.k[0] * t.k[1])), what);
    });
  });
}

const POOL_CASES: PoolCase[] = [
  // GoogLeNet's pools.
  { x: [1, 4, 112, 112], k: [3, 3], s: [2, 2], p: [0, 0], ceil: true },
  { x: [1, 3, 14, 14], k: [3, 3], s: [1, 1], p: [1, 1], ceil: false },
  { x: [2, 3, 7, 7], k: [2, 2], s: [2, 2], p: [0, 0], ceil: true },
  // ceil on/off with padding, including sizes where ceil mode drops the last window.
  { x: [1, 2, 9, 9], k: [3, 3], s: [2, 2], p: [1, 1], ceil: false },
  { x: [1, 2, 9, 9], k: [3, 3], s: [2, 2], p: [1, 1], ceil: true },
  { x: [1, 2, 10, 10], k: [3, 3], s: [2, 2], p: [1, 1], ceil: true },
  { x: [1, 2, 5, 5], k: [2, 2], s: [2, 2], p: [1, 1], ceil: true },
  { x: [1, 2, 6, 6], k: [2, 2], s: [2, 2], p: [1, 1], ceil: true },
  { x: [1, 3, 11, 8], k: [5, 5], s: [3, 3], p: [2, 2], ceil: true },
  { x: [1, 3, 11, 8], k: [5, 5], s: [3, 3], p: [2, 2], ceil: false },
  // stride ≠ kernel (overlapping and gapped windows), rectangular geometry.
  { x: [2, 2, 10, 7], k: [2, 2], s: [3, 3], p: [0, 0], ceil: true },
  { x: [2, 2, 10, 7], k: [2, 2], s: [3, 3], p: [1, 1], ceil: false },
  { x: [1, 3, 8, 13], k: [3, 2], s: [2, 1], p: [1, 0], ceil: true },
  { x: [1, 3, 8, 13], k: [4, 3], s: [1, 3], p: [2, 1], ceil: false },
  { x: [3, 1, 1, 1], k: [1, 1], s: [1, 1], p: [0, 0], ceil: false },
  { x: [1, 1, 2, 3], k: [2, 3], s: [2, 2], p: [1, 1], ceil: true },
  { x: [1, 5, 4, 4], k: [4, 4], s: [4, 4], p: [2, 2], ceil: true },
];

describe('MaxPool2d (exact)', () => {
  for (const t of POOL_CASES) it(poolName('maxpool2d', t), () => checkMaxPool(t));

  it('maxpool2d x=[1,2,5,6] k=3 s=2 p=1 on all-negative input: padding never wins', () => {
    const t: PoolCase = { x: [1, 2, 5, 6], k: [3, 3], s: [2, 2], p: [1, 1], ceil: true };
    const x = Float32Array.from(ref.randomArray(60, 5), (v) => -2 + v * 0.5);
    checkMaxPool(t, x);
  });

  it('maxpool2d x=[1,2,2,2] k=2 s=2 p=0 regression: NaN in a window propagates, as in PyTorch', () => {
    const t: PoolCase = { x: [1, 2, 2, 2], k: [2, 2], s: [2, 2], p: [0, 0], ceil: false };
    checkMaxPool(t, new Float32Array([NaN, 1, 2, 3, NaN, NaN, NaN, NaN]));
  });

  it('maxpool2d: random shapes, padding ≤ k/2, ceil on/off (fast-check, 60 runs, seed 42)', () => {
    let runs = 0;
    fc.assert(
      fc.property(poolArb(), (t) => {
        runs++;
        checkMaxPool(t);
      }),
      { seed: FC_SEED, numRuns: 60 },
    );
    expect(runs).toBe(60);
  });
});

describe('AvgPool2d', () => {
  for (const t of POOL_CASES) {
    for (const cip of [true, false]) it(poolName('avgpool2d', t, ` countIncludePad=${cip}`), () => checkAvgPool(t, cip));
  }

  it('avgpool2d x=[1,1,5,5] k=2 s=2 p=1 ceil: hand-checked divisors', () => {
    // Rows/cols windows: [-1,1), [1,3), [3,5); all clipped to ≤ len + pad = 6, so every
    // count_include_pad divisor is 4; without padding the corner window has 1 element.
    const x = new Float32Array(25).fill(1);
    const pool = new AvgPool2d({ kernelSize: 2, stride: 2, padding: 1, ceilMode: true, countIncludePad: true });
    const pool2 = new AvgPool2d({ kernelSize: 2, stride: 2, padding: 1, ceilMode: true, countIncludePad: false });
    const xt = Tensor.fromArray(x, [1, 1, 5, 5]);
    using([pool, pool2, xt], () => {
      const a = pool.forward(xt);
      const b = pool2.forward(xt);
      using([a, b], () => {
        expect(a.shape).toEqual([1, 1, 3, 3]);
        expect(Array.from(a.data)).toEqual([0.25, 0.5, 0.5, 0.5, 1, 1, 0.5, 1, 1]);
        expect(Array.from(b.data)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
      });
    });
  });

  it('avgpool2d x=[1,1,6,6] k=2 s=2 p=1 ceil: last window clipped to len + pad counts 1 padded row', () => {
    // out = ceil((6+2-2)/2)+1 = 4; the 4th window starts at 5 and ends at min(7, 7) = 7:
    // pool_size 2 per axis, so the corner divisor is 4 though it covers one input element.
    const x = new Float32Array(36).fill(2);
    const pool = new AvgPool2d({ kernelSize: 2, stride: 2, padding: 1, ceilMode: true });
    const xt = Tensor.fromArray(x, [1, 1, 6, 6]);
    using([pool, xt], () => {
      const y = pool.forward(xt);
      using([y], () => {
        expect(y.shape).toEqual([1, 1, 4, 4]);
        expect(Array.from(y.data)).toEqual([0.5, 1, 1, 0.5, 1, 2, 2, 1, 1, 2, 2, 1, 0.5, 1, 1, 0.5]);
        ref.expectClose(y.data, ref.avgPool2d(x, [1, 1, 6, 6], { kernel: [2, 2], stride: [2, 2], padding: [1, 1], ceilMode: true }, true), 0, 'vs reference');
      });
    });
  });

  it('avgpool2d: random shapes, padding ≤ k/2, ceil on/off, countIncludePad on/off (fast-check, 60 runs, seed 42)', () => {
    let runs = 0;
    fc.assert(
      fc.property(poolArb(), fc.boolean(), (t, cip) => {
        runs++;
        checkAvgPool(t, cip);
      }),
      { seed: FC_SEED, numRuns: 60 },
    );
    expect(runs).toBe(60);
  });
});

/** Random pool geometry: dims ≤ 16, padding ≤ kernel/2, kernel fits the padded input. */
function poolArb(): fc.Arbitrary<PoolCase> {
  const axis = fc
    .record({ len: fc.integer({ min: 1, max: 16 }), k: fc.integer({ min: 1, max: 6 }), s: fc.integer({ min: 1, max: 4 }), pFrac: fc.double({ min: 0, max: 1, noNaN: true }) })
    .map(({ len, k, s, pFrac }) => ({ len, k, s, p: Math.min(Math.floor(k / 2), Math.floor(pFrac * (Math.floor(k / 2) + 1))) }))
    .filter(({ len, k, p }) => len + 2 * p >= k);
  return fc
    .record({ n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 4 }), a: axis, b: axis, ceil: fc.boolean() })
    .map(({ n, c, a, b, ceil }) => ({ x: [n, c, a.len, b.len] as const, k: [a.k, b.k] as const, s: [a.s, b.s] as const, p: [a.p, b.p] as const, ceil }));
}

describe('AdaptiveAvgPool2d', () => {
  const cases: { x: ref.Shape4; out: readonly [number, number] }[] = [
    { x: [1, 3, 14, 14], out: [4, 4] }, // overlapping windows
    { x: [2, 2, 3, 3], out: [5, 5] }, // more outputs than inputs (upsampling-like)
    { x: [1, 4, 7, 7], out: [1, 1] }, // global average, GoogLeNet's head
    { x: [1, 2, 5, 9], out: [2, 4] }, // non-square, overlapping on both axes
    { x: [1, 2, 6, 6], out: [6, 6] }, // identity
    { x: [1, 2, 3, 10], out: [7, 3] }, // upsample one axis, downsample the other
    { x: [3, 1, 1, 1], out: [2, 3] },
  ];
  for (const t of cases) {
    it(`adaptiveavgpool2d x=${shapeStr(t.x)} out=${pairStr(t.out)}`, () => {
      const x = ref.randomArray(numel(t.x), seedOf(shapeStr(t.x) + shapeStr(t.out)));
      const want = ref.adaptiveAvgPool2d(x, t.x, t.out);
      const pool = new AdaptiveAvgPool2d(t.out);
      const xt = Tensor.fromArray(x, t.x);
      using([pool, xt], () => {
        const y = pool.forward(xt);
        using([y], () => {
          expect(y.shape).toEqual([t.x[0], t.x[1], t.out[0], t.out[1]]);
          ref.expectClose(y.data, want, 1e-6 * (1 + Math.sqrt(numel(t.x.slice(2)))), 'adaptive');
        });
      });
    });
  }

  it('adaptiveavgpool2d x=[1,1,1,14] out=[1,4]: overlapping windows are [0,4) [3,7) [7,11) [10,14)', () => {
    const x = Float32Array.from({ length: 14 }, (_, i) => i);
    const pool = new AdaptiveAvgPool2d([1, 4]);
    const xt = Tensor.fromArray(x, [1, 1, 1, 14]);
    using([pool, xt], () => {
      const y = pool.forward(xt);
      using([y], () => expect(Array.from(y.data)).toEqual([1.5, 4.5, 8.5, 11.5]));
    });
  });

  it('adaptiveavgpool2d: random shapes (fast-check, 60 runs, seed 42)', () => {
    let runs = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 16 }),
        (n, c, h, w, oh, ow) => {
          runs++;
          const xShape = [n, c, h, w] as const;
          const x = ref.randomArray(n * c * h * w, runs);
          const pool = new AdaptiveAvgPool2d([oh, ow]);
          const xt = Tensor.fromArray(x, xShape);
          using([pool, xt], () => {
            const y = pool.forward(xt);
            using([y], () => {
              expect(y.shape).toEqual([n, c, oh, ow]);
              ref.expectClose(y.data, ref.adaptiveAvgPool2d(x, xShape, [oh, ow]), 1e-5, `x=${shapeStr(xShape)} out=[${oh},${ow}]`);
            });
          });
        },
      ),
      { seed: FC_SEED, numRuns: 60 },
    );
    expect(runs).toBe(60);
  });
});

// ---------------------------------------------------------------------------------------
// Linear
// ---------------------------------------------------------------------------------------

describe('Linear', () => {
  const cases: [number, number, number, boolean][] = [];
  for (const n of [1, 2, 3]) {
    for (const [inF, outF] of [[1, 1], [3, 5], [5, 4], [17, 9], [63, 10], [1023, 7]] as const) {
      cases.push([n, inF, outF, (n + inF) % 2 === 0]);
    }
  }
  cases.push([2, 1024, 10, true], [1, 4, 3, false]);
  for (const [n, inF, outF, bias] of cases) {
    it(`linear x=[${n},${inF}] w=[${outF},${inF}] ${bias ? 'bias' : 'nobias'}`, () => {
      const seed = seedOf(`linear ${n} ${inF} ${outF}`);
      const x = ref.randomArray(n * inF, seed);
      const weight = ref.randomArray(outF * inF, seed + 1);
      const b = ref.randomArray(outF, seed + 2);
      const layer = new Linear({ inFeatures: inF, outFeatures: outF, bias, seed: 0 });
      layer.loadStateDict(bias ? { weight, bias: b } : { weight });
      const xt = Tensor.fromArray(x, [n, inF]);
      using([layer, xt], () => {
        const y = layer.forward(xt);
        using([y], () => {
          expect(y.shape).toEqual([n, outF]);
          ref.expectClose(y.data, ref.linear(x, n, weight, inF, outF, bias ? b : undefined), convTol(inF), 'linear');
        });
      });
    });
  }
});

// ---------------------------------------------------------------------------------------
// Inception and concat
// ---------------------------------------------------------------------------------------

describe('Inception', () => {
  type Cfg = [number, number, number, number, number, number, number];
  const cases: { x: ref.Shape4; cfg: Cfg; relu: boolean; random: boolean }[] = [
    { x: [2, 8, 7, 9], cfg: [8, 4, 3, 5, 2, 3, 4], relu: true, random: false },
    { x: [2, 8, 7, 9], cfg: [8, 4, 3, 5, 2, 3, 4], relu: false, random: true },
    { x: [1, 5, 1, 1], cfg: [5, 1, 2, 3, 1, 9, 2], relu: true, random: true },
    { x: [1, 32, 14, 14], cfg: [32, 16, 12, 20, 4, 8, 8], relu: true, random: false },
    { x: [3, 6, 4, 3], cfg: [6, 5, 4, 9, 3, 4, 1], relu: true, random: true },
  ];
  for (const t of cases) {
    const name = `inception x=${shapeStr(t.x)} (${t.cfg.join(',')}) ${t.relu ? 'relu' : 'no activation'}${t.random ? ' random weights' : ' default init'}`;
    it(name, () => {
      const [inC, c1, c3r, c3, c5r, c5, pp] = t.cfg;
      const block = new Inception(inC, c1, c3r, c3, c5r, c5, pp, { activation: t.relu ? 'relu' : null, seed: 7 });
      let sd = block.stateDict();
      expect([...sd.keys()].sort()).toEqual(
        ['branch1', 'branch2.0', 'branch2.1', 'branch3.0', 'branch3.1', 'branch4.1'].flatMap((p) => [`${p}.bias`, `${p}.weight`]).sort(),
      );
      if (t.random) {
        let s = seedOf(name);
        const loaded = new Map([...sd].map(([k, v]) => [k, { shape: v.shape, data: ref.randomArray(v.data.length, s++) }]));
        block.loadStateDict(loaded);
        sd = block.stateDict();
        for (const [k, v] of loaded) expect(sd.get(k)!.data, `stateDict() returns the loaded ${k}`).toEqual(v.data);
      }
      const get = (k: string): Float32Array => sd.get(k)!.data;
      const wShape = (k: string): ref.Shape4 => sd.get(k)!.shape as unknown as ref.Shape4;
      const conv = (x: ArrayLike<number>, xShape: ref.Shape4, prefix: string, pad: number) => {
        const ws = wShape(`${prefix}.weight`);
        const g = { stride: [1, 1] as const, padding: [pad, pad] as const };
        return { data: ref.conv2d(x, xShape, get(`${prefix}.weight`), ws, get(`${prefix}.bias`), g, t.relu), shape: ref.conv2dShape(xShape, ws, g) };
      };
      const x = ref.randomArray(numel(t.x), seedOf(name) + 1000);
      const b1 = conv(x, t.x, 'branch1', 0);
      const r2 = conv(x, t.x, 'branch2.0', 0);
      const b2 = conv(r2.data, r2.shape, 'branch2.1', 1);
      const r3 = conv(x, t.x, 'branch3.0', 0);
      const b3 = conv(r3.data, r3.shape, 'branch3.1', 2);
      const pooled = ref.maxPool2d(x, t.x, { kernel: [3, 3], stride: [1, 1], padding: [1, 1], ceilMode: false });
      const b4 = conv(pooled, t.x, 'branch4.1', 0);
      const want = ref.concatChannels([b1, b2, b3, b4]);
      const xt = Tensor.fromArray(x, t.x);
      using([block, xt], () => {
        const y = block.forward(xt);
        using([y], () => {
          expect(y.shape).toEqual([t.x[0], c1 + c3 + c5 + pp, t.x[2], t.x[3]]);
          ref.expectClose(y.data, want, 4 * convTol(Math.max(inC, c3r * 9, c5r * 25)), name);
        });
      });
    });
  }
});

describe('concat', () => {
  const cases: ref.Shape4[][] = [
    [[2, 1, 3, 4], [2, 3, 3, 4], [2, 2, 3, 4]],
    [[1, 5, 1, 1], [1, 1, 1, 1], [1, 4, 1, 1]],
    [[3, 2, 2, 5], [3, 2, 2, 5], [3, 7, 2, 5]],
  ];
  for (const shapes of cases) {
    it(`concat ${shapes.map(shapeStr).join(' + ')}`, () => {
      const parts = shapes.map((s, i) => ({ data: ref.randomArray(numel(s), 100 + i), shape: s }));
      const tensors = parts.map((p) => Tensor.fromArray(p.data, p.shape));
      using(tensors, () => {
        const y = concat(tensors);
        using([y], () => {
          const [n, , h, w] = shapes[0]!;
          expect(y.shape).toEqual([n, shapes.reduce((s, sh) => s + sh[1], 0), h, w]);
          // Manual concatenation, written independently of ref.concatChannels.
          const manual: number[] = [];
          for (let b = 0; b < n; b++) {
            for (const p of parts) {
              const block = p.shape[1] * h * w;
              manual.push(...p.data.subarray(b * block, (b + 1) * block));
            }
          }
          expect(y.toArray()).toEqual(Float32Array.from(manual));
          expect(y.toArray()).toEqual(Float32Array.from(ref.concatChannels(parts)));
          // The inputs are untouched.
          tensors.forEach((t, i) => expect(t.toArray()).toEqual(parts[i]!.data));
        });
      });
    });
  }

  it('concat rejects an empty list and mismatched N/H/W with ShapeError', () => {
    const a = Tensor.zeros([1, 2, 3, 4]);
    const b = Tensor.zeros([1, 2, 3, 5]);
    const c = Tensor.zeros([2, 2, 3, 4]);
    using([a, b, c], () => {
      expect(() => concat([])).toThrow(ShapeError);
      expect(() => concat([a, b])).toThrow(/input 1 has shape \[1, 2, 3, 5\]/);
      expect(() => concat([a, c])).toThrow(ShapeError);
      const y = concat([a]);
      using([y], () => expect(y.shape).toEqual([1, 2, 3, 4]));
    });
  });
});
