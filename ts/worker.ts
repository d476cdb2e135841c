/**
 * A thread of the threaded build (started by threads.ts). First message: instantiate
 * the module over the shared memory, then say "ready". Second message: run the rayon
 * thread it names — rayon's worker loop, which never returns.
 */
import { initSync, runWorker } from './wasm-threads/inception_wasm.js';
import { isNode, nodeBuiltin } from './runtime.js';
import type { WorkerInit, WorkerRun } from './threads.js';

function onMessage(msg: WorkerInit | WorkerRun, reply: (m: string) => void): void {
  if ('module' in msg) {
    initSync({ module: msg.module, memory: msg.memory });
    reply('ready');
  } else {
    runWorker(msg.thread);
  }
}

// No top-level await: bundlers copy this file as an asset and may minify it as a classic
// script (webpack's Terser does), where `await` at the top is a syntax error. Node queues
// the parent's messages until the listener is attached.
if (isNode) {
  void nodeBuiltin<typeof import('node:worker_threads')>('node:worker_threads').then(({ parentPort }) => {
    parentPort!.on('message', (msg: WorkerInit | WorkerRun) => onMessage(msg, (m) => parentPort!.postMessage(m)));
  });
} else {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<WorkerInit | WorkerRun>) => void) | null; postMessage(m: unknown): void };
  scope.onmessage = (e) => onMessage(e.data, (m) => scope.postMessage(m));
}
