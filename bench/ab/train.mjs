// node bench/ab/train.mjs <dist> <batch> <size> <steps> [threads]
// One process: torchvision's GoogLeNet with aux heads, training mode, SGD; after one
// untimed step, `steps` timed ones. Prints one JSON line of medians (ms): forward
// (`forwardAll` + `googlenetLoss`), backward, optimiser step (bench/lib/train-step.mjs).
import { trainStep } from '../lib/train-step.mjs';

const [dist, batchS, sizeS, stepsS, threadsS] = process.argv.slice(2);
const [batch, size, steps, threads] = [Number(batchS), Number(sizeS), Number(stepsS), Number(threadsS ?? 2)];
const log = console.log;
console.log = () => {}; // the library's one-line notices
const lib = await import(`${dist}/index.js`);
await lib.init(threads > 1 ? { threads } : {});
const net = new lib.GoogLeNet({ variant: 'torchvision', numClasses: 10, auxLogits: true, seed: 0 }).train();
const opt = new lib.SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
const x = lib.Tensor.fromArray(new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i)), [batch, 3, size, size]);
const target = Array.from({ length: batch }, (_, i) => i % 10);
const run = trainStep(lib, net, opt, x, target);
const [fwd, bwd, step] = [[], [], []];
for (let i = 0; i <= steps; i++) {
  const { phases: p } = run();
  if (i > 0) [fwd, bwd, step].forEach((a, k) => a.push([p.forward + p.loss, p.backward, p.step][k]));
}
const median = (a) => a.sort((p, q) => p - q)[a.length >> 1];
log(JSON.stringify({ forward: +median(fwd).toFixed(1), backward: +median(bwd).toFixed(1), step: +median(step).toFixed(1) }));
