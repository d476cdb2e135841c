/** From logits to named classes: `softmax`, and `classify` (image in, top-k labels out). */
import { ShapeError, ValueError } from './errors.js';
import { IMAGENET_CLASSES } from './imagenet-classes.js';
import { checkKeys } from './image/decode.js';
import { PREPROCESS_KEYS, preprocessFor, type PreprocessOptions } from './image/preprocess.js';
import type { ImageInput } from './image/source.js';
import type { Module } from './nn/module.js';
import { topk } from './ops.js';
import { produce, Tensor } from './tensor.js';

/**
 * `torch.softmax(logits, -1)`: a new tensor of the same shape whose rows (along the last
 * dimension) are probabilities. Computed in float64 after subtracting the row's maximum,
 * so large logits cannot overflow; a row with a NaN is all NaN, as in PyTorch.
 */
export function softmax(logits: Tensor): Tensor {
  const op = 'softmax';
  if (!(logits instanceof Tensor)) throw new ShapeError(op, `logits must be a Tensor, but got ${String(logits)}`);
  logits._native(op);
  const classes = logits.shape[logits.shape.length - 1];
  if (classes === undefined || classes === 0) throw new ShapeError(op, `logits must have a last dimension of at least 1, but got shape [${logits.shape.join(', ')}]`);
  const x = logits.toArray();
  const rows = x.length / classes;
  const exp = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * classes, (r + 1) * classes);
    let max = -Infinity;
    for (const v of row) max = v > max || Number.isNaN(v) ? v : max;
    let sum = 0;
    for (let i = 0; i < classes; i++) sum += exp[i] = Math.exp(row[i]! - max);
    // All -Infinity (max − max is NaN): PyTorch gives NaN too.
    for (let i = 0; i < classes; i++) row[i] = exp[i]! / sum;
  }
  return produce(logits.shape, (t) => t.data.set(x));
}

/** One ranked class of {@link classify}. */
export interface Prediction {
  /** Class index into the model's output. */
  index: number;
  /** Its name: from `labels`, {@link IMAGENET_CLASSES} for 1,000 classes, else `String(index)`. */
  label: string;
  /** Softmax probability, in [0, 1]. */
  probability: number;
}

export interface ClassifyOptions extends PreprocessOptions {
  /** How many classes to return per image, best first. @defaultValue 5 (all when fewer) */
  topk?: number;
  /**
   * Class names, index order.
   * @defaultValue {@link IMAGENET_CLASSES} when the model has 1,000 classes, else `String(index)`
   */
  labels?: readonly string[];
}

/**
 * Classifies an image (or an array of images): {@link preprocess} (torchvision's ImageNet
 * eval transform, unless options say otherwise), one forward in eval mode (modules in
 * training mode are switched to eval for the call, and back), softmax, the top `k`.
 * Returns `[{ index, label, probability }]` best first, or one such array per image when
 * given an array. Every intermediate tensor is freed.
 */
export async function classify(model: Module, image: ImageInput, options?: ClassifyOptions): Promise<Prediction[]>;
export async function classify(model: Module, image: readonly ImageInput[], options?: ClassifyOptions): Promise<Prediction[][]>;
export async function classify(model: Module, image: ImageInput | readonly ImageInput[], options: ClassifyOptions = {}): Promise<Prediction[] | Prediction[][]> {
  const op = 'classify';
  checkKeys(op, options, ['topk', 'labels', ...PREPROCESS_KEYS]);
  if (typeof (model as { forward?: unknown })?.forward !== 'function') throw new ValueError(op, `model must be a Module (e.g. a GoogLeNet), but got ${String(model)}`);
  const { topk: k = 5, labels, ...transform } = options;
  if (!Number.isInteger(k) || k < 1) throw new ValueError(op, `topk must be a positive integer, but got ${String(k)}`);
  if (labels !== undefined && (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string'))) {
    throw new ValueError(op, 'labels must be an array of strings');
  }
  const input = await preprocessFor(op, image, transform);
  let logits: Tensor | undefined;
  let probabilities: Tensor | undefined;
  // Inference runs in eval mode; every module's own flag is put back afterwards.
  const modes = Array.from(model.namedModules(), ([, m]) => [m, m.training] as const);
  try {
    for (const [m] of modes) m.training = false;
    logits = model.forward(input);
    if (logits.shape.length !== 2) throw new ShapeError(op, `the model must return [N, classes] logits, but returned shape [${logits.shape.join(', ')}]`);
    const classes = logits.shape[1]!;
    if (labels !== undefined && labels.length !== classes) {
      throw new ValueError(op, `labels has ${labels.length} names, but the model has ${classes} classes`);
    }
    const names = labels ?? (classes === IMAGENET_CLASSES.length ? IMAGENET_CLASSES : undefined);
    probabilities = softmax(logits);
    const ranked = topk(probabilities, Math.min(k, classes)).map((row) =>
      row.map(({ index, value }) => ({ index, label: names?.[index] ?? String(index), probability: value })),
    );
    return Array.isArray(image) ? ranked : ranked[0]!;
  } finally {
    for (const [m, training] of modes) m.training = training;
    input.dispose();
    logits?.dispose();
    probabilities?.dispose();
  }
}
