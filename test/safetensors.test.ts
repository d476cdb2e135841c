/**
 * Safetensors: files from the reference implementation (test/safetensors/*.safetensors,
 * made by make_reference_files.py), BatchNorm folding checked against an explicit
 * conv → BN → ReLU reference, round trips of whole torchvision GoogLeNets, and hostile
 * files — each a typed error naming the problem, with the instance usable afterwards.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat } from '../ts/safetensors.js';
import {
  Conv2d,
  GoogLeNet,
  Inception,
  init,
  Linear,
  manualSeed,
  loadSafetensors,
  readSafetensors,
  SafetensorsError,
  saveSafetensors,
  StateDictError,
  type StateTensor,
  Tensor,
} from '../ts/index.js';
import * as ref from './reference.js';

const file = (name: string) => readFileSync(new URL(`./safetensors/${name}`, import.meta.url));

beforeAll(() => init());

/** torchvision's BasicConv2d, unfolded: conv (no bias) → BatchNorm (eval, eps 1e-3) → ReLU. */
function basicConvRef(x: ArrayLike<number>, shape: ref.Shape4, dict: Map<string, StateTensor>, prefix: string): { data: Float64Array; shape: ref.Shape4 } {
  const w = dict.get(`${prefix}.conv.weight`)!;
  const wShape = w.shape as unknown as ref.Shape4;
  const pad = (wShape[2] - 1) / 2;
  const y = ref.conv2d(x, shape, w.data, wShape, undefined, { stride: [1, 1], padding: [pad, pad] }, false);
  const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => dict.get(`${prefix}.bn.${k}`)!.data);
  const outShape = ref.conv2dShape(shape, wShape, { stride: [1, 1], padding: [pad, pad] });
  const hw = outShape[2] * outShape[3];
  for (let i = 0; i < y.length; i++) {
    const c = Math.floor(i / hw) % outShape[1];
    y[i] = Math.max(0, ((y[i]! - mean![c]!) / Math.sqrt(variance![c]! + 1e-3)) * gamma![c]! + beta![c]!);
  }
  return { data: y, shape: outShape };
}

