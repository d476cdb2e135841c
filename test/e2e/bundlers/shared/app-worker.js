// The app's module worker: init({ threads }) — the threaded build where the page is
// cross-origin isolated — then the same Inception block as the page.
import * as pkg from 'inception-wasm';
import { captureWarnings, describeError, runBlock } from './common.js';

const warnings = captureWarnings();

self.onmessage = async ({ data: { threads } }) => {
  try {
    await pkg.init({ threads });
    const block = runBlock(pkg);
    self.postMessage({ ok: true, block, threads: pkg.threadCount(), simd: pkg.simdFlavour(), isolated: self.crossOriginIsolated, warnings });
  } catch (e) {
    self.postMessage({ ok: false, error: describeError(e), warnings });
  }
};
