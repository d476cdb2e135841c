// Engine: @tensorflow/tfjs-core + @tensorflow/tfjs-backend-wasm (XNNPACK inside), the bench
// graph interpreted op by op in NHWC. Convolutions use tf.fused.conv2d (bias and ReLU in
// the kernel, as tfjs' own converted models run) unless the job asks for `ops: 'plain'`
// (tf.conv2d → tf.add → tf.relu, the unfused spelling).
import '../lib/child.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { e2e, microCases, serve, wasmLoaded } from '../lib/child.mjs';
import { convGraph, inceptionGraph, maxpoolGraph } from '../lib/arch.mjs';
import { fingerprint, graphParams, inputNCHW, toHWIO, toNHWC, transpose2d, unpackWeights } from '../lib/data.mjs';

let tf;
let backend;
const importEngine = async () => {
  tf = await import('@tensorflow/tfjs-core');
  backend = await import('@tensorflow/tfjs-backend-wasm');
};

/**
 * tfjs-backend-wasm turns threads off in Node on purpose (flags_wasm.ts returns false for
 * WASM_HAS_MULTITHREAD_SUPPORT when IS_NODE; tensorflow/tfjs#3830), and setThreadsCount(n)
 * then silently runs one thread. For n > 1 this overrides that flag to find out whether
 * the threaded build works anyway, and fails loudly unless tfjs reports n threads.
 */
