/** `decodeImage`: JPEG or PNG bytes to RGB pixels, in every runtime (the decoders are WebAssembly). */
import { checkInt, ImageError, ValueError } from '../errors.js';
import { imageCall, imageModule } from './module.js';
import { describe, type EncodedImage, encodedBytes } from './source.js';

/** PIL's `Image.MAX_IMAGE_PIXELS`, past which it refuses an image as a decompression bomb. */
export const DEFAULT_MAX_PIXELS = 178_956_970;

/**
 * The largest `maxPixels`: 2^29 pixels (1.5 GiB of RGB, 2 GiB while a CMYK JPEG is
 * converted) keeps every buffer size exact in WebAssembly's 32-bit arithmetic and within
 * its 4 GiB memory.
 */
const MAX_PIXELS_CAP = 2 ** 29;

export interface DecodeOptions {
  /**
   * Images with more pixels are refused (an {@link ImageError} `'too-large'`) from their
   * header, before anything is allocated. At most 2^29.
   * @defaultValue 178,956,970 (PIL's `Image.MAX_IMAGE_PIXELS`)
   */
  maxPixels?: number;
  /**
   * Turn the image upright by its EXIF orientation tag (as PIL's `ImageOps.exif_transpose`).
   * Off by default because PIL's `Image.open` and torchvision ignore the tag: models were
   * trained on images as stored. Encoded bytes only: browsers hand over `<img>` and
   * bitmaps already turned by the tag (Chromium does so even with
   * `imageOrientation: 'none'`), so elements always arrive upright.
   * @defaultValue false
   */
  exifOrientation?: boolean;
}

/** What {@link decodeImage} returns: 8-bit RGB, rows top to bottom, `width · height · 3` bytes. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Validates the decode options shared by `decodeImage` and `preprocess`. */
export function decodeOptions(op: string, options: DecodeOptions): Required<DecodeOptions> {
  const maxPixels = options.maxPixels === undefined ? DEFAULT_MAX_PIXELS : checkInt(op, 'maxPixels', options.maxPixels, 1, MAX_PIXELS_CAP);
  const exifOrientation = options.exifOrientation ?? false;
  if (typeof exifOrientation !== 'boolean') throw new ValueError(op, `exifOrientation must be true or false, but got ${String(exifOrientation)}`);
  return { maxPixels, exifOrientation };
}

/** Throws a {@link ValueError} naming any option key not in `known` (a typo would otherwise be ignored). */
export function checkKeys(op: string, options: object, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null) throw new ValueError(op, `options must be an object, but got ${describe(options)}`);
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new ValueError(op, `unknown option ${unknown.map((k) => `'${k}'`).join(', ')}; the options are ${known.join(', ')}`);
}

/**
 * Decodes a JPEG (baseline, progressive; gray, YCbCr at 4:2:0 / 4:2:2 / 4:4:4, CMYK) or
 * PNG (every colour type and bit depth, interlaced) to RGB, as PIL's
 * `Image.open(f).convert('RGB')`: alpha dropped, palette expanded, gray replicated,
 * 16-bit samples rounded to 8 bits. Works the same in Node, browsers and workerd.
 * Rejects with an {@link ImageError} for anything else.
 */
export async function decodeImage(bytes: EncodedImage, options: DecodeOptions = {}): Promise<DecodedImage> {
  const op = 'decodeImage';
  checkKeys(op, options, ['maxPixels', 'exifOrientation']);
  const { maxPixels, exifOrientation } = decodeOptions(op, options);
  const data = await encodedBytes(op, bytes);
  if (data === undefined) {
    throw new ImageError(op, 'invalid-input', `expected encoded JPEG/PNG bytes (Uint8Array, ArrayBuffer, Buffer, Blob) or a path or URL, but got ${describe(bytes)}`);
  }
  await imageModule(op);
  return imageCall(op, (g) => {
    const image = g.Image.decode(data, maxPixels, exifOrientation);
    const { width, height } = image;
    // `intoRgb` consumes the object (its memory is freed once the bytes are copied out).
    return { data: image.intoRgb(), width, height };
  });
}
