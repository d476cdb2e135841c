/**
 * The teach page (examples/browser/teach.html, served by its serve.mjs as its README says)
 * in headless Chromium: fine-tuning a new head on GoogLeNet's embedding in a Web Worker.
 *
 * Two classes made from two photos of test/fixtures/images (scikit-image, CC0): "cat"
 * (chelsea_q90.jpg) and "coffee" (coffee_progressive.jpg). The page itself cuts crops and
 * mirror images of each (OffscreenCanvas → PNG): four of each photo are the training
 * examples, put into the classes' file inputs; four others of each (one a WebP, which goes
 * through the browser's decoder), never trained on, are then classified through "Try it"
 * and must come out as their photo's class. The base is the
 * page's default, random-weight GoogLeNet: distinct photos stay apart in its random features.
 *
 * Then: "Save head" downloads head.safetensors, which Node reads back and uses as the page's
 * text says (the same probabilities); a fresh page loads it ("Load a saved head") and
 * classifies the same; loading base weights recomputes every embedding and drops the head.
 * A screenshot after training and classifying: bench/results/tmp/teach-example.png.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoogLeNet, init, Linear, preprocess, readSafetensors, saveSafetensors, softmax, Tensor } from '../../ts/index.js';
import { CHROMIUM, launchChromium } from './chromium.js';
import { root } from './fixture-case.js';

const IMAGES = `${root}test/fixtures/images/`;
const TMP = `${root}bench/results/tmp/`;
const SCREENSHOT = `${TMP}teach-example.png`;
const CLASSES = [
  { name: 'cat', photo: 'chelsea_q90.jpg' },
  { name: 'coffee', photo: 'coffee_progressive.jpg' },
];
/** A crop of the photo, as fractions of its size, optionally mirrored left to right. */
interface Cut { tag: string; x: number; y: number; w: number; h: number; flip?: boolean; type?: 'image/png' | 'image/webp' }
const TRAIN: Cut[] = [
  { tag: 'full', x: 0, y: 0, w: 1, h: 1 },
  { tag: 'mirror', x: 0, y: 0, w: 1, h: 1, flip: true },
  { tag: 'topleft', x: 0, y: 0, w: 0.75, h: 0.75 },
  { tag: 'bottomright-mirror', x: 0.25, y: 0.25, w: 0.75, h: 0.75, flip: true },
];
const HELD_OUT: Cut[] = [
  { tag: 'centre', x: 0.1, y: 0.1, w: 0.8, h: 0.8 },
  { tag: 'topright-mirror', x: 0.3, y: 0, w: 0.7, h: 0.7, flip: true },
  { tag: 'bottomleft', x: 0, y: 0.35, w: 0.65, h: 0.65 },
  // A WebP, which the package's decoders refuse: the worker hands the browser's decode (createImageBitmap) to preprocess.
  { tag: 'middle', x: 0.2, y: 0.15, w: 0.6, h: 0.6, type: 'image/webp' },
];
const EPOCHS = 50;

interface FilePayload { name: string; mimeType: string; buffer: Buffer }

let browser: Browser;
let serve: ChildProcess;
let url: string;
const pageErrors: string[] = [];

