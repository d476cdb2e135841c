import { checkPair, type Pair, ShapeError, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { Module } from './module.js';

export interface Pool2dOptions {
  kernelSize: Pair;
  /** @defaultValue kernelSize */
  stride?: Pair;
  /** Implicit padding on each side (−∞ for max, zeros for average); at most half the kernel. @defaultValue 0 */
  padding?: Pair;
  /** PyTorch's `ceil_mode`: round the output size up (the last window may be partial). @defaultValue false */
  ceilMode?: boolean;
}

/**
 * PyTorch's pooling output size (ATen's `pooling_output_shape`), including ceil mode's
 * "last window must start inside" rule. It may be below 1, which PyTorch refuses; the
 * padded input may be smaller than the kernel (by up to `s − 1` in ceil mode), which it
 * accepts.
 */
export function poolOutSize(len: number, k: number, s: number, pad: number, ceil: boolean): number {
  const span = len + 2 * pad - k;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= len + pad) out -= 1;
  return out;
}

/** Shared by MaxPool2d and AvgPool2d: geometry, validation and the kernel call. */
abstract class Pool2d extends Module {
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly ceilMode: boolean;

  constructor(options: Pool2dOptions) {
    super();
    const op = new.target.name;
    this.kernelSize = checkPair(op, 'kernelSize', options.kernelSize);
    this.stride = checkPair(op, 'stride', options.stride ?? options.kernelSize);
    this.padding = checkPair(op, 'padding', options.padding ?? 0, 0);
    this.ceilMode = options.ceilMode ?? false;
    if (2 * this.padding[0] > this.kernelSize[0] || 2 * this.padding[1] > this.kernelSize[1]) {
      throw new ValueError(op, `padding must be at most half the kernel size, but got padding [${this.padding.join(', ')}] for kernel [${this.kernelSize.join(', ')}]`);
    }
  }

  override outputShape(input: readonly number[]): number[] {
    const [n, c, h, w] = this.checkNCHW(input);
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    const [oh, ow] = [poolOutSize(h, kh, sh, ph, this.ceilMode), poolOutSize(w, kw, sw, pw, this.ceilMode)];
    if (oh < 1 || ow < 1) {
      const geometry = `kernel ${kh}×${kw}, stride ${sh}×${sw}, padding ${ph}×${pw}${this.ceilMode ? ', ceil mode' : ''}`;
      throw new ShapeError(this.op, `input ${h}×${w} gives a ${oh}×${ow} output (${geometry}); the output must be at least 1×1`);
    }
    return [n, c, oh, ow];
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(this.outputShape(x.shape));
    this.lowerPool(plan, x, out);
    return out;
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected abstract lowerPool(plan: PlanBuilder, x: Value, out: Value): void;
}

/** `nn.MaxPool2d` (padding never wins the max). */
export class MaxPool2d extends Pool2d {
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected override lowerPool(plan: PlanBuilder, x: Value, out: Value): void {
    plan.maxPool2d(x, this, out);
  }
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Count padded zeros in the divisor, as PyTorch does by default. @defaultValue true */
  countIncludePad?: boolean;
}

/** `nn.AvgPool2d`. */
export class AvgPool2d extends Pool2d {
  readonly countIncludePad: boolean;

  constructor(options: AvgPool2dOptions) {
    super(options);
    this.countIncludePad = options.countIncludePad ?? true;
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected override lowerPool(plan: PlanBuilder, x: Value, out: Value): void {
    plan.avgPool2d(x, this, this.countIncludePad, out);
  }
}

/** `nn.AdaptiveAvgPool2d(outputSize)`: windows `[⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉)`, possibly overlapping. */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: readonly [number, number];

  constructor(outputSize: Pair) {
    super();
    this.outputSize = checkPair('AdaptiveAvgPool2d', 'outputSize', outputSize);
  }

  override outputShape(input: readonly number[]): number[] {
    const [n, c] = this.checkNCHW(input);
    return [n, c, ...this.outputSize];
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(this.outputShape(x.shape));
    plan.adaptiveAvgPool2d(x, out);
    return out;
  }
}
