// Engine: onnxruntime-web (wasm execution provider, SIMD build) running the bench graph
// encoded as ONNX. In Node, `import 'onnxruntime-web'` resolves to its node build
// (dist/ort.node.min.mjs), which has the wasm backend only; `wasm` in the results names
// the module it actually compiled (ort-wasm-simd-threaded.wasm).
import '../lib/child.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { e2e, microCases, serve, wasmLoaded } from '../lib/child.mjs';
import { convGraph, inceptionGraph, maxpoolGraph } from '../lib/arch.mjs';
import { fingerprint, graphParams, inputNCHW } from '../lib/data.mjs';
import { encodeModel } from '../lib/onnx.mjs';

let ort;
const importEngine = async () => {
  ort = await import('onnxruntime-web');
};

const sessionOptions = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };

// onnxruntime-web instantiates its wasm lazily, in the first InferenceSession.create:
// that cost lands in `buildMs` of the cold start, not in `initMs`.
const initEngine = async (job) => {
  ort.env.wasm.numThreads = job.threads;
  ort.env.wasm.proxy = false;
  return { version: ort.env.versions?.web, numThreads: ort.env.wasm.numThreads, graphOptimizationLevel: sessionOptions.graphOptimizationLevel };
};

/** Throws unless the session really runs on the wasm backend's module. */
function checkBackend(job) {
  const loaded = wasmLoaded(job.wasmCandidates ?? []);
  if (!loaded.some((w) => w.file && /ort-wasm-simd-threaded[^/]*\.wasm$/.test(w.file))) {
    throw new Error(`onnxruntime-web did not compile its wasm module (compiled: ${JSON.stringify(loaded)})`);
  }
}

const input = (data, shape) => new ort.Tensor('float32', data, shape);

serve('ort', {
  e2e: (job) =>
    e2e(job, {
      importEngine,
      init: initEngine,
      async build() {
        const bytes = fs.readFileSync(path.join(job.modelDir, 'googlenet.onnx'));
        const session = await ort.InferenceSession.create(bytes, sessionOptions);
        checkBackend(job);
        return session;
      },
      input,
      async forward(session, x) {
        const out = await session.run({ [session.inputNames[0]]: x });
        return out[session.outputNames[0]].data;
      },
    }),

  async micro(job) {
    await importEngine();
    const info = await initEngine(job);
    const result = await microCases(job, async (c) => {
      let graph;
      if (c.kind === 'conv') graph = convGraph(c);
      else if (c.kind === 'maxpool') graph = maxpoolGraph(c);
      else if (c.kind === 'inception') graph = inceptionGraph(c.cfg, c.h, c.w);
      else throw new Error(`unknown case kind ${c.kind}`);
      const session = await ort.InferenceSession.create(encodeModel(graph, graphParams(graph, c.id), { batch: 1 }), sessionOptions);
      checkBackend(job);
      const feeds = { [session.inputNames[0]]: input(inputNCHW(1, graph.inputShape, c.seed), [1, ...graph.inputShape]) };
      return {
        fn: () => session.run(feeds),
        async check() {
          const out = await session.run(feeds);
          return fingerprint(out[session.outputNames[0]].data);
        },
        dispose: () => (process.env.BENCH_ORT_KEEP ? undefined : session.release()),
      };
    });
    return { info, ...result, wasm: wasmLoaded(job.wasmCandidates ?? []) };
  },
});
