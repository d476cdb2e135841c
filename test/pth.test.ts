/**
 * `loadPth` against files PyTorch wrote (test/fixtures/pth, made by make_pth.py with
 * python3-torch 1.13): every loadable file gives exactly PyTorch's tensors (bit for bit,
 * in state-dict order) and, loaded into the library's layers, PyTorch's output; every
 * other file is a PthError whose message names what was found. Then mutation fuzzing of
 * those files, and — where /usr/bin/python3 has torch and torchvision — a whole GoogLeNet
 * through torch.save (both formats), loadPth and torchvision's own forward.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdaptiveAvgPool2d,
  BasicConv2d,
  DataTypeError,
  Flatten,
  GoogLeNet,
  init,
  InceptionWasmError,
  Linear,
  loadPth,
  MaxPool2d,
  PthError,
  Sequential,
  type StateTensor,
  Tensor,
} from '../ts/index.js';
import { crc32 } from '../ts/pth/zip.js';
import { fmix32 } from './weyl.js';

const dir = new URL('./fixtures/pth/', import.meta.url);
const file = (name: string) => readFileSync(new URL(name, dir));

interface Values { shape: number[]; data: number[] }
interface Expected {
  torch: string;
  input: Values;
  models: Record<string, { state: Record<string, Values>; output: Values }>;
  files: Record<string, { model?: string; tensors?: Record<string, Values>; error?: string[] }>;
}
const expected = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as Expected;

beforeAll(() => init());

/** The model make_pth.py saves, in the library's layers (torchvision's BasicConv2d: conv → BN eps 1e-3 → ReLU). */
function smallModel(): Sequential {
  return new Sequential(
    new BasicConv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1 }),
    new MaxPool2d({ kernelSize: 2 }),
    new BasicConv2d({ inChannels: 8, outChannels: 6, kernelSize: 1 }),
    new AdaptiveAvgPool2d(1),
    new Flatten(),
    new Linear({ inFeatures: 6, outFeatures: 5 }),
  );
}

/** Bit-for-bit equality (signed zeros and NaN payloads included), fast enough for GoogLeNet's 6.6 M values. */
function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const i = a.findIndex((v, j) => v !== b[j]);
  expect(i < 0 ? 'all equal' : `element ${i}: ${got[i]} vs ${want[i]}`, what).toBe('all equal');
}

function expectTensors(got: Map<string, StateTensor>, want: Record<string, Values>, what: string): void {
  expect([...got.keys()], `${what}: keys in state-dict order`).toEqual(Object.keys(want));
  for (const [key, w] of Object.entries(want)) {
    const t = got.get(key)!;
    expect(t.shape, `${what}: shape of ${key}`).toEqual(w.shape);
    expect(t.data).toBeInstanceOf(Float32Array);
    expectSameBits(t.data, Float32Array.from(w.data), `${what}: values of ${key}`);
  }
}

/**
 * |ours − PyTorch| ≤ abs + rel·|PyTorch| (float32 convolutions with BatchNorm folded, against
 * PyTorch's unfolded ones); returns the worst error/tolerance ratio.
 */
function expectClose(got: Float32Array, want: readonly number[], what: string, abs = 1e-5, rel = 1e-5): number {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const tol = abs + rel * Math.abs(want[i]!);
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / tol);
  }
  expect(worst, `${what}: worst error / tolerance`).toBeLessThanOrEqual(1);
  return worst;
}

