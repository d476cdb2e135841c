/**
 * The image module: JPEG/PNG decoders and the PIL-exact resize (crates/image), a `.wasm`
 * of its own so that inference alone never downloads or compiles them. Compiled on the
 * first image call and kept; instantiated again whenever needed:
 *
 * - after a trap (a decoder bug on a hostile file, or its heap exhausted): the module is
 *   stateless between calls, so a fresh instance is as good as the old one, and the
 *   inference module, a separate instance, is never touched;
 * - after a call that grew its memory past {@link KEEP_BYTES} (a 12-megapixel photo
 *   takes ~80 MB to decode): WebAssembly memory never shrinks, so the instance is dropped
 *   for the garbage collector rather than held for the life of the page.
 */
import * as glue from '../wasm-image/inception_image.js';
import { imageWasmOption, isInitialized } from '../backend.js';
import { IMAGE_ERROR_REASONS, ImageError, type ImageErrorReason, NotInitializedError } from '../errors.js';
import { compileWasm } from '../wasm-source.js';

export type ImageGlue = typeof glue;

/** Memory kept between calls; above it the instance is dropped after the call. */
const KEEP_BYTES = 64 * 2 ** 20;

let compiling: Promise<WebAssembly.Module> | undefined;
let compiled: WebAssembly.Module | undefined;
let memory: WebAssembly.Memory | undefined;

/**
 * Compiles the image module on first use (later calls wait for the same compile; a
 * failure, a {@link WasmLoadError}, is retried by the next call); {@link NotInitializedError}
 * before `init()`. Instantiating is {@link imageCall}'s job:
 * another call may drop the instance while this one awaits its input.
 */
export async function imageModule(op: string): Promise<void> {
  if (!isInitialized()) throw new NotInitializedError(op, 'the WebAssembly module is not loaded yet: call `await init()` first');
  compiling ??= compileWasm(op, 'wasm-image', imageWasmOption());
  try {
    compiled = await compiling;
  } catch (e) {
    compiling = undefined;
    throw e;
  }
}

/** How crates/image-wasm reports a refused image: `<reason>: <message>`. */
const REFUSED = new RegExp(`^(${IMAGE_ERROR_REASONS.join('|')}): ([\\s\\S]*)$`);

/** A trap with the memory this close to WebAssembly's 4 GiB was an allocation that failed. */
const NEAR_FULL_BYTES = 3.5 * 2 ** 30;

/**
 * Runs `f` on the image module with typed errors: a refusal becomes an {@link ImageError}
 * with its reason; a trap drops the instance (the next call makes a new one).
 */
export function imageCall<T>(op: string, f: (g: ImageGlue) => T): T {
  if (compiled === undefined) throw new Error('imageCall before imageModule');
  try {
    // Synchronous from here to the end of `f`: no other call can drop the instance meanwhile.
    memory ??= glue.initSync({ module: compiled }).memory;
    return f(glue);
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) {
      const full = (memory?.buffer.byteLength ?? 0) > NEAR_FULL_BYTES;
      drop();
      if (full) throw new ImageError(op, 'out-of-memory', `the image module ran out of memory (${e.message}); it was restarted`);
      throw new ImageError(op, 'internal', `the image module failed on this input (${e.message}); it was restarted. This is a bug: please report it with the file`);
    }
    const refused = e instanceof Error ? REFUSED.exec(e.message) : null;
    if (refused !== null) throw new ImageError(op, refused[1] as ImageErrorReason, refused[2]!);
    throw e;
  } finally {
    lastCallBytes = memory?.buffer.byteLength ?? 0;
    if (lastCallBytes > KEEP_BYTES) drop();
  }
}

/** Frees an object of the image module; after a trap its instance is gone, and so is the object. */
export function release(obj: { free(): void }): void {
  try {
    obj.free();
  } catch {
    // The instance trapped (imageCall drops it): nothing left to free.
  }
}

/** The memory's size at the end of the last call, before it was dropped or kept. */
let lastCallBytes = 0;

/** @internal The image module's memory: now (0 when no instance is alive), and at the end of the last call; for tests. */
export function imageMemoryBytes(): { now: number; lastCall: number } {
  return { now: memory?.buffer.byteLength ?? 0, lastCall: lastCallBytes };
}

function drop(): void {
  glue.__resetInstance();
  memory = undefined;
}
