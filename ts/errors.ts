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

/**
 * Throws a {@link ValueError} unless `v` is an integer in `[min, max]` (positive by
 * default). The ceiling, 2^30, keeps every size exact in WebAssembly's 32-bit arithmetic:
 * a larger one could not describe a tensor that fits anyway.
 */
export function checkInt(op: string, what: string, v: unknown, min = 1, max = 2 ** 30): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    const want = min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`;
    throw new ValueError(op, `${what} must be ${want}, but got ${String(v)}`);
  }
  if (v > max) throw new ValueError(op, `${what} must be at most ${max === 2 ** 30 ? '2^30' : max}, but got ${v}`);
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

/**
 * WebAssembly memory ran out: a tensor, a model's weights or a forward's activations did
 * not fit (under `init({ maximumMemory })`, or the engine's 4 GiB, 2 GiB threaded). Thrown
 * before anything was written: the library, the model and every tensor stay as they were,
 * and freeing something (or a smaller batch) lets the same call succeed.
 */
export class OutOfMemoryError extends InceptionWasmError {
  /** Bytes the failed allocation asked for. */
  readonly bytesNeeded: number;
  /** Bytes that could still be allocated when it failed (an estimate: the allocator's free space may be fragmented). */
  readonly bytesAvailable: number;

  constructor(op: string, what: string, bytesNeeded: number, bytesAvailable: number) {
    super(op, `out of memory: ${what} needs ${bytesNeeded} bytes, ${bytesAvailable} are available`);
    this.bytesNeeded = bytesNeeded;
    this.bytesAvailable = bytesAvailable;
  }
}

/**
 * The WebAssembly instance faulted (a trap the library could not prevent), or the tensor
 * or model belongs to an instance that did. Every later call throws this until
 * `await init()` starts a new instance; tensors and models made before must be made again.
 */
export class WasmFaultError extends InceptionWasmError {}

/**
 * A thread of the pool died or stopped answering. The forward failed (nothing was
 * returned); the library rebuilt the pool, or fell back to one thread, and stays usable.
 */
export class WorkerError extends InceptionWasmError {}

/**
 * A `.wasm` (or the thread pool's worker script) could not be loaded: not found (HTTP
 * 404, a missing file), an HTML page where the module should be (a dev server's fallback
 * page for a file it does not have), bytes that are not WebAssembly, a module this
 * runtime cannot compile. Thrown by `init()`, and by the first image call for the image
 * module. The message names what was tried and what to copy where (or which `init`
 * option to pass instead); `init()` can be called again afterwards.
 */
export class WasmLoadError extends InceptionWasmError {
  /** The URL (or, in Node, the `file:` URL) that was tried; `undefined` for bytes, a `Response` without one, or a module passed in. */
  readonly url: string | undefined;
  /** What went wrong, in a few words: `HTTP 404 Not Found`, `not a WebAssembly module (text/html: "<!doctype html>")`, … */
  readonly problem: string;

  constructor(op: string, what: string, url: string | undefined, problem: string, hint: string, cause?: unknown) {
    super(op, `could not load ${what}${url === undefined ? '' : ` from ${url}`}: ${problem}. ${hint}`);
    this.url = url;
    this.problem = problem;
    if (cause !== undefined) this.cause = cause;
  }
}

/**
 * Why an image was refused: see {@link ImageError.reason}. The first seven are the image
 * module's own (crates/image `ImageError::code`), the rest the TypeScript side's.
 */
export const IMAGE_ERROR_REASONS = [
  'empty',
  'unknown-format',
  'too-large',
  'truncated',
  'corrupt',
  'unsupported',
  'out-of-memory',
  'invalid-input',
  'unreadable',
  'internal',
] as const;

export type ImageErrorReason = (typeof IMAGE_ERROR_REASONS)[number];

/**
 * An image that cannot be read: no bytes, a format other than JPEG or PNG, a truncated
 * or malformed file, more pixels than `maxPixels` (a decompression bomb, refused from the
 * header before anything is allocated), raw pixels that do not match their size, an
 * element that has not loaded. Thrown (or rejected) before the network sees anything.
 */
export class ImageError extends InceptionWasmError {
  /**
   * `'empty'`, `'unknown-format'`, `'too-large'`, `'truncated'`, `'corrupt'`,
   * `'unsupported'` (a valid file this decoder does not read: lossless JPEG),
   * `'out-of-memory'`, `'invalid-input'` (not an image the API takes), `'unreadable'`
   * (a path or URL that could not be read), `'internal'` (the image module trapped: a
   * bug, please report it with the file; the module was restarted).
   */
  readonly reason: ImageErrorReason;

  constructor(op: string, reason: ImageErrorReason, message: string) {
    super(op, message);
    this.reason = reason;
  }
}

/**
 * A gradient that cannot be computed: `backward()` on a tensor that does not require a
 * gradient, a non-scalar output without `gradOutput`, a second `backward()` through the
 * same forward, or one whose saved activations a later forward replaced (one recorded
 * forward at a time: saved activations belong to their graph until the next forward of
 * any graph).
 */
export class AutogradError extends InceptionWasmError {}
