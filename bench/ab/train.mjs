// node bench/ab/train.mjs <dist> <batch> <size> <steps> [threads]
// One process: torchvision's GoogLeNet with aux heads, training mode, SGD; after one
// untimed step, `steps` timed ones. Prints one JSON line of medians (ms): forward
// (`forwardAll` + `googlenetLoss`), backward, optimiser step.
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
const [fwd, bwd, step] = [[], [], []];
for (let i = 0; i <= steps; i++) {
  opt.zeroGrad();
  const t0 = performance.now();
  const out = net.forwardAll(x);
  const loss = lib.googlenetLoss(out, target);
  const t1 = performance.now();
  loss.backward();
  const t2 = performance.now();
  opt.step();
  const t3 = performance.now();
  if (i > 0) [fwd, bwd, step].forEach((a, k) => a.push([t1 - t0, t2 - t1, t3 - t2][k]));
  for (const t of [loss, out.logits, out.aux1, out.aux2]) t?.dispose();
}
const median = (a) => a.sort((p, q) => p - q)[a.length >> 1];
log(JSON.stringify({ forward: +median(fwd).toFixed(1), backward: +median(bwd).toFixed(1), step: +median(step).toFixed(1) }));
