#!/usr/bin/env node
// Exports the trained Fashion-MNIST model of a `train:fashion` checkpoint for inference:
// the main path only (the aux heads are dropped, as at inference), float16 safetensors,
// then reloads it and measures its test accuracy on Fashion-MNIST.
// usage: node examples/fashion-mnist/export.mjs [checkpoint] [out.safetensors]
import { readFileSync, writeFileSync } from 'node:fs';
import { GoogLeNet, init, loadCheckpoint, loadSafetensors, saveSafetensors, Tensor } from '../../dist/index.js';
import { batchOf, loadFashionMnist } from './data.mjs';

const [checkpoint = 'runs/fashion-mnist/checkpoint.safetensors', out = 'runs/fashion-mnist/googlenet-fashion-mnist.f16.safetensors'] = process.argv.slice(2);
await init();
const trained = new GoogLeNet({ variant: 'torchvision', numClasses: 10, inChannels: 1, auxLogits: true });
const meta = loadCheckpoint(readFileSync(checkpoint), trained);
const lean = new GoogLeNet({ variant: 'torchvision', numClasses: 10, inChannels: 1 });
lean.loadStateDict(trained.stateDict(), { ignoreAux: true });
trained.dispose();
writeFileSync(out, saveSafetensors(lean, { source: 'inception-wasm train:fashion', epoch: meta.epoch, input: '1x32x32, (x/255 - 0.2860)/0.3530, padded 2 px' }, { dtype: 'F16' }));
lean.dispose();

const model = GoogLeNet.fromStateDict(loadSafetensors(readFileSync(out)));
const { test } = loadFashionMnist();
let correct = 0;
for (let start = 0; start < test.n; start += 500) {
  const b = batchOf(test, Array.from({ length: Math.min(500, test.n - start) }, (_, i) => start + i));
  const x = Tensor.fromArray(b.data, b.shape);
  const z = model.forward(x);
  b.labels.forEach((label, i) => {
    const row = z.data.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === label) correct++;
  });
  x.dispose();
  z.dispose();
}
console.log(`${out}: ${(readFileSync(out).length / 2 ** 20).toFixed(1)} MiB, test accuracy ${(100 * correct / test.n).toFixed(2)} % (float16 weights, epoch ${meta.epoch})`);
