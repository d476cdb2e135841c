// Deterministic data shared by every engine, so that the same case gets the same
// weights and input everywhere and the outputs can be compared across engines.

/** Uniform floats in [lo, hi) from a 32-bit mixer (splitmix-like); fast enough for 7 M values. */
export function uniform(n, seed, lo = -1, hi = 1) {
  const out = new Float32Array(n);
  let s = (seed * 0x9e3779b9) >>> 0;
  const scale = (hi - lo) / 4294967296;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    z = (z ^ (z >>> 14)) >>> 0;
    out[i] = lo + z * scale;
  }
  return out;
}

/** FNV-1a of a string: stable per-case seeds. */
export function seedOf(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** He-uniform conv weights (OIHW) and small biases for one conv op of the graph. */
export function convParams(op, seed) {
  const fanIn = op.cin * op.k * op.k;
  const bound = Math.sqrt(6 / fanIn);
  return {
    weight: { shape: [op.cout, op.cin, op.k, op.k], data: uniform(op.cout * fanIn, seed, -bound, bound) },
    bias: { shape: [op.cout], data: uniform(op.cout, seed ^ 0x5bd1e995, -0.125, 0.125) },
  };
}

/** Parameters for every conv of a graph, keyed by the library's state-dict names. */
export function graphParams(graph, caseId) {
  const dict = {};
  for (const op of graph.ops) {
    if (op.op !== 'conv') continue;
    const { weight, bias } = convParams(op, seedOf(`${caseId}/${op.name}`));
    const prefix = op.name ? `${op.name}.` : '';
    dict[`${prefix}weight`] = weight;
    dict[`${prefix}bias`] = bias;
  }
  return dict;
}

/** The benchmark input: `n` images of [C, H, W] in [-1, 1), NCHW. */
export const inputNCHW = (n, [c, h, w], seed = 1) => uniform(n * c * h * w, seed);

/** NCHW → NHWC (tfjs layout). */
export function toNHWC(x, n, c, h, w) {
  const y = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < h * w; i++) y[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
  return y;
}

/** OIHW → HWIO (tfjs conv filters). */
export function toHWIO(wt, o, i, kh, kw) {
  const y = new Float32Array(wt.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y0 = 0; y0 < kh; y0++)
        for (let x0 = 0; x0 < kw; x0++) y[((y0 * kw + x0) * i + b) * o + a] = wt[((a * i + b) * kh + y0) * kw + x0];
  return y;
}

/** [out, in] → [in, out] (tfjs matMul). */
export function transpose2d(m, rows, cols) {
  const y = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[c * rows + r] = m[r * cols + c];
  return y;
}

/** Layout-independent fingerprint of an output (sum, sum of squares, count), for cross-engine checks. */
export function fingerprint(data) {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < data.length; i++) {
    s += data[i];
    s2 += data[i] * data[i];
  }
  return { sum: s, sumSq: s2, n: data.length };
}

/** Weights of a GoogLeNet stored as one float32 file plus a JSON index (written by the `prepare` job). */
export function packWeights(dict) {
  const index = {};
  let offset = 0;
  for (const [name, t] of Object.entries(dict)) {
    index[name] = { shape: [...t.shape], offset, length: t.data.length };
    offset += t.data.length;
  }
  const all = new Float32Array(offset);
  for (const [name, t] of Object.entries(dict)) all.set(t.data, index[name].offset);
  return { index, data: all };
}

export function unpackWeights(index, data) {
  const dict = {};
  for (const [name, { shape, offset, length }] of Object.entries(index)) dict[name] = { shape, data: data.subarray(offset, offset + length) };
  return dict;
}
