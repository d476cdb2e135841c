/**
 * Recording a training forward: modules lower themselves to a {@link GraphBuilder} the
 * way they lower to an inference plan (ts/plan.ts), but layers with parameters hand over
 * their `Parameter`s (read where they are at each forward, gradients added into
 * `Parameter.grad`), BatchNorm runs unfolded (batch statistics in training mode) and
 * Dropout drops. The native graph (crates/kernels/src/train) keeps every activation its
 * backward needs; {@link RecordedGraph.run} returns the outputs as tensors that know how
 * to differentiate it (ts/autograd.ts).
 *
 * One recorded forward holds its activations at a time: running another graph frees the
 * previous one's, and running the same graph again replaces them — a backward of the
 * older forward then throws an {@link AutogradError} instead of reading the new values.
 */
import { call, canFree, generation, track } from '../backend.js';
import type { GraphRun } from '../autograd.js';
import { AutogradError } from '../errors.js';
import type { PoolGeometry, Value } from '../plan.js';
import { numelOf } from '../shape.js';
import { checkNumel, produce, Tensor } from '../tensor.js';
import type { TrainGraph as NativeGraph, TrainGraphBuilder as NativeBuilder } from '../wasm/inception_wasm.js';
import { takeSeed } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';

/** `[n, c, h, w]` of a rank-4 value. */
const nchw = (v: Value) => v.shape as readonly [number, number, number, number];

/** A convolution's geometry as the graph takes it. */
export interface ConvGeometry {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
}

/** What a BatchNorm2d hands the graph. */
export interface BatchNormState {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Parameter;
  readonly runningVar: Parameter;
  readonly eps: number;
  readonly momentum: number;
  readonly training: boolean;
  /** Marks the module's packed inference copy stale (its running statistics changed). */
  readonly owner: Module;
}

/** The native buffers of a parameter for a graph: its data, and its gradient unless frozen. */
function handles(p: Parameter): [ReturnType<Tensor['_native']>, ReturnType<Parameter['_gradSlot']> | undefined] {
  const op = 'record';
  return [p.data._native(op), p.requiresGrad ? p._gradSlot().share() : undefined];
}

export class GraphBuilder {
  /** Discriminates the two builders lowering code receives (see ts/plan.ts `PlanBuilder`). */
  readonly recording = true;
  readonly #native: NativeBuilder;
  readonly #op: string;
  readonly input: Value;
  /** BatchNorm modules in training mode: a forward updates their running statistics. */
  readonly mutated: Module[] = [];

  constructor(op: string, inputShape: readonly number[]) {
    this.#op = op;
    this.#native = call(op, (glue) => track(new glue.TrainGraphBuilder(numelOf(inputShape))));
    this.input = { id: 0, shape: inputShape };
  }

  #call<T>(f: (n: NativeBuilder) => T): T {
    return call(this.#op, () => f(this.#native));
  }

  value(shape: readonly number[]): Value {
    return { id: this.#native.value(checkNumel(this.#op, 'an intermediate of shape', shape)), shape };
  }

  /** A convolution with parameters `weight` (OIHW) and `bias`, then ReLU when `relu`, into channels `[offset, …)` of `out`. */
  conv(g: ConvGeometry, weight: Parameter, bias: Parameter | undefined, x: Value, relu: boolean, out: Value, offset: number): void {
    const [n, , h, w] = nchw(x);
    const [wd, wg] = handles(weight);
    const [bd, bg] = bias === undefined ? [undefined, undefined] : handles(bias);
    this.#call((b) => b.conv(wd, wg, bd?.share(), bg, g.inChannels, g.outChannels, ...g.kernelSize, ...g.stride, ...g.padding, n, h, w, relu, x.id, out.id, out.shape[1]!, offset));
  }

  batchNorm(bn: BatchNormState, x: Value, relu: boolean, out: Value, offset: number): void {
    const [n, c, h, w] = nchw(x);
    const [gd, gg] = handles(bn.weight);
    const [bd, bg] = handles(bn.bias);
    const op = this.#op;
    this.#call((b) => b.batchNorm(gd, gg, bd, bg, bn.runningMean.data._native(op), bn.runningVar.data._native(op), bn.training, bn.momentum, bn.eps, relu, n, c, h * w, x.id, out.id, out.shape[1]!, offset));
    if (bn.training) this.mutated.push(bn.owner);
  }

  linear(weight: Parameter, bias: Parameter | undefined, x: Value, out: Value): void {
    const [wd, wg] = handles(weight);
    const [bd, bg] = bias === undefined ? [undefined, undefined] : handles(bias);
    this.#call((b) => b.linear(wd, wg, bd?.share(), bg, x.shape[1]!, out.shape[1]!, x.shape[0]!, x.id, out.id));
  }

  dropout(p: number, x: Value, out: Value): void {
    this.#call((b) => b.dropout(p, x.id, out.id));
  }

  maxPool2d(x: Value, g: PoolGeometry, out: Value): void {
    const [n, c, h, w] = nchw(x);
    this.#call((b) => b.maxPool2d(n * c, h, w, ...g.kernelSize, ...g.stride, ...g.padding, g.ceilMode, x.id, out.id));
  }

  avgPool2d(x: Value, g: PoolGeometry, countIncludePad: boolean, out: Value): void {
    const [n, c, h, w] = nchw(x);
    this.#call((b) => b.avgPool2d(n * c, h, w, ...g.kernelSize, ...g.stride, ...g.padding, g.ceilMode, countIncludePad, x.id, out.id));
  }

  adaptiveAvgPool2d(x: Value, out: Value): void {
    const [n, c, h, w] = nchw(x);
    const [, , oh, ow] = nchw(out);
    this.#call((b) => b.adaptiveAvgPool2d(n * c, h, w, oh, ow, x.id, out.id));
  }

  relu(x: Value, out: Value): void {
    this.#call((b) => b.relu(x.id, out.id));
  }

  copyChannels(x: Value, out: Value, offset: number): void {
    const [n, c, h, w] = nchw(x);
    this.#call((b) => b.copyChannels(n, c, h * w, x.id, out.id, out.shape[1]!, offset));
  }

  channelAffine(x: Value, scale: Float32Array, shift: Float32Array, out: Value): void {
    const [n, , h, w] = nchw(x);
    this.#call((b) => b.channelAffine(scale, shift, n, h * w, x.id, out.id));
  }

  /** Marks `v` as an output of the graph; returns its index. */
  keep(v: Value): number {
    return this.#call((b) => b.output(v.id));
  }

  build(inputGrad: boolean): NativeGraph {
    return this.#call((b) => track(b.build(inputGrad)));
  }

  free(): void {
    this.#native.free();
  }
}

/** The graph whose activations are held now (one at a time: see the file's comment). */
let active: RecordedGraph | undefined;

/** A compiled training graph of a module for one input shape and set of modes. */
export class RecordedGraph {
  readonly #op: string;
  readonly #native: NativeGraph;
  readonly #generation = generation();
  readonly #shapes: readonly (readonly number[])[];
  readonly #mutated: readonly Module[];
  /** Bumped by every forward: a run's outputs differentiate only the latest. */
  #runs = 0;

