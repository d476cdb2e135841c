/**
 * Plain float64 reference implementations with PyTorch semantics, used as test oracles.
 * Written as direct loop nests over the definitions — obviously correct, not fast.
 * All tensors are row-major NCHW (or [N, F] for `linear`); weights are PyTorch's layouts
 * (OIHW for convolutions, [out, in] for linear).
 */
import { expect } from 'vitest';
import { fillTensor } from './weyl.js';

export type Shape4 = readonly [number, number, number, number];
export type Pair2 = readonly [number, number];

export interface ConvGeometry {
  stride: Pair2;
  padding: Pair2;
}

export interface PoolGeometry {
  kernel: Pair2;
  stride: Pair2;
  padding: Pair2;
  ceilMode: boolean;
}

/** `floor((len + 2·pad − k) / s) + 1` — PyTorch's Conv2d output size (dilation 1). */
export function convOutSize(len: number, k: number, s: number, pad: number): number {
  return Math.floor((len + 2 * pad - k) / s) + 1;
}

/**
 * PyTorch's pooling output size (`pooling_output_shape`, dilation 1): floor or ceil of
 * `(len + 2·pad − k) / s`, plus one; in ceil mode the last window must start inside the
 * input or the left padding, i.e. if `(out − 1)·s ≥ len + pad` then `out −= 1`.
 */
export function poolOutSize(len: number, k: number, s: number, pad: number, ceilMode: boolean): number {
  const span = len + 2 * pad - k;
  let out = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceilMode && (out - 1) * s >= len + pad) out -= 1;
  return out;
}

/** Output shape of {@link conv2d}. */
export function conv2dShape(xShape: Shape4, wShape: Shape4, g: ConvGeometry): [number, number, number, number] {
  const [n, , h, w] = xShape;
  const [o, , kh, kw] = wShape;
  return [n, o, convOutSize(h, kh, g.stride[0], g.padding[0]), convOutSize(w, kw, g.stride[1], g.padding[1])];
}

/**
 * `torch.nn.functional.conv2d(x, w, bias, stride, padding)` (groups 1, dilation 1,
 * zero padding), then `relu` if asked.
 */
export function conv2d(
  x: ArrayLike<number>,
  xShape: Shape4,
  w: ArrayLike<number>,
  wShape: Shape4,
  bias: ArrayLike<number> | undefined,
  g: ConvGeometry,
  relu: boolean,
): Float64Array {
  const [n, c, h, wd] = xShape;
  const [o, ci, kh, kw] = wShape;
  if (ci !== c) throw new Error(`reference conv2d: weight expects ${ci} channels, input has ${c}`);
  if (x.length !== n * c * h * wd) throw new Error('reference conv2d: input length');
  if (w.length !== o * ci * kh * kw) throw new Error('reference conv2d: weight length');
  const [sh, sw] = g.stride;
  const [ph, pw] = g.padding;
  const [, , oh, ow] = conv2dShape(xShape, wShape, g);
  const out = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let acc = bias === undefined ? 0 : bias[oc]!;
          for (let ic = 0; ic < c; ic++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh + ky - ph;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw + kx - pw;
                if (ix < 0 || ix >= wd) continue;
                acc += x[((b * c + ic) * h + iy) * wd + ix]! * w[((oc * ci + ic) * kh + ky) * kw + kx]!;
              }
            }
          }
          out[((b * o + oc) * oh + oy) * ow + ox] = relu && acc < 0 ? 0 : acc;
        }
      }
    }
  }
  return out;
}

/** Output shape of {@link maxPool2d} / {@link avgPool2d}. */
export function pool2dShape(xShape: Shape4, g: PoolGeometry): [number, number, number, number] {
  const [n, c, h, w] = xShape;
  return [
    n,
    c,
    poolOutSize(h, g.kernel[0], g.stride[0], g.padding[0], g.ceilMode),
    poolOutSize(w, g.kernel[1], g.stride[1], g.padding[1], g.ceilMode),
  ];
}

/** `nn.MaxPool2d` (implicit −∞ padding, dilation 1; a NaN in the window propagates, as in PyTorch). */
export function maxPool2d(x: ArrayLike<number>, xShape: Shape4, g: PoolGeometry): Float64Array {
  const [n, c, h, w] = xShape;
  const [, , oh, ow] = pool2dShape(xShape, g);
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.stride;
  const [ph, pw] = g.padding;
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let m = -Infinity;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - ph + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pw + kx;
            if (ix < 0 || ix >= w) continue;
            const v = x[(p * h + iy) * w + ix]!;
            if (v > m || Number.isNaN(v)) m = v;
            if (Number.isNaN(m)) break;
          }
        }
        out[(p * oh + oy) * ow + ox] = m;
      }
    }
  }
  return out;
}

/**
 * `nn.AvgPool2d` with PyTorch's divisor rule: the window is first clipped to
 * `[−pad, len + pad)` — `pool_size = (hend − hstart)·(wend − wstart)` with
 * `hend = min(hstart + k, H + pad)` — and only then to the input. With
 * `countIncludePad` the divisor is `pool_size`, otherwise the number of input elements.
 */
