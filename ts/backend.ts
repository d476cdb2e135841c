/**
 * Loading the WebAssembly module: one idempotent async {@link init}. Two builds ship
 * side by side — single-threaded (every runtime) and threaded (rayon over shared memory,
 * with workers this module starts) — and `init({ threads })` picks one.
 *
 * The module comes from the package's own `.wasm` (Node: read from disk; browsers:
 * fetched next to this file, or wherever a bundler copied it) or from what the caller
 * passes — bytes, a `Response`, a URL, or a precompiled `WebAssembly.Module` (what edge
 * runtimes such as Cloudflare Workers require); see wasm-source.ts. A load that fails is a
 * {@link WasmLoadError} naming the URL it tried.
 */
import * as single from './wasm/inception_wasm.js';
import * as threaded from './wasm-threads/inception_wasm.js';
import { InceptionWasmError, NotInitializedError, OutOfMemoryError, ValueError, WasmFaultError, WasmLoadError, WorkerError } from './errors.js';
import { type Pool, startWorkers, threadSupport } from './threads.js';
import { compileWasm, type WasmSource } from './wasm-source.js';

export type { WasmSource } from './wasm-source.js';

export interface InitOptions {
  /**
   * Threads to compute with. More than 1 selects the threaded build where the runtime
   * allows it: Node (`worker_threads`), or a dedicated Web Worker of a cross-origin
   * isolated page (COOP/COEP headers; a page's main thread may not block, which a
   * thread pool needs). Elsewhere — a page's main thread, a page without isolation, edge
   * runtimes — the single-threaded build runs and a one-line warning says why.
   * Results are identical for any thread count.
   * @defaultValue 1
   */
  threads?: number;
  /**
   * The single-threaded module: a URL to fetch (in Node, a path or `file:` URL is read
   * from disk), bytes, a `Response`, or a compiled `WebAssembly.Module`. Pass it where the
   * package's own file is not next to the code that loads it (a bundler that does not
   * copy assets, such as esbuild; a CDN): e.g. `init({ wasm: '/static/inception_wasm_bg.wasm' })`.
   * @defaultValue the package's `wasm/inception_wasm_bg.wasm` (or its relaxed-SIMD twin),
   * read from disk in Node and fetched relative to this file elsewhere.
   */
  wasm?: WasmSource | Promise<WasmSource>;
  /**
   * The threaded module (used when `threads > 1` and the runtime allows it).
   * @defaultValue the package's `wasm-threads/inception_wasm_bg.wasm`
   */
  threadedWasm?: WasmSource | Promise<WasmSource>;
  /**
   * Use the package's relaxed-SIMD build (fused multiply-add in the GEMM microkernels),
   * where the runtime validates relaxed SIMD: Chromium does; Node 20 only with
   * `--experimental-wasm-relaxed-simd`. Results differ from the plain build's by rounding
   * only (well inside the fixtures' tolerance). Ignored for modules passed in `wasm` /
   * `threadedWasm`. Where the relaxed file cannot be loaded (a copy step or CDN that took
   * only the plain one), the plain build runs, with one warning.
   * @defaultValue true (where supported)
   */
  relaxedSimd?: boolean;
  /**
   * The most bytes of WebAssembly memory the library may use (phones: browsers kill tabs
   * that take too much). Past it, allocations fail with an {@link OutOfMemoryError}
   * instead of growing the memory. Bytes, at least 16 MiB.
   * @defaultValue no cap beyond the engine's: 4 GiB (2 GiB for the threaded build)
   */
  maximumMemory?: number;
  /**
   * The image module (`decodeImage`, `preprocess`, `classify`): decoders and the resize,
   * a `.wasm` of its own that is compiled on the first image call, never before. Pass it
   * where the runtime cannot compile fetched bytes (Cloudflare Workers: import the `.wasm`
   * as a module).
   * @defaultValue the package's `wasm-image/inception_image_bg.wasm`, read from disk in
   * Node and fetched relative to this file elsewhere.
   */
  imageWasm?: WasmSource | Promise<WasmSource>;
}

