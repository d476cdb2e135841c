import { call } from '../backend.js';
import { checkInt, ShapeError, StateDictError, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { produce, type Tensor } from '../tensor.js';
import { Dropout, Flatten, ReLU } from './activation.js';
import { BasicConv2d, Conv2d } from './conv.js';
import { Chain } from './container.js';
import { Inception } from './inception.js';
import { deferInit, initDeferred, initNew, takeSeed } from './init.js';
import { Linear } from './linear.js';
import { Module, type StateDictInput, type StateTensor } from './module.js';
import { AdaptiveAvgPool2d, MaxPool2d } from './pool.js';

/**
 * - `'relu'`: the network of the paper — ReLU after every convolution (the default).
 * - `'seed'`: exactly the seed document's code, which has no activation at all.
 * - `'torchvision'`: `torchvision.models.googlenet` — BatchNorm (folded at load), ceil-mode
 *   pools, a 3×3 conv in each Inception's `branch3`, optional auxiliary heads — so that
 *   torchvision's pretrained weights load and give torchvision's logits.
 */
export type GoogLeNetVariant = 'relu' | 'seed' | 'torchvision';

export interface GoogLeNetOptions {
  /** @defaultValue 1000 */
  numClasses?: number;
  /**
   * Channels of the input (conv1's): 1 for gray images such as Fashion-MNIST, with no
   * copying into three channels (`transformInput` needs 3).
   * @defaultValue 3
   */
  inChannels?: number;
  /** @defaultValue 'relu' */
  variant?: GoogLeNetVariant;
  /** Seed of the deterministic initialisation. @defaultValue the next of `manualSeed`'s sequence */
  seed?: number;
  /** Weight gain of the initialisation. @defaultValue 3 for `'seed'` (variance-preserving), else 6 (He) */
  weightGain?: number;
  /** Dropout probability before `fc` (the identity at inference). @defaultValue 0.4, or 0.2 for `'torchvision'` */
  dropout?: number;
  /**
   * Dropout probability in the auxiliary heads (torchvision's `dropout_aux`; the identity at
   * inference). Accepted on every variant, used where there are heads.
   * @defaultValue 0.7
   */
  dropoutAux?: number;
  /**
   * `'torchvision'` only: build the auxiliary classifiers `aux1` (after inception4a) and
   * `aux2` (after inception4d). They run only in training mode (`forwardAll`); without
   * them the model holds neither their weights nor their activations.
   * @defaultValue false
   */
  auxLogits?: boolean;
  /**
   * `'torchvision'` only: torchvision's `transform_input`, which re-normalises an input
   * normalised with the ImageNet mean/std to the (x − 0.5)/0.5 range the original
   * weights expect. torchvision turns it on when loading its pretrained weights.
   * @defaultValue false
   */
  transformInput?: boolean;
  /**
   * Weights to build the model from, instead of initialising it: the state dict is
   * loaded as the layers are made, so memory never holds two sets of weights (see
   * {@link GoogLeNet.fromStateDict}, which also infers the options from the weights).
   */
  weights?: StateDictInput;
  /** With `weights`: as `loadStateDict`'s `strict`. @defaultValue true */
  strict?: boolean;
}

/** What {@link GoogLeNet.fromStateDict} reads: a state dict, or a safetensors file's tensors with its metadata. */
export type GoogLeNetWeights = StateDictInput | { readonly tensors: ReadonlyMap<string, StateTensor>; readonly metadata?: Readonly<Record<string, string>> };

/** `[inChannels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, poolProj]` per block, from the seed (and torchvision). */
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
 * torchvision's `InceptionAux`: adaptive average pool to 4×4 → BasicConv2d 1×1 (→128) →
 * flatten (2048) → fc1 (→1024) → ReLU → dropout(0.7) → fc2 (→classes).
 */
export class InceptionAux extends Chain {
  constructor(inChannels: number, numClasses: number, dropout = 0.7) {
    super();
    checkInt('InceptionAux', 'inChannels', inChannels);
    checkInt('InceptionAux', 'numClasses', numClasses);
    deferInit(() => {
      this.addModule('avgpool', new AdaptiveAvgPool2d(4));
      this.addModule('conv', new BasicConv2d({ inChannels, outChannels: 128, kernelSize: 1 }));
      this.addModule('flatten', new Flatten());
      this.addModule('fc1', new Linear({ inFeatures: 2048, outFeatures: 1024 }));
      this.addModule('relu', new ReLU());
      this.addModule('dropout', new Dropout(dropout));
      this.addModule('fc2', new Linear({ inFeatures: 1024, outFeatures: numClasses }));
    });
    if (!initDeferred()) initNew(this, { seed: takeSeed(undefined) });
  }
}

/** torchvision's `transform_input`: per-channel `x·a + b` (no parameters). */
class TransformInput extends Module {
  static readonly SCALE = new Float32Array([0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5]);
  static readonly SHIFT = new Float32Array([(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5]);

  override outputShape(input: readonly number[]): number[] {
    return [...this.checkNCHW(input, 3)];
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(x.shape);
    plan.channelAffine(x, TransformInput.SCALE, TransformInput.SHIFT, out);
    return out;
  }
}

/** What `forwardAll` returns; `aux1`/`aux2` only in training mode with auxiliary heads. */
export interface GoogLeNetOutputs {
  logits: Tensor;
  aux1?: Tensor;
  aux2?: Tensor;
}

/**
 * GoogLeNet (Inception v1). The `'seed'` and `'relu'` variants are the seed document's
 * network: conv1 7×7/2, max-pool, conv2 3×3, max-pool, inception 3a–3b, max-pool, 4a–4e,
 * max-pool, 5a–5b, adaptive average pool, dropout, fc. `'torchvision'` is
 * `torchvision.models.googlenet` (see {@link GoogLeNetVariant}). State-dict keys are
 * PyTorch's (`conv1.weight`, `inception3a.branch2.1.bias`; torchvision:
 * `conv1.conv.weight`, `conv1.bn.running_var`, `aux1.fc1.weight`, …). Any input size
 * works (the average pool is adaptive).
 */
export class GoogLeNet extends Chain {
  readonly numClasses: number;
  readonly inChannels: number;
  readonly variant: GoogLeNetVariant;
  readonly aux1: InceptionAux | undefined;
  readonly aux2: InceptionAux | undefined;

  constructor(options: GoogLeNetOptions = {}) {
    super();
    const op = 'GoogLeNet';
    this.numClasses = checkInt(op, 'numClasses', options.numClasses ?? 1000);
    this.inChannels = checkInt(op, 'inChannels', options.inChannels ?? 3);
    if (options.transformInput && this.inChannels !== 3) throw new ValueError(op, `transformInput re-normalises 3 RGB channels, but inChannels is ${this.inChannels}`);
    const variant = options.variant ?? 'relu';
    if (variant !== 'relu' && variant !== 'seed' && variant !== 'torchvision') {
      throw new ValueError(op, `variant must be 'relu', 'seed' or 'torchvision', but got ${JSON.stringify(variant)}`);
    }
    this.variant = variant;
    if (options.dropoutAux !== undefined && !(options.dropoutAux >= 0 && options.dropoutAux <= 1)) {
      throw new ValueError(op, `dropoutAux must be in [0, 1], but got ${options.dropoutAux}`);
    }
    const tv = variant === 'torchvision';
    if (!tv && (options.auxLogits || options.transformInput)) {
      throw new ValueError(op, `auxLogits and transformInput exist only in the 'torchvision' variant, not '${variant}'`);
    }
    const activation = variant === 'seed' ? null : 'relu';
    const conv = (i: number, o: number, k: number, stride = 1) => {
      const geometry = { inChannels: i, outChannels: o, kernelSize: k, stride, padding: (k - 1) / 2 };
      return tv ? new BasicConv2d(geometry) : new Conv2d({ ...geometry, activation });
    };
    // The seed pools with padding 1 in floor mode; torchvision with no padding in ceil mode.
    const pool = (k = 3) => new MaxPool2d(tv ? { kernelSize: k, stride: 2, ceilMode: true } : { kernelSize: 3, stride: 2, padding: 1 });
    const block = (name: keyof typeof INCEPTION_CONFIG) => {
      const [i, a, b, c, d, e, f] = INCEPTION_CONFIG[name];
      this.addModule(name, new Inception(i, a, b, c, d, e, f, { activation, style: tv ? 'torchvision' : 'seed' }));
    };
    [this.aux1, this.aux2] = deferInit(() => {
      if (options.transformInput) this.addModule('transform_input', new TransformInput());
      this.addModule('conv1', conv(this.inChannels, 64, 7, 2));
      this.addModule('maxpool1', pool());
      if (tv) {
        this.addModule('conv2', conv(64, 64, 1));
        this.addModule('conv3', conv(64, 192, 3));
      } else {
        this.addModule('conv2', conv(64, 192, 3));
      }
      this.addModule('maxpool2', pool());
      block('inception3a');
      block('inception3b');
      this.addModule('maxpool3', pool());
      for (const b of ['inception4a', 'inception4b', 'inception4c', 'inception4d', 'inception4e'] as const) block(b);
      this.addModule('maxpool4', pool(2));
      block('inception5a');
      block('inception5b');
      const aux = options.auxLogits
        ? [this.addModule('aux1', new InceptionAux(512, this.numClasses, options.dropoutAux)), this.addModule('aux2', new InceptionAux(528, this.numClasses, options.dropoutAux))]
        : [undefined, undefined];
      this.addModule('avgpool', new AdaptiveAvgPool2d(1));
      this.addModule('flatten', new Flatten());
      this.addModule('dropout', new Dropout(options.dropout ?? (tv ? 0.2 : 0.4)));
      this.addModule('fc', new Linear({ inFeatures: 1024, outFeatures: this.numClasses }));
      return aux;
    });
    if (options.weights === undefined) {
      initNew(this, { seed: takeSeed(options.seed), weightGain: options.weightGain ?? (activation ? 6 : 3) });
    } else {
      // Straight from the weights: no initialisation to replace, so no second set of weights.
      try {
        this.loadStateDict(options.weights, { strict: options.strict ?? true, ignoreAux: !options.auxLogits });
      } catch (e) {
        this.dispose();
        throw e;
      }
    }
  }

  /**
   * A GoogLeNet built from its weights — a state dict from `loadSafetensors`, `loadPth`
   * or `stateDict()`, or `readSafetensors`' `{ tensors, metadata }` — with the options
   * they imply: `variant` (`'torchvision'` for torchvision's key names, else `'relu'`;
   * pass `'seed'` for the seed's network), `numClasses` (from `fc.weight`), `inChannels`
   * (from conv1's weight),
   * `transformInput` (from the `transform_input` metadata that
   * scripts/export_torchvision_googlenet.py writes). Options given win; auxiliary heads
   * in the weights are skipped unless `auxLogits: true`. WebAssembly memory peaks at what
   * the model holds plus one layer (loading into a `new GoogLeNet()` held two models).
   */
  static fromStateDict(weights: GoogLeNetWeights, options: Omit<GoogLeNetOptions, 'weights'> = {}): GoogLeNet {
    const op = 'GoogLeNet.fromStateDict';
    const contents = (weights ?? {}) as { tensors?: unknown; metadata?: Record<string, string> };
    const tensors = (contents.tensors instanceof Map ? contents.tensors : weights) as StateDictInput;
    if (tensors instanceof ArrayBuffer || ArrayBuffer.isView(tensors) || typeof tensors !== 'object' || tensors === null) {
      throw new StateDictError(op, '', 'expected a state dict (parse a file first with loadSafetensors(bytes) or loadPth(bytes))');
    }
    const get = (key: string) => (tensors instanceof Map ? tensors.get(key) : (tensors as Record<string, StateTensor | Float32Array>)[key]);
    const tv = get('conv1.conv.weight') !== undefined;
    const fc = get('fc.weight');
    const fcValues = fc instanceof Float32Array ? fc.length : fc?.data.length;
    const numClasses = options.numClasses ?? (fcValues !== undefined && fcValues % 1024 === 0 ? fcValues / 1024 : undefined);
    const conv1 = get(tv ? 'conv1.conv.weight' : 'conv1.weight');
    const conv1Values = conv1 instanceof Float32Array ? conv1.length : conv1?.data.length;
    const inChannels = options.inChannels ?? (conv1Values !== undefined && conv1Values % (64 * 49) === 0 ? conv1Values / (64 * 49) : undefined);
    const transformInput = options.transformInput ?? (tv && contents.metadata?.transform_input === 'true' ? true : undefined);
    return new GoogLeNet({ ...options, variant: options.variant ?? (tv ? 'torchvision' : 'relu'), numClasses, inChannels, transformInput, weights: tensors });
  }

  /** The main path; the auxiliary heads are not part of it. */
  protected override layers(): readonly (readonly [string, Module])[] {
    return this.children().filter(([, m]) => m !== this.aux1 && m !== this.aux2);
  }

  /**
   * The pooled embedding before dropout and `fc`: `[N, 1024]` (transfer learning: train a
   * small classifier on it; image retrieval). One plan, like `forward`.
   */
  forwardFeatures(x: Tensor): Tensor {
    const [n] = this.checkInput(x);
    if (this.recordsFor(x)) return this.record('forwardFeatures', x, [[n!, 1024]], (b, v) => [this.lowerChain(b, v, undefined, 'flatten')])[0]!;
    const plan = this.plan(`forwardFeatures ${x.shape.join(',')}`, x.shape, (b, v) => this.lowerChain(b, v, undefined, 'flatten'));
    return produce([n!, 1024], (out) => this.run(plan, x, out));
  }

  /**
   * The main logits and, in training mode (`model.train()`) with auxiliary heads, the
   * logits of `aux1` (on inception4a's output) and `aux2` (on inception4d's) — what
   * torchvision's training-mode forward returns — recorded in one graph for backward
   * (`googlenetLoss(out, target).backward()`). In eval mode this is `{ logits: forward(x) }`.
   */
  forwardAll(x: Tensor): GoogLeNetOutputs {
    const { aux1, aux2 } = this;
    if (!this.training || !aux1 || !aux2) return { logits: this.forward(x) };
    const shape = this.checkInput(x);
    const auxShape = [shape[0]!, this.numClasses];
    const [logits, a1, a2] = this.record('forwardAll', x, [shape, auxShape, auxShape], (b, v) => {
      const heads: Value[] = [];
      const main = this.lowerChain(b, v, (name, y) => {
        if (name === 'inception4a') heads[0] = aux1.lower(b, y);
        if (name === 'inception4d') heads[1] = aux2.lower(b, y);
      });
      return [main, heads[0]!, heads[1]!];
    });
    return { logits: logits!, aux1: a1!, aux2: a2! };
  }
}
