/**
 * Every error the library throws on bad input is an {@link InceptionWasmError}, thrown
 * before any WebAssembly call, with `op` naming the layer (its state-dict path when it has
 * one) or function. The message reads like `Error in conv1 (Conv2d): input must have 3
 * channels, but got 4`.
 */
export class InceptionWasmError extends Error {
  /** The layer path or function the error is about, e.g. `inception3a.branch2.1`. */
  readonly op: string;

  constructor(op: string, message: string) {
    super(`Error in ${op}: ${message}`);
    this.name = new.target.name;
    this.op = op;
  }
}

/** Wrong rank, size or channel count of a tensor or an option. */
export class ShapeError extends InceptionWasmError {}

/** A size, stride, padding or other option that is not a valid value. */
export class ValueError extends InceptionWasmError {}

/** Data that is not float32 (or not numbers at all). */
export class DataTypeError extends InceptionWasmError {}

/** A tensor or module used after `dispose()`. */
export class DisposedError extends InceptionWasmError {}

/** The API was used before `await init()` finished. */
export class NotInitializedError extends InceptionWasmError {}

/** A state dict with missing, unexpected or misshapen keys; `key` names the first one. */
export class StateDictError extends InceptionWasmError {
  readonly key: string;

  constructor(op: string, key: string, message: string) {
    super(op, message);
    this.key = key;
  }
}

/** Throws a {@link ValueError} unless `v` is a positive (or, with `min = 0`, non-negative) integer. */
export function checkInt(op: string, what: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    const want = min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`;
    throw new ValueError(op, `${what} must be ${want}, but got ${String(v)}`);
  }
  return v;
}

/** A number or a `[height, width]` pair, as PyTorch's `_pair`. */
export type Pair = number | readonly [number, number];

export function checkPair(op: string, what: string, v: Pair, min = 1): [number, number] {
  if (typeof v === 'number') {
    const n = checkInt(op, what, v, min);
    return [n, n];
  }
  if (Array.isArray(v) && v.length === 2) return [checkInt(op, `${what}[0]`, v[0], min), checkInt(op, `${what}[1]`, v[1], min)];
  throw new ValueError(op, `${what} must be a number or [height, width], but got ${JSON.stringify(v)}`);
}
