/** Functional ops on tensors. */
import { ShapeError } from './errors.js';
import { copyChannels } from './nn/module.js';
import { produce, type Tensor } from './tensor.js';

/**
 * `torch.cat(tensors, 1)` for NCHW tensors of equal N, H, W. Inception blocks do not
 * need it (their branches write into one output), this is the general op.
 */
export function concat(tensors: readonly Tensor[]): Tensor {
  const op = 'concat';
  if (!Array.isArray(tensors) || tensors.length === 0) throw new ShapeError(op, 'needs at least one tensor');
  tensors.forEach((t, i) => {
    t._native(`${op} (input ${i})`);
    const [n, , h, w] = tensors[0]!.shape;
    if (t.shape.length !== 4 || t.shape[0] !== n || t.shape[2] !== h || t.shape[3] !== w) {
      throw new ShapeError(op, `input ${i} has shape [${t.shape.join(', ')}], but all inputs must be [${n}, C, ${h}, ${w}]`);
    }
  });
  const [n, , h, w] = tensors[0]!.shape as [number, number, number, number];
  const channels = tensors.reduce((s, t) => s + t.shape[1]!, 0);
  return produce([n, channels, h, w], (out) => {
    let offset = 0;
    for (const t of tensors) {
      copyChannels(op, t, out, offset);
      offset += t.shape[1]!;
    }
  });
}

type Ranked = { index: number; value: number };

/**
 * `torch.topk`'s order: NaN above every number (numpy's convention, which PyTorch
 * follows), then larger values first, `-0` equal to `0`. Equal values (NaNs among them)
 * come lower index first; PyTorch 1.13 leaves their order to its unstable CPU sort (four
 * zeros come back as indices [2, 3, 0, 1], three NaNs as [2, 4, 0]), so ties are the one
 * place the two may differ, ours being deterministic.
 */
function rank(a: Ranked, b: Ranked): number {
  const [aNaN, bNaN] = [Number.isNaN(a.value), Number.isNaN(b.value)];
  if (aNaN !== bNaN) return aNaN ? -1 : 1;
  if (!aNaN && a.value !== b.value) return a.value > b.value ? -1 : 1;
  return a.index - b.index;
}

/**
 * The `k` largest entries of each row of `[N, classes]` logits, best first, as
 * `torch.topk(logits, k)` ranks them: NaN first, ties by lower index.
 */
export function topk(logits: Tensor, k: number): { index: number; value: number }[][] {
  const op = 'topk';
  if (logits.shape.length !== 2) throw new ShapeError(op, `logits must be rank 2 [N, classes], but got rank ${logits.shape.length}`);
  const [n, classes] = logits.shape as [number, number];
  if (!Number.isInteger(k) || k < 1 || k > classes) throw new ShapeError(op, `k must be an integer in [1, ${classes}], but got ${k}`);
  const data = logits.data;
  return Array.from({ length: n }, (_, b) => {
    const row = Array.from(data.subarray(b * classes, (b + 1) * classes), (value, index) => ({ index, value }));
    return row.sort(rank).slice(0, k);
  });
}
