/**
 * Loading the WebAssembly module: one idempotent async {@link init}. Two builds ship
 * side by side — single-threaded (every runtime) and threaded (rayon over shared memory,
 * with workers this module starts) — and `init({ threads })` picks one.
 *
 * The module comes from the package's own `.wasm` (Node: read from disk; browsers:
 * fetched next to this file) or from what the caller passes — bytes, a `Response`, a URL,
 * or a precompiled `WebAssembly.Module` (what edge runtimes such as Cloudflare Workers
 * require).
 */
import * as single from './wasm/inception_wasm.js';
import * as threaded from './wasm-threads/inception_wasm.js';
import { NotInitializedError, ValueError } from './errors.js';
import { startWorkers, threadSupport } from './threads.js';
import { isNode } from './runtime.js';

/** Where a `.wasm` comes from. */
export type WasmSource = string | URL | Request | Response | BufferSource | WebAssembly.Module;

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
   * The single-threaded module.
   * @defaultValue the package's `wasm/inception_wasm_bg.wasm`, read from disk in Node and
   * fetched relative to this file elsewhere.
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
   * `threadedWasm`.
   * @defaultValue true (where supported)
   */
  relaxedSimd?: boolean;
}

/** Which SIMD build runs: `'relaxed'` (relaxed SIMD, fused multiply-add) or `'simd128'`. */
export type SimdFlavour = 'relaxed' | 'simd128';

type Glue = typeof single;

let active: { glue: Glue; memory: WebAssembly.Memory; threads: number; simd: SimdFlavour } | undefined;
let pending: Promise<void> | undefined;

/** A module with one `f32x4.relaxed_madd`: it validates exactly where relaxed SIMD runs. */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 28, 1, 26, 0, 67, 0, 0, 128, 63, 253, 19, 67, 0, 0, 0, 64, 253, 19, 67, 0,
  0, 64, 64, 253, 19, 253, 133, 2, 11,
]);

/** True where the runtime validates relaxed SIMD. */
export function relaxedSimdSupported(): boolean {
  return WebAssembly.validate(RELAXED_PROBE);
}

type Folder = 'wasm' | 'wasm-relaxed' | 'wasm-threads' | 'wasm-threads-relaxed';

async function defaultSource(folder: Folder): Promise<WasmSource> {
  const url = new URL(`./${folder}/inception_wasm_bg.wasm`, import.meta.url);
  if (!isNode) return url;
  // A variable specifier keeps browser bundlers from trying to resolve a Node built-in.
  const fsModule = 'node:fs/promises';
  const fs = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs/promises');
  return fs.readFile(url);
}

/**
 * A compiled module from any {@link WasmSource} (workers need the module itself). Bytes
 * and modules are recognised before `Request`/`Response` are even looked at: in Node the
 * first read of those globals loads its fetch implementation (undici), ~28 ms of start-up.
 */
async function compile(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return WebAssembly.compile(source);
  if (typeof Response !== 'undefined' && source instanceof Response) return WebAssembly.compileStreaming(source);
  return WebAssembly.compileStreaming(fetch(source as string | URL | Request));
}

/** The module to load: the caller's, else the package's (relaxed where wanted and supported). */
function source(given: InitOptions['wasm'], folder: 'wasm' | 'wasm-threads', relaxed: boolean): { source: Promise<WasmSource>; simd: SimdFlavour } {
  if (given !== undefined) return { source: Promise.resolve(given), simd: 'simd128' };
  return relaxed ? { source: defaultSource(`${folder}-relaxed`), simd: 'relaxed' } : { source: defaultSource(folder), simd: 'simd128' };
}

async function load(options: InitOptions): Promise<void> {
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new ValueError('init', `threads must be a positive integer, but got ${threads}`);
  const relaxed = (options.relaxedSimd ?? true) && relaxedSimdSupported();
  if (threads > 1) {
    const unsupported = threadSupport();
    if (unsupported === undefined) {
      const chosen = source(options.threadedWasm, 'wasm-threads', relaxed);
      const module = await compile(await chosen.source);
      // Imported, shared, and at the maximum the module was linked with (2 GiB).
      const memory = new WebAssembly.Memory({ initial: 256, maximum: 32768, shared: true });
      threaded.initSync({ module, memory });
      await startWorkers(threaded, module, memory, threads);
      active = { glue: threaded as unknown as Glue, memory, threads, simd: chosen.simd };
      return;
    }
    console.warn(`inception-wasm: using 1 thread instead of ${threads}: ${unsupported}`);
  }
  // The relaxed build's glue is the plain build's (same exports), so one glue serves both.
  // Instantiated synchronously from the compiled module (compiling is the slow part, and
  // it was asynchronous): the glue's async path reads `globalThis.Response` (see `compile`).
  const chosen = source(options.wasm, 'wasm', relaxed);
  const exports = single.initSync({ module: await compile(await chosen.source) });
  active = { glue: single, memory: exports.memory, threads: 1, simd: chosen.simd };
}

/**
 * Loads and instantiates the WebAssembly module. Safe to call any number of times (and
 * concurrently): the first call's work is shared and later options are ignored; a failed
 * load can be retried.
 */
export function init(options: InitOptions = {}): Promise<void> {
  pending ??= load(options).catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
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
  return active?.threads ?? 1;
}

/** What {@link memoryInfo} reports. */
export interface MemoryInfo {
  /** Size of the WebAssembly memory (it grows, never shrinks). */
  wasmBytes: number;
  /** Heap allocations made inside WebAssembly since `init`: a steady-state forward adds only its output tensor's. */
  allocations: number;
}

/** The module's memory use, to check a program for leaks (as `tf.memory()`). */
export function memoryInfo(): MemoryInfo {
  return { wasmBytes: wasmMemory().buffer.byteLength, allocations: native('memoryInfo').allocationCount() };
}

/** The wasm-bindgen exports; throws {@link NotInitializedError} before {@link init}. */
export function native(op: string): Glue {
  if (active === undefined) throw new NotInitializedError(op, 'the WebAssembly module is not loaded yet: call `await init()` first');
  return active.glue;
}

/** The module's linear memory (its `buffer` changes when the memory grows). */
export function wasmMemory(): WebAssembly.Memory {
  if (active === undefined) throw new NotInitializedError('memory', 'the WebAssembly module is not loaded yet: call `await init()` first');
  return active.memory;
}
