/**
 * The PyTorch fixture suite over `$FIXTURES_DIR` (default: the project's copy in
 * test/fixtures): the network cases of `index.json`, and the photo cases of
 * `images/index.json` (test/image-cases.ts). Each index is optional, and a case the
 * library cannot run is reported and not registered, never counted as a skipped pass.
 *
 * Network cases: Each case's layer or network is built
 * from the case file alone, its weights and input are regenerated with weyl-fmix32 (and
 * checked against the recorded checksums), and every stored output is compared with the
 * case's tolerance rule `|got - ref| ≤ abs + rel·|ref|` (full outputs elementwise;
 * sampled ones at their 256 indices plus the whole-tensor statistics).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  GoogLeNet,
  googlenetLoss,
  INCEPTION_CONFIG,
  Inception,
  init,
  initParameters,
  MaxPool2d,
  type Module,
  Tensor,
} from '../ts/index.js';
import { checksum32 } from './weyl.js';
import { type Case, caseInput, caseParams, compareOutput } from './fixture-format.js';
import { registerImageCases } from './image-cases.js';
import { registerTrainingCases } from './training-cases.js';

const dir = process.env.FIXTURES_DIR ? path.resolve(process.env.FIXTURES_DIR) : fileURLToPath(new URL('./fixtures', import.meta.url));

/** Builds a case's module; `run` (default: one `forward`) returns every output by the case's names. */
interface Runner {
  build(c: Case): Module;
  run?(model: Module, x: Tensor, c: Case): Map<string, Tensor>;
}

const pair = (v: number | number[]) => (Array.isArray(v) ? (v as [number, number]) : v);

/** How to run each case type. */
const runners: Record<string, Runner> = {
  conv2d: { build: ({ model: m }) => new Conv2d({
    inChannels: m.in_channels, outChannels: m.out_channels, kernelSize: pair(m.kernel_size),
    stride: pair(m.stride), padding: pair(m.padding), bias: m.bias,
  }) },
  maxpool2d: { build: ({ model: m }) => new MaxPool2d({
    kernelSize: pair(m.kernel_size), stride: pair(m.stride), padding: pair(m.padding), ceilMode: m.ceil_mode,
  }) },
  adaptive_avgpool2d: { build: ({ model: m }) => new AdaptiveAvgPool2d(pair(m.output_size)) },
  inception: { build: ({ model: m }) => new Inception(m.in_channels, m.ch1x1, m.ch3x3red, m.ch3x3, m.ch5x5red, m.ch5x5, m.pool_proj, {
    activation: m.relu ? 'relu' : null,
  }) },
  seed_googlenet: { build: ({ model: m }) => {
    for (const [name, cfg] of Object.entries(m.inception as Record<string, Record<string, number>>)) {
      const ours = INCEPTION_CONFIG[name as keyof typeof INCEPTION_CONFIG];
      const theirs = ['in_channels', 'ch1x1', 'ch3x3red', 'ch3x3', 'ch5x5red', 'ch5x5', 'pool_proj'].map((k) => cfg[k]);
      expect(theirs, `${name} channel table`).toEqual(ours);
    }
    return new GoogLeNet({ numClasses: m.num_classes, variant: m.relu ? 'relu' : 'seed' });
  } },
  tv_googlenet: {
    build: ({ model: m }) => {
      expect(m.bn_eps, 'BatchNorm eps').toBe(1e-3);
      return new GoogLeNet({ numClasses: m.num_classes, variant: 'torchvision', auxLogits: m.aux_logits, transformInput: m.transform_input });
    },
    run: (model, x, c) => {
      const net = model as GoogLeNet;
      const out = new Map<string, Tensor>();
      net.eval();
      out.set('logits', net.forward(x)); // eval: the auxiliary heads do not run
      if (!c.outputs.aux1_logits) return out;
      // The fixture's auxiliary logits: training-mode forward with BatchNorm and Dropout in
      // eval (running statistics, no dropout), the recorded graph's path.
      net.train();
      for (const m of net.modules()) if (m instanceof BatchNorm2d || m instanceof Dropout) m.eval();
      const all = net.forwardAll(x);
      out.set('aux1_logits', all.aux1!).set('aux2_logits', all.aux2!);
      compareOutput('training-mode logits', c.outputs.logits!, all.logits.data);
      if (c.loss) {
        const loss = googlenetLoss(all, c.loss.target);
        const { main, aux1, aux2 } = loss.parts;
        for (const [ours, theirs] of [[main, c.loss.main_ce], [aux1, c.loss.aux1_ce], [aux2, c.loss.aux2_ce], [loss.item(), c.loss.total]]) {
          expect(Math.abs(ours! - theirs!), `loss ${ours} vs ${theirs}`).toBeLessThanOrEqual(c.loss.tolerance_abs);
        }
        loss.dispose();
      }
      all.logits.dispose();
      net.eval();
      return out;
    },
  },
};

