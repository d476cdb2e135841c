import { checkInt, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import type { BatchNormState, GraphBuilder } from '../train/record.js';
import { initDeferred, initNew, takeSeed } from './init.js';
import { Module, type ParameterInfo } from './module.js';

export interface BatchNorm2dOptions {
  /** Added to the variance. @defaultValue 1e-5 (torchvision's GoogLeNet: 1e-3) */
  eps?: number;
  /** Weight of the new batch's statistics in the running ones. @defaultValue 0.1 */
  momentum?: number;
}

/**
 * `nn.BatchNorm2d` over `[N, C, H, W]`: `(x − μ)/√(σ² + ε)·γ + β` per channel. In eval mode
 * μ and σ² are the running statistics (at inference a per-channel affine; inside a
 * `BasicConv2d` folded into the convolution). In training mode they are the batch's
 * (biased variance), and the running ones move towards them with `momentum`, using the
 * unbiased variance, as in PyTorch. Parameters `weight` (γ), `bias` (β); buffers
 * `running_mean`, `running_var`.
 */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;

  constructor(numFeatures: number, options: BatchNorm2dOptions = {}) {
    super();
    const op = 'BatchNorm2d';
    this.numFeatures = checkInt(op, 'numFeatures', numFeatures);
    const { eps = 1e-5, momentum = 0.1 } = options;
    if (!(eps > 0 && Number.isFinite(eps))) throw new ValueError(op, `eps must be a positive number, but got ${eps}`);
    if (!(momentum >= 0 && momentum <= 1)) throw new ValueError(op, `momentum must be in [0, 1], but got ${momentum}`);
    this.eps = eps;
    this.momentum = momentum;
    if (!initDeferred()) initNew(this, { seed: takeSeed(undefined) });
  }

  protected override ownParameters(): ParameterInfo[] {
    const c = [this.numFeatures];
    return [
      { name: 'weight', shape: c, kind: 'bn_weight' },
      { name: 'bias', shape: c, kind: 'bn_bias' },
      { name: 'running_mean', shape: c, kind: 'bn_running_mean', buffer: true },
      { name: 'running_var', shape: c, kind: 'bn_running_var', buffer: true },
    ];
  }

  protected override checkValues(values: ReadonlyMap<string, Float32Array>, fail: (name: string, message: string) => never): void {
    const variance = values.get('running_var')!;
    const bad = variance.findIndex((v) => !(v + this.eps > 0) || !Number.isFinite(v));
    if (bad >= 0) fail('running_var', `holds ${variance[bad]} at channel ${bad}; variances must be finite and > −eps`);
  }

  override outputShape(input: readonly number[]): number[] {
    return [...this.checkNCHW(input, this.numFeatures)];
  }

  /** @internal Records this layer on `x` into channels `[offset, …)` of `out`, then ReLU when `relu`. */
  _record(plan: GraphBuilder, x: Value, relu: boolean, out: Value, offset: number): void {
    const [n, , h, w] = x.shape as [number, number, number, number];
    if (this.training && n * h * w < 2) throw new ValueError(this.op, `training needs more than one value per channel, but the input is [${x.shape.join(', ')}]`);
    const p = (name: string) => this.param(name);
    const state: BatchNormState = { weight: p('weight'), bias: p('bias'), runningMean: p('running_mean'), runningVar: p('running_var'), eps: this.eps, momentum: this.momentum, training: this.training, owner: this };
    plan.batchNorm(state, x, relu, out, offset);
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(x.shape);
    if (plan.recording) {
      this._record(plan, x, false, out, 0);
    } else {
      // Eval: the per-channel affine, its scale and shift in float64 from the parameters.
      const [g, b, m, v] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => this.param(k).data.data);
      const scale = new Float32Array(this.numFeatures);
      const shift = new Float32Array(this.numFeatures);
      for (let c = 0; c < this.numFeatures; c++) {
        const s = g![c]! / Math.sqrt(v![c]! + this.eps);
        scale[c] = s;
        shift[c] = b![c]! - m![c]! * s;
      }
      plan.channelAffine(x, scale, shift, out);
    }
    return out;
  }
}
