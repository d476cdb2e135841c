/**
 * Compiling a module tree into a plan: the list of kernel calls for one input shape,
 * which WebAssembly then runs in one call per forward, with every activation at a fixed
 * place in one arena (see `crates/kernels/src/plan`). Modules describe themselves here
 * (`Module.lower`); shapes are checked by the modules before anything is lowered, and
 * the native builder checks every size again.
 */
import { call, canFree, generation, track } from './backend.js';
import type { Conv2d as NativeConv2d, Linear as NativeLinear, PlanBuilder as NativeBuilder, Plan as NativePlan } from './wasm/inception_wasm.js';
import { numelOf } from './shape.js';
import { checkNumel } from './tensor.js';
import type { GraphBuilder } from './train/record.js';

/** A tensor of a plan being built: a flat buffer and the shape it is read as. */
export interface Value {
  readonly id: number;
  readonly shape: readonly number[];
}

export interface PoolGeometry {
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly ceilMode: boolean;
}

/** `[n, c, h, w]` of a rank-4 value. */
const nchw = (v: Value) => v.shape as readonly [number, number, number, number];

/**
 * What `Module.lower` receives: an inference plan being compiled, or a training graph
 * being recorded (ts/train/record.ts). The steps without parameters have the same
 * methods on both; layers with parameters check `recording`.
 */
export type PlanBuilder = InferenceBuilder | GraphBuilder;

export class InferenceBuilder {
  /** Discriminates the two builders (see {@link PlanBuilder}). */
  readonly recording = false;
  readonly #native: NativeBuilder;
  readonly #op: string;
  readonly #generation = generation();
  /** The plan's input. */
  readonly input: Value;

  constructor(op: string, inputShape: readonly number[]) {
    this.#op = op;
    this.#native = call(op, (glue) => track(new glue.PlanBuilder(numelOf(inputShape))));
    this.input = { id: 0, shape: inputShape };
  }

  /** Calls the native builder with typed errors (see `backend.call`). */
  #call<T>(f: (n: NativeBuilder) => T): T {
    return call(this.#op, () => f(this.#native));
  }

  /** A new intermediate value; a {@link ValueError} past 2^30 elements (the most a tensor may have). */
  value(shape: readonly number[]): Value {
    return { id: this.#native.value(checkNumel(this.#op, 'an intermediate of shape', shape)), shape };
  }

  /** `layer` on `x` into channels `[offset, offset + c_out)` of `out`. */
  conv(layer: NativeConv2d, x: Value, relu: boolean, out: Value, offset: number): void {
    const [n, , h, w] = nchw(x);
    this.#call((native) => native.conv(layer, n, h, w, relu, x.id, out.id, out.shape[1]!, offset));
  }

  maxPool2d(x: Value, g: PoolGeometry, out: Value): void {
    const [n, c, h, w] = nchw(x);
    this.#call((native) => native.maxPool2d(n * c, h, w, ...g.kernelSize, ...g.stride, ...g.padding, g.ceilMode, x.id, out.id));
  }

  avgPool2d(x: Value, g: PoolGeometry, countIncludePad: boolean, out: Value): void {
    const [n, c, h, w] = nchw(x);
    this.#call((native) => native.avgPool2d(n * c, h, w, ...g.kernelSize, ...g.stride, ...g.padding, g.ceilMode, countIncludePad, x.id, out.id));
  }

  adaptiveAvgPool2d(x: Value, out: Value): void {
    const [n, c, h, w] = nchw(x);
    const [, , oh, ow] = nchw(out);
    this.#call((native) => native.adaptiveAvgPool2d(n * c, h, w, oh, ow, x.id, out.id));
  }

  linear(layer: NativeLinear, x: Value, out: Value): void {
    this.#call((native) => native.linear(layer, x.shape[0]!, x.id, out.id));
  }

  relu(x: Value, out: Value): void {
    this.#call((native) => native.relu(x.id, out.id));
  }

  /** `x` (`[N, C, H, W]`) into channels `[offset, offset + C)` of `out`. */
  copyChannels(x: Value, out: Value, offset: number): void {
    const [n, c, h, w] = nchw(x);
    this.#call((native) => native.copyChannels(n, c, h * w, x.id, out.id, out.shape[1]!, offset));
  }

  /** `x·scale[c] + shift[c]` per channel. */
  channelAffine(x: Value, scale: Float32Array, shift: Float32Array, out: Value): void {
    const [n, , h, w] = nchw(x);
    this.#call((native) => native.channelAffine(scale, shift, n, h * w, x.id, out.id));
  }

  /** The plan, writing `output` into the buffer passed to `run`. Consumes the builder. */
  build(output: Value): NativePlan {
    return this.#call((n) => track(n.build(output.id)));
  }

  /** Frees the builder when lowering failed (`build` consumes it otherwise). */
  free(): void {
    if (canFree(this.#generation)) this.#native.free();
  }
}

/**
 * Compiles `lower` into a plan for `inputShape`: `lower` adds the steps and returns the
 * value that becomes the plan's output.
 */
export function compile(op: string, inputShape: readonly number[], lower: (b: InferenceBuilder, x: Value) => Value): NativePlan {
  const b = new InferenceBuilder(op, inputShape);
  let output: Value;
  try {
    output = lower(b, b.input);
  } catch (e) {
    b.free();
    throw e;
  }
  return b.build(output);
}