const index = existsSync(path.join(dir, 'index.json'))
  ? (JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { cases: { case: string; file: string }[] })
  : undefined;
const imageIndex = path.join(dir, 'images', 'index.json');
const trainingIndex = path.join(dir, 'training', 'index.json');
const worstRatios: [string, number][] = [];

it('finds at least one fixture index', () => {
  expect(index !== undefined || existsSync(imageIndex) || existsSync(trainingIndex), `no index.json, images/index.json or training/index.json in ${dir}`).toBe(true);
});

beforeAll(() => init());
afterAll(() => {
  if (worstRatios.length === 0) return;
  const lines = worstRatios.map(([k, r]) => `  ${k.padEnd(40)} ${r.toFixed(4)}`);
  console.log(`fixtures from ${dir}: worst error/tolerance per output\n${lines.join('\n')}`);
});

if (existsSync(imageIndex)) registerImageCases(path.dirname(imageIndex));
if (existsSync(trainingIndex)) registerTrainingCases(path.dirname(trainingIndex));
// This project's own photo cases (16-bit, interlaced, CMYK, EXIF, hostile files): always.
registerImageCases(fileURLToPath(new URL('./fixtures/images-extra', import.meta.url)));

if (index) describe(`PyTorch fixtures (${dir})`, () => {
  for (const entry of index.cases) {
    const c = JSON.parse(readFileSync(path.join(dir, entry.file), 'utf8')) as Case;
    const runner = runners[c.type];
    const title = `${c.case} (${c.type}) x=[${c.input.shape.join(',')}]`;
    if (runner === undefined) {
      console.warn(`fixtures: ${title} not run: unknown case type "${c.type}"`);
      continue;
    }
    const build = runner.build;
    it(title, () => {
      const input = c.input;
      const x = caseInput(c);
      using model = build(c);
      const params = caseParams(c);
      if (params.size > 0) {
        model.loadStateDict(params);
        if (c.generator) {
          // The library's own seeded initialisation must give the very same model (compared
          // through stateDict, which for BatchNorm models holds the folded weights).
          using again = build(c);
          initParameters(again, { seed: c.generator.seed, weightGain: c.generator.weight_gain, biasScale: c.generator.bias_scale });
          const loaded = model.stateDict();
          for (const [key, t] of again.stateDict()) expect(checksum32(t.data), `initParameters: ${key}`).toBe(checksum32(loaded.get(key)!.data));
        }
      }
      using xt = Tensor.fromArray(x, input.shape);
      const outputs = runner.run?.(model, xt, c) ?? new Map([[Object.keys(c.outputs)[0]!, model.forward(xt)]]);
      try {
        expect([...outputs.keys()].sort(), 'outputs').toEqual(Object.keys(c.outputs).sort());
        for (const [name, rec] of Object.entries(c.outputs)) {
          const y = outputs.get(name)!;
          expect(y.shape, `${name} shape`).toEqual(rec.shape);
          worstRatios.push([`${c.case}.${name}`, compareOutput(name, rec, y.data)]);
        }
      } finally {
        for (const t of outputs.values()) t.dispose();
      }
    });
  }
});
