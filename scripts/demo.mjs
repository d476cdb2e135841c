// The main job (`npm run demo`): builds the default GoogLeNet, prints its summary, runs a
// forward pass on a generated 224×224 image and prints the top-5 classes, timing each
// step. Uses the built package (dist/), exactly as a user would.
import { GoogLeNet, init, summary, Tensor, topk } from '../dist/index.js';

const ms = (t0) => `${(performance.now() - t0).toFixed(1)} ms`;
const step = (label, t0) => console.log(`${label.padEnd(34)} ${ms(t0)}`);

let t0 = performance.now();
await init();
step('init (load + compile .wasm)', t0);

t0 = performance.now();
const model = new GoogLeNet({ numClasses: 1000, seed: 0 });
step('build GoogLeNet (init + pack weights)', t0);

t0 = performance.now();
const s = summary(model, [1, 3, 224, 224]);
console.log(`\n${s.toString()}\n`);
step('summary', t0);

// A synthetic RGB image: colour gradients with a bright disc, normalised with the
// ImageNet mean/std as torchvision's transforms do.
t0 = performance.now();
const [H, W] = [224, 224];
const mean = [0.485, 0.456, 0.406];
const std = [0.229, 0.224, 0.225];
const pixels = new Float32Array(3 * H * W);
for (let y = 0; y < H; y++) {
  for (let x = 0; x < W; x++) {
    const disc = (x - 140) ** 2 + (y - 90) ** 2 < 40 ** 2 ? 0.5 : 0;
    const rgb = [x / W, y / H, Math.min(1, 0.5 * (1 - x / W) + disc)];
    for (let c = 0; c < 3; c++) pixels[(c * H + y) * W + x] = (rgb[c] - mean[c]) / std[c];
  }
}
const input = Tensor.fromArray(pixels, [1, 3, H, W]);
step('make 1×3×224×224 input', t0);

t0 = performance.now();
let logits = model.forward(input);
step('forward (first)', t0);

const times = [];
for (let i = 0; i < 5; i++) {
  logits.dispose();
  t0 = performance.now();
  logits = model.forward(input);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(`${'forward (median of 5)'.padEnd(34)} ${times[2].toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times[4].toFixed(1)}; ${((2 * s.totalMacs) / times[2] / 1e6).toFixed(1)} GFLOP/s)`);

console.log('\ntop-5 (class index: logit) — random weights, so the classes mean nothing yet:');
for (const { index, value } of topk(logits, 5)[0]) console.log(`  ${String(index).padStart(4)}: ${value.toFixed(4)}`);
logits.dispose();
input.dispose();
model.dispose();
