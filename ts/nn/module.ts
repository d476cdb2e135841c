/**
 * `Module`: the PyTorch-like base of every layer and network. Children are registered
 * under the names PyTorch's `state_dict` uses, so `stateDict()` / `loadStateDict()` speak
 * torchvision's keys with no mapping table.
 *
 * Leaves (Conv2d, Linear, …) own their weights inside WebAssembly memory, packed for the
 * kernels; they declare their parameters (`ownParameters`) and read/write them as plain
 * row-major arrays only when loading or saving, never during `forward`.
 */
import { call, canFree, checkGeneration, generation } from '../backend.js';
import { classify, type ClassifyOptions, type Prediction } from '../classify.js';
import type { ImageInput } from '../image/source.js';
import { checkInt, DisposedError, ShapeError, StateDictError, ValueError } from '../errors.js';
import { compile, type InferenceBuilder, type PlanBuilder, type Value } from '../plan.js';
import { type GraphBuilder, RecordedGraph } from '../train/record.js';
import { Parameter } from './parameter.js';
import { numelOf } from '../shape.js';
import { disposeSymbol, isWasmView, produce, Tensor } from '../tensor.js';
import type { Plan as NativePlan } from '../wasm/inception_wasm.js';

export { numelOf };

/** What a parameter is, which decides how the deterministic initialiser fills it. */
export type ParameterKind =
  | 'conv_weight'
  | 'conv_bias'
  | 'linear_weight'
  | 'linear_bias'
  | 'bn_weight'
  | 'bn_bias'
  | 'bn_running_mean'
  | 'bn_running_var';

/** A state-dict entry's declaration: its local name, shape and kind. */
export interface ParameterInfo {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: ParameterKind;
  /** A buffer (BatchNorm running statistics): in the state dict, not a learnable parameter. */
  readonly buffer?: boolean;
}

/** One entry of a state dict: row-major float32 data and its shape. */
export interface StateTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** What `loadStateDict` accepts: a `Map` or a plain object, of `{shape, data}` or bare `Float32Array`s. */
export type StateDictInput =
  | ReadonlyMap<string, StateTensor | Float32Array>
  | Readonly<Record<string, StateTensor | Float32Array>>;

export interface LoadOptions {
  /**
   * Reject keys the model does not have (missing keys are always an error). Keys ending in
   * `.num_batches_tracked` (BatchNorm's step counter, meaningless at inference) are
   * always accepted and ignored.
   * @defaultValue true
   */
  strict?: boolean;
  /**
   * Ignore torchvision's auxiliary heads (`aux1.*`, `aux2.*`): load a full torchvision
   * state dict into a model built without them, or keep a model's own heads as they are.
   * @defaultValue false
   */
  ignoreAux?: boolean;
}

const AUX_KEY = /^aux[12]\./;

/** Recorded training graphs kept per module (one per input shape and mode); each holds its activations. */
const MAX_GRAPHS = 2;

/** One row of {@link Module.trace}: a leaf layer at a given input shape. */
export interface LayerRow {
  readonly name: string;
  readonly type: string;
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly params: number;
  readonly macs: number;
}

/** Compiled plans kept per module (one per input shape and kind of run), least recently used dropped first. */
const MAX_PLANS = 8;

/**
 * The base of every layer and network. Build networks by composing the package's layers
 * (`Sequential`, `Inception`, …): subclassing `Module` outside the package is not
 * supported, since lowering to plans is internal API.
 */
export abstract class Module {
  /** Training mode (as PyTorch's `module.training`); inference is `false`, the default. */
  training = false;
  #children: [string, Module][] = [];
  /** The first container this module was added to: where its path (and error names) come from. */
  #parent: Module | undefined;
  /** Every container it was added to (a layer may be shared, as in PyTorch): all cache plans holding its weights. */
  #parents: Module[] = [];
  #name = '';
  #disposed = false;
  #plans = new Map<string, NativePlan>();
  /** The WebAssembly instance of this module's weights and plans (0: none made yet). */
  #generation = 0;
  /** This module's parameters and buffers by local name, made from `ownParameters()` on first use. */
  #params: Map<string, Parameter> | undefined;
  /** Its parameters (or a descendant's) changed since its kernels last packed them. */
  #stale = true;
  #graphs = new Map<string, RecordedGraph>();

