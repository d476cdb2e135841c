/**
 * `GoogLeNet.fromStateDict`: a model built straight from its weights gives PyTorch's
 * logits (the tv_googlenet fixture, with its aux heads in the dict and skipped), infers its
 * options from the weights, and never holds two sets of weights: WebAssembly memory at its
 * peak ≤ 1.25× what the loaded model holds. Its own file, so that the process's memory
 * starts empty (vitest runs each file in a fresh worker).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { GoogLeNet, init, memoryInfo, readSafetensors, saveSafetensors, StateDictError, Tensor } from '../ts/index.js';
import { type Case, caseInput, caseParams, compareOutput } from './fixture-format.js';

const c = JSON.parse(readFileSync(new URL('./fixtures/tv_googlenet.json', import.meta.url), 'utf8')) as Case;

beforeAll(() => init());

it('builds from the weights alone: PyTorch\'s logits, memory ≤ 1.25× what the model holds', () => {
  const dict = caseParams(c); // made in JavaScript: nothing in WebAssembly memory yet
  expect(memoryInfo().heldBytes).toBeLessThan(2 ** 20);
  using model = GoogLeNet.fromStateDict(dict); // aux1/aux2 in the dict: skipped
  const { wasmBytes, heldBytes } = memoryInfo();
  console.log(`fromStateDict: WebAssembly memory ${(wasmBytes / 2 ** 20).toFixed(1)} MiB, the model holds ${(heldBytes / 2 ** 20).toFixed(1)} MiB (${(wasmBytes / heldBytes).toFixed(2)}×)`);
  // The memory never shrinks, so its size now is its peak during the load.
  expect(wasmBytes).toBeLessThanOrEqual(1.25 * heldBytes);
  expect([model.variant, model.numClasses, model.aux1]).toEqual(['torchvision', 1000, undefined]);
  using x = Tensor.fromArray(caseInput(c), c.input.shape);
  using logits = model.forward(x);
  compareOutput('logits', c.outputs.logits!, logits.data);
});

it('reads transform_input and num_classes from a safetensors file, and lets options win', () => {
  using small = new GoogLeNet({ variant: 'torchvision', numClasses: 10, transformInput: true, seed: 1 });
  const file = saveSafetensors(small, { transform_input: 'true' });
  using loaded = GoogLeNet.fromStateDict(readSafetensors(file));
  expect([loaded.variant, loaded.numClasses]).toEqual(['torchvision', 10]);
  expect(loaded.children().map(([name]) => name)).toContain('transform_input');
  using x = Tensor.fromArray(new Float32Array(3 * 64 * 64).fill(0.3), [1, 3, 64, 64]);
  using a = small.forward(x);
  using b = loaded.forward(x);
  expect(b.toArray()).toEqual(a.toArray());
  using plain = GoogLeNet.fromStateDict(readSafetensors(file), { transformInput: false });
  expect(plain.children().map(([name]) => name)).not.toContain('transform_input');
  using source = new GoogLeNet({ numClasses: 5, seed: 2 });
  using relu = GoogLeNet.fromStateDict(source.stateDict());
  expect([relu.variant, relu.numClasses]).toEqual(['relu', 5]);
});

it('refuses bytes and mismatched weights with a StateDictError, holding nothing afterwards', () => {
  expect(() => GoogLeNet.fromStateDict(new Uint8Array(10) as never)).toThrow(/parse a file first with loadSafetensors\(bytes\) or loadPth\(bytes\)/);
  const dict = caseParams(c);
  dict.delete('inception4b.branch2.1.conv.weight');
  const held = memoryInfo().heldBytes;
  expect(() => GoogLeNet.fromStateDict(dict)).toThrow(StateDictError);
  expect(() => GoogLeNet.fromStateDict(dict)).toThrow(/missing key "inception4b\.branch2\.1\.conv\.weight"/);
  expect(memoryInfo().heldBytes).toBe(held);
});