describe(`files written by torch.save (torch ${expected.torch})`, () => {
  for (const [name, info] of Object.entries(expected.files)) {
    if (info.model !== undefined) {
      const model = expected.models[info.model]!;
      it(`${name}: PyTorch's ${info.model} tensors bit for bit, and PyTorch's output through BasicConv2d/MaxPool2d/Linear`, () => {
        const dict = loadPth(file(name));
        expectTensors(dict, model.state, name);
        using net = smallModel();
        net.loadStateDict(dict); // strict: every key of the file is one of the model's
        using x = Tensor.fromArray(Float32Array.from(expected.input.data), expected.input.shape);
        using y = net.forward(x);
        expect(y.shape).toEqual(model.output.shape);
        const worst = expectClose(y.toArray(), model.output.data, `${name} output`);
        console.log(`pth: ${name}: output within ${(worst * 100).toFixed(1)} % of the tolerance`);
      });
    } else if (info.tensors !== undefined) {
      const tensors = info.tensors;
      it(`${name}: every tensor (views: offsets, strides, shared storage, scalar, empty) equals PyTorch's, row-major`, () => {
        expectTensors(loadPth(file(name)), tensors, name);
      });
    } else {
      const words = info.error!;
      it(`${name}: refused with a PthError naming ${words.join(' and ')}`, () => {
        const error = thrown(() => loadPth(file(name)));
        expect(error).toBeInstanceOf(PthError);
        for (const w of words) expect(error.message).toContain(w);
        console.log(`pth: ${name}: ${error.message}`);
      });
    }
  }
});

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('inputs', () => {
  it('a Uint8Array at any byte offset, a Node Buffer and an ArrayBuffer give the same tensors', () => {
    for (const name of ['small_zip.pth', 'small_legacy.pth', 'views_zip.pth']) {
      const bytes = file(name);
      const shifted = new Uint8Array(bytes.length + 3);
      shifted.set(bytes, 3);
      const reference = loadPth(bytes);
      for (const input of [shifted.subarray(3), new Uint8Array(bytes).buffer]) {
        const got = loadPth(input);
        expect([...got.keys()]).toEqual([...reference.keys()]);
        for (const [k, t] of reference) expectSameBits(got.get(k)!.data, t.data, `${name} ${k}`);
      }
    }
  });

  it('zip64 records (sizes, offsets, entry count and directory in zip64 fields) read as the plain ones', () => {
    for (const name of ['small_zip.pth', 'views_zip.pth']) {
      const plain = loadPth(file(name));
      const got = loadPth(toZip64(file(name)));
      expect([...got.keys()]).toEqual([...plain.keys()]);
      for (const [k, t] of plain) expectSameBits(got.get(k)!.data, t.data, `${name} ${k}`);
    }
  });

  it('files that are not PyTorch files say what they are', () => {
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'empty'],
      [readFileSync(new URL('./safetensors/linear_f16.safetensors', import.meta.url)), 'loadSafetensors'],
      [readFileSync(new URL('./fixtures/images-extra/bad_crc_png.png', import.meta.url)), 'PNG'],
      [new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]), 'JPEG'],
      [new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]), 'gzip'],
      [new TextEncoder().encode('hello, world'), '68 65 6c 6c 6f'],
      [new Uint8Array([0x80, 0x02, 0x4b, 0x07, 0x2e]), 'magic number'], // a pickle of 7
      [new Uint8Array([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]), 'data.pkl'], // an empty zip
    ];
    for (const [bytes, word] of cases) {
      const error = thrown(() => loadPth(bytes));
      expect(error, word).toBeInstanceOf(PthError);
      expect(error.message).toContain(word);
    }
    expect(() => loadPth('googlenet.pth' as unknown as Uint8Array)).toThrow(DataTypeError);
  });

  it('pickles built by hand: refused opcodes and globals are named', () => {
    // The header pickles of a legacy file, the state-dict pickle under test, an empty storage key list.
    const legacy = (state: number[]) => new Uint8Array([...file('small_legacy.pth').subarray(0, legacyHeaderLength()), ...state, 0x80, 2, 0x5d, 0x2e]);
    const str = (s: string) => [...new TextEncoder().encode(s)];
    const cases: [number[], string][] = [
      [[0x80, 2, 0x63, ...str('builtins\nexec\n'), 0x2e], 'builtins.exec'],
      [[0x80, 2, 0x63, ...str('torch\nload\n'), 0x2e], 'torch.load'],
      [[0x80, 4, 0x8c, 5, ...str('posix'), 0x8c, 6, ...str('system'), 0x93, 0x2e], 'posix.system'], // STACK_GLOBAL
      [[0x80, 2, 0x63, ...str('torch\nconstructor\n'), 0x2e], 'torch.constructor'],
      [[0x80, 2, 0x63, ...str('collections\nOrderedDict\n'), 0x29, 0x81, 0x2e], 'NEWOBJ'],
      [[0x80, 2, 0x28, 0x69, ...str('os\nsystem\n'), 0x2e], 'INST'],
      [[0x80, 2, 0x82, 1, 0x2e], 'EXT1'],
      [[0x80, 2, 0x4e, 0x4e, 0x52, 0x2e], 'arguments must be a tuple'],
      [[0x80, 2, 0x4e, 0x29, 0x52, 0x2e], 'calls None'],
      [[0x80, 2, 0x5d, 0x62, 0x2e], 'BUILD'],
      [[0x80, 2, 0xff], '0xff is not a pickle opcode'],
      [[0x80, 2, 0x68, 9, 0x2e], 'memo entry 9'],
      [[0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x61], 'truncated'],
      [[0x80, 2, 0x8b, 0, 0, 1, 0, ...new Array<number>(65536).fill(1), 0x2e], '1024-byte limit'],
      [[0x80, 2, 0x29, 0x2e], 'a tuple of 0'],
    ];
    for (const [state, word] of cases) {
      const error = thrown(() => loadPth(legacy(state)));
      expect(error, word).toBeInstanceOf(PthError);
      expect(error.message, word).toContain(word);
    }
  });

  it('the GLOBAL of a pickled model says to save its state_dict()', () => {
    expect(thrown(() => loadPth(file('pickled_module_zip.pth'))).message).toMatch(/torch\.nn\.modules\.container\.Sequential.*model\.state_dict\(\)/);
    expect(thrown(() => loadPth(file('evil.pkl'))).message).toContain('Nothing from the file was run or loaded');
  });
});

