/**
 * The image API beyond the fixtures: every input kind `decodeImage` / `preprocess` take,
 * batches, options and their validation, the bomb guard, the image module's memory, and a
 * fuzz of damaged files (every outcome an image or an ImageError, and the module usable
 * after).
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataTypeError, decodeImage, ImageError, init, preprocess, Tensor, ValueError } from '../ts/index.js';
import { imageMemoryBytes } from '../ts/image/module.js';

const dir = new URL('./fixtures/images/', import.meta.url);
const file = (name: string) => readFileSync(new URL(name, dir));
const jpeg = file('chelsea_q90.jpg');
const png = file('horse_rgba_png.png');

beforeAll(() => init());

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** PNG's CRC-32 of a chunk's type and data. */
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A PNG written here: 8-bit RGB, filter 0, one IDAT (node:zlib). */
function makePng(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Uint8Array {
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(pixel(x, y), y * (1 + width * 3) + 1 + x * 3);
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

describe('decodeImage', () => {
  it('takes a Uint8Array, Buffer, ArrayBuffer, DataView, Blob, path and file URL alike, and returns exactly { data, width, height }', async () => {
    const reference = await decodeImage(new Uint8Array(jpeg));
    expect(Object.keys(reference)).toEqual(['data', 'width', 'height']);
    expect(reference.data).toBeInstanceOf(Uint8Array);
    expect([reference.width, reference.height, reference.data.length]).toEqual([451, 300, 451 * 300 * 3]);
    const copy = jpeg.buffer.slice(jpeg.byteOffset, jpeg.byteOffset + jpeg.byteLength);
    for (const input of [jpeg, copy, new DataView(copy), new Blob([jpeg]), new URL('chelsea_q90.jpg', dir).pathname, new URL('chelsea_q90.jpg', dir)]) {
      const got = await decodeImage(input as Uint8Array);
      expect(Buffer.from(got.data).equals(Buffer.from(reference.data)), `input ${input.constructor.name}`).toBe(true);
    }
  });

  it('refuses what is not an image with a typed ImageError that names the problem', async () => {
    const reasons: [unknown, string, RegExp][] = [
      [new Uint8Array(), 'empty', /the input has no bytes/],
      [Buffer.from('<!doctype html><html></html>'), 'unknown-format', /text or markup/],
      [Buffer.from('RIFF\0\0\0\0WEBPVP8 '), 'unknown-format', /WebP data; only JPEG and PNG are read/],
      [jpeg.subarray(0, jpeg.length / 2), 'truncated', /JPEG data ends before the image does/],
      [new Float32Array(4), 'invalid-input', /expected encoded JPEG\/PNG bytes .* but got Float32Array/],
      [42, 'invalid-input', /but got number/],
      ['/no/such/photo.jpg', 'unreadable', /could not read \/no\/such\/photo\.jpg/],
    ];
    for (const [input, reason, message] of reasons) {
      const e = await decodeImage(input as Uint8Array).then(() => undefined, (err: unknown) => err);
      expect(e, String(reason)).toBeInstanceOf(ImageError);
      expect((e as ImageError).reason).toBe(reason);
      expect((e as ImageError).op).toBe('decodeImage');
      expect((e as Error).message).toMatch(message);
    }
  });

  it('refuses an image over maxPixels from its header; the default is PIL\'s 178,956,970', async () => {
    const e = await decodeImage(jpeg, { maxPixels: 451 * 300 - 1 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ImageError);
    expect((e as ImageError).reason).toBe('too-large');
    expect((e as Error).message).toContain('451×300 = 135300 pixels is more than maxPixels (135299)');
    await expect(decodeImage(jpeg, { maxPixels: 451 * 300 })).resolves.toMatchObject({ width: 451 });
    // A header declaring 100000 × 100000: refused before a byte of pixels is allocated.
    const bomb = makePng(1, 1, () => [0, 0, 0]);
    Buffer.from(bomb.buffer, bomb.byteOffset).writeUInt32BE(100000, 16);
    Buffer.from(bomb.buffer, bomb.byteOffset).writeUInt32BE(100000, 20);
    await decodeImage(png);
    const before = imageMemoryBytes().now;
    await expect(decodeImage(bomb)).rejects.toThrow(/100000×100000 = 10000000000 pixels is more than maxPixels \(178956970\)/);
    expect(imageMemoryBytes().lastCall, 'the image module\'s memory did not grow').toBe(before);
  });

  it('validates its options', async () => {
    await expect(decodeImage(jpeg, { maxPixels: 0 })).rejects.toThrow(ValueError);
    await expect(decodeImage(jpeg, { exifOrientation: 'yes' as unknown as boolean })).rejects.toThrow('exifOrientation must be true or false');
    await expect(decodeImage(jpeg, { maxPixel: 5 } as object)).rejects.toThrow("unknown option 'maxPixel'; the options are maxPixels, exifOrientation");
  });

  it('decodes a 24-megapixel image, then gives the image module\'s memory back', async () => {
    const big = makePng(6000, 4000, (x, y) => [x & 255, y & 255, (x ^ y) & 255]);
    const image = await decodeImage(big);
    expect([image.width, image.height]).toEqual([6000, 4000]);
    expect([image.data[3 * (6000 * 7 + 300)], image.data[3 * (6000 * 7 + 300) + 1]]).toEqual([300 & 255, 7]);
    // Over 64 MiB the instance is dropped after the call (WebAssembly memory never shrinks).
    expect(imageMemoryBytes().lastCall).toBeGreaterThan(64 * 2 ** 20);
    expect(imageMemoryBytes().now).toBe(0);
    await expect(decodeImage(png)).resolves.toMatchObject({ width: 400, height: 328 });
  });
});

it('a call that drops the image module\'s instance does not break a call awaiting its input meanwhile', async () => {
  // The 24-megapixel decode drops the instance (memory past 64 MiB) while the Blob's bytes
  // are being read; the Blob's preprocess must then make a new instance, not call into none.
  const big = makePng(6000, 4000, () => [1, 2, 3]);
  using alone = await preprocess(jpeg);
  const [decoded, fromBlob] = await Promise.all([decodeImage(big), preprocess(new Blob([jpeg]))]);
  expect(decoded.width).toBe(6000);
  expect(fromBlob.toArray()).toEqual(alone.toArray());
  fromBlob.dispose();
});

it('skips a colour profile that inflates to 100 MB (PNG iCCP): no memory spent on it', async () => {
  const small = makePng(2, 2, () => [9, 8, 7]);
  const iend = small.length - 12;
  const profile = Buffer.concat([Buffer.from('bomb\0\0', 'latin1'), deflateSync(Buffer.alloc(100 * 2 ** 20))]);
  const chunk = Buffer.alloc(12 + profile.length);
  chunk.writeUInt32BE(profile.length, 0);
  chunk.write('iCCP', 4, 'latin1');
  profile.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + profile.length)), 8 + profile.length);
  // IHDR, then iCCP (it must come before IDAT), then the rest.
  const withProfile = Buffer.concat([small.subarray(0, 33), chunk, small.subarray(33)]);
  expect(withProfile.length).toBeLessThan(200_000);
  expect(iend).toBeGreaterThan(33);
  const image = await decodeImage(withProfile);
  expect(Array.from(image.data)).toEqual([9, 8, 7, 9, 8, 7, 9, 8, 7, 9, 8, 7]);
  expect(imageMemoryBytes().lastCall).toBeLessThan(64 * 2 ** 20);
});

