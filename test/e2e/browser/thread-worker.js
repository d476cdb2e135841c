// A dedicated module worker, where a page can use the threaded build (a page's main
// thread may not block on other threads): init({ threads }) on the first message, then
// one fixture case per message. Import maps do not reach workers: import by path.
import * as pkg from '/dist/index.js';
import { runCase } from '/run-case.js';

self.onmessage = async ({ data: { name, threads } }) => {
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(' '));
  try {
    await pkg.init({ threads });
    const { forwardMs, answer } = await runCase(pkg, name);
    self.postMessage({ forwardMs, answer, threads: pkg.threadCount(), simd: pkg.simdFlavour(), crossOriginIsolated: self.crossOriginIsolated, warnings }, [answer.buffer]);
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  } finally {
    console.warn = warn;
  }
};