/**
 * `zip` (a stored archive without a comment, as torch writes) rewritten so that every size,
 * offset and count lives in zip64 fields only: each central directory entry's 32-bit
 * sizes and offset saturated (0xFFFFFFFF) with a zip64 extra field holding them, the end
 * record's counts saturated, and a zip64 end record with its locator.
 */
function toZip64(zip: Uint8Array): Uint8Array {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const end = zip.length - 22;
  const count = view.getUint16(end + 10, true);
  const cdOffset = view.getUint32(end + 16, true);
  const out: number[] = [...zip.subarray(0, cdOffset)];
  const le = (bytes: number, v: number) => {
    const b = new DataView(new ArrayBuffer(bytes));
    if (bytes === 8) b.setBigUint64(0, BigInt(v), true);
    else if (bytes === 4) b.setUint32(0, v, true);
    else b.setUint16(0, v, true);
    return [...new Uint8Array(b.buffer)];
  };
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    const nameLength = view.getUint16(p + 28, true);
    const skip = 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
    const head = [...zip.subarray(p, p + 46)];
    const [compressed, size, offset] = [view.getUint32(p + 20, true), view.getUint32(p + 24, true), view.getUint32(p + 42, true)];
    head.splice(20, 8, ...le(4, 0xffffffff), ...le(4, 0xffffffff));
    head.splice(30, 4, ...le(2, 28), ...le(2, 0));
    head.splice(42, 4, ...le(4, 0xffffffff));
    out.push(...head, ...zip.subarray(p + 46, p + 46 + nameLength), ...le(2, 1), ...le(2, 24), ...le(8, size), ...le(8, compressed), ...le(8, offset));
    p += skip;
  }
  const cdStart = cdOffset;
  const cdSize = out.length - cdStart;
  const end64 = out.length;
  out.push(...le(4, 0x06064b50), ...le(8, 44), ...le(2, 45), ...le(2, 45), ...le(4, 0), ...le(4, 0), ...le(8, count), ...le(8, count), ...le(8, cdSize), ...le(8, cdStart));
  out.push(...le(4, 0x07064b50), ...le(4, 0), ...le(8, end64), ...le(4, 1));
  out.push(...le(4, 0x06054b50), ...le(2, 0), ...le(2, 0), ...le(2, 0xffff), ...le(2, 0xffff), ...le(4, 0xffffffff), ...le(4, 0xffffffff), ...le(2, 0));
  return new Uint8Array(out);
}

/** Bytes of the three header pickles (magic number, protocol, sys_info) of a legacy file. */
function legacyHeaderLength(): number {
  const bytes = file('small_legacy.pth');
  let stops = 0;
  // The header pickles hold no 0x2e byte but their STOPs (checked: three of them, then PROTO).
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x2e && ++stops === 3) return i + 1;
  throw new Error('no header');
}

