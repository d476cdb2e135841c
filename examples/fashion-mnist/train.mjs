#!/usr/bin/env node
// Trains torchvision-style GoogLeNet (both auxiliary heads, their losses weighted 0.3 — the
// seed's section 5 recipe) on Fashion-MNIST with inception-wasm: `npm run train:fashion`.
// Gray 28×28 images go in as one channel (GoogLeNet({ inChannels: 1 })), padded to 32×32.
// Progress on stderr; test accuracy after every epoch; a checkpoint (weights + optimiser
// state) after every epoch that `--resume` continues from; history in OUT/history.json.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AdamW, GoogLeNet, googlenetLoss, init, loadCheckpoint, manualSeed, memoryInfo, saveCheckpoint, SGD, summary, Tensor, threadCount } from '../../dist/index.js';
import { batchOf, CLASSES, DEFAULT_DIR, loadFashionMnist } from './data.mjs';

const HELP = `usage: npm run train:fashion -- [options]

  --epochs N         epochs (default 6)
  --batch N          batch size (default 128)
  --lr X             peak learning rate (default 0.05 for sgd, 0.002 for adamw)
  --optimizer NAME   sgd (momentum 0.9, weight decay 5e-4) or adamw (default sgd)
  --schedule NAME    cosine (decay to 0 over the run, per step) or constant (default cosine)
  --threads N        WebAssembly threads (default 2)
  --seed N           weights, shuffling and dropout (default 0)
  --subset N         train on the first N images only (default all 60,000)
  --test-subset N    evaluate on the first N test images only (default all 10,000)
  --data DIR         Fashion-MNIST idx files (default ${DEFAULT_DIR})
  --out DIR          checkpoint and history (default runs/fashion-mnist)
  --resume           continue from OUT/checkpoint.safetensors
  --json             print the final result as JSON on stdout
`;

