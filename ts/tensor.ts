/**
 * `Tensor`: float32 data that lives in WebAssembly linear memory, with an NCHW-style
 * `shape`. `data` is a zero-copy `Float32Array` view; growing the memory detaches old
 * views, so `data` re-creates the view whenever the memory's buffer has changed — hold
 * on to `tensor`, not to `tensor.data`, across calls that may allocate.
 */
import { call, canFree, checkGeneration, generation, isInitialized, track, wasmMemory } from './backend.js';
import type { Buffer } from './wasm/inception_wasm.js';
import { AutogradError, DataTypeError, DisposedError, ShapeError, ValueError } from './errors.js';
import { backward as runBackward, type GradNode, registerTensorClass } from './autograd.js';
import type { FillRule } from './weyl.js';

/** `Symbol.dispose` where the runtime has it (Node ≥ 20.4, modern browsers). */
export const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

/** The most elements a tensor (or a model's weight, or a forward's intermediate) may have. */
export const MAX_ELEMENTS = 2 ** 30;

function checkShape(op: string, shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new ShapeError(op, `shape must be an array of sizes, but got ${String(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new ShapeError(op, `shape must hold non-negative integers, but got [${shape.join(', ')}]`);
    }
  }
  return checkNumel(op, 'shape', shape);
}

/**
 * The number of elements of `shape`, computed exactly (a product past 2^53 is caught
 * before it rounds), or a {@link ValueError} naming `what` past {@link MAX_ELEMENTS}.
 */
export function checkNumel(op: string, what: string, shape: readonly number[]): number {
  let numel = 1;
  for (const d of shape) {
    numel *= d;
    if (numel > MAX_ELEMENTS) break;
  }
  if (shape.includes(0)) numel = 0;
  if (numel > MAX_ELEMENTS) throw new ValueError(op, `${what} [${shape.join(', ')}] has more than 2^30 elements, the most a tensor may have`);
  return numel;
}

/** The hidden property by which a `data` view holds its tensor. */
const OWNER = Symbol('inception-wasm tensor');

/** Creation order of tensors: backward visits a graph's tensors latest first. */
let sequence = 0;

export interface TensorOptions {
  /**
   * Record operations on this tensor so that `backward()` fills its `grad` (PyTorch's
   * `requires_grad`). @defaultValue false
   */
  requiresGrad?: boolean;
}

export class Tensor {
  /** The size of each dimension, e.g. `[1, 3, 224, 224]`. */
  readonly shape: readonly number[];
  /** Number of elements (product of `shape`). */
  readonly numel: number;
  #buffer: Buffer | undefined;
  #ptr: number;
  #view: Float32Array | undefined;
  /** The WebAssembly instance that holds the data (see `backend.generation`). */
  readonly #generation = generation();
  #requiresGrad = false;
  /**
   * The gradient `backward()` accumulated into this tensor (a leaf that requires a
   * gradient), or `null` before the first backward. Accumulates until set to `null`.
   */
  grad: Tensor | null = null;
  /** @internal How this tensor was computed, for backward (absent on leaves). */
  _node: GradNode | undefined;
  /** @internal Creation order (see `autograd.backward`). */
  readonly _seq = sequence++;

  private constructor(shape: readonly number[], numel: number, buffer: Buffer) {
    this.shape = Object.freeze([...shape]);
    this.numel = numel;
    this.#buffer = track(buffer);
    this.#ptr = buffer.ptr();
  }

  /** @internal A tensor owning `buffer` (which must hold `numel(shape)` floats). */
  static _wrap(shape: readonly number[], buffer: Buffer): Tensor {
    return new Tensor(shape, buffer.len(), buffer);
  }

  /** A zero-filled tensor. */
  static zeros(shape: readonly number[]): Tensor {
    const numel = checkShape('Tensor.zeros', shape);
    return new Tensor(shape, numel, call('Tensor.zeros', (glue) => new glue.Buffer(numel)));
  }

  /**
   * A tensor holding a copy of `data` (row-major). `data` must be a `Float32Array` or an
   * array of numbers whose length matches `shape`.
   */
  static fromArray(data: Float32Array | readonly number[], shape: readonly number[], options: TensorOptions = {}): Tensor {
    const op = 'Tensor.fromArray';
    const numel = checkShape(op, shape);
    if (!(data instanceof Float32Array)) {
      if (!Array.isArray(data)) {
        const kind = ArrayBuffer.isView(data) ? (data as object).constructor.name : typeof data;
        // Pixel bytes are the usual mistake: point at the function that makes an input of them.
        const hint = data instanceof Uint8Array || data instanceof Uint8ClampedArray ? '; for image pixels or bytes, use `await preprocess(image)`' : '';
        throw new DataTypeError(op, `data must be a Float32Array or an array of numbers, but got ${kind}${hint}`);
      }
      if (!data.every((v) => typeof v === 'number')) throw new DataTypeError(op, 'data must hold only numbers');
    }
    if (data.length !== numel) {
      throw new ShapeError(op, `data has ${data.length} elements, but shape [${shape.join(', ')}] needs ${numel}`);
    }
    // A view into wasm memory (another tensor's `data`) would be detached if allocating
    // this tensor grows the memory: copy it out first.
    const source = isWasmView(data) ? data.slice() : data;
    const t = produce(shape, (t) => t.data.set(source));
    if (options.requiresGrad) t.requiresGrad = true;
    return t;
  }

  /**
   * True when operations on this tensor are recorded for `backward()`: a leaf made with
   * `requiresGrad: true` (or set so), or the output of a recorded forward.
   */
  get requiresGrad(): boolean {
    return this.#requiresGrad || this._node !== undefined;
  }

  set requiresGrad(v: boolean) {
    if (this._node !== undefined && !v) throw new AutogradError('Tensor.requiresGrad', 'only a leaf tensor can stop requiring a gradient (this one is the output of a recorded forward)');
    this.#requiresGrad = v === true;
  }

  /**
   * Computes the gradient of this tensor with respect to every leaf that requires one
   * (their `grad`) and every trainable parameter of the recorded forwards it came from
   * (`Parameter.grad`), accumulating into what is there. A one-element tensor (a loss)
   * needs no `gradOutput`; any other needs the gradient of its output, of its shape, as
   * in PyTorch. A forward can be differentiated once.
   */
  backward(gradOutput?: Tensor): void {
    runBackward(this, gradOutput);
  }

  /**
   * Zero-copy view of the data (valid until the next call that may grow the memory, and
   * until `dispose()`). The view keeps its tensor alive: a tensor dropped while its view
   * is held is not freed, so the view never shows another tensor's memory.
   */
  get data(): Float32Array {
    this.#live('Tensor.data');
    const memBuffer = wasmMemory().buffer;
    if (this.#view === undefined || this.#view.buffer !== memBuffer) {
      this.#view = new Float32Array(memBuffer, this.#ptr, this.numel);
      // The garbage collector frees a dropped tensor's buffer (wasm-bindgen's finalizer),
      // and the allocator hands that memory to the next tensor: `forward(x).data` held
      // alone would then read and write someone else's values. A hidden reference from
      // the view to its tensor keeps both alive exactly as long as the view.
      Object.defineProperty(this.#view, OWNER, { value: this });
    }
    return this.#view;
  }

  /** The value of a one-element tensor (PyTorch's `item()`); a {@link ShapeError} otherwise. */
  item(): number {
    if (this.numel !== 1) throw new ShapeError('Tensor.item', `only a one-element tensor has an item, but this one has shape [${this.shape.join(', ')}] (${this.numel} elements)`);
    return this.data[0]!;
  }

  /** A copy of the data that stays valid after `dispose()`. */
  toArray(): Float32Array {
    return this.data.slice();
  }

  /** True after `dispose()`. */
  get isDisposed(): boolean {
    return this.#buffer === undefined;
  }

  /** Frees the WebAssembly memory now; idempotent. */
  dispose(): void {
    // A tensor of a faulted instance has nothing to free (and must not free in the new one).
    if (canFree(this.#generation)) this.#buffer?.free();
    this.#buffer = undefined;
    this.#view = undefined;
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  /** @internal The underlying buffer, for the layers; throws {@link DisposedError} naming `op`. */
  _native(op: string): Buffer {
    return this.#live(op);
  }

  #live(op: string): Buffer {
    if (this.#buffer === undefined) throw new DisposedError(op, `Tensor is disposed (shape [${this.shape.join(', ')}])`);
    checkGeneration(op, this.#generation, 'tensor');
    return this.#buffer;
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}]${this.isDisposed ? ', disposed' : ''})`;
  }
}

registerTensorClass(Tensor);

/** Tensor `t` of the weyl-fmix32 generator under `seed`, generated inside WebAssembly. */
export function generated(seed: number, t: number, shape: readonly number[], rule: FillRule): Tensor {
  const numel = checkNumel('initParameters', 'parameter shape', shape);
  return Tensor._wrap(shape, call('initParameters', (glue) => glue.Buffer.weyl(numel, seed, t, rule.offset, Math.fround(rule.scale), rule.abs)));
}

/** True for a typed array over the WebAssembly memory (which growth would detach). */
export function isWasmView(data: unknown): data is Float32Array {
  return data instanceof Float32Array && isInitialized() && data.buffer === wasmMemory().buffer;
}

/** A new zero tensor filled by `fill`; disposed again if `fill` throws, so errors never leak memory. */
export function produce(shape: readonly number[], fill: (out: Tensor) => void): Tensor {
  const out = Tensor.zeros(shape);
  try {
    fill(out);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