export function avgPool2d(x: ArrayLike<number>, xShape: Shape4, g: PoolGeometry, countIncludePad: boolean): Float64Array {
  const [n, c, h, w] = xShape;
  const [, , oh, ow] = pool2dShape(xShape, g);
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.stride;
  const [ph, pw] = g.padding;
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let hstart = oy * sh - ph;
        let wstart = ox * sw - pw;
        let hend = Math.min(hstart + kh, h + ph);
        let wend = Math.min(wstart + kw, w + pw);
        const poolSize = (hend - hstart) * (wend - wstart);
        hstart = Math.max(hstart, 0);
        wstart = Math.max(wstart, 0);
        hend = Math.min(hend, h);
        wend = Math.min(wend, w);
        let sum = 0;
        for (let iy = hstart; iy < hend; iy++) {
          for (let ix = wstart; ix < wend; ix++) sum += x[(p * h + iy) * w + ix]!;
        }
        const divisor = countIncludePad ? poolSize : (hend - hstart) * (wend - wstart);
        out[(p * oh + oy) * ow + ox] = sum / divisor;
      }
    }
  }
  return out;
}

/** `nn.AdaptiveAvgPool2d((oh, ow))`: window `i` is `[floor(i·H/oh), ceil((i+1)·H/oh))`. */
export function adaptiveAvgPool2d(x: ArrayLike<number>, xShape: Shape4, outSize: Pair2): Float64Array {
  const [n, c, h, w] = xShape;
  const [oh, ow] = outSize;
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.floor((oy * h) / oh);
      const y1 = Math.ceil(((oy + 1) * h) / oh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = Math.floor((ox * w) / ow);
        const x1 = Math.ceil(((ox + 1) * w) / ow);
        let sum = 0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) sum += x[(p * h + iy) * w + ix]!;
        }
        out[(p * oh + oy) * ow + ox] = sum / ((y1 - y0) * (x1 - x0));
      }
    }
  }
  return out;
}

/** `nn.Linear`: `y[b, o] = bias[o] + Σ_i w[o, i]·x[b, i]` on `x` of shape `[n, inFeatures]`. */
export function linear(
  x: ArrayLike<number>,
  n: number,
  w: ArrayLike<number>,
  inFeatures: number,
  outFeatures: number,
  bias: ArrayLike<number> | undefined,
): Float64Array {
  if (x.length !== n * inFeatures || w.length !== outFeatures * inFeatures) throw new Error('reference linear: lengths');
  const out = new Float64Array(n * outFeatures);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < outFeatures; o++) {
      let acc = bias === undefined ? 0 : bias[o]!;
      for (let i = 0; i < inFeatures; i++) acc += w[o * inFeatures + i]! * x[b * inFeatures + i]!;
      out[b * outFeatures + o] = acc;
    }
  }
  return out;
}

/** Elementwise `max(x, 0)`. */
export function relu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => (v < 0 ? 0 : v));
}

/** `torch.cat(parts, 1)` for NCHW arrays that share N, H, W. */
export function concatChannels(parts: readonly { data: ArrayLike<number>; shape: Shape4 }[]): Float64Array {
  const [n, , h, w] = parts[0]!.shape;
  const hw = h * w;
  const channels = parts.reduce((s, p) => s + p.shape[1], 0);
  const out = new Float64Array(n * channels * hw);
  for (let b = 0; b < n; b++) {
    let offset = 0;
    for (const p of parts) {
      const c = p.shape[1];
      for (let i = 0; i < c * hw; i++) out[(b * channels + offset) * hw + i] = p.data[b * c * hw + i]!;
      offset += c;
    }
  }
  return out;
}

/** `len` deterministic float32 values uniform in [−1, 1): the weyl-fmix32 stream `seed` (the fixtures' generator, test/weyl.ts). */
export function randomArray(len: number, seed: number): Float32Array {
  return fillTensor(seed, 0, len, { offset: 0, scale: 1, abs: false });
}

/**
 * Asserts `got.length === want.length` and `|got[i] − want[i]| ≤ tol·(1 + |want[i]|)` for
 * every `i`; the failure message names `what`, the first bad index, both values and
 * how many elements are off.
 */
export function expectClose(got: Float32Array, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let first = -1;
  let bad = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const e = want[i]!;
    // Written so that NaN in either array counts as a mismatch.
    if (!(Math.abs(g - e) <= tol * (1 + Math.abs(e)))) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (first >= 0) {
    const g = got[first]!;
    const e = want[first]!;
    expect.fail(
      `${what}: ${bad} of ${want.length} elements differ; first at index ${first}: got ${g}, want ${e} ` +
        `(|diff| ${Math.abs(g - e)} > ${tol * (1 + Math.abs(e))} = tol ${tol} · (1 + |want|))`,
    );
  }
}
