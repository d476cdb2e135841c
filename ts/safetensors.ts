/**
 * Safetensors I/O (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length, a JSON header `{ name: { dtype, shape, data_offsets: [begin, end] },
 * __metadata__?: { string: string } }`, then the tensor bytes. Everything is validated in
 * TypeScript before a single value is used, and every problem is a
 * {@link SafetensorsError} naming the key — a hostile file never reaches WebAssembly.
 */
import { DataTypeError, InceptionWasmError } from './errors.js';
import { type Module, numelOf, type StateTensor } from './nn/module.js';

/** A malformed or unsupported safetensors file; `key` names the tensor when there is one. */
export class SafetensorsError extends InceptionWasmError {
  readonly key: string | undefined;

  constructor(message: string, key?: string) {
    super('safetensors', key === undefined ? message : `"${key}": ${message}`);
    this.key = key;
  }
}

/** Bytes per element of every dtype the format defines (all are validated; floats are loaded). */
const ITEM_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/** The reference implementation refuses headers over 100 MB; so do we (before decoding). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsContents {
  /** float32 tensors in header order (F16, BF16 and F64 converted). */
  tensors: Map<string, StateTensor>;
  /** The `__metadata__` strings (empty when absent). */
  metadata: Record<string, string>;
}

/**
 * Parses and validates a safetensors file. Integer tensors named `*.num_batches_tracked`
 * (BatchNorm's step counter, which torchvision state dicts carry) are skipped; any other
 * non-float tensor is an error.
 */
export function readSafetensors(bytes: Uint8Array | ArrayBuffer): SafetensorsContents {
  const file = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(file instanceof Uint8Array)) throw new DataTypeError('safetensors', `expected a Uint8Array or ArrayBuffer, but got ${typeof bytes}`);
  if (file.length < 8) throw new SafetensorsError(`file is ${file.length} bytes, shorter than the 8-byte header length`);
  const headerLen = new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`header length ${headerLen} is larger than the 100 MB limit`);
  if (8n + headerLen > BigInt(file.length)) throw new SafetensorsError(`header length ${headerLen} runs past the end of the ${file.length}-byte file (truncated?)`);
  const n = Number(headerLen);
  const header = parseHeader(file.subarray(8, 8 + n));
  const data = file.subarray(8 + n);

  const metadata = parseMetadata(header.__metadata__);
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([key, v]) => ({ key, ...checkEntry(key, v, data.length) }));
  checkLayout(entries, data.length);

  const tensors = new Map<string, StateTensor>();
  for (const e of entries) {
    const raw = data.subarray(e.begin, e.end);
    const values = toFloat32(e.dtype, raw);
    if (values) tensors.set(e.key, { shape: e.shape, data: values });
    else if (!e.key.endsWith('.num_batches_tracked')) throw new SafetensorsError(`dtype ${e.dtype} is not supported (float tensors only: F32, F16, BF16, F64)`, e.key);
  }
  return { tensors, metadata };
}

/** The file's float tensors as a state dict, ready for `module.loadStateDict`. */
export function loadSafetensors(bytes: Uint8Array | ArrayBuffer): Map<string, StateTensor> {
  return readSafetensors(bytes).tensors;
}

/**
 * Serialises a module's state dict (or any map of float32 tensors) as F32 safetensors, in
 * state-dict order, with an optional `__metadata__`. The header is padded with spaces to
 * a multiple of 8 bytes so the data is aligned, as the reference writer does.
 */
export function saveSafetensors(source: Module | ReadonlyMap<string, StateTensor>, metadata?: Record<string, string>, options: SaveOptions = {}): Uint8Array {
  const dict = source instanceof Map ? source : (source as Module).stateDict();
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw new SafetensorsError(`dtype must be 'F32' or 'F16', but got ${JSON.stringify(dtype)}`);
  const size = dtype === 'F16' ? 2 : 4;
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = parseMetadata(metadata);
  let offset = 0;
  for (const [key, t] of dict) {
    if (t.data.length !== numelOf(t.shape)) throw new SafetensorsError(`has ${t.data.length} values for shape [${t.shape.join(', ')}]`, key);
    header[key] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size * t.data.length] };
    offset += size * t.data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(padded - json.length));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of dict.values()) {
    if (dtype === 'F16') {
      const view = new DataView(out.buffer, at, 2 * t.data.length);
      for (let i = 0; i < t.data.length; i++) view.setUint16(2 * i, floatToHalf(t.data[i]!), true);
    } else {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    }
    at += size * t.data.length;
  }
  return out;
}

