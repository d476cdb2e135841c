/**
 * Loading the WebAssembly module: one idempotent async {@link init}, from the package's
 * own `.wasm` (Node: read from disk; browsers: fetched next to this file) or from what
 * the caller passes — bytes, a `Response`, a URL, or a precompiled `WebAssembly.Module`
 * (what edge runtimes such as Cloudflare Workers require).
 */
import initWasm, * as wasm from './wasm/inception_wasm.js';
import { NotInitializedError } from './errors.js';

/** Where the `.wasm` comes from. */
export type WasmSource = string | URL | Request | Response | BufferSource | WebAssembly.Module;

export interface InitOptions {
  /**
   * The module to instantiate.
   * @defaultValue the package's `inception_wasm_bg.wasm`, read from disk in Node and
   * fetched relative to this file elsewhere.
   */
  wasm?: WasmSource | Promise<WasmSource>;
}

let memory: WebAssembly.Memory | undefined;
let pending: Promise<void> | undefined;

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

async function defaultSource(): Promise<WasmSource> {
  const url = new URL('./wasm/inception_wasm_bg.wasm', import.meta.url);
  if (!isNode) return url;
  // A variable specifier keeps browser bundlers from trying to resolve a Node built-in.
  const fsModule = 'node:fs/promises';
  const fs = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs/promises');
  return fs.readFile(url);
}

/**
 * Loads and instantiates the WebAssembly module. Safe to call any number of times (and
 * concurrently): the first call's work is shared; a failed load can be retried.
 */
export function init(options: InitOptions = {}): Promise<void> {
  pending ??= (async () => {
    const source = await (options.wasm ?? defaultSource());
    const exports = await initWasm({ module_or_path: source });
    memory = exports.memory;
  })().catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/** True once {@link init} has finished. */
export function isInitialized(): boolean {
  return memory !== undefined;
}

/** The wasm-bindgen exports; throws {@link NotInitializedError} before {@link init}. */
export function native(op: string): typeof wasm {
  if (memory === undefined) throw new NotInitializedError(op, 'the WebAssembly module is not loaded yet: call `await init()` first');
  return wasm;
}

/** The module's linear memory (its `buffer` changes when the memory grows). */
export function wasmMemory(): WebAssembly.Memory {
  if (memory === undefined) throw new NotInitializedError('memory', 'the WebAssembly module is not loaded yet: call `await init()` first');
  return memory;
}