describe('files written by the reference implementation', () => {
  it('torchvision-style Inception: keys, values (checked against the writer\'s own sums), BatchNorm folding', () => {
    const { tensors, metadata } = readSafetensors(file('tv_inception.safetensors'));
    expect(metadata.format).toBe('pt');
    expect([...tensors.keys()].some((k) => k.endsWith('num_batches_tracked')), 'I64 counters are skipped').toBe(false);
    expect(tensors.size).toBe(6 * 5);
    for (const [key, t] of tensors) {
      const sum = t.data.reduce((s, v) => s + v, 0);
      expect(sum, `sum of ${key}`).toBeCloseTo(Number(metadata[`sum:${key}`]), 9);
      expect(t.data[0], `first of ${key}`).toBe(Number(metadata[`first:${key}`]));
    }

    using block = new Inception(16, 4, 4, 8, 2, 4, 4, { style: 'torchvision' });
    block.loadStateDict(tensors); // strict: every key of the file is one of the block's
    const shape: ref.Shape4 = [2, 16, 7, 6];
    const xs = ref.randomArray(2 * 16 * 7 * 6, 3);
    using x = Tensor.fromArray(xs, shape);
    using y = block.forward(x);
    const b1 = basicConvRef(xs, shape, tensors, 'branch1');
    const b2a = basicConvRef(xs, shape, tensors, 'branch2.0');
    const b2 = basicConvRef(b2a.data, b2a.shape, tensors, 'branch2.1');
    const b3a = basicConvRef(xs, shape, tensors, 'branch3.0');
    const b3 = basicConvRef(b3a.data, b3a.shape, tensors, 'branch3.1');
    const pooled = ref.maxPool2d(xs, shape, { kernel: [3, 3], stride: [1, 1], padding: [1, 1], ceilMode: true });
    const b4 = basicConvRef(pooled, shape, tensors, 'branch4.1');
    ref.expectClose(y.data, ref.concatChannels([b1, b2, b3, b4]), 1e-5, 'torchvision Inception vs conv→BN→ReLU reference');
  });

  it('F16 tensors are widened exactly', () => {
    const dict = loadSafetensors(file('linear_f16.safetensors'));
    expect(dict.get('weight')).toEqual({ shape: [2, 3], data: new Float32Array([0.5, -1.25, 2, 65504, -0.000061035156, 0.333251953125]) });
    using lin = new Linear({ inFeatures: 3, outFeatures: 2 });
    lin.loadStateDict(dict);
    using y = lin.forward(Tensor.fromArray([1, 0, 0], [1, 3]));
    expect(y.toArray()).toEqual(new Float32Array([1.5, 65501.5]));
  });

  it('saveSafetensors(..., { dtype: \'F16\' }) rounds to the nearest half (ties to even) and reads back exactly', () => {
    // Every half value round-trips; between two halves, the nearer one (the even one on a tie).
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (!Number.isNaN(v)) expect(floatToHalf(v), `half 0x${h.toString(16)}`).toBe(h === 0x8000 ? 0x8000 : h);
    }
    let state = 7;
    for (let i = 0; i < 20000; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const x = Math.fround((state / 2 ** 32 - 0.5) * 2 ** ((i % 40) - 26));
      const h = floatToHalf(x);
      const hi = halfToFloat(h);
      const d = Math.abs(hi - x);
      for (const n of [h - 1, h + 1]) {
        if ((n & 0x7fff) > 0x7c00 || (n & 0x8000) !== (h & 0x8000)) continue;
        const dn = Math.abs(halfToFloat(n) - x);
        expect(d <= dn, `${x}: ${hi} vs ${halfToFloat(n)}`).toBe(true);
        if (d === dn) expect(h & 1, `tie at ${x}`).toBe(0);
      }
    }
    expect([floatToHalf(65520), floatToHalf(-1e9), floatToHalf(NaN) & 0x7e00, floatToHalf(2 ** -25), floatToHalf(-0)]).toEqual([0x7c00, 0xfc00, 0x7e00, 0, 0x8000]);
    using m = new Conv2d({ inChannels: 32, outChannels: 32, kernelSize: 3 });
    const half = saveSafetensors(m, { note: 'f16' }, { dtype: 'F16' });
    const full = saveSafetensors(m);
    expect(half.length).toBeLessThan(full.length * 0.6);
    const back = readSafetensors(half);
    expect(back.metadata).toEqual({ note: 'f16' });
    for (const [key, t] of m.stateDict()) {
      expect(Array.from(back.tensors.get(key)!.data)).toEqual(Array.from(t.data, (v) => halfToFloat(floatToHalf(v))));
    }
  });

  it('BF16 and F64 tensors are converted', () => {
    const header = JSON.stringify({ b: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] }, d: { dtype: 'F64', shape: [1], data_offsets: [4, 12] } });
    const bytes = new Uint8Array(8 + header.length + 12);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    const data = 8 + header.length;
    view.setUint16(data, 0x3f80, true); // 1.0
    view.setUint16(data + 2, 0xc040, true); // -3.0
    view.setFloat64(data + 4, 0.1, true);
    const dict = loadSafetensors(bytes);
    expect(dict.get('b')!.data).toEqual(new Float32Array([1, -3]));
    expect(dict.get('d')!.data).toEqual(new Float32Array([0.1]));
  });
});

