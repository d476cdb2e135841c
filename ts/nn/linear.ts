import { call, track } from '../backend.js';
import { checkInt, ShapeError, ValueError } from '../errors.js';
import type { PlanBuilder, Value } from '../plan.js';
import { checkNumel, type Tensor } from '../tensor.js';
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

  protected override readParameters(): Map<string, Float32Array> {
    const n = this.#live();
    return call(this.op, () => {
      const out = new Map([['weight', n.weights()]]);
      if (this.hasBias) out.set('bias', n.bias()!);
      return out;
    });
  }

  protected override writeParameters(values: ReadonlyMap<string, Tensor>): void {
    const fresh = call(this.op, (glue) => track(new glue.Linear(values.get('weight')!._native(this.op), values.get('bias')?.toArray(), this.inFeatures, this.outFeatures)));
    this.#native?.free();
    this.#native = fresh;
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
    plan.linear(this.#live(), x, out);
    return out;
  }

  #live(): NativeLinear {
    this.checkLive('use its weights');
    if (this.#native === undefined) throw new ValueError(this.op, 'weights are not initialised');
    return this.#native;
  }
}
