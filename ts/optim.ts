/**
 * Optimisers with PyTorch 1.13's semantics, stepping every parameter in one WebAssembly
 * call (crates/kernels/src/train/optim.rs): `SGD` (momentum, dampening, Nesterov, weight
 * decay), `Adam` (L2 weight decay added to the gradient, amsgrad) and `AdamW` (decoupled
 * weight decay). A parameter without a gradient yet is skipped, as PyTorch skips
 * `p.grad is None`. State saves and restores with `stateDict()` / `loadStateDict()` (and
 * with the weights in one safetensors file: `saveCheckpoint` / `loadCheckpoint`).
 */
import { call, canFree, generation, track } from './backend.js';
import { StateDictError, ValueError } from './errors.js';
import type { StateTensor } from './nn/module.js';
import { Parameter } from './nn/parameter.js';
import { Tensor } from './tensor.js';
import type { Optimizer as NativeOptimizer } from './wasm/inception_wasm.js';

/** Hyperparameters as PyTorch's `param_groups[0]` holds them (without `params`). */
export type Hyperparameters = Readonly<Record<string, number | boolean | readonly number[]>>;

/** An optimiser's state, PyTorch's shape: per parameter index its buffers and `step`, and the hyperparameters. */
export interface OptimizerStateDict {
  /** Parameter index (in the order given to the constructor) → its state: `step` and the buffers (`momentum_buffer`; `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`). */
  readonly state: ReadonlyMap<number, Readonly<Record<string, StateTensor>>>;
  /** One group: the hyperparameters and the parameter indices. */
  readonly paramGroups: readonly [Hyperparameters & { readonly params: readonly number[] }];
}

function checkNumber(op: string, what: string, v: unknown, min: number, max = Infinity, minOpen = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (minOpen && v === min)) {
    throw new ValueError(op, `${what} must be a number ${minOpen ? '>' : '≥'} ${min}${max === Infinity ? '' : ` and ≤ ${max}`}, but got ${String(v)}`);
  }
  return v;
}

export abstract class Optimizer {
  /** The parameters, in the order given (the indices of `stateDict()`). */
  readonly params: readonly Parameter[];
  #lr: number;
  #native: NativeOptimizer | undefined;
  #generation = 0;
  /** State buffer names, in the native order. */
  protected abstract readonly bufferNames: readonly string[];

  protected constructor(params: Iterable<Parameter>, lr: number) {
    const op = new.target.name;
    const list = [...(params ?? [])];
    if (list.length === 0) throw new ValueError(op, 'got an empty parameter list');
    const seen = new Set<Parameter>();
    for (const p of list) {
      if (!(p instanceof Parameter)) throw new ValueError(op, `parameters must be Parameters (model.parameters()), but got ${String(p)}`);
      if (p.buffer) throw new ValueError(op, `${p.name} is a buffer, not a learnable parameter`);
      if (seen.has(p)) throw new ValueError(op, `${p.name} appears twice in the parameter list`);
      seen.add(p);
    }
    this.params = Object.freeze(list);
    this.#lr = checkNumber(op, 'lr', lr, 0);
  }

  /** The learning rate (settable between steps, for schedules). */
  get lr(): number {
    return this.#lr;
  }

  set lr(v: number) {
    this.#lr = checkNumber(this.constructor.name, 'lr', v, 0);
  }