  /** Output shape for an input shape; throws a {@link ShapeError} naming this layer if the input does not fit. */
  abstract outputShape(input: readonly number[]): number[];

  /**
   * Adds this module's kernel calls to a plan being compiled, reading `x`, and returns the
   * value that holds the output. `x.shape` has passed `outputShape` already.
   */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  abstract lower(plan: PlanBuilder, x: Value): Value;

  /**
   * As {@link lower}, writing into channels `[channelOffset, …)` of `out` (how Inception
   * branches fill their slice of the concatenation). Layers that can write there directly
   * (Conv2d, and chains ending in one) override this; the default copies.
   */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  lowerInto(plan: PlanBuilder, x: Value, out: Value, channelOffset: number): void {
    plan.copyChannels(this.lower(plan, x), out, channelOffset);
  }

  /**
   * Runs the layer; the result is a new tensor the caller owns (the input is never
   * disposed). The first call for an input shape compiles a plan (kept for later calls);
   * then a forward is one WebAssembly call that allocates nothing but the result.
   */
  forward(x: Tensor): Tensor {
    const shape = this.checkInput(x);
    if (this.recordsFor(x)) return this.record('forward', x, [shape], (b, v) => [this.lower(b, v)])[0]!;
    const plan = this.plan(`forward ${x.shape.join(',')}`, x.shape, (b, v) => this.lower(b, v));
    return produce(shape, (out) => this.run(plan, x, out));
  }

  /**
   * Classifies an image (or an array of images) with this model: see {@link classify}
   * (torchvision's ImageNet transform, softmax, top-5 with ImageNet names by default).
   */
  classify(image: ImageInput, options?: ClassifyOptions): Promise<Prediction[]>;
  classify(image: readonly ImageInput[], options?: ClassifyOptions): Promise<Prediction[][]>;
  classify(image: ImageInput | readonly ImageInput[], options?: ClassifyOptions): Promise<Prediction[] | Prediction[][]> {
    return classify(this, image as ImageInput, options);
  }

  /**
   * True when a forward on `x` is recorded for backward: `x` requires a gradient, or this
   * module or a descendant is in training mode (BatchNorm then uses batch statistics and
   * Dropout drops, as in PyTorch). Eval mode with an input that needs no gradient runs
   * the inference plan: nothing recorded, nothing allocated but the result.
   */
  /** @internal */
  protected recordsFor(x: Tensor): boolean {
    if (x.requiresGrad) return true;
    for (const m of this.modules()) if (m.training) return true;
    return false;
  }

  /**
   * Runs `lower` as a recorded training graph (cached per input shape and per the modes
   * and frozen parameters it depends on): the outputs, of `shapes`, carry what backward needs.
   */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected record(kind: string, x: Tensor, shapes: readonly (readonly number[])[], lower: (b: GraphBuilder, x: Value) => Value[]): Tensor[] {
    let flags = x.requiresGrad ? 'x' : '-';
    for (const m of this.modules()) {
      flags += m.training ? 'T' : 'e';
      for (const p of m._parameters().values()) flags += p.requiresGrad ? '1' : '0';
    }
    const key = `${kind} ${x.shape.join(',')} ${flags}`;
    const graph = this.#cached(this.#graphs, key, MAX_GRAPHS, () => RecordedGraph.compile(this.op, x.shape, x.requiresGrad, shapes, lower));
    return graph.run(x);
  }

  /** Runs a compiled plan of this module's on `x` into `out` (typed errors, see `backend.call`). */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected run(plan: NativePlan, x: Tensor, out: Tensor): void {
    call(this.op, () => plan.run(x._native(this.op), out._native(this.op)));
  }