export interface SaveOptions {
  /** `'F16'` halves the file (IEEE half precision, rounded to nearest even). @defaultValue 'F32' */
  dtype?: 'F32' | 'F16';
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 → IEEE binary16 bits, round to nearest even (overflow to ±∞, NaN kept NaN). */
export function floatToHalf(v: number): number {
  F32[0] = v;
  const x = U32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  let h: number;
  let shift: number;
  if (e <= 0) {
    // A half subnormal (or zero): the implicit bit joins the mantissa.
    if (e < -10) return sign;
    mant |= 0x800000;
    shift = 14 - e;
    h = mant >>> shift;
  } else {
    shift = 13;
    h = (e << 10) | (mant >>> 13);
  }
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // A carry out of the mantissa moves into the exponent: the next binade, or ∞.
  if (rest > half || (rest === half && (h & 1) === 1)) h++;
  return sign | h;
}

function parseHeader(bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(`header must be a JSON object, but is ${Array.isArray(header) ? 'an array' : String(header)}`);
  }
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) throw new SafetensorsError('appears twice in the header', duplicate);
  return header as Record<string, unknown>;
}

/**
 * The first repeated key of the top-level object in `json` (already known to be valid
 * JSON): `JSON.parse` silently keeps the last of duplicates, which would let one tensor
 * hide another.
 */
function firstDuplicateKey(json: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i];
    if (ch === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

function parseMetadata(m: unknown): Record<string, string> {
  if (m === undefined) return {};
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new SafetensorsError('__metadata__ must be an object of strings', '__metadata__');
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string') throw new SafetensorsError(`__metadata__ value of "${k}" must be a string, but is ${typeof v}`, '__metadata__');
  }
  return { ...(m as Record<string, string>) };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkEntry(key: string, v: unknown, dataLength: number): { dtype: string; shape: number[]; begin: number; end: number } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SafetensorsError('entry must be an object with dtype, shape and data_offsets', key);
  const { dtype, shape, data_offsets: offsets } = v as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) throw new SafetensorsError(`unknown dtype ${JSON.stringify(dtype)}`, key);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw new SafetensorsError(`shape must be an array of non-negative integers, but is ${JSON.stringify(shape)}`, key);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new SafetensorsError(`data_offsets must be [begin, end] byte offsets, but is ${JSON.stringify(offsets)}`, key);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(`data_offsets [${begin}, ${end}] are reversed`, key);
  if (end > dataLength) throw new SafetensorsError(`data_offsets [${begin}, ${end}] run past the ${dataLength} bytes of data (truncated?)`, key);
  const bytes = numelOf(shape) * ITEM_SIZE[dtype]!;
  if (end - begin !== bytes) {
    throw new SafetensorsError(`dtype ${dtype} and shape [${shape.join(', ')}] need ${bytes} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`, key);
  }
  return { dtype, shape: shape as number[], begin, end };
}

/** Tensors must tile the data exactly: no overlap, no gap, nothing after the last one. */
function checkLayout(entries: readonly { key: string; begin: number; end: number }[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin < at) throw new SafetensorsError(`data_offsets [${e.begin}, ${e.end}] overlap the previous tensor's bytes (up to ${at})`, e.key);
    if (e.begin > at) throw new SafetensorsError(`data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${at}`, e.key);
    at = e.end;
  }
  if (at !== dataLength) throw new SafetensorsError(`${dataLength - at} bytes after the last tensor are not part of any tensor`);
}

/** float32 values of a little-endian float tensor, or `undefined` for non-float dtypes. */
function toFloat32(dtype: string, raw: Uint8Array): Float32Array | undefined {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(raw.length / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F64':
      return Float32Array.from({ length: raw.length / 8 }, (_, i) => view.getFloat64(8 * i, true));
    case 'F16':
      return Float32Array.from({ length: raw.length / 2 }, (_, i) => halfToFloat(view.getUint16(2 * i, true)));
    case 'BF16': {
      const bits = new Uint32Array(raw.length / 2);
      for (let i = 0; i < bits.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      return undefined;
  }
}

/** IEEE binary16 → number (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