/** Which SIMD build runs: `'relaxed'` (relaxed SIMD, fused multiply-add) or `'simd128'`. */
export type SimdFlavour = 'relaxed' | 'simd128';

type Glue = typeof single;

interface Instance {
  glue: Glue;
  memory: WebAssembly.Memory;
  threads: number;
  simd: SimdFlavour;
  /** Numbers the instances of this process: objects remember theirs (see {@link generation}). */
  generation: number;
  /** The most bytes the memory may take: `maximumMemory`, or the engine's limit. */
  limit: number;
  /** The most bytes the heap may hold: `limit` less the module's stack and static data. */
  heapLimit: number;
  /** Set when a call trapped: every later call fails until `init()` starts a new instance. */
  fault?: string;
  /** The threaded build's workers. */
  pool?: Pool;
}

let active: Instance | undefined;
let pending: Promise<void> | undefined;
/** `init({ imageWasm })` of the call that loaded the instance (see ts/image/module.ts). */
let imageSource: InitOptions['imageWasm'];
let generations = 0;

/** Engine limits: 65,536 pages for a 32-bit memory; the threaded build is linked with 2 GiB. */
const ENGINE_MAX_BYTES = 2 ** 32;
const THREADED_MAX_BYTES = 2 ** 31;
const PAGE = 65536;
/** The smallest `maximumMemory`: the module's stack and data (~1.1 MiB) and room to work. */
const MIN_MAXIMUM_MEMORY = 16 * 2 ** 20;

/** A module with one `f32x4.relaxed_madd`: it validates exactly where relaxed SIMD runs. */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 28, 1, 26, 0, 67, 0, 0, 128, 63, 253, 19, 67, 0, 0, 0, 64, 253, 19, 67, 0,
  0, 64, 64, 253, 19, 253, 133, 2, 11,
]);

/** True where the runtime validates relaxed SIMD. */
export function relaxedSimdSupported(): boolean {
  return WebAssembly.validate(RELAXED_PROBE);
}

/**
 * The package's own module of `folder` (`wasm` or `wasm-threads`): its relaxed-SIMD twin
 * where wanted and supported, else the plain one — also when the relaxed file cannot be
 * loaded (a bundler, CDN or copy step that took only the plain one), with one warning.
 */
async function packageModule(folder: 'wasm' | 'wasm-threads', relaxed: boolean): Promise<{ module: WebAssembly.Module; simd: SimdFlavour }> {
  if (relaxed) {
    try {
      return { module: await compileWasm('init', `${folder}-relaxed`), simd: 'relaxed' };
    } catch (e) {
      if (!(e instanceof WasmLoadError)) throw e;
      console.warn(`inception-wasm: the relaxed-SIMD build could not be loaded from ${e.url ?? 'its URL'} (${e.problem}); using the plain simd128 build (same results up to rounding). Copy dist/${folder}-relaxed/ too, or pass init({ relaxedSimd: false }) to load only the plain one.`);
    }
  }
  return { module: await compileWasm('init', folder), simd: 'simd128' };
}

/** The module to load: the caller's, else the package's (relaxed where wanted and supported). */
async function chooseModule(given: InitOptions['wasm'], folder: 'wasm' | 'wasm-threads', relaxed: boolean): Promise<{ module: WebAssembly.Module; simd: SimdFlavour }> {
  if (given !== undefined) return { module: await compileWasm('init', folder, given), simd: 'simd128' };
  return packageModule(folder, relaxed);
}

