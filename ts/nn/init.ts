/**
 * Deterministic initialisation: every state-dict entry of a module (parameters and
 * BatchNorm buffers), in state-dict order, gets stream `t` (its index) of the
 * weyl-fmix32 generator — the rule the fixtures use, so `initParameters(model, { seed,
 * weightGain })` rebuilds a fixture's weights exactly. The values are generated inside
 * WebAssembly, straight into the buffers the layers pack from.
 */
import { call } from '../backend.js';
import { ValueError } from '../errors.js';
import { generated, type Tensor } from '../tensor.js';
import { weightScale } from '../weyl.js';
import { numelOf } from '../shape.js';
import type { Module, ParameterInfo } from './module.js';

export interface InitOptions {
  /** @defaultValue 0 */
  seed?: number;
  /**
   * Weights are uniform in `±sqrt(weightGain / fanIn)`: 6 is He/Kaiming for ReLU
   * networks, 3 keeps the variance of a network without activations.
   * @defaultValue 6
   */
  weightGain?: number;
  /** Biases are uniform in `±biasScale`. @defaultValue 0.125 */
  biasScale?: number;
}

function ruleFor(p: ParameterInfo, weightGain: number, biasScale: number) {
  switch (p.kind) {
    case 'conv_weight':
    case 'linear_weight':
      return { offset: 0, scale: weightScale(weightGain, numelOf(p.shape) / p.shape[0]!), abs: false };
    case 'conv_bias':
    case 'linear_bias':
      return { offset: 0, scale: biasScale, abs: false };
    // BatchNorm: γ in [0.75, 1.25), β and μ in ±0.125, σ² in [0.5, 1.5] (fixtures README §1.3)
    case 'bn_weight':
      return { offset: 1, scale: 0.25, abs: false };
    case 'bn_bias':
    case 'bn_running_mean':
      return { offset: 0, scale: 0.125, abs: false };
    case 'bn_running_var':
      return { offset: 0.5, scale: 1, abs: true };
  }
}

/** Re-initialises every parameter of `module` deterministically. */
export function initParameters(module: Module, options: InitOptions = {}): void {
  const { seed = 0, weightGain = 6, biasScale = 0.125 } = options;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ValueError('initParameters', `seed must be an integer in [0, 2^32), but got ${seed}`);
  if (!(weightGain > 0 && Number.isFinite(weightGain))) throw new ValueError('initParameters', `weightGain must be a positive number, but got ${weightGain}`);
  if (!(biasScale >= 0 && Number.isFinite(biasScale))) throw new ValueError('initParameters', `biasScale must be a non-negative number, but got ${biasScale}`);
  reserveForWeights(module);
  let t = 0; // the stream number: the entry's index in state-dict order
  for (const [m, own] of module._stateOwners()) {
    const values = new Map<string, Tensor>();
    try {
      for (const p of own) values.set(p.name, generated(seed, t++, p.shape, ruleFor(p, weightGain, biasScale)));
    } catch (e) {
      for (const v of values.values()) v.dispose();
      throw e;
    }
    m._writeState(values);
  }
}

/**
 * {@link initParameters} for a module under construction: if it fails (out of memory),
 * the weights made so far are freed before the error goes on, so a failed constructor
 * holds no memory until some garbage collection.
 */
export function initNew(module: Module, options: InitOptions): void {
  try {
    initParameters(module, options);
  } catch (e) {
    module.dispose();
    throw e;
  }
}

/**
 * What a model's weights come to once it runs, ~3× their values: the packed weights, one
 * layer's values in transit, and the Winograd filters its first plan makes (F(4×4)'s are
 * 4× the 3×3 weights, which stay too, for `stateDict`). The freed reservation serves both.
 */
const PACKED_PER_VALUE_BYTES = 12;

/** Grows WebAssembly memory once for the weights `module` is about to pack (see `reserveBytes`). */
function reserveForWeights(module: Module): void {
  const values = module.namedStateEntries().reduce((s, [, p]) => s + numelOf(p.shape), 0);
  call('initParameters', (glue) => glue.reserveBytes(values * PACKED_PER_VALUE_BYTES));
}

let deferDepth = 0;

/**
 * Builds children without initialising them one by one: a composite runs its child
 * constructors inside this, then initialises the whole tree once (in state-dict order,
 * so the result matches the fixture generator and no weights are packed twice).
 */
export function deferInit<T>(build: () => T): T {
  deferDepth++;
  try {
    return build();
  } finally {
    deferDepth--;
  }
}

/** True while a composite is building its children (see {@link deferInit}). */
export const initDeferred = (): boolean => deferDepth > 0;

let seedSequence = 0;

/**
 * Seeds the sequence that layers built without an explicit `seed` draw from (as
 * `torch.manual_seed`): the same construction order after the same `manualSeed` gives
 * the same weights.
 */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ValueError('manualSeed', `seed must be an integer in [0, 2^32), but got ${seed}`);
  seedSequence = seed;
}

/** The explicit seed, or the next one of the sequence. */
export function takeSeed(seed: number | undefined): number {
  if (seed !== undefined) return seed;
  const s = seedSequence;
  seedSequence = (seedSequence + 1) >>> 0;
  return s;
}
