import { call, track } from '../backend.js';
import { checkInt, checkPair, type Pair, ShapeError, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { checkNumel, Tensor } from '../tensor.js';
import type { Conv2d as NativeConv2d } from '../wasm/inception_wasm.js';
import { BatchNorm2d } from './batchnorm.js';
import { deferInit, initDeferred, initNew, takeSeed } from './init.js';
import { type LayerRow, Module, numelOf, type ParameterInfo } from './module.js';

/** Activation fused into a layer's output (computed in the GEMM epilogue, no extra pass). */
export type Activation = 'relu' | null;

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  /** @defaultValue 1 */
  stride?: Pair;
  /** Zero padding on each side. @defaultValue 0 */
  padding?: Pair;
  /** @defaultValue true */
  bias?: boolean;
  /** ReLU fused into the output. @defaultValue null */
  activation?: Activation;
  /** Seed of the deterministic initialisation. @defaultValue the next of `manualSeed`'s sequence */
  seed?: number;
  /**
   * How to compute it: `'auto'` follows the kernel-selection table, per input size (3×3
   * stride-1 convolutions with ≥ 8 input channels: Winograd F(4×4,3×3) when the output's
   * smaller side is ≥ 11, F(2×2,3×3) from 3 to 10; im2col + GEMM for everything else);
   * the others force one (for benchmarks and tests; Winograd only fits 3×3 stride 1 and
   * falls back to the GEMM elsewhere). `algorithmFor(h, w)` tells which runs.
   * @defaultValue 'auto'
   */
  algorithm?: ConvAlgorithm;
}

/** `'gemm'`: im2col + GEMM (1×1: GEMM on the input); `'winograd2'` / `'winograd4'`: Winograd F(2×2,3×3) / F(4×4,3×3). */
export type ConvAlgorithm = 'auto' | 'gemm' | 'winograd2' | 'winograd4';
const ALGORITHMS: readonly ConvAlgorithm[] = ['auto', 'gemm', 'winograd2', 'winograd4'];

export function checkActivation(op: string, a: unknown): Activation {
  if (a === undefined || a === null) return null;
  if (a !== 'relu') throw new ValueError(op, `activation must be 'relu' or null, but got ${JSON.stringify(a)}`);
  return a;
}