async function load(options: InitOptions): Promise<void> {
  imageSource = options.imageWasm;
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new ValueError('init', `threads must be a positive integer, but got ${threads}`);
  const maximumMemory = options.maximumMemory;
  if (maximumMemory !== undefined && (!Number.isInteger(maximumMemory) || maximumMemory < MIN_MAXIMUM_MEMORY)) {
    throw new ValueError('init', `maximumMemory must be an integer number of bytes ≥ ${MIN_MAXIMUM_MEMORY} (16 MiB), but got ${String(maximumMemory)}`);
  }
  const relaxed = (options.relaxedSimd ?? true) && relaxedSimdSupported();
  if (threads > 1) {
    const unsupported = threadSupport();
    if (unsupported === undefined) {
      const { module, simd } = await chooseModule(options.threadedWasm, 'wasm-threads', relaxed);
      // Imported and shared; its maximum is the module's (2 GiB) or the caller's cap.
      const limit = Math.min(THREADED_MAX_BYTES, maximumMemory ?? Infinity);
      const memory = sharedMemory(limit);
      if (memory instanceof WebAssembly.Memory) {
        let pool: Pool;
        try {
          reinstantiate(() => threaded.initSync({ module, memory }));
          pool = await startWorkers(threaded, module, memory, threads);
          // Fault injection for the tests (test/threads-faults*.test.ts): not part of the API.
          Object.defineProperty(globalThis, Symbol.for('inception-wasm.testing'), {
            value: { workers: pool.workers, injectWorkerFault: (kind: number, after: number) => threaded.__injectWorkerFault(kind, after) },
            configurable: true,
          });
        } catch (e) {
          // The glue keeps what it instantiated, even a wrong module: forget it, so that a
          // retry with another module (or after a worker failed to start) starts afresh.
          threaded.__resetInstance();
          throw e;
        }
        activate(threaded as unknown as Glue, memory, threads, simd, limit, pool);
        return;
      }
      console.warn(`inception-wasm: using 1 thread instead of ${threads}: ${memory}`);
    } else {
      console.warn(`inception-wasm: using 1 thread instead of ${threads}: ${unsupported}`);
    }
  }
  // The relaxed build's glue is the plain build's (same exports), so one glue serves both.
  // Instantiated synchronously from the compiled module (compiling is the slow part, and
  // it was asynchronous): the glue's async path reads `globalThis.Response` (see wasm-source.ts).
  const { module, simd } = await chooseModule(options.wasm, 'wasm', relaxed);
  const exports = reinstantiate(() => single.initSync({ module }));
  activate(single, exports.memory, 1, simd, Math.min(ENGINE_MAX_BYTES, maximumMemory ?? Infinity));
}

/**
 * The threaded build's shared memory, or why it cannot be had: creating one can fail where
 * threads are otherwise supported (iOS Safari throws `RangeError: Out of memory` for a
 * large shared maximum), and then the single-threaded build runs.
 */
function sharedMemory(limit: number): WebAssembly.Memory | string {
  try {
    return new WebAssembly.Memory({ initial: 256, maximum: Math.floor(limit / PAGE), shared: true });
  } catch (e) {
    return `shared memory of ${limit} bytes could not be created (${String(e)})`;
  }
}

/**
 * Instantiates through a glue's `initSync`, first clearing a faulted instance (its glue
 * keeps one instance per JavaScript realm and would return that one) and ending its
 * workers.
 */
function reinstantiate<T>(instantiate: () => T): T {
  if (active?.fault !== undefined) {
    active.glue.__resetInstance();
    // The faulted instance's workers would wait for its forwards forever.
    active.pool?.stop();
  }
  return instantiate();
}

function activate(glue: Glue, memory: WebAssembly.Memory, threads: number, simd: SimdFlavour, limit: number, pool?: Pool): void {
  // The heap starts after the module's stack and static data, which the memory's initial
  // size covers (plus the initial heap: a slight over-count, on the safe side).
  const heapLimit = Math.max(0, limit - memory.buffer.byteLength);
  glue.setHeapLimit(Math.min(heapLimit, ENGINE_MAX_BYTES - 1));
  active = { glue, memory, threads, simd, generation: ++generations, limit, heapLimit, pool };
}