  private constructor(op: string, native: NativeGraph, shapes: readonly (readonly number[])[], mutated: readonly Module[]) {
    this.#op = op;
    this.#native = native;
    this.#shapes = shapes;
    this.#mutated = mutated;
  }

  /** Records `lower`'s steps for `inputShape`; its returned values are the outputs, of `shapes`. */
  static compile(op: string, inputShape: readonly number[], inputGrad: boolean, shapes: readonly (readonly number[])[], lower: (b: GraphBuilder, x: Value) => Value[]): RecordedGraph {
    const b = new GraphBuilder(op, inputShape);
    let native: NativeGraph;
    try {
      for (const v of lower(b, b.input)) b.keep(v);
      native = b.build(inputGrad);
    } catch (e) {
      if (canFree(generation())) b.free();
      throw e;
    }
    return new RecordedGraph(op, native, shapes, b.mutated);
  }

  /** Runs the forward on `x`; the outputs carry their graph for `backward()`. */
  run(x: Tensor): Tensor[] {
    const op = this.#op;
    if (active !== undefined && active !== this) active.release();
    active = this;
    const run = ++this.#runs;
    call(op, () => this.#native.forward(x._native(op), takeSeed(undefined)));
    for (const m of this.#mutated) m._markStale();
    const outputs: Tensor[] = [];
    try {
      this.#shapes.forEach((shape, k) => outputs.push(produce(shape, (out) => call(op, () => this.#native.output(k, out._native(op))))));
    } catch (e) {
      for (const t of outputs) t.dispose();
      throw e;
    }
    const graph: GraphRun = { op, input: x, outputs, backward: (grads) => this.#backward(run, x, grads) };
    for (const t of outputs) t._node = { kind: 'output', run: graph };
    return outputs;
  }

  #backward(run: number, x: Tensor, grads: readonly (Tensor | undefined)[]): Tensor | null {
    const op = this.#op;
    if (run !== this.#runs || !call(op, () => this.#native.ready())) {
      throw new AutogradError(op, run !== this.#runs || active !== this
        ? 'the activations of this forward were replaced by a later forward (one recorded forward is held at a time): run the forward again, then backward'
        : 'this forward was already differentiated: backward() runs once per forward (run the forward again)');
    }
    const indices: number[] = [];
    const buffers = grads.flatMap((g, k) => (g === undefined ? [] : (indices.push(k), [g._native(op).share()])));
    const dx = x.requiresGrad ? Tensor.zeros(x.shape) : null;
    try {
      call(op, () => this.#native.backward(new Uint32Array(indices), buffers, dx?._native(op).share()));
    } catch (e) {
      dx?.dispose();
      throw e;
    }
    return dx;
  }

  /** Frees the activations (a pending backward of this graph then throws). */
  release(): void {
    if (canFree(this.#generation)) this.#native.release();
    if (active === this) active = undefined;
  }

  free(): void {
    if (active === this) active = undefined;
    if (canFree(this.#generation)) this.#native.free();
  }
}