async function openPage(): Promise<Page> {
  const page = await (await browser.newContext({ acceptDownloads: true, viewport: { width: 1180, height: 900 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`); });
  page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`worker console.error: ${m.text()}`); }));
  await page.goto(`${url}teach.html`);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
  return page;
}

/** The crops of a fixture photo as PNG (or WebP) files, cut by the page (createImageBitmap → OffscreenCanvas). */
async function cuts(page: Page, photo: string, list: Cut[], prefix: string): Promise<FilePayload[]> {
  const base64 = readFileSync(`${IMAGES}${photo}`).toString('base64');
  const pngs = await page.evaluate(async ([b64, specs]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/jpeg' }));
    const out: string[] = [];
    for (const s of specs) {
      const [sx, sy, sw, sh] = [s.x * bitmap.width, s.y * bitmap.height, s.w * bitmap.width, s.h * bitmap.height].map(Math.round) as [number, number, number, number];
      const canvas = new OffscreenCanvas(sw, sh);
      const ctx = canvas.getContext('2d')!;
      if (s.flip) {
        ctx.translate(sw, 0);
        ctx.scale(-1, 1);
      }
      ctx.drawImage(bitmap, sx, sy, sw, sh, 0, 0, sw, sh);
      const png = new Uint8Array(await (await canvas.convertToBlob({ type: s.type ?? 'image/png' })).arrayBuffer());
      let s64 = '';
      for (let i = 0; i < png.length; i += 0x8000) s64 += String.fromCharCode(...png.subarray(i, i + 0x8000));
      out.push(btoa(s64));
    }
    return out;
  }, [base64, list] as const);
  return pngs.map((p, i) => {
    const type = list[i]!.type ?? 'image/png';
    return { name: `${prefix}-${list[i]!.tag}.${type.slice(6)}`, mimeType: type, buffer: Buffer.from(p, 'base64') };
  });
}

/** Puts a photo into "Try it" and waits for its prediction: the class index and the bars' probabilities. */
async function tryPhoto(page: Page, file: FilePayload): Promise<{ predicted: number; probabilities: number[]; verdict: string }> {
  await page.setInputFiles('#try-input', file);
  await page.waitForFunction((name) => {
    const v = document.getElementById('verdict')!;
    return v.dataset.for === name && v.dataset.predicted !== '';
  }, file.name, { timeout: 30_000 });
  return page.evaluate(() => ({
    predicted: Number(document.getElementById('verdict')!.dataset.predicted),
    probabilities: Array.from(document.querySelectorAll<HTMLElement>('#probabilities li')).map((li) => Number(li.dataset.probability)),
    verdict: document.getElementById('verdict')!.textContent!,
  }));
}

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`).toBe(true);
  expect(existsSync(`${root}dist/wasm-image/inception_image_bg.wasm`), 'dist/ is missing: run npm run build').toBe(true);
  serve = spawn(process.execPath, [`${root}examples/browser/serve.mjs`, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  url = await new Promise<string>((resolve, reject) => {
    serve.once('exit', (code) => reject(new Error(`serve.mjs exited with ${code}`)));
    serve.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
  });
  browser = await launchChromium();
  mkdirSync(TMP, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  serve?.kill();
});

describe('the teach page (examples/browser/teach.html): a new head on GoogLeNet embeddings, in a worker', () => {
  let page: Page;
  const heldOut: { label: number; file: FilePayload; probabilities?: number[] }[] = [];
  let savedHead: string;

  beforeAll(async () => {
    page = await openPage();
  });

  afterAll(async () => {
    await page?.context().close();
  });

  it('is linked from the classifier page, and starts its worker', async () => {
    const index = await (await browser.newContext()).newPage();
    await index.goto(url);
    expect(await index.getAttribute('#teach-link', 'href')).toBe('./teach.html');
    await index.context().close();
    expect(page.workers().map((w) => w.url())).toEqual([expect.stringMatching(/\/examples\/browser\/teach-worker\.js$/)]);
    console.log(`teach page: ${await page.textContent('#status')}`);
  });

  it('learns "cat" and "coffee" from four crops of each photo, with a progress bar, and classifies held-out crops correctly', async () => {
    const t0 = performance.now();
    const cards = page.locator('#classes .class');
    expect(await cards.count()).toBe(2);
    for (const [label, c] of CLASSES.entries()) {
      const card = cards.nth(label);
      await card.locator('input.name').fill(c.name);
      await card.locator('input[type=file]').setInputFiles(await cuts(page, c.photo, TRAIN, c.name));
      for (const file of await cuts(page, c.photo, HELD_OUT, `${c.name}-new`)) heldOut.push({ label, file });
    }
    expect(await page.locator('.thumb').count()).toBe(2 * TRAIN.length);
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLElement>('.thumb')).every((t) => t.dataset.status === 'ready'),
      undefined, { timeout: 60_000 });
    const embedded = performance.now();
    expect(await page.textContent('#examples-text')).toContain(`${2 * TRAIN.length} of ${2 * TRAIN.length} photos embedded`);

    // Every progress message's epoch, as the page shows it.
    await page.evaluate(() => {
      const seen: string[] = [];
      (globalThis as any).epochsSeen = seen;
      new MutationObserver(() => seen.push(document.getElementById('progress-epoch')!.textContent!))
        .observe(document.getElementById('progress-epoch')!, { childList: true, characterData: true, subtree: true });
    });
    await page.fill('#epochs', String(EPOCHS));
    await page.click('#train-button');
    await page.waitForSelector('#train-card[data-phase="trained"]', { timeout: 60_000 });
    const trainedAt = performance.now();
    const epochsSeen: string[] = await page.evaluate(() => (globalThis as any).epochsSeen);
    const progress = {
      epoch: await page.textContent('#progress-epoch'),
      loss: await page.textContent('#progress-loss'),
      width: await page.evaluate(() => document.getElementById('progress-fill')!.style.width),
      trained: await page.textContent('#trained-text'),
    };
    console.log(`teach page: ${progress.epoch}, ${progress.loss}; ${epochsSeen.length} progress updates shown; ${progress.trained}`);
    expect(progress.epoch).toBe(`epoch ${EPOCHS} / ${EPOCHS}`);
    expect(parseFloat(progress.width)).toBe(100);
    expect(epochsSeen.filter((e) => e.startsWith('epoch ')).length).toBeGreaterThan(1);
    const finalLoss = Number(/loss (\d+\.\d+)/.exec(progress.loss!)![1]);
    expect(finalLoss).toBeLessThan(0.1);
    expect(progress.trained).toMatch(/^Trained a Linear head on 8 examples in \d+ ms/);
    expect(await page.isEnabled('#save-button')).toBe(true);

    for (const h of heldOut) {
      const r = await tryPhoto(page, h.file);
      h.probabilities = r.probabilities;
      console.log(`teach page: ${h.file.name.padEnd(30)} → ${r.verdict} [${r.probabilities.map((p) => p.toFixed(4)).join(', ')}]`);
      expect(r.probabilities).toHaveLength(2);
      expect(r.probabilities[0]! + r.probabilities[1]!).toBeCloseTo(1, 5);
      expect(r.predicted, h.file.name).toBe(h.label);
      expect(r.verdict.startsWith(CLASSES[h.label]!.name)).toBe(true);
    }
    console.log(`teach page: embeddings of 8 photos ${Math.round(embedded - t0)} ms (crops cut by the page included), ` +
      `training ${Math.round(trainedAt - embedded)} ms, ${heldOut.length} held-out photos ${Math.round(performance.now() - trainedAt)} ms`);

    // The bars grow in a CSS transition: wait for the best one's final width, then the screenshot.
    await page.waitForFunction(() => {
      const fill = document.querySelector<HTMLElement>('#probabilities li.best .fill')!;
      return Math.abs(fill.getBoundingClientRect().width / fill.parentElement!.getBoundingClientRect().width -
        Number(fill.closest('li')!.dataset.probability)) < 0.01;
    }, undefined, { timeout: 5_000 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`teach page: screenshot ${SCREENSHOT} (${(statSync(SCREENSHOT).size / 1024).toFixed(0)} KB)`);
    expect(pageErrors).toEqual([]);
  });

  it("'Save head' downloads head.safetensors, which gives the same probabilities in Node, used as the page says", async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-button')]);
    expect(download.suggestedFilename()).toBe('head.safetensors');
    savedHead = `${TMP}teach-head.safetensors`;
    await download.saveAs(savedHead);
    const bytes = readFileSync(savedHead);
    const { tensors, metadata } = readSafetensors(bytes);
    console.log(`teach page: head.safetensors ${bytes.length} bytes, tensors ${[...tensors.keys()].join(', ')}; metadata ${JSON.stringify(metadata)}`);
    expect([...tensors.keys()].sort()).toEqual(['bias', 'feature_mean', 'feature_std', 'weight']);
    expect(tensors.get('weight')!.shape).toEqual([2, 1024]);
    expect(tensors.get('feature_std')!.data.every((s) => s > 0)).toBe(true);
    expect(metadata).toMatchObject({ format: 'inception-wasm-teach/1', head: 'linear', in_features: '1024', examples: '8', epochs: String(EPOCHS) });
    expect(JSON.parse(metadata.classes!)).toEqual(['cat', 'coffee']);
    expect(metadata.base).toMatch(/random weights.*seed: 0/);

    // The recipe in the page's "how to use it again", in Node, on the same held-out files.
    await init();
    const classes = JSON.parse(metadata.classes!) as string[];
    const head = new Linear({ inFeatures: 1024, outFeatures: classes.length });
    head.loadStateDict(tensors, { strict: false });
    head.eval();
    const base = new GoogLeNet({ variant: 'torchvision', seed: 0 });
    const mean = tensors.get('feature_mean')!.data;
    const std = tensors.get('feature_std')!.data;
    let worst = 0;
    for (const h of heldOut.filter((o) => o.file.mimeType === 'image/png')) { // (Node has no WebP decoder)
      const x = await preprocess(h.file.buffer);
      const ft = base.forwardFeatures(x);
      const f = ft.toArray().map((v, j) => (v - mean[j]!) / std[j]!);
      const input = Tensor.fromArray(f, [1, 1024]);
      const logits = head.forward(input);
      const pt = softmax(logits);
      const p = Array.from(pt.toArray());
      for (const t of [x, ft, input, logits, pt]) t.dispose();
      for (const [i, v] of p.entries()) worst = Math.max(worst, Math.abs(v - h.probabilities![i]!));
      expect(p.indexOf(Math.max(...p)), h.file.name).toBe(h.label);
    }
    console.log(`teach page: Node with the saved head: same classes, probabilities within ${worst.toExponential(2)} of the page's`);
    expect(worst).toBeLessThan(1e-3); // Node and Chromium may run different SIMD builds: rounding only
    head.dispose();
    base.dispose();
  });

  it("'Load a saved head' on a fresh page: the same classes and probabilities, no training", async () => {
    const fresh = await openPage();
    try {
      await fresh.setInputFiles('#head-input', savedHead);
      await fresh.waitForSelector('#train-card[data-phase="trained"]', { timeout: 30_000 });
      const text = await fresh.textContent('#trained-text');
      console.log(`teach page (fresh): ${text}`);
      expect(text).toMatch(/^A Linear head for 2 classes \(cat, coffee\), trained on 8 examples\.$/);
      for (const h of [heldOut[0]!, heldOut[heldOut.length - 1]!]) {
        const r = await tryPhoto(fresh, h.file);
        expect(r.predicted).toBe(h.label);
        for (const [i, p] of r.probabilities.entries()) expect(p).toBeCloseTo(h.probabilities![i]!, 6);
      }
    } finally {
      await fresh.context().close();
    }
    expect(pageErrors).toEqual([]);
  });

  it('an MLP head (1024 → 64 → ReLU → 2) trains and classifies the held-out crops too; its file names it', async () => {
    await page.selectOption('#head-kind', 'mlp');
    await page.click('#train-button');
    await page.waitForFunction(() => document.getElementById('train-card')!.dataset.phase === 'trained' &&
      document.getElementById('trained-text')!.textContent!.startsWith('Trained an MLP head (64 hidden units)'), undefined, { timeout: 60_000 });
    console.log(`teach page: ${await page.textContent('#progress-loss')}; ${await page.textContent('#trained-text')}`);
    for (const h of heldOut) {
      const r = await tryPhoto(page, h.file);
      console.log(`teach page, MLP: ${h.file.name.padEnd(30)} → ${r.verdict}`);
      expect(r.predicted, h.file.name).toBe(h.label);
    }
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-button')]);
    const { tensors, metadata } = readSafetensors(readFileSync(await download.path()));
    expect([...tensors.keys()].sort()).toEqual(['0.bias', '0.weight', '2.bias', '2.weight', 'feature_mean', 'feature_std']);
    expect(metadata).toMatchObject({ head: 'mlp', hidden: '64' });
    expect(pageErrors).toEqual([]);
  });

  it('base weights loaded: every embedding is computed again, and the head must be trained again', async () => {
    await init();
    // Not a GoogLeNet: refused, and nothing changes.
    const wrong = `${TMP}teach-not-googlenet.safetensors`;
    const linear = new Linear({ inFeatures: 4, outFeatures: 2 });
    writeFileSync(wrong, saveSafetensors(linear));
    linear.dispose();
    try {
      await page.setInputFiles('#weights-input', wrong); // (Chromium reads the file when the page does: keep it until then)
      await page.waitForFunction(() => document.getElementById('weights-text')!.textContent!.startsWith('Could not load'), undefined, { timeout: 30_000 });
    } finally {
      rmSync(wrong);
    }
    console.log(`teach page: ${await page.textContent('#weights-text')}`);
    expect(await page.textContent('#weights-text')).toContain("no 'fc.weight'");
    expect(await page.getAttribute('#train-card', 'data-phase')).toBe('trained');
    expect(await page.$$eval('.thumb', (ts) => ts.map((t) => (t as HTMLElement).dataset.status))).toEqual(Array(2 * TRAIN.length).fill('ready'));

    const net = new GoogLeNet({ variant: 'torchvision', seed: 1 });
    const file = `${TMP}teach-weights.safetensors`;
    writeFileSync(file, saveSafetensors(net));
    net.dispose();
    try {
      await page.setInputFiles('#weights-input', file);
      await page.waitForFunction(() => document.getElementById('weights-note')!.classList.contains('loaded') &&
        Array.from(document.querySelectorAll<HTMLElement>('.thumb')).every((t) => t.dataset.status === 'ready'), undefined, { timeout: 60_000 });
    } finally {
      rmSync(file); // 26 MB
    }
    console.log(`teach page: ${await page.textContent('#weights-text')}`);
    expect(await page.textContent('#weights-text')).toMatch(/teach-weights\.safetensors \(torchvision layout\), 6\.62 M parameters/);
    expect(await page.getAttribute('#train-card', 'data-phase')).toBe('idle');
    expect(await page.isEnabled('#save-button')).toBe(false);
    expect(await page.textContent('#progress-epoch')).toBe('The base network changed: train again.');
    expect(pageErrors).toEqual([]);
  });
});
