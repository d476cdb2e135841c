/**
 * Everything an image may arrive as, brought to one of two forms for the image module:
 * encoded bytes (JPEG/PNG) or raw pixels.
 */
import { ImageError } from '../errors.js';
import { isNode, nodeBuiltin } from '../runtime.js';

/** Raw interleaved 8-bit pixels, rows top to bottom: a canvas's `ImageData` fits. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). @defaultValue `data.length / (width · height)` */
  channels?: number;
}

/**
 * Encoded JPEG or PNG bytes (a Node `Buffer` is a `Uint8Array`), or a file path / URL to
 * read them from: in Node a string is a path (or a `file:`, `http(s):`, `data:` URL), in
 * browsers and workers a URL to fetch. Never pass a string from an untrusted client
 * straight through on a server: it would read that file or fetch that URL.
 */
export type EncodedImage = Uint8Array | ArrayBuffer | DataView | Blob | string | URL;

/**
 * A browser image: `HTMLImageElement`, `HTMLCanvasElement`, `OffscreenCanvas`,
 * `ImageBitmap`, `HTMLVideoElement`, `VideoFrame`. Described by shape rather than by the DOM
 * types, so that the declarations compile without the DOM library (Node, Workers).
 */
export type BrowserImage =
  | { readonly width: number; readonly height: number; readonly data?: never }
  | { readonly displayWidth: number; readonly displayHeight: number; readonly data?: never };

/**
 * What `preprocess` and `classify` take: encoded bytes, a path or URL, raw pixels, or in
 * browsers an element or bitmap (`HTMLImageElement`, `HTMLCanvasElement`,
 * `OffscreenCanvas`, `ImageBitmap`, `VideoFrame`).
 */
export type ImageInput = EncodedImage | RawImage | BrowserImage;

export type Resolved = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'pixels'; pixels: RawImage & { channels: number } };

/** The bytes of an encoded image, read from a path or URL when given one. */
export async function encodedBytes(op: string, input: unknown): Promise<Uint8Array | undefined> {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input instanceof DataView) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return new Uint8Array(await input.arrayBuffer());
  if (typeof input === 'string' || input instanceof URL) return read(op, input);
  return undefined;
}

/** A path (Node) or URL: read from disk in Node (paths and `file:` URLs), else fetched. */
async function read(op: string, given: string | URL): Promise<Uint8Array> {
  const where = typeof given === 'string' && /^file:/i.test(given) ? new URL(given) : given;
  const local = isNode && (where instanceof URL ? where.protocol === 'file:' : !/^(https?|data|blob):/i.test(where));
  try {
    if (local) {
      const fs = await nodeBuiltin<typeof import('node:fs/promises')>('node:fs/promises');
      return await fs.readFile(where);
    }
    const response = await fetch(where);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    return new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw new ImageError(op, 'unreadable', `could not read ${String(where)}: ${(e as Error).message}`);
  }
}

/** Raw pixels, checked: sizes, channel count, data length. */
function rawPixels(op: string, input: RawImage): RawImage & { channels: number } {
  const { data, width, height } = input;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw new ImageError(op, 'invalid-input', `raw pixels must be a Uint8Array or Uint8ClampedArray, but got ${describe(data)}`);
  }
  for (const [what, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ImageError(op, 'invalid-input', `${what} must be a positive integer, but got ${String(v)}`);
  }
  const channels = input.channels ?? data.length / (width * height);
  if (!Number.isInteger(channels) || channels < 1 || channels > 4) {
    const why = input.channels === undefined ? `${data.length} bytes are not 1–4 channels of ${width}×${height} pixels` : `channels must be 1, 2, 3 or 4, but got ${String(channels)}`;
    throw new ImageError(op, 'invalid-input', why);
  }
  if (data.length !== width * height * channels) {
    throw new ImageError(op, 'invalid-input', `${width}×${height} pixels of ${channels} channels need ${width * height * channels} bytes, but data has ${data.length}`);
  }
  return { data, width, height, channels };
}

/** True for the browser's image elements and bitmaps (undefined classes never match). */
function isElement(input: unknown): input is CanvasImageSource {
  const classes = ['HTMLImageElement', 'SVGImageElement', 'HTMLCanvasElement', 'HTMLVideoElement', 'OffscreenCanvas', 'ImageBitmap', 'VideoFrame'];
  return classes.some((name) => {
    const cls = (globalThis as Record<string, unknown>)[name];
    return typeof cls === 'function' && input instanceof cls;
  });
}

/**
 * The pixels of an element or bitmap, as the browser decoded them but with no colour
 * management (`colorSpaceConversion: 'none'`: an ICC profile is ignored, as PIL ignores
 * it) and no premultiplication asked for. A 2D canvas stores premultiplied alpha, so a
 * partly transparent pixel's colour comes back rounded and a fully transparent one's as
 * black, where PIL's `convert('RGB')` keeps the stored colour: for images with
 * transparency, pass the file's bytes (or its `Blob`). Opaque pixels are exact.
 */
async function elementPixels(op: string, source: CanvasImageSource): Promise<RawImage & { channels: number }> {
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement && !(source.complete && source.naturalWidth > 0)) {
    const src = source.currentSrc || source.src;
    // Complete with no size and a src: the browser gave up on it (a broken file or URL).
    const why = !src ? 'the <img> has no src' : source.complete ? `the <img> failed to load (src ${src})` : `the <img> has not loaded yet (src ${src}): await img.decode() first`;
    throw new ImageError(op, 'invalid-input', why);
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(source as ImageBitmapSource, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new ImageError(op, 'unreadable', `the browser could not read the ${describe(source)}: ${(e as Error).message}`);
  }
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' })!;
    ctx.drawImage(bitmap, 0, 0);
    return { data: ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data, width, height, channels: 4 };
  } finally {
    bitmap.close();
  }
}

/** Brings any accepted input to bytes or raw pixels; {@link ImageError} `'invalid-input'` otherwise. */
export async function resolve(op: string, input: unknown): Promise<Resolved> {
  const bytes = await encodedBytes(op, input);
  if (bytes !== undefined) return { kind: 'bytes', bytes };
  if (isElement(input)) return { kind: 'pixels', pixels: await elementPixels(op, input) };
  if (typeof input === 'object' && input !== null && 'data' in input && 'width' in input && 'height' in input) {
    return { kind: 'pixels', pixels: rawPixels(op, input as RawImage) };
  }
  throw new ImageError(
    op,
    'invalid-input',
    `expected encoded JPEG/PNG bytes (Uint8Array, ArrayBuffer, Buffer, Blob), a path or URL, raw pixels { data, width, height }, or an image element, but got ${describe(input)}`,
  );
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'object';
}
