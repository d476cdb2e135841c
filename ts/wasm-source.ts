/**
 * Finding and compiling a `.wasm`: the package's own builds (dist/wasm*\/, next to the
 * bundle) or what the caller passes to `init`. Every failure is a {@link WasmLoadError}
 * that names what was tried and what to copy where.
 */
import { WasmLoadError } from './errors.js';
import { isNode, nodeBuiltin } from './runtime.js';

/** Where a `.wasm` comes from. */
export type WasmSource = string | URL | Request | Response | ArrayBuffer | ArrayBufferView | CompiledWasmModule;

/**
 * `WebAssembly.Module` where the program's types declare it (the DOM library), and nothing
 * otherwise: the declarations then compile with `lib: ["ES2022"]` alone, where no
 * `WebAssembly` namespace exists to name.
 */
export type CompiledWasmModule = typeof globalThis extends { WebAssembly: { Module: abstract new (...args: never) => infer M } } ? M : never;

/** The package's builds, by their folder in dist/. */
export type Build = 'wasm' | 'wasm-relaxed' | 'wasm-threads' | 'wasm-threads-relaxed' | 'wasm-image';

/**
 * Each build's URL, written as `new URL('./<folder>/<file>', import.meta.url)` with a
 * literal path: the form bundlers recognise as an asset of the package. Vite and webpack
 * copy the file into the app's output and rewrite the URL; Vite's dev-server dependency
 * optimizer points it back into node_modules. A computed path would be resolved at run
 * time against the bundle's own URL, where nothing copied the file.
 */
const URLS: Record<Build, () => URL> = {
  wasm: () => new URL('./wasm/inception_wasm_bg.wasm', import.meta.url),
  'wasm-relaxed': () => new URL('./wasm-relaxed/inception_wasm_bg.wasm', import.meta.url),
  'wasm-threads': () => new URL('./wasm-threads/inception_wasm_bg.wasm', import.meta.url),
  'wasm-threads-relaxed': () => new URL('./wasm-threads-relaxed/inception_wasm_bg.wasm', import.meta.url),
  'wasm-image': () => new URL('./wasm-image/inception_image_bg.wasm', import.meta.url),
};

const WHAT: Record<Build, string> = {
  wasm: "inception-wasm's WebAssembly module",
  'wasm-relaxed': "inception-wasm's relaxed-SIMD WebAssembly module",
  'wasm-threads': "inception-wasm's threaded WebAssembly module",
  'wasm-threads-relaxed': "inception-wasm's threaded relaxed-SIMD WebAssembly module",
  'wasm-image': "inception-wasm's image module (decoders)",
};

interface BuildInfo {
  folder: Build;
  file: string;
  /** The `init` option that replaces it. */
  option: 'wasm' | 'threadedWasm' | 'imageWasm';
  what: string;
}

function buildInfo(folder: Build): BuildInfo {
  const image = folder === 'wasm-image';
  return {
    folder,
    file: image ? 'inception_image_bg.wasm' : 'inception_wasm_bg.wasm',
    option: image ? 'imageWasm' : folder.startsWith('wasm-threads') ? 'threadedWasm' : 'wasm',
    what: WHAT[folder],
  };
}

/** The README section every hint points to. */
const SEE = 'See "Bundlers" in the README of inception-wasm.';

/** What to do when the package's own file was not where it looked. */
function packageHint(build: BuildInfo): string {
  return `The package looks for ./${build.folder}/${build.file} next to the JavaScript file that holds its code (dist/index.js, or your bundle): ` +
    `copy node_modules/inception-wasm/dist/${build.folder}/ there, or serve the file anywhere and pass its URL: init({ ${build.option}: '/path/to/${build.file}' }). ${SEE}`;
}

function givenHint(build: BuildInfo): string {
  return `Check the value passed as init({ ${build.option} }): it should be (or serve) the package's dist/${build.folder}/${build.file}. ${SEE}`;
}

/**
 * Compiles the package's build `name` (when `given` is undefined) or the caller's
 * `given` source (a replacement for that build).
 */
export async function compileWasm(op: string, name: Build, given?: WasmSource | Promise<WasmSource>): Promise<WebAssembly.Module> {
  const build = buildInfo(name);
  if (given !== undefined) {
    let source: WasmSource;
    try {
      source = await given;
    } catch (e) {
      throw new WasmLoadError(op, build.what, undefined, `the promise passed as init({ ${build.option} }) rejected (${message(e)})`, givenHint(build), e);
    }
    return compile({ op, what: build.what, hint: givenHint(build) }, source);
  }
  let url: URL;
  try {
    url = URLS[name]();
  } catch (e) {
    // No usable import.meta.url: a bundle that is not an ES module (esbuild's iife format).
    throw new WasmLoadError(op, build.what, undefined, `its URL cannot be made relative to this script's (${message(e)})`,
      `A bundle that is not an ES module cannot find files next to itself: serve dist/${build.folder}/${build.file} and pass its URL: init({ ${build.option}: '/path/to/${build.file}' }). ${SEE}`, e);
  }
  return compile({ op, what: build.what, hint: packageHint(build) }, url);
}