  protected native(): NativeOptimizer {
    const op = this.constructor.name;
    if (this.#native === undefined || !canFree(this.#generation)) {
      this.#native = call(op, (glue) => {
        const native = track(new glue.Optimizer());
        for (const p of this.params) native.add(p.data._native(op), p._gradSlot());
        return native;
      });
      this.#generation = generation();
    }
    return this.#native;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    const op = `${this.constructor.name}.step`;
    const native = this.native();
    call(op, () => this.update(native));
    const owners = new Set(this.params.filter((p) => p.grad !== null).map((p) => p._owner));
    for (const m of owners) m._markStale();
  }

  protected abstract update(native: NativeOptimizer): void;

  /** The hyperparameters, as PyTorch names them. */
  protected abstract hyperparameters(): Hyperparameters;

  /** Zeroes every parameter's gradient (PyTorch 1.13's `zero_grad()`). */
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** A copy of the state (see {@link OptimizerStateDict}). */
  stateDict(): OptimizerStateDict {
    const native = this.native();
    const op = `${this.constructor.name}.stateDict`;
    const state = new Map<number, Record<string, StateTensor>>();
    this.params.forEach((p, i) => {
      const count = native.stateCount(i);
      const step = native.stepCount(i);
      if (step === 0) return;
      const entry: Record<string, StateTensor> = { step: { shape: [], data: new Float32Array([step]) } };
      for (let j = 0; j < count; j++) entry[this.bufferNames[j]!] = { shape: [...p.shape], data: call(op, () => native.state(i, j)) };
      state.set(i, entry);
    });
    return { state, paramGroups: [{ ...this.hyperparameters(), lr: this.#lr, params: this.params.map((_, i) => i) }] };
  }

  /** Restores a state from `stateDict()` (the same parameters, in the same order); checked before anything changes. */
  loadStateDict(dict: OptimizerStateDict): void {
    const op = `${this.constructor.name}.loadStateDict`;
    const group = dict?.paramGroups?.[0];
    if (!(dict?.state instanceof Map) || group === undefined) throw new StateDictError(op, '', 'expected { state: Map, paramGroups: [group] } as stateDict() returns');
    if (group.params?.length !== this.params.length) throw new StateDictError(op, 'params', `the state is for ${group.params?.length} parameters, this optimiser has ${this.params.length}`);
    const restored: [number, number, Tensor[]][] = [];
    try {
      for (const [i, entry] of dict.state) {
        const p = this.params[i];
        if (p === undefined) throw new StateDictError(op, String(i), `no parameter ${i}`);
        const step = entry.step?.data[0];
        if (step === undefined || !Number.isInteger(step) || step < 1) throw new StateDictError(op, `${i}.step`, `step must be a positive integer, but got ${step}`);
        const names = this.bufferNames.filter((n) => entry[n] !== undefined);
        const buffers = names.map((n) => {
          const t = entry[n]!;
          if (t.data.length !== p.data.numel) throw new StateDictError(op, `${i}.${n}`, `has ${t.data.length} values, ${p.name} has ${p.data.numel}`);
          return Tensor.fromArray(t.data, [t.data.length]);
        });
        if (names.some((n, j) => n !== this.bufferNames[j])) throw new StateDictError(op, String(i), `buffers [${names.join(', ')}] are not a prefix of [${this.bufferNames.join(', ')}]`);
        restored.push([i, step, buffers]);
      }
      const hyper = { ...group } as Record<string, unknown>;
      delete hyper.params;
      this.setHyperparameters(hyper);
      const native = this.native();
      for (const [i, step, buffers] of restored) call(op, () => native.setState(i, step, buffers.map((b) => b._native(op).share())));
    } finally {
      for (const [, , buffers] of restored) for (const b of buffers) b.dispose();
    }
  }

  /** Takes the hyperparameters of a saved state (validated as the constructor does). */
  protected abstract setHyperparameters(h: Record<string, unknown>): void;

  /** Frees the optimiser's state. */
  dispose(): void {
    if (this.#native !== undefined && canFree(this.#generation)) this.#native.free();
    this.#native = undefined;
  }
}

export interface SGDOptions {
  lr: number;
  /** @defaultValue 0 */
  momentum?: number;
  /** @defaultValue 0 */
  dampening?: number;
  /** @defaultValue false */
  nesterov?: boolean;
  /** L2 penalty added to the gradient. @defaultValue 0 */
  weightDecay?: number;
}

/** `torch.optim.SGD`. */
export class SGD extends Optimizer {
  momentum = 0;
  dampening = 0;
  nesterov = false;
  weightDecay = 0;
  protected readonly bufferNames = ['momentum_buffer'];

  constructor(params: Iterable<Parameter>, options: SGDOptions) {
    super(params, options?.lr);
    this.setHyperparameters({ momentum: 0, dampening: 0, nesterov: false, weight_decay: 0, ...renamed(options) });
  }

  protected override setHyperparameters(h: Record<string, unknown>): void {
    const op = 'SGD';
    if (h.lr !== undefined) this.lr = h.lr as number;
    this.momentum = checkNumber(op, 'momentum', h.momentum, 0);
    this.dampening = checkNumber(op, 'dampening', h.dampening, 0);
    this.weightDecay = checkNumber(op, 'weightDecay', h.weight_decay, 0);
    this.nesterov = h.nesterov === true;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new ValueError(op, 'Nesterov momentum requires a momentum and zero dampening');
  }

  protected override update(native: NativeOptimizer): void {
    native.sgd(this.lr, this.momentum, this.dampening, this.nesterov, this.weightDecay);
  }

  protected override hyperparameters(): Hyperparameters {
    return { lr: this.lr, momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov, weight_decay: this.weightDecay };
  }
}

export interface AdamOptions {
  /** @defaultValue 1e-3 */
  lr?: number;
  /** @defaultValue [0.9, 0.999] */
  betas?: readonly [number, number];
  /** @defaultValue 1e-8 */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0); AdamW: decoupled decay (default 1e-2). */
  weightDecay?: number;
  /** @defaultValue false */
  amsgrad?: boolean;
}

/** `torch.optim.Adam`. */
export class Adam extends Optimizer {
  betas: readonly [number, number] = [0.9, 0.999];
  eps = 1e-8;
  weightDecay = 0;
  amsgrad = false;
  protected readonly bufferNames = ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'];
  /** AdamW: weight decay applied to the weights, not added to the gradient. */
  protected readonly decoupled: boolean = false;

  constructor(params: Iterable<Parameter>, options: AdamOptions = {}) {
    super(params, options.lr ?? 1e-3);
    this.setHyperparameters({ betas: [0.9, 0.999], eps: 1e-8, weight_decay: new.target === AdamW ? 1e-2 : 0, amsgrad: false, ...renamed(options) });
  }

  protected override setHyperparameters(h: Record<string, unknown>): void {
    const op = this.constructor.name;
    if (h.lr !== undefined) this.lr = h.lr as number;
    const betas = h.betas as readonly number[] | undefined;
    if (!Array.isArray(betas) || betas.length !== 2) throw new ValueError(op, `betas must be [beta1, beta2], but got ${JSON.stringify(betas)}`);
    this.betas = [checkNumber(op, 'betas[0]', betas[0], 0, 1 - Number.EPSILON), checkNumber(op, 'betas[1]', betas[1], 0, 1 - Number.EPSILON)];
    this.eps = checkNumber(op, 'eps', h.eps, 0);
    this.weightDecay = checkNumber(op, 'weightDecay', h.weight_decay, 0);
    this.amsgrad = h.amsgrad === true;
  }

  protected override update(native: NativeOptimizer): void {
    native.adam(this.lr, this.betas[0], this.betas[1], this.eps, this.weightDecay, this.amsgrad, this.decoupled);
  }

  protected override hyperparameters(): Hyperparameters {
    return { lr: this.lr, betas: this.betas, eps: this.eps, weight_decay: this.weightDecay, amsgrad: this.amsgrad };
  }
}

/** `torch.optim.AdamW`: Adam with decoupled weight decay (`p ← p·(1 − lr·weightDecay)` before the update). */
export class AdamW extends Adam {
  protected override readonly decoupled = true;
}

/** Options in camelCase → PyTorch's names (what stateDict() stores). */
function renamed(options: object | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined) out[k === 'weightDecay' ? 'weight_decay' : k] = v;
  return out;
}
