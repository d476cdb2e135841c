/**
 * The 1×1-convolution ideas of the seed document (§1–2): channel fusion, the bottleneck
 * (wide → narrow → wide) and the spindle (narrow → wide → narrow).
 */
import { checkInt, ValueError } from '../errors.js';
import { type Activation, Conv2d } from './conv.js';
import { Sequential } from './container.js';
import { deferInit, initNew, takeSeed } from './init.js';

/** ITU-R BT.601 luma weights: `gray = 0.2989·R + 0.5870·G + 0.1140·B`. */
export const GRAY_WEIGHTS = [0.2989, 0.587, 0.114] as const;

/** A 1×1 convolution 3 → 1 without bias that fuses RGB channels into gray (seed §2.1). */
export function rgbToGray(): Conv2d {
  const conv = new Conv2d({ inChannels: 3, outChannels: 1, kernelSize: 1, bias: false, seed: 0 });
  conv.loadStateDict({ weight: new Float32Array(GRAY_WEIGHTS) });
  return conv;
}

export interface TwoStageOptions {
  inChannels: number;
  /** Channels between the two convolutions. */
  midChannels: number;
  outChannels: number;
  /** The second convolution's size (padding keeps the spatial size). @defaultValue 3 */
  kernelSize?: number;
  /** @defaultValue true */
  bias?: boolean;
  /** After each convolution. @defaultValue 'relu' */
  activation?: Activation;
  /** @defaultValue the next of `manualSeed`'s sequence */
  seed?: number;
}

/** 1×1 `in → mid`, then k×k `mid → out` (same padding), as a Sequential named `0`, `1`. */
function twoStage(o: TwoStageOptions): Sequential {
  const k = checkInt('block', 'kernelSize', o.kernelSize ?? 3);
  const common = { bias: o.bias ?? true, activation: o.activation === undefined ? 'relu' : o.activation };
  const seq = deferInit(() => new Sequential(
    new Conv2d({ inChannels: o.inChannels, outChannels: o.midChannels, kernelSize: 1, ...common }),
    new Conv2d({ inChannels: o.midChannels, outChannels: o.outChannels, kernelSize: k, padding: Math.floor(k / 2), ...common }),
  ));
  initNew(seq, { seed: takeSeed(o.seed) });
  return seq;
}

/**
 * Bottleneck (seed §2.2–2.3), wide → narrow → wide: a 1×1 reduction to `midChannels <
 * inChannels` before the k×k convolution. 192 → 96 → 128 with 3×3 has 129,024 weights
 * where a plain 3×3 192 → 128 has 221,184.
 */
export function bottleneck(options: TwoStageOptions): Sequential {
  const { inChannels, midChannels, outChannels } = options;
  if (!(midChannels < inChannels && midChannels < outChannels)) {
    throw new ValueError('bottleneck', `midChannels must be narrower than both ends (wide → narrow → wide), but got ${inChannels} → ${midChannels} → ${outChannels}`);
  }
  return twoStage(options);
}

/** Spindle (seed §2.4), narrow → wide → narrow: a 1×1 expansion to `midChannels > inChannels`, then the k×k convolution. */
export function spindle(options: TwoStageOptions): Sequential {
  const { inChannels, midChannels, outChannels } = options;
  if (!(midChannels > inChannels && midChannels > outChannels)) {
    throw new ValueError('spindle', `midChannels must be wider than both ends (narrow → wide → narrow), but got ${inChannels} → ${midChannels} → ${outChannels}`);
  }
  return twoStage(options);
}

/** Weights of a k×k convolution `inChannels → outChannels` (bias excluded): `out·in·k·k`. */
export function convWeightCount(inChannels: number, outChannels: number, kernelSize: number): number {
  return outChannels * inChannels * kernelSize * kernelSize;
}
