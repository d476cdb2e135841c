/**
 * The threaded build's workers: rayon (inside the module) asks for a thread through
 * `globalThis.__inceptionWasmSpawnWorker(thread)`; we start a worker (`worker_threads` in
 * Node, a module Web Worker in browsers) running `worker.ts`, which instantiates the same
 * module over the same shared memory and enters `runWorker(thread)` for good.
 */
import type * as threaded from './wasm-threads/inception_wasm.js';

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Why threads cannot run here, or `undefined` when they can. */
export function threadSupport(): string | undefined {
  if (typeof SharedArrayBuffer === 'undefined') return 'SharedArrayBuffer is not available in this runtime';
  if (isNode) return undefined;
  const g = globalThis as { crossOriginIsolated?: boolean; WorkerGlobalScope?: unknown; document?: unknown };
  if (g.crossOriginIsolated !== true) return 'the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp)';
  if (typeof g.WorkerGlobalScope === 'undefined') {
    return "a page's main thread cannot block on other threads; call init({ threads }) inside a Web Worker";
  }
  return undefined;
}

/** What a worker needs to join the pool. */
export interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  thread: number;
}

interface WorkerLike {
  postMessage(message: WorkerStart): void;
}

/**
 * Builds rayon's pool with `threads` workers and resolves once every worker is running
 * (each says "ready" just before it enters the pool), so the first computation never
 * waits on a worker that is still loading.
 */
export async function startWorkers(glue: typeof threaded, module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number): Promise<void> {
  const url = new URL('./worker.js', import.meta.url);
  const ready: Promise<void>[] = [];
  const started: WorkerLike[] = [];
  let create: () => { worker: WorkerLike; ready: Promise<void> };
  if (isNode) {
    const workerThreads = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ workerThreads)) as typeof import('node:worker_threads');
    create = () => {
      // execArgv: [] — workers inherit the parent's by default, and under `node -e …`
      // that is the `-e` script itself, which would run instead of worker.js.
      const worker = new Worker(url, { execArgv: [] });
      worker.unref(); // a pool of idle workers must not keep the process alive
      const up = new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      return { worker, ready: up };
    };
  } else {
    create = () => {
      const worker = new Worker(url, { type: 'module' });
      const up = new Promise<void>((resolve, reject) => {
        worker.addEventListener('message', () => resolve(), { once: true });
        worker.addEventListener('error', (e) => reject(new Error(`inception-wasm worker failed to start: ${e.message}`)), { once: true });
      });
      return { worker, ready: up };
    };
  }
  const g = globalThis as { __inceptionWasmSpawnWorker?: (thread: number) => void };
  g.__inceptionWasmSpawnWorker = (thread) => {
    const { worker, ready: up } = create();
    worker.postMessage({ module, memory, thread });
    started.push(worker);
    ready.push(up);
  };
  glue.initThreadPool(threads);
  // A worker that can neither start nor fail (e.g. a bundler that dropped worker.js)
  // must not hang init() forever.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`inception-wasm: ${threads} workers did not start within ${WORKER_START_MS / 1000} s (${url.href})`)), WORKER_START_MS);
  });
  try {
    await Promise.race([Promise.all(ready), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Workers start in well under a second; a minute means something is broken. */
const WORKER_START_MS = 60_000;
