/**
 * Pooling geometries against PyTorch 1.13 (test/fixtures/pool_geometries.json, written by
 * test/fixtures/pool_geometries.py): which ones MaxPool2d and AvgPool2d accept, the output
 * sizes, and the outputs on weyl-fmix32 inputs — including inputs smaller than the kernel,
 * which PyTorch runs (issue 12: torchvision's GoogLeNet needed ≥ 31 px here, 15 there).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AvgPool2d, GoogLeNet, init, MaxPool2d, ShapeError, Tensor, ValueError } from '../ts/index.js';
import * as ref from './reference.js';
import { fillTensor } from './weyl.js';

interface PoolCase {
  x: [number, number, number, number];
  k: [number, number];
  s: [number, number];
  p: [number, number];
  ceil: boolean;
  seed: number;
  y: [number, number, number, number];
  max: number[];
  avg: number[];
  avgExcludePad: number[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/pool_geometries.json', import.meta.url), 'utf8')) as {
  torch: string;
  sizes: { fields: string[]; rows: [number, number, number, number, number, number | null][] };
  cases: PoolCase[];
};

beforeAll(() => init());

describe(`pooling geometries against PyTorch ${fixture.torch}`, () => {
  it(`accepts exactly the ${fixture.sizes.rows.length} (len, k, s, pad, ceil) PyTorch accepts (len 1–12, k 1–6, s 1–4, pad 0–3), with its output sizes, in MaxPool2d and AvgPool2d`, () => {
    expect(fixture.sizes.fields).toEqual(['len', 'k', 's', 'pad', 'ceil', 'out']);
    let accepted = 0;
    for (const [len, k, s, pad, ceil, out] of fixture.sizes.rows) {
      const what = `len=${len} k=${k} s=${s} pad=${pad} ceil=${ceil === 1}: PyTorch gives ${out ?? 'an error'}`;
      const options = { kernelSize: [k, 1] as const, stride: [s, 1] as const, padding: [pad, 0] as const, ceilMode: ceil === 1 };
      if (2 * pad > k) {
        expect(out, what).toBeNull();
        expect(() => new MaxPool2d(options), what).toThrow(ValueError);
        expect(() => new AvgPool2d(options), what).toThrow(ValueError);
        continue;
      }
      using x = Tensor.fromArray(new Float32Array(len), [1, 1, len, 1]);
      for (const pool of [new MaxPool2d(options), new AvgPool2d(options)]) {
        using _ = pool;
        if (out === null) {
          expect(() => pool.forward(x), `${pool.op} ${what}`).toThrow(ShapeError);
          continue;
        }
        using y = pool.forward(x);
        expect(y.shape, `${pool.op} ${what}`).toEqual([1, 1, out, 1]);
        accepted++;
      }
    }
    expect(accepted).toBe(2 * fixture.sizes.rows.filter((r) => r[5] !== null).length);
  });

  it('an empty output is a ShapeError naming the op, the input and the geometry', () => {
    using pool = new MaxPool2d({ kernelSize: 3, stride: 2 });
    using x = Tensor.fromArray([1], [1, 1, 1, 1]);
    expect(() => pool.forward(x)).toThrow('Error in MaxPool2d: input 1×1 gives a 0×0 output (kernel 3×3, stride 2×2, padding 0×0); the output must be at least 1×1');
  });

  for (const c of fixture.cases) {
    const name = `x=[${c.x.join(',')}] k=[${c.k.join(',')}] s=[${c.s.join(',')}] p=[${c.p.join(',')}] ceil=${c.ceil}`;
    it(`${name}: max (exact) and average (both divisors) outputs equal PyTorch's`, () => {
      const input = fillTensor(c.seed, 0, c.x.reduce((a, b) => a * b, 1), { offset: 0, scale: 1, abs: false });
      using x = Tensor.fromArray(input, c.x);
      const geometry = { kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil };
      const runs: [string, MaxPool2d | AvgPool2d, number[]][] = [
        ['max', new MaxPool2d(geometry), c.max],
        ['avg', new AvgPool2d({ ...geometry, countIncludePad: true }), c.avg],
        ['avgExcludePad', new AvgPool2d({ ...geometry, countIncludePad: false }), c.avgExcludePad],
      ];
      for (const [kind, pool, want] of runs) {
        using _ = pool;
        using y = pool.forward(x);
        expect(y.shape, `${kind}: shape`).toEqual(c.y);
        // Max only selects inputs; averages of ≤ 36 values in [-1, 1) round within 4e-6.
        if (kind === 'max') expect(Array.from(y.data), kind).toEqual(want);
        else ref.expectClose(y.data, want, 4e-6, `${name} ${kind}`);
      }
    });
  }
});

describe('torchvision GoogLeNet on small inputs (ceil-mode pools on maps smaller than their kernels)', () => {
  for (const size of [15, 30]) {
    it(`x=[1,3,${size},${size}] runs, as in PyTorch: logits [1, 1000], all finite`, () => {
      using model = new GoogLeNet({ variant: 'torchvision', seed: 7 });
      using x = Tensor.fromArray(fillTensor(size, 0, 3 * size * size, { offset: 0, scale: 1, abs: false }), [1, 3, size, size]);
      using y = model.forward(x);
      expect(y.shape).toEqual([1, 1000]);
      expect(Array.from(y.data).every(Number.isFinite)).toBe(true);
    });
  }
});
