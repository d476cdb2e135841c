// The inception-wasm side of bench/train.mjs: one case (training steps or inference
// forwards of torchvision's GoogLeNet with both auxiliary heads) in a fresh process, from
// the built package (dist/) as users import it. Job JSON on argv; one `@@bench@@ {json}`
// line on stdout (bench/lib/child.mjs).
//
// Training step: lib/train-step.mjs (each phase timed on its own).
// Inference = net.eval(); net.forward(x) (the planned, BatchNorm-folded path).
import './child.mjs';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { serve } from './child.mjs';
import { inputNCHW } from './data.mjs';
import { summarize, systemBusyMs } from './stats.mjs';
import { trainStep } from './train-step.mjs';

const DIST = new URL('../../dist/', import.meta.url);

async function setup(job) {
  const lib = await import(new URL('index.js', DIST).href);
  // The main tree's dist/ may be rebuilt during a long run: the parent compares this across children.
  const h = createHash('sha256');
  for (const f of ['index.js', 'wasm/inception_wasm_bg.wasm', 'wasm-threads/inception_wasm_bg.wasm']) h.update(fs.readFileSync(new URL(f, DIST)));
  const distHash = h.digest('hex').slice(0, 16);
  await lib.init({ threads: job.threads });
  const threads = lib.threadCount();
  if (threads !== job.threads) throw new Error(`inception-wasm runs ${threads} thread(s), ${job.threads} requested`);
  const net = new lib.GoogLeNet({ variant: 'torchvision', numClasses: job.classes, auxLogits: true, seed: job.seed });
  const shape = [job.batch, 3, job.size, job.size];
  const x = lib.Tensor.fromArray(inputNCHW(job.batch, shape.slice(1), job.inputSeed), shape);
  const targets = Array.from({ length: job.batch }, (_, i) => i % job.classes);
  const info = { threads, simd: lib.simdFlavour(), distHash, version: JSON.parse(fs.readFileSync(new URL('../package.json', DIST), 'utf8')).version };
  return { lib, net, x, targets, info };
}

/** Runs `step()` (→ per-phase ms) warmup + steps times; per-step totals, per-phase medians, CPU/wall, other processes' CPUs. */
function timeSteps(step, { warmup, steps }) {
  const warm = [];
  for (let i = 0; i < warmup; i++) warm.push(sum(step()));
  const phases = [];
  const busy0 = systemBusyMs();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < steps; i++) phases.push(step());
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const busy1 = systemBusyMs();
  const ownMs = (cpu.user + cpu.system) / 1000;
  const times = phases.map(sum);
  const names = Object.keys(phases[0]);
  return {
    warmupMs: warm,
    times,
    median: summarize(times).median,
    phases: Object.fromEntries(names.map((n) => [n, summarize(phases.map((p) => p[n])).median])),
    cpuPerWall: ownMs / wall,
    bgCpus: busy0 === null ? null : Math.max(0, (busy1 - busy0 - ownMs) / wall),
  };
}
const sum = (p) => Object.values(p).reduce((a, b) => a + b, 0);

function memory(lib) {
  const m = lib.memoryInfo();
  return { wasmMiB: m.wasmBytes / 2 ** 20, heldMiB: m.heldBytes / 2 ** 20, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

serve('ours', {
  async train(job) {
    const { lib, net, x, targets, info } = await setup(job);
    net.train();
    const opt = new lib.SGD(net.parameters(), { lr: job.lr, momentum: job.momentum });
    const losses = [];
    const run = trainStep(lib, net, opt, x, targets);
    const step = () => {
      const { phases, loss } = run();
      losses.push(loss);
      return phases;
    };
    const r = timeSteps(step, job);
    const mem = memory(lib);
    opt.dispose();
    return { info, ...r, losses, memory: mem };
  },

  async inference(job) {
    const { lib, net, x, info } = await setup(job);
    net.eval();
    const r = timeSteps(() => {
      const t0 = performance.now();
      const y = net.forward(x);
      const t1 = performance.now();
      y.dispose();
      return { forward: t1 - t0 };
    }, job);
    return { info, ...r, memory: memory(lib) };
  },
});