describe('round trips', () => {
  it('torchvision GoogLeNet with aux heads: save, load into a fresh model, same outputs bit for bit', () => {
    using a = new GoogLeNet({ variant: 'torchvision', numClasses: 10, auxLogits: true, seed: 1 });
    using b = new GoogLeNet({ variant: 'torchvision', numClasses: 10, auxLogits: true, seed: 2 });
    const bytes = saveSafetensors(a, { source: 'test' });
    expect(readSafetensors(bytes).metadata).toEqual({ source: 'test' });
    b.loadStateDict(loadSafetensors(bytes));
    using x = Tensor.fromArray(ref.randomArray(3 * 64 * 64, 4), [1, 3, 64, 64]);
    using ya = a.forward(x);
    using yb = b.forward(x);
    expect(yb.toArray()).toEqual(ya.toArray());
    // and the file is byte-identical when saved again
    expect(Buffer.compare(saveSafetensors(b, { source: 'test' }), bytes)).toBe(0);
    a.train();
    b.train();
    // The same dropout masks (manualSeed), the same batch statistics: the same training step.
    manualSeed(11);
    const oa = a.forwardAll(x);
    manualSeed(11);
    const ob = b.forwardAll(x);
    expect(ob.logits.toArray()).toEqual(oa.logits.toArray());
    expect(ob.aux1!.toArray()).toEqual(oa.aux1!.toArray());
    expect(ob.aux2!.toArray()).toEqual(oa.aux2!.toArray());
    for (const t of [oa.logits, oa.aux1!, oa.aux2!, ob.logits, ob.aux1!, ob.aux2!]) t.dispose();
    // Both updated their BatchNorm running statistics the same way.
    expect(Buffer.compare(saveSafetensors(b), saveSafetensors(a))).toBe(0);
  });

  it('ignoreAux loads a full torchvision file into a model without auxiliary heads', () => {
    using full = new GoogLeNet({ variant: 'torchvision', numClasses: 5, auxLogits: true, seed: 3 });
    using lean = new GoogLeNet({ variant: 'torchvision', numClasses: 5, seed: 4 });
    const dict = loadSafetensors(saveSafetensors(full));
    expect(() => lean.loadStateDict(dict)).toThrow(/unexpected key "aux1\.conv\.conv\.weight"/);
    lean.loadStateDict(dict, { ignoreAux: true });
    expect(lean.numParameters()).toBe(5_599_904 + 1025 * 5);
    expect(full.numParameters()).toBe(9_929_888 + 3 * 1025 * 5);
    using x = Tensor.fromArray(ref.randomArray(3 * 40 * 40, 5), [1, 3, 40, 40]);
    using y1 = full.forward(x);
    using y2 = lean.forward(x);
    expect(y2.toArray()).toEqual(y1.toArray());
  });
});

/** A valid file's parts, to corrupt one at a time. */
function build(header: unknown, data: Uint8Array, headerText = JSON.stringify(header), declared?: bigint): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const two = (a: [number, number], b: [number, number], dtype = 'F32') => ({
  a: { dtype, shape: [2], data_offsets: a },
  b: { dtype, shape: [2], data_offsets: b },
});

