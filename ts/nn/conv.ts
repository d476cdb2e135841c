import { call, track } from '../backend.js';
import { checkInt, checkPair, type Pair, ShapeError, ValueError } from '../errors.js';
import { checkNumel } from '../tensor.js';
import type { PlanBuilder, Value } from '../plan.js';
import type { Tensor } from '../tensor.js';
import type { Conv2d as NativeConv2d } from '../wasm/inception_wasm.js';
import { initDeferred, initNew, takeSeed } from './init.js';
import { Module, type ParameterInfo } from './module.js';

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

  protected override readParameters(): Map<string, Float32Array> {
    const { weight, bias } = this.unpack();
    const out = new Map([['weight', weight]]);
    if (bias) out.set('bias', bias);
    return out;
  }

  protected override writeParameters(values: ReadonlyMap<string, Tensor>): void {
    this.pack(values.get('weight')!, values.get('bias')?.toArray());
  }

  /** Packs `weight` (OIHW) and `bias` for the kernels, replacing the current ones. */
  protected pack(weight: Tensor, bias: Float32Array | undefined): void {
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    const packed = call(this.op, (glue) => track(new glue.Conv2d(weight._native(this.op), bias, this.inChannels, this.outChannels, kh, kw, sh, sw, ph, pw, this.requestedAlgorithm)));
    this.#native?.free();
    this.#native = packed;
  }

  /**
   * The algorithm this layer runs on an input of `height × width` (with `'auto'` it
   * depends on the size: see {@link Conv2dOptions.algorithm}).
   */
  algorithmFor(height: number, width: number): Exclude<ConvAlgorithm, 'auto'> {
    this.outputShape([1, this.inChannels, height, width]);
    return call(this.op, () => this.#live().algorithmFor(height, width)) as Exclude<ConvAlgorithm, 'auto'>;
  }

  /** The packed weights, unpacked to OIHW (for saving; never on the hot path). */
  protected unpack(): { weight: Float32Array; bias: Float32Array | undefined } {
    const n = this.#live();
    return call(this.op, () => ({ weight: n.weights(), bias: n.bias() }));
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
    plan.conv(this.#live(), x, relu || this.activation === 'relu', out, channelOffset);
  }

  #live(): NativeConv2d {
    this.checkLive('use its weights');
    if (this.#native === undefined) throw new ValueError(this.op, 'weights are not initialised');
    return this.#native;
  }
}

export interface BasicConv2dOptions extends Omit<Conv2dOptions, 'bias' | 'activation'> {
  /** BatchNorm's epsilon (torchvision's GoogLeNet uses 1e-3). @defaultValue 1e-3 */
  eps?: number;
}

/**
 * torchvision's `BasicConv2d`: conv (no bias) → BatchNorm2d (eval) → ReLU, with the
 * state-dict keys `conv.weight`, `bn.weight`, `bn.bias`, `bn.running_mean`,
 * `bn.running_var`. BatchNorm is folded into the convolution when weights are loaded
 * (`w·γ/√(σ²+ε)`, `β − μ·γ/√(σ²+ε)`, in float64), so inference runs one convolution with
 * bias and fused ReLU and keeps no BatchNorm tensors.
 *
 * `stateDict()` therefore returns the folded layer in BatchNorm form: `conv.weight` the
 * folded weights, `bn.bias` the folded bias, `bn.weight = 1`, `bn.running_mean = 0`,
 * `bn.running_var = 1 − ε` — the same function, exactly (it folds back bit for bit).
 */
export class BasicConv2d extends Conv2d {
  readonly eps: number;

  constructor(options: BasicConv2dOptions) {
    super({ ...options, bias: true, activation: 'relu' }, false);
    const eps = options.eps ?? 1e-3;
    if (!(eps > 0 && Number.isFinite(eps))) throw new ValueError('BasicConv2d', `eps must be a positive number, but got ${eps}`);
    this.eps = eps;
    if (!initDeferred()) initNew(this, { seed: takeSeed(options.seed) });
  }

  protected override ownParameters(): ParameterInfo[] {
    const [kh, kw] = this.kernelSize;
    const c = [this.outChannels];
    return [
      { name: 'conv.weight', shape: [this.outChannels, this.inChannels, kh, kw], kind: 'conv_weight' },
      { name: 'bn.weight', shape: c, kind: 'bn_weight' },
      { name: 'bn.bias', shape: c, kind: 'bn_bias' },
      { name: 'bn.running_mean', shape: c, kind: 'bn_running_mean', buffer: true },
      { name: 'bn.running_var', shape: c, kind: 'bn_running_var', buffer: true },
    ];
  }

  protected override readParameters(): Map<string, Float32Array> {
    const { weight, bias } = this.unpack();
    const c = this.outChannels;
    return new Map([
      ['conv.weight', weight],
      ['bn.weight', new Float32Array(c).fill(1)],
      ['bn.bias', bias!],
      ['bn.running_mean', new Float32Array(c)],
      ['bn.running_var', new Float32Array(c).fill(1 - this.eps)],
    ]);
  }

  protected override checkValues(values: ReadonlyMap<string, Float32Array>, fail: (name: string, message: string) => never): void {
    const variance = values.get('bn.running_var')!;
    const bad = variance.findIndex((v) => !(v + this.eps > 0) || !Number.isFinite(v));
    if (bad >= 0) fail('bn.running_var', `holds ${variance[bad]} at channel ${bad}; variances must be finite and > −eps`);
  }

  protected override writeParameters(values: ReadonlyMap<string, Tensor>): void {
    const [w, gamma, beta, mean, variance] = ['conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'].map((k) => values.get(k)!._native(this.op));
    // Folded in place: `values` are this load's own copies.
    const bias = call(this.op, (glue) => glue.foldBatchNorm(w!, gamma!, beta!, mean!, variance!, this.eps));
    this.pack(values.get('conv.weight')!, bias);
  }
}
