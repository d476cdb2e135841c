// Engine: inception-wasm itself, from the built package (dist/), as a user imports it.
import '../lib/child.mjs';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import path from 'node:path';
import { BURST, e2e, microCases, serve } from '../lib/child.mjs';
import { convGraph, inceptionGraph } from '../lib/arch.mjs';
import { fingerprint, graphParams, inputNCHW, packWeights } from '../lib/data.mjs';

let lib;
let distHash;
const importEngine = async () => {
  lib = await import('../../dist/index.js');
  // Others may rebuild dist/ while a long run goes on: the parent compares this across children.
  const h = createHash('sha256');
  for (const f of ['../../dist/index.js', '../../dist/wasm/inception_wasm_bg.wasm']) h.update(fs.readFileSync(new URL(f, import.meta.url)));
  distHash = h.digest('hex').slice(0, 16);
};

// `run.mjs --ours-threads 1,2` (or its detection of `threads` in init's options in
// dist/index.d.ts) passes the count here. The library's own `threadCount()` must confirm it
// (init falls back to the single-threaded build where threads are unavailable), and
// cpuPerWall in the results shows whether the threads really ran.
const initEngine = async (job) => {
  const simd = job.simd ?? 'simd128';
  await lib.init({ threads: job.threads ?? 1, relaxedSimd: simd === 'relaxed' });
  const threads = lib.threadCount();
  if (threads !== (job.threads ?? 1)) throw new Error(`inception-wasm runs ${threads} thread(s), ${job.threads} requested`);
  if (lib.simdFlavour() !== simd) throw new Error(`inception-wasm runs its ${lib.simdFlavour()} build, ${simd} requested`);
  return { threadsRequested: job.threads, threads, simd, distHash };
};

const input = (data, shape) => lib.Tensor.fromArray(data, shape);

