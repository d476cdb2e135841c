/**
 * The photo fixtures (`images/index.json` of a fixture folder, written by
 * `make_images.py` with torchvision 0.14 + PIL 9.4): each photo through `preprocess` must
 * land within its case's tolerance in 8-bit levels of what torchvision makes of it
 * (`<case>.expected.png`, the 224×224 image before `ToTensor`); `decodeImage` of a
 * lossless photo must equal PIL's full-size decode (`<case>.decoded.png`) byte for byte;
 * the files PIL refuses must be refused with an `ImageError`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage, IMAGENET_MEAN, IMAGENET_STD, ImageError, preprocess } from '../ts/index.js';

export interface ImageCase {
  name: string;
  file: string;
  format?: string;
  mode?: string;
  width?: number;
  height?: number;
  decoded?: string;
  expected?: string;
  tolerance?: { max_levels: number; mean_levels: number };
  expect_error?: boolean;
  pil_error?: string;
  /** Options for `preprocess` (this project's extra cases: `exifOrientation`, `resize`, `crop`). */
  options?: { exifOrientation?: boolean; resize?: number | [number, number] | null; crop?: number | [number, number] | null };
}

/** Max and mean difference in 8-bit levels between a `[1, 3, h, w]` input and RGB pixels (HWC). */
export function levelDiff(ours: Float32Array, expected: Uint8Array): { max: number; mean: number } {
  const plane = expected.length / 3;
  let max = 0;
  let sum = 0;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      // Back from the normalised value to levels; float32 rounding adds < 1e-4 level.
      const level = (ours[c * plane + i]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!) * 255;
      const d = Math.abs(level - expected[i * 3 + c]!);
      max = Math.max(max, d);
      sum += d;
    }
  }
  return { max, mean: sum / expected.length };
}

/** 1e-3 level: the float32 round trip of {@link levelDiff}, not a tolerance of the pipeline. */
const ROUND_TRIP = 1e-3;

export function registerImageCases(dir: string): void {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { cases: ImageCase[] };
  const read = (file: string) => readFileSync(path.join(dir, file));
  describe(`photo fixtures (${dir})`, () => {
    for (const c of index.cases) {
      if (c.expect_error) {
        it(`${c.name}: refused with an ImageError (PIL: ${c.pil_error})`, async () => {
          const bytes = read(c.file);
          const decoded = await decodeImage(bytes).then(() => undefined, (e: unknown) => e);
          expect(decoded).toBeInstanceOf(ImageError);
          // Refused by the decoders' checks, not by a trap of the image module.
          expect(['empty', 'unknown-format', 'too-large', 'truncated', 'corrupt', 'unsupported']).toContain((decoded as ImageError).reason);
          console.log(`${c.name}: ${(decoded as ImageError).reason}: ${(decoded as Error).message}`);
          await expect(preprocess(bytes)).rejects.toBeInstanceOf(ImageError);
        });
        continue;
      }
      it(`${c.name} (${c.format} ${c.mode} ${c.width}×${c.height}) within ${c.tolerance!.max_levels} / ${c.tolerance!.mean_levels} levels`, async () => {
        const bytes = read(c.file);
        const image = await decodeImage(bytes, { exifOrientation: c.options?.exifOrientation });
        expect([image.width, image.height]).toEqual([c.width, c.height]);
        expect(image.data.length).toBe(c.width! * c.height! * 3);
        if (c.decoded) {
          const pil = await decodeImage(read(c.decoded));
          expect(Buffer.from(image.data).equals(Buffer.from(pil.data)), 'the full-size decode equals PIL\'s').toBe(true);
        }
        const expected = await decodeImage(read(c.expected!));
        using x = await preprocess(bytes, c.options);
        expect(x.shape).toEqual([1, 3, expected.height, expected.width]);
        const { max, mean } = levelDiff(x.data, expected.data);
        console.log(`${c.name}: max ${max.toFixed(3)} mean ${mean.toFixed(4)} levels`);
        expect(max).toBeLessThanOrEqual(c.tolerance!.max_levels + ROUND_TRIP);
        expect(mean).toBeLessThanOrEqual(c.tolerance!.mean_levels);
      });
    }
  });
}
