/**
 * The threaded build's workers (`worker_threads` in Node, module Web Workers in
 * browsers) run `worker.ts`: each instantiates the same module over the same shared
 * memory, then, when rayon (inside the module) asks for a thread through
 * `globalThis.__inceptionWasmSpawnWorker(thread)`, enters `runWorker(thread)` for good.
 */
import type * as threaded from './wasm-threads/inception_wasm.js';
import { isNode, nodeBuiltin } from './runtime.js';
import { workerLoadError } from './wasm-source.js';


/** Why threads cannot run here, or `undefined` when they can. */
export function threadSupport(): string | undefined {
  if (!isNode) {
    const g = globalThis as { crossOriginIsolated?: boolean; WorkerGlobalScope?: unknown };
    if (g.crossOriginIsolated === false) return 'the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp)';
    if (g.crossOriginIsolated === true && typeof g.WorkerGlobalScope === 'undefined') {
      return "a page's main thread cannot block on other threads; call init({ threads }) inside a Web Worker";
    }
  }
  if (typeof SharedArrayBuffer === 'undefined' || typeof Worker === 'undefined' && !isNode) {
    return 'this runtime has no SharedArrayBuffer or no workers';
  }
  return undefined;
}

/** The first message to a worker: the module and memory to instantiate. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
}

/** The second message: the rayon thread to run (a pointer into the shared memory). */
export interface WorkerRun {
  thread: number;
}

export interface PoolWorker {
  postMessage(message: WorkerInit | WorkerRun): void;
  terminate(): unknown;
}

/**
 * Starts `threads - 1` workers (the calling thread is rayon's thread 0), waits until
 * each has instantiated the module ("ready"), and only then builds rayon's pool,
 * handing one worker each thread rayon spawns.
 *
 * The order matters: building the pool blocks the calling thread until every rayon
 * thread runs, and a browser worker cannot even load a nested worker's script while its
 * parent is blocked — so the workers must be loaded and listening before that.
 */
/** A started pool: its workers, and how to end them (after the instance faulted). */
export interface Pool {
  readonly workers: readonly PoolWorker[];
  /** Ends every worker; their ending is then no news to the team (it is gone with its instance). */
  stop(): void;
}

export async function startWorkers(glue: typeof threaded, module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number): Promise<Pool> {
  const url = new URL('./worker.js', import.meta.url);
  let spawn: () => { worker: PoolWorker; ready: Promise<void> };
  if (isNode) {
    const { Worker } = await nodeBuiltin<typeof import('node:worker_threads')>('node:worker_threads');
    spawn = () => {
      // execArgv: [] — workers inherit the parent's by default, and under `node -e …`
      // that is the `-e` script itself, which would run instead of worker.js.
      const worker = new Worker(url, { execArgv: [] });
      worker.unref(); // a pool of idle workers must not keep the process alive
      const ready = new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', (e) => reject(workerLoadError(url, `the worker failed before it was ready (${e.message})`, e)));
      });
      worker.once('exit', lost);
      return { worker, ready };
    };
  } else {
    spawn = () => {
      const worker = new Worker(url, { type: 'module' });
      const ready = new Promise<void>((resolve, reject) => {
        worker.addEventListener('message', () => resolve(), { once: true });
        // A script that could not be loaded (404, not JavaScript) is an error event without a message.
        const failed = (e: ErrorEvent | Event) => reject(workerLoadError(url, 'message' in e && e.message ? `the worker failed before it was ready (${e.message})` : 'the worker script could not be loaded'));
        worker.addEventListener('error', failed, { once: true });
      });
      // A Web Worker says nothing when it ends, only when it fails (a trap in it).
      worker.addEventListener('error', lost);
      return { worker, ready };
    };
  }
  let started = false;
  let stopped = false;
  /** A pool worker's thread ended (terminated, or a trap in it): forwards go on with one thread. */
  const lost = (): void => {
    if (!started || stopped || glue.threadCount() === 1) return;
    glue.abandonThreads();
    console.warn('inception-wasm: a worker of the thread pool ended; computing on 1 thread from now on');
  };
  const pool = Array.from({ length: threads - 1 }, spawn);
  try {
    for (const { worker } of pool) worker.postMessage({ module, memory });
    await withTimeout(Promise.all(pool.map((p) => p.ready)), `${threads - 1} workers did not start within ${WORKER_START_MS / 1000} s (${url.href})`);
    const idle = pool.map((p) => p.worker);
    const g = globalThis as { __inceptionWasmSpawnWorker?: (thread: number) => void };
    g.__inceptionWasmSpawnWorker = (thread) => {
      const worker = idle.shift();
      if (worker === undefined) throw new Error('inception-wasm: rayon asked for more threads than were started');
      worker.postMessage({ thread });
    };
    if (typeof glue.initThreadPool !== 'function') throw new TypeError('inception-wasm: the threaded module has no initThreadPool (is `threadedWasm` the single-threaded build?)');
    glue.initThreadPool(threads);
    started = true;
    const workers = pool.map((p) => p.worker);
    return {
      workers,
      stop: () => {
        stopped = true;
        for (const worker of workers) void worker.terminate();
      },
    };
  } catch (e) {
    // A failed start leaves no worker behind: `init` may be called again.
    for (const { worker } of pool) void worker.terminate();
    throw e;
  }
}

/** Workers start in well under a second; a minute means something is broken. */
const WORKER_START_MS = 60_000;

/** `promise`, or a rejection with `message` after {@link WORKER_START_MS}. */
async function withTimeout<T>(promise: Promise<T>, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`inception-wasm: ${message}`)), WORKER_START_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