describe('hostile files: a SafetensorsError naming the problem, nothing loaded, the instance usable', () => {
  const valid = saveSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]]));
  const data16 = new Uint8Array(16);
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length/],
    ['truncated inside the header length', valid.subarray(0, 5), /file is 5 bytes/],
    ['truncated inside the header', valid.subarray(0, 20), /runs past the end of the 20-byte file/],
    ['truncated data', valid.subarray(0, valid.length - 3), /"w": data_offsets \[0, 16\] run past the 13 bytes of data/],
    ['header length larger than the file', build({}, data16, '{}', 1000n), /header length 1000 runs past the end/],
    ['absurd header length', build({}, data16, '{}', 2n ** 63n), /header length 9223372036854775808 is larger than the 100 MB limit/],
    ['header not JSON', build(null, data16, '{"a": [1,'), /header is not JSON/],
    ['header not UTF-8', build(null, data16, '{"\xff"}').map((b, i) => (i === 10 ? 0xff : b)), /header is not valid UTF-8/],
    ['header a JSON array', build([1, 2], data16), /header must be a JSON object, but is an array/],
    ['offsets out of range', build({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data16), /"a": data_offsets \[0, 32\] run past the 16 bytes/],
    ['reversed offsets', build(two([8, 0], [8, 16]), data16), /"a": data_offsets \[8, 0\] are reversed/],
    ['overlapping tensors', build({ ...two([0, 8], [4, 12]), c: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, data16), /"b": data_offsets \[4, 12\] overlap the previous tensor/],
    ['a gap between tensors', build({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, data16), /"a": data_offsets \[8, 16\] leave a gap after byte 0/],
    ['bytes after the last tensor', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data16), /8 bytes after the last tensor/],
    ['dtype disagrees with the byte length', build(two([0, 8], [8, 16], 'F16'), data16), /"a": dtype F16 and shape \[2\] need 4 bytes, but data_offsets \[0, 8\] hold 8/],
    ['shape disagrees with the byte length', build({ a: { dtype: 'F32', shape: [3, 2], data_offsets: [0, 16] } }, data16), /shape \[3, 2\] need 24 bytes/],
    ['unknown dtype', build({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, data16), /"a": unknown dtype "F128"/],
    ['integer weights', build({ a: { dtype: 'I32', shape: [4], data_offsets: [0, 16] } }, data16), /"a": dtype I32 is not supported/],
    ['negative shape', build({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, data16), /shape must be an array of non-negative integers/],
    ['duplicate keys', build(null, data16, '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}'), /"a": appears twice in the header/],
    ['non-string metadata', build({ __metadata__: { n: 1 }, a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data16), /__metadata__ value of "n" must be a string/],
    ['entry not an object', build({ a: 3 }, data16), /"a": entry must be an object/],
  ];

  for (const [what, bytes, message] of cases) {
    it(what, () => {
      let err: unknown;
      try {
        loadSafetensors(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('a well-formed file with a misshapen or missing key fails in loadStateDict, naming the key, model unchanged', () => {
    using lin = new Linear({ inFeatures: 2, outFeatures: 2, seed: 9 });
    const before = lin.stateDict();
    const wrong = saveSafetensors(new Map([['weight', { shape: [4], data: new Float32Array(4) }], ['bias', { shape: [2], data: new Float32Array(2) }]]));
    expect(() => lin.loadStateDict(loadSafetensors(wrong))).toThrow(StateDictError);
    expect(() => lin.loadStateDict(loadSafetensors(wrong))).toThrow(/"weight" has shape \[4\], expected \[2, 2\]/);
    const missing = saveSafetensors(new Map([['weight', { shape: [2, 2], data: new Float32Array(4) }]]));
    expect(() => lin.loadStateDict(loadSafetensors(missing))).toThrow(/missing key "bias"/);
    expect(lin.stateDict()).toEqual(before);
    // the instance still works after all of the above
    using y = lin.forward(Tensor.fromArray([1, 1], [1, 2]));
    const w = before.get('weight')!.data;
    const b = before.get('bias')!.data;
    expect(y.toArray()).toEqual(new Float32Array([Math.fround(w[0]! + w[1]! + b[0]!), Math.fround(w[2]! + w[3]! + b[1]!)]));
  });

  it('BatchNorm variances below −eps are rejected before anything is written', () => {
    using m = new Inception(4, 2, 2, 2, 2, 2, 2, { style: 'torchvision', seed: 1 });
    const dict = m.stateDict();
    const before = saveSafetensors(dict);
    const bad = new Map(dict);
    bad.set('branch4.1.bn.running_var', { shape: [2], data: new Float32Array([1, -0.5]) });
    expect(() => m.loadStateDict(bad)).toThrow(/"branch4\.1\.bn\.running_var" holds -0\.5 at channel 1/);
    expect(Buffer.compare(saveSafetensors(m.stateDict()), before)).toBe(0);
  });
});
