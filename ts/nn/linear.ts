import { call, track } from '../backend.js';
import { checkInt, ShapeError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { checkNumel } from '../tensor.js';
import type { Linear as NativeLinear } from '../wasm/inception_wasm.js';
import { initDeferred, initNew, takeSeed } from './init.js';
import { Module, type ParameterInfo } from './module.js';

export interface LinearOptions {
  inFeatures: number;
  outFeatures: number;
  /** @defaultValue true */
  bias?: boolean;
  /** Seed of the deterministic initialisation. @defaultValue the next of `manualSeed`'s sequence */
  seed?: number;
}

/** `nn.Linear`: `y = x·Wᵀ + b` on `[N, inFeatures]`. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: boolean;
  #native: NativeLinear | undefined;

  constructor(options: LinearOptions) {
    super();
    this.inFeatures = checkInt('Linear', 'inFeatures', options.inFeatures);
    this.outFeatures = checkInt('Linear', 'outFeatures', options.outFeatures);
    this.hasBias = options.bias ?? true;
    checkNumel('Linear', 'weight shape', [this.outFeatures, this.inFeatures]);
    if (!initDeferred()) initNew(this, { seed: takeSeed(options.seed) });
  }

  protected override ownParameters(): ParameterInfo[] {
    const params: ParameterInfo[] = [{ name: 'weight', shape: [this.outFeatures, this.inFeatures], kind: 'linear_weight' }];
    if (this.hasBias) params.push({ name: 'bias', shape: [this.outFeatures], kind: 'linear_bias' });
    return params;
  }

  protected override release(): void {
    this.#native?.free();
    this.#native = undefined;
  }

  override outputShape(input: readonly number[]): number[] {
    if (input.length !== 2) throw new ShapeError(this.op, `input must be rank 2 [N, ${this.inFeatures}], but got rank ${input.length} [${input.join(', ')}]`);
    if (input[1] !== this.inFeatures) throw new ShapeError(this.op, `input must have ${this.inFeatures} features, but got ${input[1]}`);
    return [input[0]!, this.outFeatures];
  }

  protected override macs(input: readonly number[]): number {
    return input[0]! * this.inFeatures * this.outFeatures;
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    const out = plan.value(this.outputShape(x.shape));
    if (plan.recording) plan.linear(this.param('weight'), this.hasBias ? this.param('bias') : undefined, x, out);
    else plan.linear(this.#live(), x, out);
    return out;
  }

  /** The kernels' copy of the weights, made again after the parameters change. */
  #live(): NativeLinear {
    this.checkLive('use its weights');
    if (this.takeStale() || this.#native === undefined) {
      const bias = this.hasBias ? this.param('bias').data.toArray() : undefined;
      const fresh = call(this.op, (glue) => track(new glue.Linear(this.param('weight').data._native(this.op), bias, this.inFeatures, this.outFeatures)));
      this.#native?.free();
      this.#native = fresh;
    }
    return this.#native;
  }
}