/**
 * 2-D convolution over NCHW float32 (cross-correlation, zero padding), as PyTorch's
 * `nn.Conv2d` with `groups = 1`. Weights are packed for the GEMM once, when loaded; a
 * 1×1 stride-1 convolution runs as a GEMM straight on its input.
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly hasBias: boolean;
  readonly activation: Activation;
  /** The requested algorithm (see {@link Conv2dOptions.algorithm}). */
  readonly requestedAlgorithm: ConvAlgorithm;
  #native: NativeConv2d | undefined;

  /** @param initialise - false when a subclass initialises after its own fields are set */
  constructor(options: Conv2dOptions, initialise = true) {
    super();
    const op = 'Conv2d';
    this.inChannels = checkInt(op, 'inChannels', options.inChannels);
    this.outChannels = checkInt(op, 'outChannels', options.outChannels);
    this.kernelSize = checkPair(op, 'kernelSize', options.kernelSize);
    this.stride = checkPair(op, 'stride', options.stride ?? 1);
    this.padding = checkPair(op, 'padding', options.padding ?? 0, 0);
    this.hasBias = options.bias ?? true;
    this.activation = checkActivation(op, options.activation);
    const algorithm = options.algorithm ?? 'auto';
    if (!ALGORITHMS.includes(algorithm)) throw new ValueError(op, `algorithm must be one of ${ALGORITHMS.join(', ')}, but got ${JSON.stringify(algorithm)}`);
    this.requestedAlgorithm = algorithm;
    checkNumel(op, 'weight shape', [this.outChannels, this.inChannels, ...this.kernelSize]);
    if (initialise && !initDeferred()) initNew(this, { seed: takeSeed(options.seed) });
  }

  protected override ownParameters(): ParameterInfo[] {
    const [kh, kw] = this.kernelSize;
    const params: ParameterInfo[] = [{ name: 'weight', shape: [this.outChannels, this.inChannels, kh, kw], kind: 'conv_weight' }];
    if (this.hasBias) params.push({ name: 'bias', shape: [this.outChannels], kind: 'conv_bias' });
    return params;
  }

  /**
   * The kernels' copy of the weights (packed for the GEMM, with Winograd's transforms made
   * per input size): built from the parameters, again after they change.
   */
  protected packNative(): NativeConv2d {
    const bias = this.hasBias ? this.param('bias').data.toArray() : undefined;
    return this.buildNative(this.param('weight').data, bias);
  }

  /** A packed native layer of this geometry from OIHW `weight` and `bias`. */
  protected buildNative(weight: Tensor, bias: Float32Array | undefined): NativeConv2d {
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    return call(this.op, (glue) => track(new glue.Conv2d(weight._native(this.op), bias, this.inChannels, this.outChannels, kh, kw, sh, sw, ph, pw, this.requestedAlgorithm)));
  }

  /**
   * The algorithm this layer runs on an input of `height × width` (with `'auto'` it
   * depends on the size: see {@link Conv2dOptions.algorithm}).
   */
  algorithmFor(height: number, width: number): Exclude<ConvAlgorithm, 'auto'> {
    this.outputShape([1, this.inChannels, height, width]);
    return call(this.op, () => this.#live().algorithmFor(height, width)) as Exclude<ConvAlgorithm, 'auto'>;
  }

  protected override release(): void {
    this.#native?.free();
    this.#native = undefined;
  }

  override outputShape(input: readonly number[]): number[] {
    const [n, , h, w] = this.checkNCHW(input, this.inChannels);
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    if (h + 2 * ph < kh || w + 2 * pw < kw) {
      throw new ShapeError(this.op, `input ${h}×${w} (padded ${h + 2 * ph}×${w + 2 * pw}) is smaller than the ${kh}×${kw} kernel`);
    }
    return [n, this.outChannels, Math.floor((h + 2 * ph - kh) / sh) + 1, Math.floor((w + 2 * pw - kw) / sw) + 1];
  }

  protected override macs(input: readonly number[], output: readonly number[]): number {
    const [n, co, oh, ow] = output as [number, number, number, number];
    return n * co * oh * ow * input[1]! * this.kernelSize[0] * this.kernelSize[1];
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(this.outputShape(x.shape));
    this.lowerInto(plan, x, out, 0);
    return out;
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lowerInto(plan: PlanBuilder, x: Value, out: Value, channelOffset: number): void {
    this.lowerFused(plan, x, out, channelOffset, false);
  }

  /** `lowerInto` with a ReLU fused even when this layer has none (Sequential's Conv2d→ReLU fusion). */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  lowerFused(plan: PlanBuilder, x: Value, out: Value, channelOffset: number, relu: boolean): void {
    relu ||= this.activation === 'relu';
    if (plan.recording) plan.conv(this, this.param('weight'), this.hasBias ? this.param('bias') : undefined, x, relu, out, channelOffset);
    else plan.conv(this.#live(), x, relu, out, channelOffset);
  }

  #live(): NativeConv2d {
    this.checkLive('use its weights');
    if (this.takeStale() || this.#native === undefined) {
      const fresh = this.packNative();
      this.#native?.free();
      this.#native = fresh;
    }
    return this.#native;
  }
}

export interface BasicConv2dOptions extends Omit<Conv2dOptions, 'bias' | 'activation'> {
  /** BatchNorm's epsilon (torchvision's GoogLeNet uses 1e-3). @defaultValue 1e-3 */
  eps?: number;
}

/**
 * torchvision's `BasicConv2d`: `conv` (a {@link Conv2d} without bias) → `bn` (a
 * {@link BatchNorm2d}) → ReLU, with its children's state-dict keys `conv.weight`,
 * `bn.weight`, `bn.bias`, `bn.running_mean`, `bn.running_var`. Inference runs one
 * convolution: BatchNorm is folded into a packed copy of the weights (`w·γ/√(σ²+ε)`, bias
 * `β − μ·γ/√(σ²+ε)`, in float64), made again whenever the children's values change.
 * Training runs them unfolded (batch statistics in training mode, running-stat updates).
 */
export class BasicConv2d extends Conv2d {
  readonly eps: number;
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(options: BasicConv2dOptions) {
    super({ ...options, bias: false, activation: 'relu' }, false);
    const eps = options.eps ?? 1e-3;
    if (!(eps > 0 && Number.isFinite(eps))) throw new ValueError('BasicConv2d', `eps must be a positive number, but got ${eps}`);
    this.eps = eps;
    const { inChannels, outChannels, kernelSize, stride, padding, algorithm } = options;
    [this.conv, this.bn] = deferInit(() => [
      this.addModule('conv', new Conv2d({ inChannels, outChannels, kernelSize, stride, padding, algorithm, bias: false })),
      this.addModule('bn', new BatchNorm2d(outChannels, { eps })),
    ]);
    if (!initDeferred()) initNew(this, { seed: takeSeed(options.seed) });
  }

  /** Its children own the parameters. */
  protected override ownParameters(): ParameterInfo[] {
    return [];
  }

  /** The folded convolution: `conv.weight` scaled by `bn`, with `bn`'s shift as the bias. */
  protected override packNative(): NativeConv2d {
    const folded = Tensor.fromArray(this.conv._parameters().get('weight')!.data.data, [this.conv.outChannels * this.conv.inChannels * this.kernelSize[0] * this.kernelSize[1]]);
    try {
      const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => this.bn._parameters().get(k)!.data._native(this.op));
      const bias = call(this.op, (glue) => glue.foldBatchNorm(folded._native(this.op), gamma!, beta!, mean!, variance!, this.eps));
      return this.buildNative(folded, bias);
    } finally {
      folded.dispose();
    }
  }

  /** One row, as one layer (its children run as one kernel at inference). */
  override trace(input: readonly number[], emit: (row: LayerRow) => void): number[] {
    const outputShape = this.outputShape(input);
    const params = [this.conv, this.bn].reduce((n, m) => n + m.namedStateEntries().reduce((s, [, p]) => s + numelOf(p.shape), 0), 0);
    emit({ name: this.path || this.constructor.name, type: this.constructor.name, inputShape: [...input], outputShape, params, macs: this.macs(input, outputShape) });
    return outputShape;
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lowerFused(plan: PlanBuilder, x: Value, out: Value, channelOffset: number, relu: boolean): void {
    if (!plan.recording) return super.lowerFused(plan, x, out, channelOffset, relu);
    const y = plan.value(this.conv.outputShape(x.shape));
    this.conv.lowerFused(plan, x, y, 0, false);
    this.bn._record(plan, y, true, out, channelOffset);
  }
}
