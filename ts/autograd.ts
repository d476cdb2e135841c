/**
 * Reverse-mode differentiation over what the package records: a training forward is one
 * native graph (ts/train/record.ts) whose outputs are tensors with an {@link OutputNode};
 * losses on them (`crossEntropy`, `googlenetLoss`) are small {@link FnNode}s. `backward`
 * walks the tensors reachable from the root, latest first: every consumer of a tensor was
 * created after it, so by the time a tensor is visited its gradient is complete — and a
 * graph is differentiated once, when the first of its outputs is visited, with the
 * gradients of all of them.
 */
import { AutogradError, ShapeError } from './errors.js';
import type { Tensor } from './tensor.js';

/** An operation in JavaScript land: its inputs and the gradients it sends them. */
export interface FnNode {
  readonly kind: 'fn';
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for `inputs` (`null`: none) given the output's gradient `g`. */
  grads(g: Tensor): (Tensor | null)[];
}

/** A recorded forward's outputs and how to differentiate it. */
export interface GraphRun {
  readonly op: string;
  /** The forward's input (its gradient flows on when it requires one). */
  readonly input: Tensor;
  readonly outputs: readonly Tensor[];
  /** Runs the graph's backward with these output gradients; returns the input's gradient when it requires one. */
  backward(grads: readonly (Tensor | undefined)[]): Tensor | null;
}

/** Output `index` of a recorded forward. */
export interface OutputNode {
  readonly kind: 'output';
  readonly run: GraphRun;
}

export type GradNode = FnNode | OutputNode;

/** `acc[t] += g` (taking `g` when there is nothing yet). */
function accumulate(acc: Map<Tensor, Tensor>, t: Tensor, g: Tensor): void {
  const have = acc.get(t);
  if (have === undefined) {
    acc.set(t, g);
    return;
  }
  addInto(have, g);
  g.dispose();
}

/** `dst += src`, elementwise (same length). */
export function addInto(dst: Tensor, src: Tensor): void {
  const [d, s] = [dst.data, src.data];
  for (let i = 0; i < d.length; i++) d[i]! += s[i]!;
}

/** Every tensor `backward` may visit from `root`, latest first. */
function reachable(root: Tensor): Tensor[] {
  const seen = new Set<Tensor>();
  const stack = [root];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const node = t._node;
    if (node?.kind === 'fn') stack.push(...node.inputs);
    else if (node?.kind === 'output') stack.push(node.run.input);
  }
  return [...seen].sort((a, b) => b._seq - a._seq);
}

/** `root.backward(gradOutput)`: see `Tensor.backward`. */
export function backward(root: Tensor, gradOutput?: Tensor): void {
  const op = 'Tensor.backward';
  if (!root.requiresGrad) throw new AutogradError(op, `${root.toString()} does not require a gradient: it was not computed by a recorded forward (call model.train(), or give the input requiresGrad: true)`);
  let seed: Tensor;
  if (gradOutput === undefined) {
    if (root.numel !== 1) throw new AutogradError(op, `a gradient can be implied only for a one-element output (a loss); pass gradOutput of shape [${root.shape.join(', ')}]`);
    seed = tensorClass!.fromArray([1], root.shape);
  } else {
    if (gradOutput.numel !== root.numel || gradOutput.shape.length !== root.shape.length || gradOutput.shape.some((d, i) => d !== root.shape[i])) {
      throw new ShapeError(op, `gradOutput has shape [${gradOutput.shape.join(', ')}], the output [${root.shape.join(', ')}]`);
    }
    seed = tensorClass!.fromArray(gradOutput.data, root.shape);
  }
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  const done = new Set<GraphRun>();
  try {
    for (const t of reachable(root)) {
      const g = grads.get(t);
      if (g === undefined) continue;
      const node = t._node;
      if (node === undefined) {
        grads.delete(t);
        if (!t.requiresGrad) {
          g.dispose();
        } else if (t.grad === null) {
          t.grad = g;
        } else {
          addInto(t.grad, g);
          g.dispose();
        }
      } else if (node.kind === 'fn') {
        node.grads(g).forEach((gi, i) => {
          if (gi !== null) accumulate(grads, node.inputs[i]!, gi);
        });
      } else if (!done.has(node.run)) {
        done.add(node.run);
        const dx = node.run.backward(node.run.outputs.map((o) => grads.get(o)));
        if (dx !== null) accumulate(grads, node.run.input, dx);
      }
    }
  } finally {
    for (const g of grads.values()) g.dispose();
  }
}

/** Set by ts/tensor.ts (which imports this module): breaks the import cycle. */
let tensorClass: typeof Tensor | undefined;

/** @internal */
export function registerTensorClass(cls: typeof Tensor): void {
  tensorClass = cls;
}