interface Context {
  op: string;
  what: string;
  hint: string;
}

/**
 * A compiled module from any {@link WasmSource}. Modules, bytes, strings and URLs are
 * recognised before `Request`/`Response` are even looked at: in Node the first read of
 * those globals loads its fetch implementation (undici), ~28 ms of start-up. In Node,
 * `file:` URLs and paths are read from disk; other URLs are fetched everywhere.
 */
async function compile(ctx: Context, source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return compileBytes(ctx, undefined, source as BufferSource);
  if (typeof source === 'string' || source instanceof URL) {
    const where = typeof source === 'string' && /^file:/i.test(source) ? new URL(source) : source;
    const shown = where instanceof URL ? where.href : where;
    if (isNode && (where instanceof URL ? where.protocol === 'file:' : !/^(https?|data|blob):/i.test(where))) {
      let bytes: Uint8Array;
      try {
        const fs = await nodeBuiltin<typeof import('node:fs/promises')>('node:fs/promises');
        bytes = await fs.readFile(where);
      } catch (e) {
        throw fail(ctx, shown, (e as { code?: string }).code === 'ENOENT' ? 'no such file' : message(e), e);
      }
      return compileBytes(ctx, shown, bytes);
    }
    return compileResponse(ctx, shown, await fetchOrFail(ctx, shown, where));
  }
  if (typeof Response !== 'undefined' && source instanceof Response) return compileResponse(ctx, source.url || undefined, source);
  const request = source as Request;
  return compileResponse(ctx, request.url, await fetchOrFail(ctx, request.url, request));
}

async function fetchOrFail(ctx: Context, shown: string, request: string | URL | Request): Promise<Response> {
  try {
    return await fetch(request);
  } catch (e) {
    throw fail(ctx, shown, `the request failed (${message(e)})`, e);
  }
}

async function compileResponse(ctx: Context, url: string | undefined, response: Response): Promise<WebAssembly.Module> {
  if (!response.ok) throw fail(ctx, url, `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
  const type = response.headers.get('content-type') ?? '';
  if (/^application\/wasm\b/i.test(type) && typeof WebAssembly.compileStreaming === 'function') {
    try {
      return await WebAssembly.compileStreaming(response);
    } catch (e) {
      throw fail(ctx, url, compileProblem(e), e);
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw fail(ctx, url, `the response could not be read (${message(e)})`, e);
  }
  if (isWasm(bytes) && type !== '' && !/^application\/wasm\b/i.test(type)) {
    // Streaming compilation needs the right type; the bytes are the module all the same.
    console.warn(`inception-wasm: ${url ?? 'the .wasm'} was served as ${type}, not application/wasm: compiled from its bytes instead of while it downloads (serve .wasm files as application/wasm)`);
  }
  return compileBytes(ctx, url, bytes, type);
}

async function compileBytes(ctx: Context, url: string | undefined, bytes: BufferSource | Uint8Array, type = ''): Promise<WebAssembly.Module> {
  const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isWasm(view)) {
    const start = preview(view);
    const html = /^\s*</.test(start) ? ' but an HTML page, which is what a server sends in place of a file it does not have' : '';
    throw fail(ctx, url, `not a WebAssembly module${html} (${type === '' ? '' : `${type}, `}${view.length} bytes${view.length === 0 ? '' : ` starting ${JSON.stringify(start)}`})`);
  }
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (e) {
    throw fail(ctx, url, compileProblem(e), e);
  }
}

function fail(ctx: Context, url: string | undefined, problem: string, cause?: unknown): WasmLoadError {
  return new WasmLoadError(ctx.op, ctx.what, url, problem, ctx.hint, cause);
}

function compileProblem(e: unknown): string {
  return `this runtime could not compile it (${message(e)}); is it the package's own file, of this version?`;
}

/** `\0asm`: WebAssembly's magic number. */
function isWasm(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

/** The first bytes, printable (an HTML page shows as `<!doctype html>`). */
function preview(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 24), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
}

/** The thread pool's worker script (dist/worker.js) failed before it was ready. */
export function workerLoadError(url: URL, problem: string, cause?: unknown): WasmLoadError {
  return new WasmLoadError('init', "inception-wasm's thread-pool worker", url.href, problem,
    'The package starts it from ./worker.js next to the JavaScript file that holds its code (dist/index.js, or your bundle): ' +
    `copy node_modules/inception-wasm/dist/worker.js there (it is self-contained), or run with init({ threads: 1 }). ${SEE}`, cause);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
