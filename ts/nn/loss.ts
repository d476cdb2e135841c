/**
 * Losses as tensors: a one-element result that `backward()` differentiates through the
 * recorded forward its logits came from.
 */
import type { FnNode } from '../autograd.js';
import { call } from '../backend.js';
import { ShapeError, ValueError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { GoogLeNetOutputs } from './googlenet.js';

/** Class indices for a batch of `n`, checked against `classes`. */
function targetsFor(op: string, target: number | readonly number[], n: number, classes: number): Uint32Array {
  const targets = typeof target === 'number' ? Array<number>(n).fill(target) : target;
  if (!Array.isArray(targets) && !ArrayBuffer.isView(targets)) throw new ValueError(op, `target must be a class index or an array of them, but got ${typeof target}`);
  if (targets.length !== n) throw new ShapeError(op, `target has ${targets.length} entries for a batch of ${n}`);
  for (const t of targets) {
    if (!Number.isInteger(t) || t < 0 || t >= classes) throw new ValueError(op, `target ${t} is not a class index in [0, ${classes})`);
  }
  return Uint32Array.from(targets);
}

function checkLogits(op: string, logits: Tensor, what = 'logits'): [number, number] {
  if (!(logits instanceof Tensor)) throw new ShapeError(op, `${what} must be a Tensor`);
  if (logits.shape.length !== 2 || logits.numel === 0) throw new ShapeError(op, `${what} must be rank 2 [N, classes] and not empty, but got [${logits.shape.join(', ')}]`);
  return logits.shape as [number, number];
}

/** The loss tensor: `value`, differentiated by `grads` when any input requires a gradient. */
function scalar(value: number, op: string, inputs: Tensor[], grads: FnNode['grads']): Tensor {
  const t = Tensor.fromArray([value], []);
  if (inputs.some((x) => x.requiresGrad)) t._node = { kind: 'fn', op, inputs, grads };
  return t;
}

/** `scale ×` the gradient of the mean cross-entropy of `logits` (in WebAssembly). */
function crossEntropyGrad(op: string, logits: Tensor, targets: Uint32Array, scale: number): Tensor {
  const [n, classes] = logits.shape as [number, number];
  const g = Tensor.zeros(logits.shape);
  call(op, (glue) => glue.crossEntropyBackward(logits._native(op), n, classes, targets, scale, g._native(op)));
  return g;
}

function crossEntropyValue(op: string, logits: Tensor, targets: Uint32Array): number {
  const [n, classes] = logits.shape as [number, number];
  return call(op, (glue) => glue.crossEntropy(logits._native(op), n, classes, targets));
}

/**
 * Cross-entropy of `[N, classes]` logits against class indices, averaged over the batch
 * (PyTorch's `F.cross_entropy`): a one-element tensor (`item()` is the number) that
 * `backward()` differentiates.
 */
export function crossEntropy(logits: Tensor, target: number | readonly number[]): Tensor {
  const op = 'crossEntropy';
  const [n, classes] = checkLogits(op, logits);
  const targets = targetsFor(op, target, n, classes);
  return scalar(crossEntropyValue(op, logits, targets), op, [logits], (g) => [crossEntropyGrad(op, logits, targets, g.item())]);
}

/** What {@link googlenetLoss} returns: the total, with its parts as numbers. */
export type GoogLeNetLoss = Tensor & { readonly parts: { readonly main: number; readonly aux1: number; readonly aux2: number } };

/** The auxiliary losses' weight in the seed's training loss (§5). */
const AUX_WEIGHT = 0.3;

/**
 * The seed's training loss (§5): `main + 0.3·(aux1 + aux2)`, each a cross-entropy, as a
 * one-element tensor with `parts` (`{ main, aux1, aux2 }`); needs the outputs of a
 * training-mode `forwardAll` on a model with auxiliary heads.
 */
export function googlenetLoss(outputs: GoogLeNetOutputs, target: number | readonly number[]): GoogLeNetLoss {
  const op = 'googlenetLoss';
  if (!outputs?.aux1 || !outputs.aux2) {
    throw new ValueError(op, 'needs aux1 and aux2 logits: build with auxLogits: true, call model.train(), then forwardAll(x)');
  }
  const heads = [outputs.logits, outputs.aux1, outputs.aux2];
  const names = ['logits', 'aux1', 'aux2'];
  const [n, classes] = checkLogits(op, heads[0]!);
  heads.forEach((h, i) => {
    const [hn, hc] = checkLogits(op, h, names[i]);
    if (hn !== n || hc !== classes) throw new ShapeError(op, `${names[i]} has shape [${h.shape.join(', ')}], the logits [${n}, ${classes}]`);
  });
  const targets = targetsFor(op, target, n, classes);
  const [main, aux1, aux2] = heads.map((h) => crossEntropyValue(op, h, targets)) as [number, number, number];
  const weights = [1, AUX_WEIGHT, AUX_WEIGHT];
  const t = scalar(main + AUX_WEIGHT * (aux1 + aux2), op, heads, (g) => heads.map((h, i) => crossEntropyGrad(op, h, targets, g.item() * weights[i]!)));
  return Object.defineProperty(t, 'parts', { value: Object.freeze({ main, aux1, aux2 }), enumerable: true }) as GoogLeNetLoss;
}
