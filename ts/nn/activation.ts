import { ShapeError, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { Module } from './module.js';

/** Layers whose output has the input's shape (any rank). */
abstract class Elementwise extends Module {
  override outputShape(input: readonly number[]): number[] {
    return [...input];
  }
}

/** `nn.ReLU`. After a Conv2d inside a Sequential it is fused into the convolution. */
export class ReLU extends Elementwise {
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(x.shape);
    plan.relu(x, out);
    return out;
  }
}

/**
 * `nn.Dropout`: the identity in eval mode. In training mode each element is zeroed with
 * probability `p` and the rest scaled by `1/(1 − p)`, with a fresh mask every forward
 * drawn from `manualSeed`'s sequence (the same seeds give the same masks).
 */
export class Dropout extends Elementwise {
  readonly p: number;

  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ValueError('Dropout', `p must be in [0, 1], but got ${p}`);
    this.p = p;
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    if (!plan.recording || !this.training || this.p === 0) return x;
    const out = plan.value(x.shape);
    plan.dropout(this.p, x, out);
    return out;
  }
}

/** `torch.flatten(x, 1)`: `[N, C, H, W] → [N, C·H·W]`. */
export class Flatten extends Module {
  override outputShape(input: readonly number[]): number[] {
    if (input.length < 2) throw new ShapeError(this.op, `input must have rank ≥ 2, but got rank ${input.length}`);
    return [input[0]!, input.slice(1).reduce((a, b) => a * b, 1)];
  }

  /** The same buffer, read with the new shape. */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(_plan: PlanBuilder, x: Value): Value {
    return { id: x.id, shape: this.outputShape(x.shape) };
  }
}
