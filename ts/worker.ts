/**
 * A thread of the threaded build (started by threads.ts): instantiates the module over
 * the shared memory, reports ready, then runs rayon's worker loop, which never returns.
 */
import { initSync, runWorker } from './wasm-threads/inception_wasm.js';
import type { WorkerStart } from './threads.js';

function start({ module, memory, thread }: WorkerStart, ready: () => void): void {
  initSync({ module, memory });
  ready();
  runWorker(thread);
}

if (typeof process !== 'undefined' && typeof process.versions?.node === 'string') {
  const workerThreads = 'node:worker_threads';
  const { parentPort } = (await import(/* @vite-ignore */ workerThreads)) as typeof import('node:worker_threads');
  parentPort!.once('message', (msg: WorkerStart) => start(msg, () => parentPort!.postMessage('ready')));
} else {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<WorkerStart>) => void) | null; postMessage(m: unknown): void };
  scope.onmessage = (e) => {
    scope.onmessage = null;
    start(e.data, () => scope.postMessage('ready'));
  };
}
