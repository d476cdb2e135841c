// The main job (`npm run demo`): photos in, ImageNet labels out, timing each step, with the
// built package (dist/) exactly as a user would use it.
//
//   npm run demo                                   # the sample photos, random weights
//   npm run demo -- photo.jpg other.png            # your photos
//   npm run demo -- --weights googlenet.safetensors photo.jpg
//
// Weights: torchvision's GoogLeNet as safetensors (scripts/export_torchvision_googlenet.py
// writes it wherever PyTorch has the pretrained weights; no model hub is reachable here).
// Without weights the network is GoogLeNet with seeded random weights: the pipeline and the
// timings are real, the labels mean nothing.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { GoogLeNet, init, loadSafetensors, preprocess, softmax, summary, topk, IMAGENET_CLASSES } from '../dist/index.js';

const { values: opts, positionals } = parseArgs({ allowPositionals: true, options: { weights: { type: 'string' } } });
const samples = ['chelsea_q90.jpg', 'coffee_progressive.jpg', 'astronaut_png.png', 'horse_rgba_png.png'].map((f) => new URL(`../test/fixtures/images/${f}`, import.meta.url).pathname);
const photos = positionals.length > 0 ? positionals : samples;

const ms = (t0) => performance.now() - t0;
const line = (label, t) => console.log(`${label.padEnd(40)} ${t.toFixed(1).padStart(7)} ms`);

let t0 = performance.now();
await init();
line('init (load + compile the .wasm)', ms(t0));

t0 = performance.now();
let model;
if (opts.weights) {
  // torchvision's pretrained weights expect transform_input=True (see the export script).
  model = new GoogLeNet({ variant: 'torchvision', transformInput: true });
  model.loadStateDict(loadSafetensors(fs.readFileSync(opts.weights)), { ignoreAux: true });
  line(`build GoogLeNet + load ${opts.weights}`, ms(t0));
} else {
  model = new GoogLeNet({ seed: 0 });
  line('build GoogLeNet (seeded random weights)', ms(t0));
}
const s = summary(model, [1, 3, 224, 224]);
console.log(`  ${s.totalParams.toLocaleString('en')} parameters, ${(s.totalMacs / 1e9).toFixed(2)} G multiply-adds per image`);
if (!opts.weights) {
  console.log('\n  NOTE: random weights — the labels below are meaningless. Give real ones with');
  console.log('        npm run demo -- --weights googlenet.safetensors   (scripts/export_torchvision_googlenet.py)');
}

for (const photo of photos) {
  console.log(`\n${photo}`);
  t0 = performance.now();
  const x = await preprocess(photo); // decode, Resize(256), CenterCrop(224), normalise: as torchvision
  const tPre = ms(t0);
  t0 = performance.now();
  const logits = model.forward(x);
  const tFwd = ms(t0);
  const probs = softmax(logits);
  for (const { index, value } of topk(probs, 5)[0]) {
    const bar = '█'.repeat(Math.round(value * 30)).padEnd(30, '·');
    console.log(`  ${bar} ${(100 * value).toFixed(1).padStart(5)} %  ${IMAGENET_CLASSES[index]} (${index})`);
  }
  console.log(`  preprocess ${tPre.toFixed(1)} ms, forward ${tFwd.toFixed(1)} ms`);
  for (const t of [x, logits, probs]) t.dispose();
}

// Steady-state forward time (the first forward of a shape also compiles its plan).
const x = await preprocess(photos[0]);
const times = [];
for (let i = 0; i < 7; i++) {
  t0 = performance.now();
  model.forward(x).dispose();
  times.push(ms(t0));
}
times.sort((a, b) => a - b);
console.log(`\nforward, median of 7: ${times[3].toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times[6].toFixed(1)}; ${((2 * s.totalMacs) / times[3] / 1e6).toFixed(1)} GFLOP/s)`);
x.dispose();
model.dispose();