/**
 * Loads and instantiates the WebAssembly module. Safe to call any number of times (and
 * concurrently): the first call's work is shared and later options are ignored; a failed
 * load can be retried. After a {@link WasmFaultError} (the instance trapped), `init`
 * starts a new instance with the new options; tensors and models of the faulted one
 * keep throwing {@link WasmFaultError} and must be made again.
 */
export function init(options: InitOptions = {}): Promise<void> {
  if (active?.fault !== undefined && pending !== undefined) pending = undefined;
  pending ??= load(options).catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/** The image module `init` was given, if any. */
export function imageWasmOption(): InitOptions['imageWasm'] {
  return imageSource;
}

/** True once {@link init} has finished. */
export function isInitialized(): boolean {
  return active !== undefined;
}

/** The SIMD build that runs (see {@link InitOptions.relaxedSimd}); `'simd128'` before {@link init}. */
export function simdFlavour(): SimdFlavour {
  return active?.simd ?? 'simd128';
}

/** Threads the loaded build computes with (1 for the single-threaded build). */
export function threadCount(): number {
  if (active === undefined || active.fault !== undefined) return active?.threads ?? 1;
  // The threaded build's team retires when a worker dies: from then on, one thread.
  return active.threads > 1 ? threaded.threadCount() : 1;
}

/** What {@link memoryInfo} reports. */
export interface MemoryInfo {
  /** Size of the WebAssembly memory (it grows, never shrinks). */
  wasmBytes: number;
  /** The most the memory may grow to: `init({ maximumMemory })`, else the engine's limit. */
  maximumBytes: number;
  /** Bytes the library's heap holds now: tensors, weights, plans, arena and scratch. */
  heldBytes: number;
  /** Of `heldBytes`, the activation arena that forwards share (sized by the largest recent forward). */
  arenaBytes: number;
  /** Of `heldBytes`, the threads' scratch (im2col bands, Winograd transforms). */
  scratchBytes: number;
  /** Heap allocations made inside WebAssembly since `init`: a steady-state forward adds only its output tensor's. */
  allocations: number;
}

/** The module's memory use, to check a program for leaks (as `tf.memory()`). */
export function memoryInfo(): MemoryInfo {
  const glue = native('memoryInfo');
  const [arenaBytes, scratchBytes] = glue.contextBytes();
  const instance = active!;
  return {
    wasmBytes: instance.memory.buffer.byteLength,
    maximumBytes: instance.limit,
    heldBytes: glue.heldBytes(),
    arenaBytes: arenaBytes ?? 0,
    scratchBytes: scratchBytes ?? 0,
    allocations: glue.allocationCount(),
  };
}

/**
 * Frees what forwards keep between calls — the activation arena and the threads' scratch —
 * for when a program is done with inference for a while (the next forward makes them
 * again). The WebAssembly memory does not shrink, but the space is reused.
 */
export function releaseMemory(): void {
  call('releaseMemory', (glue) => glue.releaseMemory());
}

/** The WebAssembly instance's generation: objects compare theirs to know they are still valid. */
export function generation(): number {
  return active?.generation ?? 0;
}

/** The wasm-bindgen exports; throws {@link NotInitializedError} before {@link init}, {@link WasmFaultError} after a fault. */
export function native(op: string): Glue {
  if (active === undefined) throw new NotInitializedError(op, 'the WebAssembly module is not loaded yet: call `await init()` first');
  if (active.fault !== undefined) throw faulted(op);
  return active.glue;
}

function faulted(op: string): WasmFaultError {
  return new WasmFaultError(op, `the WebAssembly instance faulted earlier (${active?.fault ?? 'unknown'}); call \`await init()\` to start a new one, then make tensors and models again`);
}

/**
 * True while objects made under generation `made` may be freed: their instance is the
 * current one and has not faulted (a faulted instance's objects are detached, see
 * {@link track}; freeing them would throw, or free memory of the next instance).
 */
export function canFree(made: number): boolean {
  return active !== undefined && active.fault === undefined && made === active.generation;
}

/** Throws {@link WasmFaultError} for an object made by an instance that is no longer the current one. */
export function checkGeneration(op: string, made: number, what: string): void {
  if (active?.fault !== undefined) throw faulted(op);
  if (made !== generation()) {
    throw new WasmFaultError(op, `this ${what} belongs to a WebAssembly instance that faulted; make it again after \`await init()\``);
  }
}

/** How the glue reports a dead worker (crates/wasm/src/lib.rs `Plan::run`). */
const WORKER_FAILED = 'worker failed: ';

/** How the glue reports an allocation failure (crates/wasm/src/lib.rs `oom`). */
const OUT_OF_MEMORY = /^out of memory: (.*) needs (\d+) bytes$/;

/**
 * Runs a call into WebAssembly for `op` and gives every failure its typed error: an
 * allocation failure becomes an {@link OutOfMemoryError}; a check of the glue's, a
 * {@link ValueError}; a trap (which leaves the instance's bookkeeping mid-call) marks
 * the instance faulted and becomes a {@link WasmFaultError}.
 */
export function call<T>(op: string, f: (glue: Glue) => T): T {
  const glue = native(op);
  try {
    return f(glue);
  } catch (e) {
    throw translate(op, e);
  }
}

function translate(op: string, e: unknown): unknown {
  if (e instanceof InceptionWasmError) return e;
  const instance = active!;
  if (e instanceof WebAssembly.RuntimeError || isBindgenPanic(e)) {
    instance.fault = `${op}: ${(e as Error).message}`;
    forgetNatives();
    return faulted(op);
  }
  if (!(e instanceof Error) || e.constructor !== Error) return e;
  if (e.message.startsWith(WORKER_FAILED)) {
    console.warn('inception-wasm: a worker of the thread pool failed; computing on 1 thread from now on');
    return new WorkerError(op, `${e.message.slice(WORKER_FAILED.length)}; the forward was abandoned, and later ones run on 1 thread`);
  }
  const oom = OUT_OF_MEMORY.exec(e.message);
  if (oom !== null) {
    const available = Math.max(0, instance.heapLimit - instance.glue.heldBytes());
    return new OutOfMemoryError(op, oom[1]!, Number(oom[2]), available);
  }
  return new ValueError(op, e.message);
}

/** wasm-bindgen's own errors for a Rust object in an impossible state (after a trap mid-call). */
function isBindgenPanic(e: unknown): boolean {
  return e instanceof Error && /attempted to take ownership of Rust value|recursive use of an object|null pointer passed to rust/.test(e.message);
}

/**
 * Every live wasm-bindgen object (tensor buffers, layers, plans), weakly: when an instance
 * faults, their finalizers must not run against the next instance's memory, so each is
 * detached from its finalizer (`__destroy_into_raw`) at the fault.
 */
let natives: WeakRef<object>[] = [];

/** Registers a wasm-bindgen object made by the current instance (see {@link forgetNatives}). */
export function track<T extends object>(obj: T): T {
  natives.push(new WeakRef(obj));
  // Drop the collected ones now and then: amortised O(1) per object.
  if (natives.length >= 1024 && (natives.length & (natives.length - 1)) === 0) natives = natives.filter((r) => r.deref() !== undefined);
  return obj;
}

function forgetNatives(): void {
  for (const ref of natives) (ref.deref() as { __destroy_into_raw?: () => number } | undefined)?.__destroy_into_raw?.();
  natives = [];
}

/** The module's linear memory (its `buffer` changes when the memory grows). */
export function wasmMemory(): WebAssembly.Memory {
  if (active === undefined) throw new NotInitializedError('memory', 'the WebAssembly module is not loaded yet: call `await init()` first');
  return active.memory;
}
