// The browser side of test/e2e/browser.test.ts: loads the package's ESM entry, calls
// init() with no arguments (so the .wasm is fetched next to dist/index.js, the default
// path), and runs fixture cases (run-case.js) on the page and in a worker with threads.
// Answers go back to Node base64-encoded; Node checks them.
import * as pkg from 'inception-wasm';
import { runCase } from './run-case.js';

const { init, isInitialized, relaxedSimdSupported, simdFlavour } = pkg;

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

globalThis.initPackage = async () => {
  const before = isInitialized();
  const t0 = performance.now();
  await init();
  return {
    before,
    after: isInitialized(),
    initMs: performance.now() - t0,
    crossOriginIsolated: globalThis.crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer,
    userAgent: navigator.userAgent,
    wasmResources: performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.wasm')).map((e) => e.name),
    relaxedSimdSupported: relaxedSimdSupported(),
    simd: simdFlavour(),
  };
};

globalThis.runCase = async (name) => {
  const { forwardMs, answer } = await runCase(pkg, name);
  return { forwardMs, answer: base64(answer) };
};

// The same case in a dedicated worker with init({ threads }) — the threaded build where
// the page is cross-origin isolated, the single-threaded one (with a warning) where not.
globalThis.runCaseInWorker = (name, threads) => new Promise((resolve, reject) => {
  const worker = new Worker('/thread-worker.js', { type: 'module' });
  worker.onerror = (e) => reject(new Error(`worker: ${e.message}`));
  worker.onmessage = ({ data }) => {
    worker.terminate();
    if (data.error) reject(new Error(data.error));
    else resolve({ ...data, answer: base64(data.answer) });
  };
  worker.postMessage({ name, threads });
});

document.getElementById('status').textContent = 'ready';
globalThis.pageReady = true;
