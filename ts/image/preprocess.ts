/**
 * `preprocess`: images to the network's input, as torchvision's ImageNet eval transform
 * makes it — `Resize(256)`, `CenterCrop(224)`, `ToTensor()`, `Normalize(mean, std)` — over
 * PIL, pixel for pixel (crates/image: decode, PIL's fixed-point bilinear resize, crop and
 * normalisation all run in the image module).
 */
import { checkInt, ImageError, ValueError } from '../errors.js';
import { produce, type Tensor } from '../tensor.js';
import { checkKeys, type DecodeOptions, decodeOptions } from './decode.js';
import { imageCall, imageModule, release } from './module.js';
import { type ImageInput, resolve } from './source.js';

/** torchvision's ImageNet statistics (`transforms.Normalize`). */
export const IMAGENET_MEAN = Object.freeze([0.485, 0.456, 0.406] as const);
export const IMAGENET_STD = Object.freeze([0.229, 0.224, 0.225] as const);

/** A size: one number, or `[height, width]`. */
export type Size = number | readonly [number, number];

export interface PreprocessOptions extends DecodeOptions {
  /**
   * `transforms.Resize`: a number makes the shorter side that long (the longer one
   * `int(n · long / short)`, as torchvision), `[height, width]` resizes to exactly that,
   * `null` keeps the size. PIL's bilinear filter with its antialiasing.
   * @defaultValue 256
   */
  resize?: Size | null;
  /**
   * `transforms.CenterCrop`: a number for a square, `[height, width]`, or `null` for none.
   * A crop larger than the image is padded with black, as torchvision pads.
   * @defaultValue 224
   */
  crop?: Size | null;
  /** Per-channel mean subtracted after `/255` (RGB order). @defaultValue `[0.485, 0.456, 0.406]` */
  mean?: readonly number[];
  /** Per-channel standard deviation divided by. @defaultValue `[0.229, 0.224, 0.225]` */
  std?: readonly number[];
}

/** The option keys of {@link preprocess} (`classify` takes them too). */
export const PREPROCESS_KEYS = ['resize', 'crop', 'mean', 'std', 'maxPixels', 'exifOrientation'] as const;

/** Sizes in pixels are capped at 2^16 on a side (a larger resize describes no real input). */
const MAX_SIDE = 2 ** 16;

function size(op: string, what: string, v: Size | null | undefined, fallback: number): [number, number] | null {
  if (v === null) return null;
  if (v === undefined) return [fallback, fallback];
  if (typeof v === 'number') return [checkInt(op, what, v, 1, MAX_SIDE), v];
  if (Array.isArray(v) && v.length === 2) return [checkInt(op, `${what}[0]`, v[0], 1, MAX_SIDE), checkInt(op, `${what}[1]`, v[1], 1, MAX_SIDE)];
  throw new ValueError(op, `${what} must be a number, [height, width] or null, but got ${JSON.stringify(v)}`);
}

function stats(op: string, what: string, v: readonly number[] | undefined, fallback: readonly number[], nonzero: boolean): Float32Array {
  const values = v ?? fallback;
  if (!Array.isArray(values) || values.length !== 3 || !values.every((x) => typeof x === 'number' && Number.isFinite(x) && (!nonzero || x !== 0))) {
    throw new ValueError(op, `${what} must be 3 finite numbers${nonzero ? ', none of them 0' : ''} (R, G, B), but got ${JSON.stringify(v)}`);
  }
  return Float32Array.from(values);
}

/**
 * One image's CHW floats; the image module's objects are freed before returning, and a
 * refusal names the image's place in a batch.
 */
async function transformOne(op: string, input: unknown, args: TransformArgs): Promise<{ data: Float32Array; height: number; width: number }> {
  const source = await resolve(op, input);
  if (source.kind === 'pixels' && source.pixels.width * source.pixels.height > args.maxPixels) {
    const { width, height } = source.pixels;
    throw new ImageError(op, 'too-large', `${width}×${height} = ${width * height} pixels is more than maxPixels (${args.maxPixels})`);
  }
  return imageCall(op, (g) => {
    let image;
    if (source.kind === 'bytes') {
      image = g.Image.decode(source.bytes, args.maxPixels, args.exifOrientation);
    } else {
      const { data, width, height, channels } = source.pixels;
      image = g.Image.fromPixels(data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, channels);
    }
    try {
      const [kind, a, b] = args.resize === null ? [0, 0, 0] : args.resizeIsShortSide ? [1, args.resize[0], 0] : [2, args.resize[0], args.resize[1]];
      const [ch, cw] = args.crop ?? [0, 0];
      const out = image.transform(kind, a, b, ch, cw, args.mean, args.std);
      const { height, width } = out;
      return { data: out.intoData(), height, width };
    } finally {
      release(image);
    }
  });
}

interface TransformArgs {
  resize: [number, number] | null;
  resizeIsShortSide: boolean;
  crop: [number, number] | null;
  mean: Float32Array;
  std: Float32Array;
  maxPixels: number;
  exifOrientation: boolean;
}

/**
 * Images to a `[N, 3, crop, crop]` input tensor, exactly as torchvision's ImageNet eval
 * transform over PIL makes it (defaults: `Resize(256)`, `CenterCrop(224)`, `/255`,
 * ImageNet mean and std). `image` is one image or an array (a batch, in order); each may
 * be encoded JPEG/PNG bytes, a path or URL, raw pixels `{ data, width, height, channels? }`
 * (a canvas's `ImageData`), or in browsers an `<img>`, canvas, `ImageBitmap` or
 * `VideoFrame`. Rejects with an {@link ImageError} for an image that cannot be read, a
 * {@link ValueError} for bad options. The caller owns (and disposes) the tensor.
 */
export async function preprocess(image: ImageInput | readonly ImageInput[], options: PreprocessOptions = {}): Promise<Tensor> {
  checkKeys('preprocess', options, PREPROCESS_KEYS);
  return preprocessFor('preprocess', image, options);
}

/** @internal {@link preprocess} with errors naming `op` (`classify` calls it). */
export async function preprocessFor(op: string, image: ImageInput | readonly ImageInput[], options: PreprocessOptions): Promise<Tensor> {
  const resize = size(op, 'resize', options.resize, 256);
  const args: TransformArgs = {
    resize,
    resizeIsShortSide: typeof options.resize === 'number' || options.resize === undefined,
    crop: size(op, 'crop', options.crop, 224),
    mean: stats(op, 'mean', options.mean, IMAGENET_MEAN, false),
    std: stats(op, 'std', options.std, IMAGENET_STD, true),
    ...decodeOptions(op, options),
  };
  const batch = Array.isArray(image);
  const images: readonly unknown[] = batch ? image : [image];
  if (images.length === 0) throw new ValueError(op, 'needs at least one image, but got an empty array');
  await imageModule(op);
  const outs: { data: Float32Array; height: number; width: number }[] = [];
  for (const [i, input] of images.entries()) {
    const at = batch ? `${op} (image ${i})` : op;
    const out = await transformOne(at, input, args);
    if (outs.length > 0 && (out.height !== outs[0]!.height || out.width !== outs[0]!.width)) {
      throw new ValueError(at, `makes a ${out.height}×${out.width} input, but image 0 makes ${outs[0]!.height}×${outs[0]!.width}; give a crop to batch images of different shapes`);
    }
    outs.push(out);
  }
  const { height, width } = outs[0]!;
  return produce([outs.length, 3, height, width], (t) => {
    const data = t.data;
    outs.forEach((o, i) => data.set(o.data, i * o.data.length));
  });
}

