import { checkInt, ShapeError, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { type Activation, BasicConv2d, checkActivation, Conv2d } from './conv.js';
import { Sequential } from './container.js';
import { deferInit, initDeferred, initNew, takeSeed } from './init.js';
import { type LayerRow, Module } from './module.js';
import { MaxPool2d } from './pool.js';

export interface InceptionOptions {
  /**
   * Activation after every convolution (including between each 1×1 reduction and its
   * 3×3/5×5 convolution). `null` is the seed's code exactly (no activation anywhere).
   * @defaultValue 'relu'
   */
  activation?: Activation;
  /** Seed of the deterministic initialisation. @defaultValue the next of `manualSeed`'s sequence */
  seed?: number;
  /** Weight gain of the initialisation (6: He, for ReLU; 3: variance-preserving). @defaultValue 6 with ReLU, 3 without */
  weightGain?: number;
  /**
   * `'seed'`: the seed document's module (convs with bias). `'torchvision'`: torchvision's
   * — every conv a `BasicConv2d` (conv + BatchNorm + ReLU; `activation` must then be
   * 'relu'), a 3×3 (not 5×5) convolution in `branch3` (torchvision issue #906, kept for
   * weight compatibility), and a ceil-mode pool in `branch4`.
   * @defaultValue 'seed'
   */
  style?: 'seed' | 'torchvision';
}

/**
 * The Inception (v1) module of the seed document: four parallel branches on the same
 * input — 1×1; 1×1→3×3; 1×1→5×5; 3×3 max-pool→1×1 — concatenated on channels.
 *
 * There is no concat copy: the output tensor is allocated once, and each branch's last
 * convolution writes straight into its channel slice (in NCHW an image's channels
 * `[a, b)` are one contiguous block, which the GEMM writes with its row stride).
 */
export class Inception extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly branch1: Conv2d;
  readonly branch2: Sequential;
  readonly branch3: Sequential;
  readonly branch4: Sequential;

  constructor(inChannels: number, ch1x1: number, ch3x3red: number, ch3x3: number, ch5x5red: number, ch5x5: number, poolProj: number, options: InceptionOptions = {}) {
    super();
    const op = 'Inception';
    const sizes = { inChannels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, poolProj };
    for (const [name, v] of Object.entries(sizes)) checkInt(op, name, v);
    const activation = checkActivation(op, options.activation === undefined ? 'relu' : options.activation);
    const style = options.style ?? 'seed';
    if (style !== 'seed' && style !== 'torchvision') throw new ValueError(op, `style must be 'seed' or 'torchvision', but got ${JSON.stringify(style)}`);
    const tv = style === 'torchvision';
    if (tv && activation !== 'relu') throw new ValueError(op, "style 'torchvision' always has ReLU (BasicConv2d); activation must be 'relu'");
    const conv = (i: number, o: number, k: number): Conv2d => {
      const geometry = { inChannels: i, outChannels: o, kernelSize: k, padding: (k - 1) / 2 };
      return tv ? new BasicConv2d(geometry) : new Conv2d({ ...geometry, activation });
    };
    this.inChannels = inChannels;
    this.outChannels = ch1x1 + ch3x3 + ch5x5 + poolProj;
    [this.branch1, this.branch2, this.branch3, this.branch4] = deferInit(() => [
      this.addModule('branch1', conv(inChannels, ch1x1, 1)),
      this.addModule('branch2', new Sequential(conv(inChannels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))),
      this.addModule('branch3', new Sequential(conv(inChannels, ch5x5red, 1), conv(ch5x5red, ch5x5, tv ? 3 : 5))),
      this.addModule('branch4', new Sequential(new MaxPool2d({ kernelSize: 3, stride: 1, padding: 1, ceilMode: tv }), conv(inChannels, poolProj, 1))),
    ]);
    if (!initDeferred()) initNew(this, { seed: takeSeed(options.seed), weightGain: options.weightGain ?? (activation ? 6 : 3) });
  }

  #branches(): Module[] {
    return [this.branch1, this.branch2, this.branch3, this.branch4];
  }

  override outputShape(input: readonly number[]): number[] {
    const shapes = this.#branches().map((b) => b.outputShape(input));
    const [n, , h, w] = shapes[0]!;
    if (shapes.some((s) => s[2] !== h || s[3] !== w)) {
      throw new ShapeError(this.op, `branch outputs differ in size: ${shapes.map((s) => `[${s.join(', ')}]`).join(', ')}`);
    }
    return [n!, this.outChannels, h!, w!];
  }

  override trace(input: readonly number[], emit: (row: LayerRow) => void): number[] {
    for (const b of this.#branches()) b.trace(input, emit);
    return this.outputShape(input);
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(this.outputShape(x.shape));
    this.lowerInto(plan, x, out, 0);
    return out;
  }

  /** The four branches write side by side into `out`: the concatenation, with no copy. */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lowerInto(plan: PlanBuilder, x: Value, out: Value, channelOffset: number): void {
    let offset = channelOffset;
    for (const b of this.#branches()) {
      b.lowerInto(plan, x, out, offset);
      offset += b.outputShape(x.shape)[1]!;
    }
  }
}