  /** The cached plan `key`, compiled with `lower` on a miss. */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected plan(key: string, inputShape: readonly number[], lower: (b: InferenceBuilder, x: Value) => Value): NativePlan {
    return this.#cached(this.#plans, key, MAX_PLANS, () => compile(this.op, inputShape, lower));
  }

  /** Entry `key` of a least-recently-used cache of at most `max` (made by `make` on a miss; the oldest freed). */
  #cached<T extends { free(): void }>(cache: Map<string, T>, key: string, max: number, make: () => T): T {
    let entry = cache.get(key);
    if (entry === undefined) {
      entry = make();
      this.#generation = generation();
      if (cache.size >= max) {
        const [oldest, old] = cache.entries().next().value!;
        old.free();
        cache.delete(oldest);
      }
    } else {
      cache.delete(key);
    }
    cache.set(key, entry);
    return entry;
  }

  /**
   * Frees the compiled plans of this module and of every ancestor: they hold this
   * module's weights, which a load just replaced.
   */
  protected invalidatePlans(): void {
    const seen = new Set<Module>();
    const visit = (m: Module): void => {
      if (seen.has(m)) return;
      seen.add(m);
      m.#freePlans();
      for (const parent of m.#parents) visit(parent);
    };
    visit(this);
  }

  #freePlans(): void {
    if (canFree(this.#generation)) for (const plan of this.#plans.values()) plan.free();
    this.#plans.clear();
  }

  #freeGraphs(): void {
    if (canFree(this.#generation)) for (const graph of this.#graphs.values()) graph.free();
    this.#graphs.clear();
  }

  /**
   * @internal This module's parameters changed (a load, an optimiser step, BatchNorm's
   * running statistics in a training forward): it and its ancestors repack their kernels'
   * copy before the next inference, and the plans that held the old one are freed.
   */
  _markStale(): void {
    const seen = new Set<Module>();
    const visit = (m: Module): void => {
      if (seen.has(m)) return;
      seen.add(m);
      m.#stale = true;
      for (const parent of m.#parents) visit(parent);
    };
    visit(this);
    this.invalidatePlans();
  }

  /** True once after its parameters changed: leaves then repack (see `_markStale`). */
  protected takeStale(): boolean {
    const stale = this.#stale;
    this.#stale = false;
    return stale;
  }

  /** @internal This module's own parameters and buffers by local name (made on first use). */
  _parameters(): ReadonlyMap<string, Parameter> {
    this.#params ??= new Map(this.ownParameters().map((info) => [info.name, new Parameter(this, info)]));
    return this.#params;
  }

  /** This module's own parameter or buffer `name`. */
  protected param(name: string): Parameter {
    const p = this._parameters().get(name);
    if (p === undefined) throw new ValueError(this.op, `has no parameter ${name}`);
    return p;
  }

  /** Registers a child under `name` (its state-dict prefix) and returns it. */
  protected addModule<M extends Module>(name: string, m: M): M {
    if (m.#parent === undefined) {
      m.#parent = this;
      m.#name = name;
    }
    if (!m.#parents.includes(this)) m.#parents.push(this);
    this.#children.push([name, m]);
    return m;
  }

  /** The dotted path from the root, e.g. `inception3a.branch2.1` (empty for the root). */
  get path(): string {
    const up = this.#parent?.path;
    return up ? `${up}.${this.#name}` : this.#name;
  }

  /** How errors name this layer: `inception3a.branch2.1 (Conv2d)`, or `Conv2d` for a root. */
  get op(): string {
    return this.path ? `${this.path} (${this.constructor.name})` : this.constructor.name;
  }

  /** Direct children with their names, in registration order. */
  children(): readonly (readonly [string, Module])[] {
    return this.#children;
  }

  /** This module and all its descendants, as PyTorch's `modules()` (`namedModules` without the names). */
  *modules(): Generator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /** This module and all descendants with their dotted names (`''` for this one). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, child] of this.#children) yield* child.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** Leaves declare their parameters here, in PyTorch's registration order. */
  protected ownParameters(): readonly ParameterInfo[] {
    return [];
  }

  /** The current values of this module's own parameters and buffers (row-major copies, by local name). */
  protected readParameters(): Map<string, Float32Array> {
    return new Map([...this._parameters()].map(([name, p]) => [name, p.data.toArray()]));
  }

  /**
   * @internal Replaces this module's own parameters (`values` by local name, validated,
   * taken over: adopted as the storage or copied into it and disposed), and marks the
   * kernels' packed copy stale.
   */
  _writeState(values: ReadonlyMap<string, Tensor>): void {
    const own = this._parameters();
    try {
      for (const [name, t] of values) own.get(name)!._set(t);
    } catch (e) {
      for (const [name, t] of values) if (!own.get(name)?._holds(t)) t.dispose();
      throw e;
    }
    this.#generation = generation();
    this._markStale();
  }

  /**
   * Leaves with constraints beyond shape (e.g. BatchNorm variances must be ≥ −ε) check
   * them here, before anything is written, by calling `fail(localName, message)`.
   */
  protected checkValues(_values: ReadonlyMap<string, Float32Array>, _fail: (name: string, message: string) => never): void {}

  /** @internal Modules that own state-dict entries, with their declarations, in `state_dict()` order. */
  *_stateOwners(): Generator<[Module, readonly ParameterInfo[]]> {
    for (const [, m] of this.namedModules()) {
      const own = m.ownParameters();
      if (own.length > 0) yield [m, own];
    }
  }

  /** Every state-dict entry (parameters and buffers) with its full name, in `state_dict()` order. */
  namedStateEntries(): [string, ParameterInfo][] {
    const out: [string, ParameterInfo][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const p of m.ownParameters()) out.push([prefix ? `${prefix}.${p.name}` : p.name, p]);
    }
    return out;
  }

  /** Every learnable parameter with its full name (PyTorch's `named_parameters()`): the same `Parameter` objects every call. */
  namedParameters(): [string, Parameter][] {
    return this.#namedEntries(false);
  }

  /** Every learnable parameter (PyTorch's `parameters()`), as in `namedParameters()`. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer (BatchNorm's running statistics) with its full name (PyTorch's `named_buffers()`). */
  namedBuffers(): [string, Parameter][] {
    return this.#namedEntries(true);
  }

  #namedEntries(buffers: boolean): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m._parameters()) if (p.buffer === buffers) out.push([prefix ? `${prefix}.${name}` : name, p]);
    }
    return out;
  }

  /** Zeroes every parameter's gradient (PyTorch 1.13's `zero_grad()`: gradients stay allocated). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Number of learnable values (PyTorch's `sum(p.numel() for p in parameters())`). */
  numParameters(): number {
    return this.namedParameters().reduce((s, [, p]) => s + numelOf(p.shape), 0);
  }

  /** A copy of every parameter, keyed by its state-dict name. */
  stateDict(): Map<string, StateTensor> {
    this.checkLive('stateDict');
    const out = new Map<string, StateTensor>();
    for (const [prefix, m] of this.namedModules()) {
      const values = m.readParameters();
      for (const p of m.ownParameters()) {
        out.set(prefix ? `${prefix}.${p.name}` : p.name, { shape: [...p.shape], data: values.get(p.name)! });
      }
    }
    return out;
  }

  /**
   * Loads parameters by state-dict name. Everything is checked first — every key present,
   * no unknown key (with `strict`), every shape and length right, float32 data — so a
   * failed load throws a {@link StateDictError} naming the key and leaves the model as it was.
   */
  loadStateDict(dict: StateDictInput, options: LoadOptions = {}): void {
    const op = `${this.op}.loadStateDict`;
    this.checkLive('loadStateDict');
    // A file's bytes handed over unparsed: Object.entries would walk every byte (minutes,
    // then a RangeError). Say which parser to use instead.
    if (dict instanceof ArrayBuffer || ArrayBuffer.isView(dict)) {
      throw new StateDictError(op, '', `got ${(dict as object).constructor.name} bytes, not a state dict: parse the file first with loadSafetensors(bytes) (.safetensors) or loadPth(bytes) (PyTorch .pth / .pt)`);
    }
    if (typeof dict !== 'object' || dict === null) throw new StateDictError(op, '', `expected a Map or an object of tensors, but got ${describe(dict)}`);
    const entries = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const ignored = (key: string) => key.endsWith('.num_batches_tracked') || (options.ignoreAux === true && AUX_KEY.test(key));
    const perModule = new Map<Module, { prefix: string; values: Map<string, Float32Array> }>();
    const seen = new Set<string>();
    for (const [prefix, m] of this.namedModules()) {
      const own = m.ownParameters();
      if (own.length > 0 && ignored(prefix ? `${prefix}.${own[0]!.name}` : own[0]!.name)) continue;
      for (const p of own) {
        const key = prefix ? `${prefix}.${p.name}` : p.name;
        const v = entries.get(key);
        if (v === undefined) throw new StateDictError(op, key, `missing key "${key}" (expected shape [${p.shape.join(', ')}])`);
        const data = v instanceof Float32Array ? v : (v as StateTensor | undefined)?.data;
        if (!(data instanceof Float32Array)) {
          throw new StateDictError(op, key, `"${key}" must be float32 data (a Float32Array or {shape, data}), but got ${describe(v)}`);
        }
        if (!(v instanceof Float32Array)) {
          const shape = (v as StateTensor).shape;
          if (!Array.isArray(shape) || shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i])) {
            throw new StateDictError(op, key, `"${key}" has shape [${String(shape)}], expected [${p.shape.join(', ')}]`);
          }
        }
        if (data.length !== numelOf(p.shape)) {
          throw new StateDictError(op, key, `"${key}" has ${data.length} values, expected ${numelOf(p.shape)} for shape [${p.shape.join(', ')}]`);
        }
        if (!perModule.has(m)) perModule.set(m, { prefix, values: new Map() });
        // Copy views of wasm memory now: packing allocates, and growth would detach them.
        perModule.get(m)!.values.set(p.name, isWasmView(data) ? data.slice() : data);
        seen.add(key);
      }
    }
    if (options.strict ?? true) {
      for (const key of entries.keys()) {
        if (!seen.has(key) && !ignored(key)) throw new StateDictError(op, key, `unexpected key "${key}"`);
      }
    }
    for (const [m, { prefix, values }] of perModule) {
      m.checkValues(values, (name, message) => {
        const key = prefix ? `${prefix}.${name}` : name;
        throw new StateDictError(op, key, `"${key}" ${message}`);
      });
    }
    // Largest layers first: each layer's values in transit then fit the hole the previous
    // one's left, and memory grows only as the packed weights do (GoogLeNet from its state
    // dict: WebAssembly memory 1.05× what the model holds, against 1.40× in state-dict
    // order, where later layers are larger). Growing it once up front, as initialisation
    // does, measured slower here (97 against 58 ms) and 1.2×.
    const size = ({ values }: { values: Map<string, Float32Array> }) => [...values.values()].reduce((n, v) => n + v.length, 0);
    const order = [...perModule].sort(([, a], [, b]) => size(b) - size(a));
    for (const [m, { values }] of order) {
      m._writeState(new Map([...values].map(([name, data]) => [name, Tensor.fromArray(data, [data.length])])));
    }
  }

  /**
   * Visits every leaf layer in execution order for an input shape, emitting its output
   * shape, parameter count and multiply-accumulates; returns the output shape. Composites
   * override this to describe their data flow; leaves use `outputShape` and `macs`.
   */
  trace(input: readonly number[], emit: (row: LayerRow) => void): number[] {
    const outputShape = this.outputShape(input);
    const params = this.ownParameters().reduce((s, p) => s + numelOf(p.shape), 0);
    emit({ name: this.path || this.constructor.name, type: this.constructor.name, inputShape: [...input], outputShape, params, macs: this.macs(input, outputShape) });
    return outputShape;
  }

  /** Multiply-accumulates of one forward pass of this leaf (0 for pools and activations). */
  protected macs(_input: readonly number[], _output: readonly number[]): number {
    return 0;
  }

  /**
   * Runs the layer writing into channels `[channelOffset, …)` of `out`, an NCHW tensor with
   * more channels (the rest of `out` is left as it is). Inside a compiled plan, layers
   * write their slice directly; this standalone form runs `forward` and copies.
   */
  forwardInto(x: Tensor, out: Tensor, channelOffset: number): void {
    checkInt(this.op, 'channelOffset', channelOffset, 0);
    if (!(out instanceof Tensor)) throw new ShapeError(this.op, `out must be a Tensor, but got ${describe(out)}`);
    out._native(this.op);
    checkPlacement(this.op, this.checkInput(x), out, channelOffset);
    const y = this.forward(x);
    try {
      copyChannels(this.op, y, out, channelOffset);
    } finally {
      y.dispose();
    }
  }

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Inference mode (the default): `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  /** True after `dispose()`. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Frees this module's (and its children's) WebAssembly memory; idempotent. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      m.#freePlans();
      m.#freeGraphs();
      // Weights of a faulted instance are gone with it (and must not be freed in the new one).
      if (!m.#disposed && (m.#generation === 0 || canFree(m.#generation))) {
        m.release();
        for (const p of m.#params?.values() ?? []) p._release();
      }
      m.#disposed = true;
    }
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  /** Leaves free their native weights here. */
  protected release(): void {}

  /** Throws {@link DisposedError} if this module is disposed. */
  protected checkLive(what: string): void {
    if (this.#disposed) throw new DisposedError(this.op, `cannot ${what}: the module is disposed`);
    if (this.#generation !== 0) checkGeneration(this.op, this.#generation, 'module');
  }


  /** The standard entry checks of `forward`: live module, live tensor, shape; returns the output shape. */
  protected checkInput(x: Tensor): number[] {
    this.checkLive('run forward');
    if (!(x instanceof Tensor)) throw new ShapeError(this.op, `input must be a Tensor, but got ${describe(x)}`);
    if (x.isDisposed) throw new DisposedError(this.op, `input ${x.toString()} is disposed`);
    return this.outputShape(x.shape);
  }

  /** Throws a {@link ShapeError} unless `input` is `[N, C, H, W]` with `C = channels` (any C when omitted). */
  protected checkNCHW(input: readonly number[], channels?: number): [number, number, number, number] {
    if (input.length !== 4) throw new ShapeError(this.op, `input must be rank 4 [N, C, H, W], but got rank ${input.length} [${input.join(', ')}]`);
    const [n, c, h, w] = input as [number, number, number, number];
    if (channels !== undefined && c !== channels) throw new ShapeError(this.op, `input must have ${channels} channels, but got ${c} (shape [${input.join(', ')}])`);
    if (n < 1 || h < 1 || w < 1) throw new ShapeError(this.op, `input must not be empty, but got shape [${input.join(', ')}]`);
    return [n, c, h, w];
  }
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'an Array';
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

/** Throws a {@link ShapeError} unless an `[N, C, H, W]` result fits at channel `offset` of `dst`. */
function checkPlacement(op: string, shape: readonly number[], dst: Tensor, offset: number): void {
  const [n, c, h, w] = shape as [number, number, number, number];
  const [dn, dc, dh, dw] = dst.shape as [number, number, number, number];
  if (shape.length !== 4 || dst.shape.length !== 4 || n !== dn || h !== dh || w !== dw || offset + c > dc) {
    throw new ShapeError(op, `cannot place [${shape.join(', ')}] at channel ${offset} of [${dst.shape.join(', ')}]`);
  }
}

/** Copies `src` (`[N, C, H, W]`) into channels `[offset, offset + C)` of `dst`. */
export function copyChannels(op: string, src: Tensor, dst: Tensor, offset: number): void {
  checkInt(op, 'channel offset', offset, 0);
  checkPlacement(op, src.shape, dst, offset);
  const [n, c, h, w] = src.shape as [number, number, number, number];
  const dc = dst.shape[1]!;
  call(op, (glue) => glue.copyChannels(src._native(op), n, c, h * w, dst._native(op), dc, offset));
}