describe('fuzz', () => {
  const cases = Number(process.env.FUZZ_CASES ?? 3000);
  const sources = ['small_zip.pth', 'small_legacy.pth', 'deflated_zip.pth', 'views_zip.pth', 'views_legacy.pth', 'small_f16_zip.pth',
    'checkpoint_state_dict_zip.pth', 'checkpoint_model_legacy.pth', 'channels_last_legacy.pth', 'crafted_ok_legacy.pth'];

  it(`${cases} mutated files (bytes flipped, cut, inserted; the pickle of a zip mutated and re-zipped): each a valid state dict or a PthError, none slow`, () => {
    const outcomes: Record<string, number> = {};
    let slowest = 0;
    for (let i = 0; i < cases; i++) {
      const r = stream(i);
      const name = sources[r() % sources.length]!;
      const bytes = mutate(file(name), r);
      const start = performance.now();
      let outcome: string;
      try {
        const dict = loadPth(bytes);
        for (const [key, t] of dict) {
          expect(t.data, `case ${i} ${key}`).toBeInstanceOf(Float32Array);
          expect(t.data.length, `case ${i} ${key}`).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
        outcome = 'loaded';
      } catch (e) {
        if (!(e instanceof PthError)) throw new Error(`case ${i} (${name}): ${String(e)}`, { cause: e });
        // Group refusals by what refused them: the pickle machine, the zip reader, a tensor (by key), …
        const message = e.message.replace(/^Error in loadPth: /, '');
        outcome = `PthError: ${e.key !== undefined ? 'a tensor' : message.split(/[ :]/)[0]}`;
      }
      slowest = Math.max(slowest, performance.now() - start);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    console.log(`pth fuzz: ${cases} cases, slowest ${slowest.toFixed(1)} ms`, outcomes);
    expect(outcomes.loaded).toBeGreaterThan(cases / 20);
    expect(outcomes['PthError: pickle'], 'mutations reach the pickle machine').toBeGreaterThan(cases / 20);
    expect(outcomes['PthError: zip'], 'and the zip reader').toBeGreaterThan(cases / 50);
    expect(slowest).toBeLessThan(1000);
  });
});

/** Case `i`'s random numbers in [0, 2^32) (weyl-fmix32, as the safetensors fuzzer: a failing case number reproduces). */
function stream(i: number): () => number {
  let n = 0;
  return () => fmix32((fmix32(i ^ 0x70746821) + Math.imul(++n, 0x9e3779b9)) >>> 0);
}

/** One mutation: of the raw bytes, or (zip files) of data.pkl inside a re-built archive, so the pickle is reached past the CRC. */
function mutate(bytes: Uint8Array, r: () => number): Uint8Array {
  const isZip = bytes[0] === 0x50;
  if (isZip && r() % 2 === 0) {
    const entries = unzipSync(bytes);
    const pkl = Object.keys(entries).find((k) => k.endsWith('/data.pkl'))!;
    entries[pkl] = new Uint8Array(mutateBytes(entries[pkl]!, r));
    return zipSync(entries, { level: r() % 4 === 0 ? 6 : 0 });
  }
  // Legacy files: mostly in the pickles (the first ~1 KB), sometimes anywhere.
  return mutateBytes(bytes, r, !isZip && r() % 4 !== 0 ? 1200 : bytes.length);
}

function mutateBytes(bytes: Uint8Array, r: () => number, span = bytes.length): Uint8Array<ArrayBuffer> {
  const out = Array.from(bytes);
  const at = () => r() % Math.min(span, out.length);
  switch (r() % 5) {
    case 0:
    case 1:
      for (let k = 1 + (r() % 4); k > 0; k--) out[at()] = r() & 255;
      break;
    case 2:
      out.length = at();
      break;
    case 3:
      out.splice(at(), 0, ...Array.from({ length: 1 + (r() % 8) }, () => r() & 255));
      break;
    default: {
      // A small integer argument (BININT1/BININT2 follow 0x4b/0x4d) set to an edge value.
      const args = out.flatMap((b, i) => (i < span && (b === 0x4b || b === 0x4d) ? [i + 1] : []));
      if (args.length > 0) out[args[r() % args.length]!] = [0, 1, 0x7f, 0xff][r() % 4]!;
    }
  }
  return new Uint8Array(out);
}

// A whole GoogLeNet through PyTorch: only where /usr/bin/python3 has torch and torchvision
// (CI need not); a case that cannot run is not registered.
const python = '/usr/bin/python3';
const hasTorch = spawnSync(python, ['-c', 'import torch, torchvision, numpy'], { encoding: 'utf8' }).status === 0;
console.log(`pth: whole-GoogLeNet round trip through PyTorch ${hasTorch ? 'registered' : `not registered (${python} with torch, torchvision and numpy not found)`}`);

if (hasTorch) describe('torchvision GoogLeNet through torch.save', () => {
  it('our state dict → torch.save (zip, re-zipped deflated, legacy) → loadPth: bit-identical tensors, identical logits, torchvision\'s logits', () => {
    const work = mkdtempSync(path.join(tmpdir(), 'inception-wasm-pth-'));
    try {
      using net = new GoogLeNet({ variant: 'torchvision', seed: 7 });
      const state = net.stateDict();
      const tensors = [...state].map(([key, t], i, all) => ({ key, shape: t.shape, begin: all.slice(0, i).reduce((s, [, u]) => s + u.data.length, 0) }));
      const flat = new Float32Array(tensors.reduce((s, t) => s + state.get(t.key)!.data.length, 0));
      for (const t of tensors) flat.set(state.get(t.key)!.data, t.begin);
      const inputShape = [1, 3, 224, 224];
      const input = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.37) * 1.5);
      writeFileSync(path.join(work, 'state.json'), JSON.stringify({ tensors, input_shape: inputShape }));
      writeFileSync(path.join(work, 'state.bin'), flat);
      writeFileSync(path.join(work, 'input.bin'), input);
      const py = spawnSync(python, [new URL('./fixtures/pth/googlenet_roundtrip.py', import.meta.url).pathname, work], { encoding: 'utf8' });
      expect(py.status, py.stderr).toBe(0);

      using x = Tensor.fromArray(input, inputShape);
      using reference = net.forward(x);
      const torchLogits = new Float32Array(Uint8Array.from(readFileSync(path.join(work, 'logits.bin'))).buffer);
      // 22 layers deep: the tv_googlenet fixture's rule for logits (abs 2^-10, rel 1e-5).
      const worstTorch = expectClose(reference.toArray(), [...torchLogits], 'our logits vs torchvision\'s', 2 ** -10, 1e-5);
      for (const format of ['zip', 'deflated', 'legacy']) {
        const bytes = readFileSync(path.join(work, `googlenet_${format}.pth`));
        const start = performance.now();
        const dict = loadPth(bytes);
        const ms = performance.now() - start;
        expect([...dict.keys()]).toEqual([...state.keys()]); // counters dropped
        for (const [key, t] of state) {
          expect(dict.get(key)!.shape, key).toEqual(t.shape);
          expectSameBits(dict.get(key)!.data, t.data, `${format}: ${key}`);
        }
        using again = new GoogLeNet({ variant: 'torchvision', seed: 8 });
        again.loadStateDict(dict);
        using y = again.forward(x);
        expectSameBits(y.toArray(), reference.toArray(), `${format}: logits`);
        console.log(`pth: GoogLeNet ${format} (${(bytes.length / 1e6).toFixed(1)} MB): loadPth ${ms.toFixed(0)} ms, bit-identical; vs torchvision ${(worstTorch * 100).toFixed(1)} % of the tolerance`);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

it('the zip reader\'s CRC-32 (slicing-by-8) gives the check value and the byte-at-a-time answer', () => {
  expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  const data = Uint8Array.from({ length: 1000 }, (_, i) => fmix32(i) & 255);
  for (const n of [0, 1, 7, 8, 9, 15, 16, 17, 999, 1000]) {
    let c = 0xffffffff;
    for (const byte of data.subarray(0, n)) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    expect(crc32(data.subarray(0, n)), `${n} bytes`).toBe((c ^ 0xffffffff) >>> 0);
  }
});

it('PthError is an InceptionWasmError with the key', () => {
  const error = thrown(() => loadPth(file('int64_zip.pth'))) as PthError;
  expect(error).toBeInstanceOf(InceptionWasmError);
  expect(error.key).toBe('index');
  expect(error.op).toBe('loadPth');
  expect(error.name).toBe('PthError');
});
