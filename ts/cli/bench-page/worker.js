// A module Worker of the benchmark page: `init({ threads })` (once per realm, so one
// Worker per thread count), then the configurations it is sent, one after another.
import * as lib from '../index.js';
import { runConfig } from './suite.js';

self.onmessage = async ({ data: { threads, configs } }) => {
  try {
    const t0 = performance.now();
    await lib.init({ threads });
    const initMs = performance.now() - t0;
    for (const [i, config] of configs.entries()) {
      try {
        const result = await runConfig(lib, { ...config, cold: i === 0 }, (phase, runs, elapsed) => {
          self.postMessage({ type: 'progress', config, phase, runs, elapsed });
        });
        self.postMessage({ type: 'result', result: { ...result, initMs: i === 0 ? initMs : null, realm: 'worker' } });
      } catch (e) {
        self.postMessage({ type: 'failure', config, error: { name: e?.name ?? 'Error', message: String(e?.message ?? e) } });
      }
    }
  } catch (e) {
    for (const config of configs) self.postMessage({ type: 'failure', config, error: { name: e?.name ?? 'Error', message: String(e?.message ?? e) } });
  }
  self.postMessage({ type: 'done' });
};