const { values: opt } = parseArgs({
  options: {
    epochs: { type: 'string', default: '6' }, batch: { type: 'string', default: '128' }, lr: { type: 'string' },
    optimizer: { type: 'string', default: 'sgd' }, schedule: { type: 'string', default: 'cosine' },
    threads: { type: 'string', default: '2' }, seed: { type: 'string', default: '0' },
    subset: { type: 'string', default: '0' }, 'test-subset': { type: 'string', default: '0' },
    data: { type: 'string', default: DEFAULT_DIR }, out: { type: 'string', default: 'runs/fashion-mnist' },
    resume: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const int = (name, min = 1) => {
  const v = Number(opt[name]);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${opt[name]}`);
  return v;
};
const epochs = int('epochs');
const batch = int('batch');
const seed = int('seed', 0);
if (!['sgd', 'adamw'].includes(opt.optimizer)) throw new Error(`--optimizer must be sgd or adamw, got ${opt.optimizer}`);
if (!['cosine', 'constant'].includes(opt.schedule)) throw new Error(`--schedule must be cosine or constant, got ${opt.schedule}`);
const peakLr = opt.lr === undefined ? (opt.optimizer === 'sgd' ? 0.05 : 0.002) : Number(opt.lr);
if (!(peakLr > 0)) throw new Error(`--lr must be a positive number, got ${opt.lr}`);

const { train, test } = loadFashionMnist(opt.data);
const trainN = int('subset', 0) || train.n;
const testN = int('test-subset', 0) || test.n;
const threads = int('threads');
await init(threads > 1 ? { threads } : {});
mkdirSync(opt.out, { recursive: true });
const checkpointFile = path.join(opt.out, 'checkpoint.safetensors');
const historyFile = path.join(opt.out, 'history.json');

manualSeed(seed);
const net = new GoogLeNet({ variant: 'torchvision', numClasses: 10, inChannels: 1, auxLogits: true, seed });
const params = net.parameters();
const optimizer = opt.optimizer === 'sgd'
  ? new SGD(params, { lr: peakLr, momentum: 0.9, weightDecay: 5e-4 })
  : new AdamW(params, { lr: peakLr, weightDecay: 5e-4 });
let history = [];
let startEpoch = 0;
if (opt.resume && existsSync(checkpointFile)) {
  const meta = loadCheckpoint(readFileSync(checkpointFile), net, optimizer);
  startEpoch = Number(meta.epoch);
  history = existsSync(historyFile) ? JSON.parse(readFileSync(historyFile, 'utf8')).epochs.slice(0, startEpoch) : [];
  process.stderr.write(`resumed from ${checkpointFile} after epoch ${startEpoch}\n`);
}

/** A seeded shuffle (mulberry32): the same seed and epoch give the same order. */
function shuffled(n, s) {
  let a = s >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const stepsPerEpoch = Math.ceil(trainN / batch);
const totalSteps = epochs * stepsPerEpoch;
const lrAt = (step) => (opt.schedule === 'constant' ? peakLr : 0.5 * peakLr * (1 + Math.cos((Math.PI * step) / totalSteps)));
const fmt = (s) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);
const tty = process.stderr.isTTY;
function progress(epoch, step, loss, rate, eta) {
  const width = 24;
  const done = Math.round((width * step) / stepsPerEpoch);
  const line = `epoch ${epoch + 1}/${epochs} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${step}/${stepsPerEpoch}  loss ${loss.toFixed(4)}  ${rate.toFixed(0)} ex/s  ETA ${fmt(eta)}`;
  if (tty) process.stderr.write(`\r${line}\x1b[K`);
  else if (step === stepsPerEpoch || step % Math.max(1, Math.round(stepsPerEpoch / 10)) === 0) process.stderr.write(`${line}\n`);
}

/** Test accuracy (eval mode: BatchNorm's running statistics, no aux heads), overall and per class. */
function evaluate() {
  net.eval();
  const correct = new Array(10).fill(0);
  const total = new Array(10).fill(0);
  for (let start = 0; start < testN; start += 500) {
    const indices = Array.from({ length: Math.min(500, testN - start) }, (_, i) => start + i);
    const b = batchOf(test, indices);
    const x = Tensor.fromArray(b.data, b.shape);
    const logits = net.forward(x);
    const z = logits.data;
    b.labels.forEach((label, i) => {
      let best = 0;
      for (let c = 1; c < 10; c++) if (z[i * 10 + c] > z[i * 10 + best]) best = c;
      total[label]++;
      if (best === label) correct[label]++;
    });
    x.dispose();
    logits.dispose();
  }
  net.train();
  return { accuracy: correct.reduce((a, b) => a + b) / testN, perClass: correct.map((c, i) => c / Math.max(1, total[i])) };
}

const runStart = performance.now() - 1000 * (history.at(-1)?.seconds ?? 0);
net.train();
let step = startEpoch * stepsPerEpoch;
for (let epoch = startEpoch; epoch < epochs; epoch++) {
  const order = shuffled(trainN, seed * 1000 + epoch);
  const epochStart = performance.now();
  let lossSum = 0;
  let seen = 0;
  for (let s = 0; s < stepsPerEpoch; s++, step++) {
    const b = batchOf(train, order.slice(s * batch, (s + 1) * batch));
    const x = Tensor.fromArray(b.data, b.shape);
    optimizer.lr = lrAt(step);
    optimizer.zeroGrad();
    const out = net.forwardAll(x);
    const loss = googlenetLoss(out, b.labels);
    loss.backward();
    optimizer.step();
    lossSum += loss.parts.main * b.labels.length;
    seen += b.labels.length;
    for (const t of [x, out.logits, out.aux1, out.aux2, loss]) t.dispose();
    const elapsed = (performance.now() - epochStart) / 1000;
    const rate = seen / elapsed;
    progress(epoch, s + 1, lossSum / seen, rate, (totalSteps - step - 1) * batch / rate);
  }
  if (tty) process.stderr.write('\n');
  const { accuracy, perClass } = evaluate();
  const seconds = (performance.now() - runStart) / 1000;
  history.push({ epoch: epoch + 1, trainLoss: lossSum / seen, testAccuracy: accuracy, seconds, examplesPerSecond: seen / ((performance.now() - epochStart) / 1000) });
  process.stderr.write(`epoch ${epoch + 1}: test accuracy ${(100 * accuracy).toFixed(2)} %, train loss ${(lossSum / seen).toFixed(4)}, ${fmt(seconds)} so far\n`);
  writeFileSync(checkpointFile, saveCheckpoint(net, optimizer, { epoch: String(epoch + 1), seed: String(seed), seconds: seconds.toFixed(1) }));
  writeFileSync(historyFile, JSON.stringify({ engine: 'inception-wasm', threads: threadCount(), batch, optimizer: opt.optimizer, lr: peakLr, schedule: opt.schedule, trainImages: trainN, testImages: testN, epochs: history }, null, 1));
  if (epoch === epochs - 1) {
    process.stderr.write(`per class: ${CLASSES.map((c, i) => `${c} ${(100 * perClass[i]).toFixed(1)}`).join(', ')}\n`);
  }
}

net.eval();
const s = summary(net, [1, 1, 32, 32]);
const last = history.at(-1);
process.stderr.write(`\nGoogLeNet (torchvision-style, 1 input channel, aux heads dropped at inference): ${s.totalParams.toLocaleString('en')} parameters, ${(s.totalMacs / 1e6).toFixed(1)} M multiply-adds per 32×32 image\n`);
process.stderr.write(`final: test accuracy ${(100 * last.testAccuracy).toFixed(2)} % after ${last.epoch} epochs, ${fmt(last.seconds)} wall (${threadCount()} threads), peak WebAssembly memory ${(memoryInfo().wasmBytes / 2 ** 20).toFixed(0)} MiB; checkpoint ${checkpointFile}\n`);
if (opt.json) process.stdout.write(`${JSON.stringify({ ...last, history })}\n`);