it('refuses resizes and outputs past the caps instead of wrapping their sizes (wasm32 arithmetic)', async () => {
  const strip = (w: number, h: number) => ({ data: new Uint8Array(w * h * 3).fill(128), width: w, height: h });
  // 256 · 16,777,217 would wrap to 256 in 32 bits: refused, not squashed.
  await expect(preprocess(strip(16_777_217, 1))).rejects.toThrow(/the resized image would be 4294967552×256/);
  await expect(preprocess(jpeg, { resize: [65536, 65536], crop: null })).rejects.toThrow(/the output image would be 65536×65536/);
  await expect(preprocess(jpeg, { resize: 65536, crop: null })).rejects.toThrow(/the output image would be 98522×65536/);
  // A tall strip: only the kept window's taps are computed, so it is quick and small.
  using x = await preprocess(strip(1, 1_000_000));
  expect(x.shape).toEqual([1, 3, 224, 224]);
  expect(new Set(x.toArray().subarray(0, 224 * 224)).size).toBe(1);
  expect(imageMemoryBytes().lastCall).toBeLessThan(64 * 2 ** 20);
});

describe('preprocess', () => {
  it('gives raw pixels (RGB, RGBA, gray, ImageData-like) the same input as the encoded file', async () => {
    const { data, width, height } = await decodeImage(png);
    using fromBytes = await preprocess(png);
    const rgba = new Uint8ClampedArray(width * height * 4);
    const gray = new Uint8Array(width * height);
    for (let i = 0; i < width * height; i++) {
      rgba.set([data[3 * i]!, data[3 * i + 1]!, data[3 * i + 2]!, 77], 4 * i);
      gray[i] = data[3 * i]!;
    }
    using fromRgb = await preprocess({ data, width, height });
    using fromRgba = await preprocess({ data: rgba, width, height, channels: 4 });
    expect(fromRgb.toArray()).toEqual(fromBytes.toArray());
    expect(fromRgba.toArray()).toEqual(fromBytes.toArray());
    // Gray replicated into R, G and B (here the red channel, as gray).
    using fromGray = await preprocess({ data: gray, width, height });
    const plane = 224 * 224;
    const g = fromGray.toArray();
    const r = fromBytes.toArray().subarray(0, plane);
    for (let i = 0; i < plane; i += 997) {
      expect(g[i]).toBe(r[i]);
      expect(g[plane + i]).toBeCloseTo((r[i]! * 0.229 + 0.485 - 0.456) / 0.224, 4);
    }
  });

  it('batches an array in order, [N, 3, 224, 224], each image as it is alone', async () => {
    const inputs = [jpeg, png, file('coffee_tiny_png.png')];
    using batch = await preprocess(inputs);
    expect(batch.shape).toEqual([3, 3, 224, 224]);
    for (const [i, input] of inputs.entries()) {
      using one = await preprocess(input);
      expect(batch.toArray().subarray(i * one.numel, (i + 1) * one.numel)).toEqual(one.toArray());
    }
    await expect(preprocess([])).rejects.toThrow('needs at least one image');
    // Without a crop, shapes differ: the error names the image.
    await expect(preprocess([jpeg, png], { crop: null })).rejects.toThrow(/Error in preprocess \(image 1\): makes a 256×312 input, but image 0 makes 256×384/);
    await expect(preprocess([jpeg, Buffer.from('nope')])).rejects.toThrow(/Error in preprocess \(image 1\): not a JPEG or PNG file/);
  });

  // Their pixels against torchvision's: the resize / crop cases of test/fixtures/images-extra.
  it('makes the shapes the resize, crop, mean and std options ask for', async () => {
    using noCrop = await preprocess(jpeg, { crop: null });
    expect(noCrop.shape).toEqual([1, 3, 256, 384]); // int(256 · 451 / 300) = 384
    using exact = await preprocess(jpeg, { resize: [100, 50], crop: null });
    expect(exact.shape).toEqual([1, 3, 100, 50]);
    using rect = await preprocess(jpeg, { crop: [200, 100] });
    expect(rect.shape).toEqual([1, 3, 200, 100]);
    using none = await preprocess({ data: new Uint8Array([0, 128, 255]), width: 1, height: 1 }, { resize: null, crop: null, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(none.toArray()).toEqual(new Float32Array([0, 128 / 255, 1]));
    // A crop larger than the image is padded with black, as torchvision pads.
    using padded = await preprocess({ data: new Uint8Array([255, 255, 255]), width: 1, height: 1 }, { resize: null, crop: 3, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(Array.from(padded.toArray().subarray(0, 9))).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0]);
    // The centre crop of the full resize.
    const plane = (t: Tensor, c: number, h: number, w: number, y: number, x: number) => t.toArray()[(c * h + y) * w + x];
    using cropped = await preprocess(jpeg);
    for (const [y, x] of [[0, 0], [100, 37], [223, 223]] as const) {
      expect(plane(cropped, 1, 224, 224, y, x)).toBe(plane(noCrop, 1, 256, 384, y + 16, x + 80));
    }
  });

  it('validates its options and inputs, naming the bad value', async () => {
    const bad: [object, RegExp][] = [
      [{ resize: 0 }, /resize must be an integer ≥ 1, but got 0/],
      [{ resize: [1, 2, 3] }, /resize must be a number, \[height, width\] or null/],
      [{ crop: 1.5 }, /crop must be an integer ≥ 1, but got 1.5/],
      [{ resize: 2 ** 17 }, /resize must be at most 65536/],
      [{ maxPixels: 2 ** 29 + 1 }, /maxPixels must be at most 536870912/],
      [{ mean: [0, 0] }, /mean must be 3 finite numbers/],
      [{ std: [1, 0, 1] }, /std must be 3 finite numbers, none of them 0/],
      [{ size: 224 }, /unknown option 'size'/],
    ];
    for (const [options, message] of bad) await expect(preprocess(jpeg, options), JSON.stringify(options)).rejects.toThrow(message);
    const raw: [object, RegExp][] = [
      [{ data: new Uint8Array(10), width: 2, height: 2 }, /10 bytes are not 1–4 channels of 2×2 pixels/],
      [{ data: new Uint8Array(12), width: 2, height: 2, channels: 4 }, /2×2 pixels of 4 channels need 16 bytes, but data has 12/],
      [{ data: new Float32Array(12), width: 2, height: 2 }, /raw pixels must be a Uint8Array or Uint8ClampedArray, but got Float32Array/],
      [{ data: new Uint8Array(12), width: 0, height: 2 }, /width must be a positive integer/],
    ];
    for (const [input, message] of raw) {
      const e = await preprocess(input as never).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(ImageError);
      expect((e as ImageError).reason).toBe('invalid-input');
      expect((e as Error).message).toMatch(message);
    }
    await expect(preprocess({ data: new Uint8Array(12), width: 2, height: 2 }, { maxPixels: 3 })).rejects.toThrow(/2×2 = 4 pixels is more than maxPixels \(3\)/);
  });

  it('points pixel bytes handed to Tensor.fromArray at preprocess', () => {
    expect(() => Tensor.fromArray(new Uint8ClampedArray(12) as never, [1, 3, 2, 2])).toThrow(DataTypeError);
    expect(() => Tensor.fromArray(new Uint8Array(12) as never, [1, 3, 2, 2])).toThrow('use `await preprocess(image)`');
  });
});

describe('damaged files (fuzz)', () => {
  const seeds = [jpeg, png, file('coffee_progressive.jpg'), file('chelsea_palette_png.png')];
  it('every mutation decodes or is refused with an ImageError, and the module keeps working', async () => {
    const cases = Number(process.env.IMAGE_FUZZ_CASES ?? 200);
    const outcomes: Record<string, number> = { decoded: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat(), { freq: 2 }),
        async (which, flips, cut) => {
          const bytes = new Uint8Array(seeds[which]!);
          // Past the signature (its refusal is tested above): the damage reaches the decoders.
          for (const [at, value] of flips) bytes[16 + (at % (bytes.length - 16))] = value;
          const input = cut === null ? bytes : bytes.subarray(0, 16 + (cut % (bytes.length - 16)));
          try {
            const image = await decodeImage(input);
            expect(image.data.length).toBe(image.width * image.height * 3);
            outcomes.decoded = (outcomes.decoded ?? 0) + 1;
          } catch (e) {
            if (!(e instanceof ImageError)) throw e;
            outcomes[e.reason] = (outcomes[e.reason] ?? 0) + 1;
          }
        },
      ),
      { numRuns: cases, seed: 13 },
    );
    console.log(`${cases} damaged files:`, outcomes);
    // Both outcomes occur (the damage reaches the decoders, not only the format check),
    // and no damaged file made the image module trap: every refusal is a decoder's.
    expect(outcomes.decoded).toBeGreaterThan(0);
    expect(cases - (outcomes.decoded ?? 0)).toBeGreaterThan(0);
    expect(outcomes.internal).toBeUndefined();
    expect(outcomes['out-of-memory']).toBeUndefined();
    await expect(decodeImage(png)).resolves.toMatchObject({ width: 400 });
  });
});

it('reads a file URL given as a string', async () => {
  const href = pathToFileURL(new URL('chelsea_q90.jpg', dir).pathname).href;
  await expect(decodeImage(href)).resolves.toMatchObject({ width: 451, height: 300 });
});
