/**
 * `Parameter`: one learnable tensor of a layer (or a BatchNorm running statistic, a
 * buffer), held in PyTorch's layout in WebAssembly memory. The layer packs its kernels'
 * copy from it when it changes; training graphs read it where it is and add their
 * gradients into its `grad`; optimisers update it in place. The same object for the
 * layer's whole life, so `p.requiresGrad = false` sticks.
 */
import { call, canFree, generation, track } from '../backend.js';
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { Buffer } from '../wasm/inception_wasm.js';
import type { Module, ParameterInfo, ParameterKind } from './module.js';

export class Parameter {
  /** The name in its layer (`weight`, `bias`, `running_mean`, …). */
  readonly localName: string;
  readonly shape: readonly number[];
  readonly kind: ParameterKind;
  /** A buffer (BatchNorm running statistics): in the state dict, not learnable, never has a gradient. */
  readonly buffer: boolean;
  /**
   * Whether backward computes this parameter's gradient (and optimisers update it).
   * `false` freezes it. @defaultValue true (false for buffers)
   */
  requiresGrad: boolean;
  readonly #owner: Module;
  #data: Tensor | undefined;
  /** The gradient's memory, shared with graphs and optimisers: empty until a backward reaches it. */
  #slot: Buffer | undefined;
  #slotGeneration = 0;
  #grad: Tensor | undefined;

  /** @internal Made by the layer that owns it. */
  constructor(owner: Module, info: ParameterInfo) {
    this.#owner = owner;
    this.localName = info.name;
    this.shape = Object.freeze([...info.shape]);
    this.kind = info.kind;
    this.buffer = info.buffer === true;
    this.requiresGrad = !this.buffer;
  }

  /** @internal The layer that owns it. */
  get _owner(): Module {
    return this.#owner;
  }

  /** The dotted name from the root of the owner's module tree, as in `namedParameters()`. */
  get name(): string {
    const path = this.#owner.path;
    return path ? `${path}.${this.localName}` : this.localName;
  }

  /** The values (row-major, PyTorch's layout). Write them through `loadStateDict`, or in place followed by nothing else: layers repack when an optimiser or a load changes them. */
  get data(): Tensor {
    if (this.#data === undefined || this.#data.isDisposed) throw new ValueError(this.#owner.op, `${this.localName} is not initialised`);
    return this.#data;
  }

  /** The accumulated gradient, or `null` before the first backward that reaches this parameter. */
  get grad(): Tensor | null {
    const slot = this.#liveSlot();
    if (slot === undefined || slot.isEmpty()) return null;
    if (this.#grad === undefined || this.#grad.isDisposed) this.#grad = Tensor._wrap(this.shape, track(slot.share()));
    return this.#grad;
  }

  /** Sets the gradient to zero (PyTorch 1.13's `zero_grad()`; no gradient yet stays `null`). */
  zeroGrad(): void {
    const slot = this.#liveSlot();
    if (slot !== undefined && !slot.isEmpty()) slot.fill(0);
  }

  #liveSlot(): Buffer | undefined {
    return this.#slot !== undefined && this.#slotGeneration === generation() ? this.#slot : undefined;
  }

  /** @internal The gradient's buffer (made empty on first use; a backward sizes it). */
  _gradSlot(): Buffer {
    let slot = this.#liveSlot();
    if (slot === undefined) {
      slot = call(this.#owner.op, (glue) => track(new glue.Buffer(0)));
      this.#slot = slot;
      this.#slotGeneration = generation();
      this.#grad = undefined;
    }
    return slot;
  }

  /** @internal True when `t` is this parameter's data. */
  _holds(t: Tensor): boolean {
    return this.#data === t;
  }

  /**
   * @internal New values: adopted as the data when there is none yet, else copied into the
   * data in place (graphs and optimisers that share it see them) and `t` disposed.
   */
  _set(t: Tensor): void {
    if (this.#data === undefined || this.#data.isDisposed) {
      this.#data = t;
      return;
    }
    const op = this.#owner.op;
    call(op, () => this.#data!._native(op).copyFrom(t._native(op)));
    t.dispose();
  }

  /** @internal Frees the data and the gradient. */
  _release(): void {
    this.#data?.dispose();
    this.#data = undefined;
    this.#grad?.dispose();
    this.#grad = undefined;
    if (this.#slot !== undefined && canFree(this.#slotGeneration)) this.#slot.free();
    this.#slot = undefined;
  }

  toString(): string {
    return `Parameter(${this.name}, shape=[${this.shape.join(', ')}]${this.requiresGrad ? '' : ', frozen'})`;
  }
}
