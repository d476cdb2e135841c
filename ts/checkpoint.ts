/**
 * A training checkpoint in one safetensors file: the model's state dict (keys prefixed
 * `model.`) and an optimiser's state (`optimizer.<index>.<buffer>`, `step` as a
 * one-element tensor), with the optimiser's kind, hyperparameters and parameter names in
 * the metadata — so a run can stop and resume exactly where it was.
 */
import { StateDictError } from './errors.js';
import type { Module, StateTensor } from './nn/module.js';
import type { Optimizer, OptimizerStateDict } from './optim.js';
import { readSafetensors, saveSafetensors } from './safetensors.js';

const FORMAT = 'inception-wasm-checkpoint/1';

/** The checkpoint of `model` (and `optimizer`, when given) as safetensors bytes; `metadata` is stored beside (e.g. the epoch). */
export function saveCheckpoint(model: Module, optimizer?: Optimizer, metadata: Record<string, string> = {}): Uint8Array {
  const tensors = new Map<string, StateTensor>();
  for (const [key, t] of model.stateDict()) tensors.set(`model.${key}`, t);
  const meta: Record<string, string> = { ...metadata, format: FORMAT };
  if (optimizer !== undefined) {
    const { state, paramGroups } = optimizer.stateDict();
    for (const [i, entry] of state) for (const [name, t] of Object.entries(entry)) tensors.set(`optimizer.${i}.${name}`, t);
    const { params: _indices, ...hyper } = paramGroups[0];
    meta.optimizer = optimizer.constructor.name;
    meta.optimizer_hyperparameters = JSON.stringify(hyper);
    meta.optimizer_params = JSON.stringify(optimizer.params.map((p) => p.name));
  }
  return saveSafetensors(tensors, meta);
}

/**
 * Restores a {@link saveCheckpoint} file into `model` (and `optimizer`, which must be of the
 * same kind over the same parameters); returns the file's metadata. The file, the
 * optimiser's kind and parameter names are checked first; then the model loads (checked
 * whole before it writes) and the optimiser's state (likewise).
 */
export function loadCheckpoint(bytes: Uint8Array | ArrayBuffer, model: Module, optimizer?: Optimizer): Record<string, string> {
  const op = 'loadCheckpoint';
  const { tensors, metadata = {} } = readSafetensors(bytes);
  if (metadata.format !== FORMAT) throw new StateDictError(op, '', `not a checkpoint (metadata format ${JSON.stringify(metadata.format)}, expected ${FORMAT})`);
  const weights = new Map<string, StateTensor>();
  const state = new Map<number, Record<string, StateTensor>>();
  for (const [key, t] of tensors) {
    if (key.startsWith('model.')) {
      weights.set(key.slice(6), t);
      continue;
    }
    const m = /^optimizer\.(\d+)\.(\w+)$/.exec(key);
    if (m === null) throw new StateDictError(op, key, `unexpected key "${key}"`);
    const i = Number(m[1]);
    if (!state.has(i)) state.set(i, {});
    state.get(i)![m[2]!] = t;
  }
  let optimizerState: OptimizerStateDict | undefined;
  if (optimizer !== undefined) {
    if (metadata.optimizer !== optimizer.constructor.name) throw new StateDictError(op, 'optimizer', `the checkpoint holds ${metadata.optimizer ?? 'no optimiser'} state, not ${optimizer.constructor.name}`);
    const names = JSON.parse(metadata.optimizer_params ?? '[]') as string[];
    const ours = optimizer.params.map((p) => p.name);
    const differ = ours.findIndex((n, i) => n !== names[i]);
    if (names.length !== ours.length || differ >= 0) throw new StateDictError(op, 'optimizer', `the optimiser's parameters differ from the checkpoint's (${differ >= 0 ? `${ours[differ]} vs ${names[differ]}` : `${ours.length} vs ${names.length}`})`);
    optimizerState = { state, paramGroups: [{ ...JSON.parse(metadata.optimizer_hyperparameters ?? '{}'), params: ours.map((_, i) => i) }] };
  }
  model.loadStateDict(weights);
  if (optimizerState !== undefined) optimizer!.loadStateDict(optimizerState);
  return metadata;
}
