// The app every bundler builds (test/e2e/bundlers.test.ts): it imports the package by
// name and calls init() — with no arguments, the .wasm is wherever the bundler or the
// app's copy step put it — then runs an Inception block and classifies a photo. Its
// worker does the block with init({ threads }), as a page must (its main thread may not
// block on other threads).
import * as pkg from 'inception-wasm';
import { captureWarnings, describeError, runBlock } from './common.js';

const warnings = captureWarnings();

/** Script and .wasm files the page has fetched (which ones, and from where). */
const fetched = () => performance.getEntriesByType('resource').map((e) => e.name).filter((name) => /\.(js|wasm)(\?|$)/.test(name));

async function runApp(options) {
  try {
    await pkg.init(options);
    const block = runBlock(pkg);
    const photo = new Uint8Array(await (await fetch('chelsea_q90.jpg')).arrayBuffer());
    const model = new pkg.GoogLeNet({ seed: 0 });
    const top5 = await model.classify(photo);
    model.dispose();
    return { ok: true, simd: pkg.simdFlavour(), block, top5, warnings, fetched: fetched() };
  } catch (e) {
    return { ok: false, error: describeError(e), isWasmLoadError: e instanceof pkg.WasmLoadError, warnings, fetched: fetched() };
  }
}

function runInWorker(threads) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./app-worker.js', import.meta.url), { type: 'module' });
    worker.onerror = (e) => reject(new Error(`app worker: ${e.message}`));
    worker.onmessage = ({ data }) => {
      worker.terminate();
      resolve(data);
    };
    worker.postMessage({ threads });
  });
}

globalThis.app = { runApp, runInWorker };