serve('ours', {
  /** The library's summary, its conv shapes and its GoogLeNet weights, for the peers. */
  async prepare(job) {
    await importEngine();
    await lib.init();
    const net = new lib.GoogLeNet({ numClasses: 1000, seed: job.seed });
    const s = lib.summary(net, [1, 3, job.size, job.size]);
    const dict = Object.fromEntries(net.stateDict());
    const { index, data } = packWeights(dict);
    fs.mkdirSync(job.modelDir, { recursive: true });
    fs.writeFileSync(path.join(job.modelDir, 'weights.bin'), new Uint8Array(data.buffer));
    fs.writeFileSync(path.join(job.modelDir, 'weights.json'), JSON.stringify(index));
    net.dispose();
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    return {
      distHash,
      version: pkg.version,
      config: lib.INCEPTION_CONFIG,
      rows: s.rows.map((r) => ({ name: r.name, type: r.type, outputShape: r.outputShape, params: r.params, macs: r.macs })),
      totalMacs: s.totalMacs,
      totalParams: s.totalParams,
    };
  },

  e2e: (job) =>
    e2e(job, {
      importEngine,
      init: initEngine,
      build: () => new lib.GoogLeNet({ numClasses: 1000, seed: job.seed }),
      input,
      forward(net, x) {
        const y = net.forward(x);
        const out = y.toArray();
        y.dispose();
        return out;
      },
      dispose: (x) => x.dispose(),
    }),

  /**
   * Bursts for the paired thread-scaling measurement (run.mjs `runScaling`): builds
   * GoogLeNet and the control (below), warms up, prints `BURST ready`, then for every
   * line `N M` on stdin runs N forwards of GoogLeNet (batch `job.batch`) and M of the
   * control and prints `BURST {"net": [ms, …], "control": [ms, …]}`; an empty line ends
   * the job.
   *
   * The control is the best case of the same kernels and thread pool: eight 1×1
   * convolutions 128 → 128 with ReLU on 128×32×32 (134 M multiply-adds a forward, each
   * weight used 1,024 times; 1.5 MB of weights and activations, in cache) —
   * compute-bound, perfectly parallel, the same executor, so its speed-up is what
   * threads give this machine's cores at that moment with no memory traffic or uneven
   * stages in the way.
   */
  async bursts(job) {
    await importEngine();
    const info = await initEngine(job);
    const net = new lib.GoogLeNet({ numClasses: 1000, seed: job.seed });
    const x = input(inputNCHW(job.batch, [3, job.size, job.size], job.inputSeed), [job.batch, 3, job.size, job.size]);
    const control = new lib.Sequential(...Array.from({ length: 8 }, () => new lib.Conv2d({ inChannels: 128, outChannels: 128, kernelSize: 1, activation: 'relu' })));
    const xc = input(inputNCHW(1, [128, 32, 32], job.inputSeed), [1, 128, 32, 32]);
    for (let i = 0; i < job.warmup; i++) {
      net.forward(x).dispose();
      control.forward(xc).dispose();
    }
    const timed = (model, inp, n) =>
      Array.from({ length: n }, () => {
        const t0 = performance.now();
        model.forward(inp).dispose();
        return performance.now() - t0;
      });
    process.stdout.write(`${BURST} ready\n`);
    let bursts = 0;
    for await (const line of createInterface({ input: process.stdin })) {
      const [n, m] = line.split(' ').map(Number);
      if (!(n > 0 && m >= 0)) break;
      process.stdout.write(`${BURST} ${JSON.stringify({ net: timed(net, x, n), control: timed(control, xc, m) })}\n`);
      bursts++;
    }
    return { info, bursts };
  },

  /**
   * Memory over many inferences: RSS, WebAssembly memory and allocations, sampled ~40
   * times over `job.inferences` batch-1 GoogLeNet forwards.
   */
  async soak(job) {
    await importEngine();
    await lib.init();
    const net = new lib.GoogLeNet({ numClasses: 1000, seed: job.seed });
    const x = input(inputNCHW(1, [3, job.size, job.size], job.inputSeed), [1, 3, job.size, job.size]);
    const every = Math.max(1, Math.floor(job.inferences / 40));
    const samples = [];
    const t0 = performance.now();
    const mib = (b) => b / 2 ** 20;
    const sample = (i) => {
      const m = lib.memoryInfo();
      const u = process.memoryUsage();
      samples.push({ i, rssMiB: mib(u.rss), heapTotalMiB: mib(u.heapTotal), heapUsedMiB: mib(u.heapUsed), wasmBytes: m.wasmBytes, allocations: m.allocations, s: (performance.now() - t0) / 1000 });
    };
    // The JavaScript heap that is really retained: after a full collection (the child runs
    // with --expose-gc), once after the first inference and once after the last, so that
    // V8's lazy heap growth in between is measured as it is.
    const retained = () => (globalThis.gc?.(), mib(process.memoryUsage().heapUsed));
    for (let i = 1; i <= job.inferences; i++) {
      net.forward(x).dispose();
      if (i === 1) samples.retainedFirst = retained();
      if (i === 1 || i % every === 0 || i === job.inferences) sample(i);
    }
    const [first, last] = [samples[0], samples.at(-1)];
    const heapRetainedMiB = { first: samples.retainedFirst, last: retained() };
    return { samples, heapRetainedMiB, inferences: job.inferences, allocationsPerInference: (last.allocations - first.allocations) / (last.i - first.i), seconds: last.s };
  },

  async micro(job) {
    await importEngine();
    const info = await initEngine(job);
    const result = await microCases(job, (c) => {
      let layer;
      let shape;
      let kernel = null;
      if (c.kind === 'conv') {
        layer = new lib.Conv2d({ inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride: c.s, padding: c.p, activation: 'relu' });
        layer.loadStateDict(graphParams(convGraph(c), c.id));
        shape = [c.cin, c.h, c.w];
        kernel = layer.algorithmFor(c.h, c.w);
      } else if (c.kind === 'maxpool') {
        layer = new lib.MaxPool2d({ kernelSize: c.k, stride: c.s, padding: c.p });
        shape = [c.c, c.h, c.w];
      } else if (c.kind === 'inception') {
        layer = new lib.Inception(...c.cfg, { activation: 'relu' });
        layer.loadStateDict(graphParams(inceptionGraph(c.cfg, c.h, c.w), c.id));
        shape = [c.cfg[0], c.h, c.w];
      } else throw new Error(`unknown case kind ${c.kind}`);
      const x = input(inputNCHW(1, shape, c.seed), [1, ...shape]);
      return {
        meta: kernel && { kernel },
        fn: () => layer.forward(x).dispose(),
        check() {
          const y = layer.forward(x);
          const fp = fingerprint(y.data);
          y.dispose();
          return fp;
        },
        dispose() {
          x.dispose();
          layer.dispose();
        },
      };
    });
    return { info, ...result, wasm: (await import('../lib/child.mjs')).wasmLoaded(job.wasmCandidates ?? []) };
  },
});
