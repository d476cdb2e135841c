import { checkInt, ValueError } from '../errors.js';
import { Dropout, Flatten } from './activation.js';
import { Conv2d } from './conv.js';
import { Chain } from './container.js';
import { Inception } from './inception.js';
import { deferInit, initParameters, takeSeed } from './init.js';
import { Linear } from './linear.js';
import { AdaptiveAvgPool2d, MaxPool2d } from './pool.js';

/**
 * - `'relu'`: the network of the paper — ReLU after every convolution (the default).
 * - `'seed'`: exactly the seed document's code, which has no activation at all.
 */
export type GoogLeNetVariant = 'relu' | 'seed';

export interface GoogLeNetOptions {
  /** @defaultValue 1000 */
  numClasses?: number;
  /** @defaultValue 'relu' */
  variant?: GoogLeNetVariant;
  /** Seed of the deterministic initialisation. @defaultValue the next of `manualSeed`'s sequence */
  seed?: number;
  /** Weight gain of the initialisation. @defaultValue 6 for `'relu'` (He), 3 for `'seed'` (variance-preserving) */
  weightGain?: number;
  /** Dropout probability before `fc` (the identity at inference). @defaultValue 0.4 */
  dropout?: number;
}

/** `[inChannels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, poolProj]` per block, from the seed. */
export const INCEPTION_CONFIG = {
  inception3a: [192, 64, 96, 128, 16, 32, 32],
  inception3b: [256, 128, 128, 192, 32, 96, 64],
  inception4a: [480, 192, 96, 208, 16, 48, 64],
  inception4b: [512, 160, 112, 224, 24, 64, 64],
  inception4c: [512, 128, 128, 256, 24, 64, 64],
  inception4d: [512, 112, 144, 288, 32, 64, 64],
  inception4e: [528, 256, 160, 320, 32, 128, 128],
  inception5a: [832, 256, 160, 320, 32, 128, 128],
  inception5b: [832, 384, 192, 384, 48, 128, 128],
} as const;

/**
 * GoogLeNet (Inception v1) as in the seed document: conv1 7×7/2, max-pool, conv2 3×3,
 * max-pool, inception 3a–3b, max-pool, 4a–4e, max-pool, 5a–5b, adaptive average pool,
 * dropout, fc. Any input of at least 1×1 after the strides works (the average pool is
 * adaptive); state-dict keys are the seed's (`conv1.weight`, `inception3a.branch2.1.bias`, …).
 */
export class GoogLeNet extends Chain {
  readonly numClasses: number;
  readonly variant: GoogLeNetVariant;

  constructor(options: GoogLeNetOptions = {}) {
    super();
    const op = 'GoogLeNet';
    this.numClasses = checkInt(op, 'numClasses', options.numClasses ?? 1000);
    const variant = options.variant ?? 'relu';
    if (variant !== 'relu' && variant !== 'seed') {
      throw new ValueError(op, `variant must be 'relu' or 'seed', but got ${JSON.stringify(variant)}`);
    }
    this.variant = variant;
    const activation = variant === 'relu' ? 'relu' : null;
    const pool = () => new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 });
    const block = (name: keyof typeof INCEPTION_CONFIG) => {
      const [i, a, b, c, d, e, f] = INCEPTION_CONFIG[name];
      this.addModule(name, new Inception(i, a, b, c, d, e, f, { activation }));
    };
    deferInit(() => {
      this.addModule('conv1', new Conv2d({ inChannels: 3, outChannels: 64, kernelSize: 7, stride: 2, padding: 3, activation }));
      this.addModule('maxpool1', pool());
      this.addModule('conv2', new Conv2d({ inChannels: 64, outChannels: 192, kernelSize: 3, padding: 1, activation }));
      this.addModule('maxpool2', pool());
      block('inception3a');
      block('inception3b');
      this.addModule('maxpool3', pool());
      for (const b of ['inception4a', 'inception4b', 'inception4c', 'inception4d', 'inception4e'] as const) block(b);
      this.addModule('maxpool4', pool());
      block('inception5a');
      block('inception5b');
      this.addModule('avgpool', new AdaptiveAvgPool2d(1));
      this.addModule('flatten', new Flatten());
      this.addModule('dropout', new Dropout(options.dropout ?? 0.4));
      this.addModule('fc', new Linear({ inFeatures: 1024, outFeatures: this.numClasses }));
    });
    initParameters(this, { seed: takeSeed(options.seed), weightGain: options.weightGain ?? (activation ? 6 : 3) });
  }
}