const initEngine = async (job) => {
  backend.setThreadsCount(job.threads);
  if (job.threads > 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  let ok;
  // tfjs logs the reason a backend failed (console.warn) and rejects with a generic error.
  const logged = [];
  const { warn, error } = console;
  console.warn = console.error = (...a) => logged.push(a.map((x) => (x instanceof Error ? `${x.name}${x.code ? ` [${x.code}]` : ''}: ${x.message}` : String(x))).join(' '));
  try {
    ok = await tf.setBackend('wasm');
    await tf.ready();
  } catch (e) {
    const cause = logged.find((l) => /Error/.test(l) && !/Initialization of backend/.test(l))?.split('\n')[0];
    throw new Error(`tfjs-backend-wasm could not start with ${job.threads} threads in Node: ${e?.message ?? e}${cause ? ` (cause: ${cause})` : ''}`);
  } finally {
    Object.assign(console, { warn, error });
  }
  if (!ok || tf.getBackend() !== 'wasm') throw new Error(`tfjs backend is ${tf.getBackend()}, not wasm`);
  const threads = backend.getThreadsCount();
  if (threads !== job.threads) throw new Error(`tfjs-backend-wasm runs ${threads} thread(s), ${job.threads} requested`);
  return {
    version: tf.version_core,
    backend: tf.getBackend(),
    threads,
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    ops: job.ops ?? 'fused',
  };
};

/** NHWC tfjs tensors for a state dict in the library's layout (OIHW, fc [out, in]). */
function tfParams(dict) {
  const out = {};
  for (const [name, t] of Object.entries(dict)) {
    if (t.shape.length === 4) {
      const [o, i, kh, kw] = t.shape;
      out[name] = tf.tensor4d(toHWIO(t.data, o, i, kh, kw), [kh, kw, i, o]);
    } else if (t.shape.length === 2) {
      const [o, i] = t.shape;
      out[name] = tf.tensor2d(transpose2d(t.data, o, i), [i, o]);
    } else out[name] = tf.tensor1d(t.data);
  }
  return out;
}

/**
 * Runs a bench graph on an NHWC tensor, disposing each intermediate as soon as its last
 * consumer has run (as tfjs' GraphModel executor does), so peak memory is comparable.
 */
function runGraph(graph, params, x, fused) {
  const uses = new Map();
  for (const op of graph.ops) for (const i of op.inputs ?? [op.input]) uses.set(i, (uses.get(i) ?? 0) + 1);
  const values = new Map([[graph.input, x]]);
  const key = (name, what) => (name ? `${name}.${what}` : what);
  for (const op of graph.ops) {
    const ins = (op.inputs ?? [op.input]).map((n) => values.get(n));
    let y;
    switch (op.op) {
      case 'conv': {
        const filter = params[key(op.name, 'weight')];
        const bias = params[key(op.name, 'bias')];
        if (fused) y = tf.fused.conv2d({ x: ins[0], filter, strides: [op.s, op.s], pad: op.p, bias, activation: op.relu ? 'relu' : 'linear' });
        else
          y = tf.tidy(() => {
            const z = tf.add(tf.conv2d(ins[0], filter, [op.s, op.s], op.p), bias);
            return op.relu ? tf.relu(z) : z;
          });
        break;
      }
      case 'maxpool':
        y = tf.maxPool(ins[0], [op.k, op.k], [op.s, op.s], op.p);
        break;
      case 'concat':
        y = tf.concat(ins, 3);
        break;
      case 'gap':
        y = tf.mean(ins[0], [1, 2]);
        break;
      case 'flatten':
        y = tf.reshape(ins[0], [ins[0].shape[0], -1]);
        break;
      case 'fc': {
        const w = params[key(op.name, 'weight')];
        const b = params[key(op.name, 'bias')];
        y = fused ? tf.fused.matMul({ a: ins[0], b: w, bias: b }) : tf.tidy(() => tf.add(tf.matMul(ins[0], w), b));
        break;
      }
      default:
        throw new Error(`no tfjs op for ${op.op}`);
    }
    values.set(op.output, y);
    for (const i of op.inputs ?? [op.input]) {
      const left = uses.get(i) - 1;
      uses.set(i, left);
      if (left === 0 && i !== graph.input) {
        values.get(i).dispose();
        values.delete(i);
      }
    }
  }
  return values.get(graph.output);
}

serve('tfjs', {
  e2e: (job) =>
    e2e(job, {
      importEngine,
      init: initEngine,
      async build() {
        const { googlenetGraph } = await import('../lib/arch.mjs');
        const index = JSON.parse(fs.readFileSync(path.join(job.modelDir, 'weights.json'), 'utf8'));
        const buf = fs.readFileSync(path.join(job.modelDir, 'weights.bin'));
        const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        return { graph: googlenetGraph(job.config, { size: job.size }), params: tfParams(unpackWeights(index, data)) };
      },
      input: (data, shape) => tf.tensor4d(data, shape),
      forward(net, xNCHW) {
        // The input arrives NCHW like the other engines'; one transpose makes it NHWC.
        const x = tf.transpose(xNCHW, [0, 2, 3, 1]);
        const y = runGraph(net.graph, net.params, x, job.ops !== 'plain');
        x.dispose();
        const out = y.dataSync();
        y.dispose();
        return out;
      },
      dispose: (x) => x.dispose(),
    }),

  async micro(job) {
    await importEngine();
    const info = await initEngine(job);
    const result = await microCases(job, (c) => {
      let graph;
      if (c.kind === 'conv') graph = convGraph(c);
      else if (c.kind === 'maxpool') graph = maxpoolGraph(c);
      else if (c.kind === 'inception') graph = inceptionGraph(c.cfg, c.h, c.w);
      else throw new Error(`unknown case kind ${c.kind}`);
      const params = tfParams(graphParams(graph, c.id));
      const [ch, h, w] = graph.inputShape;
      const x = tf.tensor4d(toNHWC(inputNCHW(1, graph.inputShape, c.seed), 1, ch, h, w), [1, h, w, ch]);
      const fused = job.ops !== 'plain';
      return {
        // The wasm backend runs each op synchronously: no dataSync needed to time it.
        fn: () => runGraph(graph, params, x, fused).dispose(),
        check() {
          const y = runGraph(graph, params, x, fused);
          const fp = fingerprint(y.dataSync());
          y.dispose();
          return fp;
        },
        dispose() {
          x.dispose();
          for (const t of Object.values(params)) t.dispose();
        },
      };
    });
    return { info, ...result, wasm: wasmLoaded(job.wasmCandidates ?? []) };
  },
});
