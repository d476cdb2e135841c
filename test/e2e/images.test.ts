/**
 * The image API in headless Chromium (/usr/bin/chromium, playwright-core), against the
 * photo fixtures of test/fixtures/images (torchvision 0.14 + PIL 9.4; test/image-cases.ts
 * runs the same cases in Node):
 *
 * - every fixture's bytes through `preprocess` on the page: within the case's tolerance
 *   in 8-bit levels of torchvision's output, or refused with an `ImageError`;
 * - the photos handed over as the browser decoded them — an `<img>` (Chromium's own
 *   JPEG/PNG decoders, read back by the package through createImageBitmap and a canvas),
 *   a canvas's `ImageData`, an `ImageBitmap` — with the differences printed per case, and
 *   an `<img>` of a JPEG with an EXIF orientation (it comes upright);
 * - the example page (examples/browser, served by its own serve.mjs as its README says):
 *   photos into its file input, five ranked labels back, a screenshot
 *   (bench/results/tmp/browser-example.png); a WebP through the browser's decoder; a
 *   weights file through its "Load .safetensors weights" picker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromium } from './chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoogLeNet, IMAGENET_MEAN, IMAGENET_STD, init, saveSafetensors } from '../../ts/index.js';
import { type ImageCase, levelDiff } from '../image-cases.js';
import { root } from './fixture-case.js';
import { type StaticServer, startStaticServer } from './static-server.js';

const IMAGES = `${root}test/fixtures/images/`;
const EXTRA = `${root}test/fixtures/images-extra/`;
const index = JSON.parse(readFileSync(`${IMAGES}index.json`, 'utf8')) as { cases: ImageCase[] };
const photos = index.cases.filter((c) => !c.expect_error);
/**
 * Another photo set of the same layout, `$FIXTURES_DIR/images` (as `npm run test:fixtures`
 * picks it up in Node), served under /extra-images/ and run through the bytes path too.
 */
const extraDir = process.env.FIXTURES_DIR ? path.resolve(process.env.FIXTURES_DIR, 'images') : undefined;
const extra = extraDir && existsSync(path.join(extraDir, 'index.json')) && realpathSync(extraDir) !== realpathSync(IMAGES)
  ? (JSON.parse(readFileSync(path.join(extraDir, 'index.json'), 'utf8')) as { cases: ImageCase[] }).cases
  : [];
const MIME: Record<string, string> = { PNG: 'image/png', JPEG: 'image/jpeg' };
/** The float32 round trip of `levelDiff` (1e-3 level), not a tolerance of the pipeline. */
const ROUND_TRIP = 1e-3;

/** A JPEG fixture with an EXIF APP1 segment saying orientation 6 (stored rotated 90° anticlockwise), inserted after SOI. */
function withExifOrientation6(jpeg: Buffer): Buffer {
  const tiff = [0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]; // big-endian IFD: 0x0112 SHORT 6
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), Buffer.from(tiff)]);
  const app1 = Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return Buffer.concat([jpeg.subarray(0, 2), app1, payload, jpeg.subarray(2)]);
}

/** A `[1, 3, h, w]` input that holds whole levels (the package's own output) back to RGB pixels (HWC). */
function toLevels(x: Float32Array): Uint8Array {
  const plane = x.length / 3;
  const out = new Uint8Array(x.length);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[i * 3 + c] = Math.round((x[c * plane + i]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!) * 255);
  }
  return out;
}

/** Why each refused fixture is refused. */
const REASONS: Record<string, string> = { truncated_png: 'truncated', not_an_image: 'unknown-format' };
const ALL_REASONS = ['empty', 'unknown-format', 'too-large', 'truncated', 'corrupt', 'unsupported'];

let browser: Browser;
const pageErrors: string[] = [];

async function openPage(url: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`); });
  await page.goto(url);
  return page;
}

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`).toBe(true);
  expect(existsSync(`${root}dist/wasm-image/inception_image_bg.wasm`), 'dist/ is missing: run npm run build').toBe(true);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

describe('preprocess in Chromium: the photo fixtures', () => {
  let server: StaticServer;
  let page: Page;
  const expected = new Map<string, Uint8Array>();

  type Via = 'bytes' | 'img' | 'imagedata' | 'bitmap';
  /** `preprocess` of a fixture on the page; its max/mean difference from torchvision's, printed. */
  async function measure(c: ImageCase, via: Via, prefix = ''): Promise<{ max: number; mean: number }> {
    const r = await page.evaluate(([f, t, v]) => (globalThis as any).preprocessFixture(f, t, v), [prefix + c.file, MIME[c.format!], via]);
    expect(r.error, `${c.name} via ${via}`).toBeUndefined();
    expect(r.shape).toEqual([1, 3, 224, 224]);
    const d = levelDiff(r.data, expected.get(c.name)!);
    console.log(`chromium ${via.padEnd(9)} ${c.name.padEnd(20)} max ${d.max.toFixed(3)} mean ${d.mean.toFixed(4)} levels (${r.ms.toFixed(1)} ms)`);
    return d;
  }

  beforeAll(async () => {
    server = await startStaticServer({
      dirs: { '/dist/': `${root}dist`, '/images/': IMAGES, '/images-extra/': EXTRA, ...(extra.length > 0 ? { '/extra-images/': `${extraDir}/` } : {}) },
      files: {
        '/': `${root}test/e2e/browser/index.html`,
        '/page.js': `${root}test/e2e/browser/images-page.js`,
        '/images/chelsea_exif6.jpg': withExifOrientation6(readFileSync(`${IMAGES}chelsea_q90.jpg`)),
      },
      isolated: false,
    });
    page = await openPage(`${server.origin}/`);
    await page.waitForFunction(() => (globalThis as any).pageReady === true, undefined, { timeout: 30_000 });
    for (const c of photos) {
      const png = await page.evaluate((f) => (globalThis as any).decodeFixture(f), c.expected!);
      expect([png.width, png.height], c.expected).toEqual([224, 224]);
      expected.set(c.name, png.data);
    }
    for (const c of extra.filter((e) => !e.expect_error)) {
      expected.set(`extra/${c.name}`, (await page.evaluate((f) => (globalThis as any).decodeFixture(f), `../extra-images/${c.expected!}`)).data);
    }
  });

  // $FIXTURES_DIR/images, when given: the same bytes-path checks as below, for every case.
  if (extra.length > 0) describe(`bytes: ${extraDir}`, () => {
    for (const c of extra) {
      it(c.expect_error ? `${c.name}: refused with an ImageError` : `${c.name} (${c.format} ${c.mode}) within ${c.tolerance!.max_levels} / ${c.tolerance!.mean_levels} levels`, async () => {
        if (c.expect_error) {
          const r = await page.evaluate((f) => (globalThis as any).preprocessFixture(f, 'application/octet-stream', 'bytes'), `../extra-images/${c.file}`);
          expect(r.error?.name).toBe('ImageError');
          expect(ALL_REASONS).toContain(r.error?.reason);
          return;
        }
        const { max, mean } = await measure({ ...c, name: `extra/${c.name}` }, 'bytes', '../extra-images/');
        expect(max).toBeLessThanOrEqual(c.tolerance!.max_levels + ROUND_TRIP);
        expect(mean).toBeLessThanOrEqual(c.tolerance!.mean_levels);
      });
    }
  });

  afterAll(async () => {
    await page?.context().close();
    await server?.close();
  });

  describe('bytes: the package decodes (within the fixture tolerance)', () => {
    for (const c of index.cases) {
      if (c.expect_error) {
        it(`${c.name}: refused with an ImageError '${REASONS[c.name]}' (PIL: ${c.pil_error})`, async () => {
          const r = await page.evaluate((f) => (globalThis as any).preprocessFixture(f, 'application/octet-stream', 'bytes'), c.file);
          console.log(`chromium bytes     ${c.name.padEnd(20)} ${r.error?.name} '${r.error?.reason}': ${r.error?.message}`);
          expect(r.error?.name).toBe('ImageError');
          expect(r.error?.reason).toBe(REASONS[c.name]);
        });
        continue;
      }
      it(`${c.name} (${c.format} ${c.mode} ${c.width}×${c.height}) within ${c.tolerance!.max_levels} / ${c.tolerance!.mean_levels} levels`, async () => {
        const { max, mean } = await measure(c, 'bytes');
        expect(max).toBeLessThanOrEqual(c.tolerance!.max_levels + ROUND_TRIP);
        expect(mean).toBeLessThanOrEqual(c.tolerance!.mean_levels);
      });
    }
  });

  // Chromium 156 decodes every photo here exactly as PIL 9.4 (both use libjpeg-turbo for
  // JPEG): measured max 0 / mean 0 levels for all seven, JPEG included, where the package's
  // own JPEG decoder is up to 3 levels off. So the bound is the fixture's tolerance for all
  // but the RGBA photo (a 2D canvas premultiplies alpha, so its 12 partly transparent
  // pixels may come back a level off; also measured 0): that one must only run.
  describe('an <img>: Chromium decodes', () => {
    for (const c of photos) {
      it(`${c.name} (${c.format} ${c.mode})${c.mode === 'RGBA' ? ', printed only' : ''}`, async () => {
        const { max, mean } = await measure(c, 'img');
        if (c.mode === 'RGBA') return;
        expect(max).toBeLessThanOrEqual(c.tolerance!.max_levels + ROUND_TRIP);
        expect(mean).toBeLessThanOrEqual(c.tolerance!.mean_levels);
      });
    }

    it('an <img> with no src, still loading, or broken: an ImageError \'invalid-input\' saying which', async () => {
      const errors = await page.evaluate(() => (globalThis as any).preprocessUnloaded());
      for (const error of errors) {
        expect(error.name).toBe('ImageError');
        expect(error.reason).toBe('invalid-input');
      }
      expect(errors.map((e: { message: string }) => e.message)).toEqual([
        expect.stringMatching(/the <img> has no src$/),
        expect.stringMatching(/has not loaded yet \(src .*astronaut_png\.png\?pending\): await img\.decode\(\) first/),
        expect.stringMatching(/the <img> failed to load \(src data:image\/png;base64,AAAA\)/),
      ]);
    });
  });

  // The browser turns an <img> upright by its EXIF orientation before the package sees it
  // (createImageBitmap's imageOrientation 'none' does not undo it in Chromium 156), so the
  // element path matches preprocess(bytes, { exifOrientation: true }), not the default.
  it('an <img> of a JPEG with EXIF orientation 6 comes upright, whatever exifOrientation says', async () => {
    const run = async (via: Via, options?: object) => {
      const r = await page.evaluate(([v, o]) => (globalThis as any).preprocessFixture('chelsea_exif6.jpg', 'image/jpeg', v, o), [via, options] as const);
      expect(r.error).toBeUndefined();
      return r.data as Float32Array;
    };
    const upright = toLevels(await run('bytes', { exifOrientation: true }));
    const asStored = toLevels(await run('bytes'));
    const img = await run('img');
    const imgOff = await run('img', { exifOrientation: false });
    const [vsUpright, vsStored, offVsUpright] = [levelDiff(img, upright), levelDiff(img, asStored), levelDiff(imgOff, upright)];
    console.log(`chromium img       chelsea_exif6        vs bytes upright: max ${vsUpright.max.toFixed(3)} mean ${vsUpright.mean.toFixed(4)}; ` +
      `vs bytes as stored (the default): max ${vsStored.max.toFixed(3)} mean ${vsStored.mean.toFixed(4)} levels`);
    expect(vsUpright.max).toBeLessThanOrEqual(4 + ROUND_TRIP); // chelsea_q90's tolerance (the two JPEG decoders)
    expect(vsUpright.mean).toBeLessThanOrEqual(0.3);
    expect(offVsUpright).toEqual(vsUpright);
    expect(vsStored.mean).toBeGreaterThan(10);
  });

  // An ICC profile that swaps red and blue (test/fixtures/images-extra/make_extra.py): PIL
  // ignores embedded profiles, and so must the element path (colorSpaceConversion 'none'),
  // or the colours the network sees would be the profile's, not the file's.
  it('an <img> of a JPEG whose ICC profile swaps red and blue: the profile is ignored, as PIL ignores it', async () => {
    const extraCase = (JSON.parse(readFileSync(`${EXTRA}index.json`, 'utf8')) as { cases: ImageCase[] }).cases.find((c) => c.name === 'chelsea_swapped_icc_jpg')!;
    expected.set('icc', (await page.evaluate((f) => (globalThis as any).decodeFixture(f), `../images-extra/${extraCase.expected!}`)).data);
    for (const via of ['bytes', 'img', 'bitmap'] as const) {
      const { max, mean } = await measure({ ...extraCase, name: 'icc' }, via, '../images-extra/');
      expect(max, via).toBeLessThanOrEqual(extraCase.tolerance!.max_levels + ROUND_TRIP);
      expect(mean, via).toBeLessThanOrEqual(extraCase.tolerance!.mean_levels);
    }
    // The control: the same <img> drawn on a canvas by the page (drawImage colour-manages)
    // is far off (measured max 128, mean 53 levels), so the profile is one Chromium applies.
    const drawn = await measure({ ...extraCase, name: 'icc' }, 'imagedata', '../images-extra/');
    expect(drawn.mean).toBeGreaterThan(10);
  });

  it('an ImageData (a canvas the <img> was drawn on)', async () => {
    const c = photos.find((p) => p.name === 'astronaut_png')!;
    const { max, mean } = await measure(c, 'imagedata');
    expect(max).toBeLessThanOrEqual(c.tolerance!.max_levels + ROUND_TRIP);
    expect(mean).toBeLessThanOrEqual(c.tolerance!.mean_levels);
  });

  it('an ImageBitmap (createImageBitmap of the Blob)', async () => {
    const c = photos.find((p) => p.name === 'chelsea_palette_png')!;
    const { max, mean } = await measure(c, 'bitmap');
    expect(max).toBeLessThanOrEqual(c.tolerance!.max_levels + ROUND_TRIP);
    expect(mean).toBeLessThanOrEqual(c.tolerance!.mean_levels);
  });

  it('no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});

describe('the example page (examples/browser, served by its serve.mjs)', () => {
  let serve: ChildProcess;
  let page: Page;
  const TMP = `${root}bench/results/tmp/`;
  const SCREENSHOT = `${TMP}browser-example.png`;

  beforeAll(async () => {
    serve = spawn(process.execPath, [`${root}examples/browser/serve.mjs`, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const url = await new Promise<string>((resolve, reject) => {
      serve.once('exit', (code) => reject(new Error(`serve.mjs exited with ${code}`)));
      serve.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/examples\/browser\/$/);
    page = await openPage(url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
  });

  afterAll(async () => {
    await page?.context().close();
    serve?.kill();
  });

  it('photos into its file input: five labels, ranked, with bars and timings; a screenshot', async () => {
    let rows: { label: string; probability: number; shown: string }[] = [];
    // Two photos: the second replaces the first, and its times are the warm ones.
    for (const name of ['coffee_progressive', 'chelsea_q90']) {
      const photo = photos.find((p) => p.name === name)!;
      await page.setInputFiles('#file-input', `${IMAGES}${photo.file}`);
      await page.waitForFunction((f) => document.body.dataset.state === 'done' && document.getElementById('photo-name')!.textContent === f,
        photo.file, { timeout: 30_000 });
      rows = await page.$$eval('#predictions li', (lis) => lis.map((li) => ({
        label: li.querySelector('.name')!.textContent!,
        probability: Number((li as HTMLElement).dataset.probability),
        shown: li.querySelector('.prob')!.textContent!,
      })));
      const times = await page.$$eval('#timings dd', (dds) => dds.map((dd) => dd.textContent!));
      console.log(`example page, ${photo.file}: ${rows.map((r) => `${r.label} ${r.shown}`).join(', ')}; preprocess / forward / total ${times.join(' / ')}`);
      expect(rows).toHaveLength(5);
      for (const [i, r] of rows.entries()) {
        expect(r.label.length, `row ${i} label`).toBeGreaterThan(0);
        expect(r.probability).toBeGreaterThan(0);
        expect(r.shown).toBe(`${(r.probability * 100).toFixed(1)}%`);
        if (i > 0) expect(r.probability).toBeLessThanOrEqual(rows[i - 1]!.probability);
      }
      expect(rows.reduce((s, r) => s + r.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);
      expect(times.every((t) => /^\d+(\.\d)? ms$/.test(t)), times.join(' / ')).toBe(true);
    }

    // The bars grow in a CSS transition: wait until the first has its final width.
    await page.waitForFunction(() => {
      const fill = document.querySelector<HTMLElement>('#predictions li .fill')!;
      return Math.abs(fill.getBoundingClientRect().width / fill.parentElement!.getBoundingClientRect().width -
        Number(fill.closest('li')!.dataset.probability)) < 0.01;
    }, undefined, { timeout: 5_000 });
    const bar = await page.locator('#predictions li .fill').first().boundingBox();
    expect(bar!.width).toBeGreaterThan(1);
    await expect.poll(() => page.locator('#photo').isVisible()).toBe(true);
    mkdirSync(TMP, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const bytes = statSync(SCREENSHOT).size;
    console.log(`example page: screenshot ${SCREENSHOT} (${(bytes / 1024).toFixed(0)} KB)`);
    expect(bytes).toBeGreaterThan(10 * 1024);
    expect(pageErrors).toEqual([]);
  });

  it('a WebP (the package reads JPEG and PNG only): classified through the <img>, as the browser decoded it', async () => {
    const webp = await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(320, 240);
      const ctx = canvas.getContext('2d')!;
      ctx.fillStyle = '#2b8a3e';
      ctx.fillRect(0, 0, 320, 240);
      ctx.fillStyle = '#ffd43b';
      ctx.beginPath();
      ctx.arc(160, 120, 80, 0, 2 * Math.PI);
      ctx.fill();
      return [...new Uint8Array(await (await canvas.convertToBlob({ type: 'image/webp' })).arrayBuffer())];
    });
    await page.setInputFiles('#file-input', { name: 'sun.webp', mimeType: 'image/webp', buffer: Buffer.from(webp) });
    await page.waitForFunction(() => document.body.dataset.state === 'done' && document.getElementById('photo-name')!.textContent === 'sun.webp',
      undefined, { timeout: 30_000 });
    expect(await page.textContent('#seen-how')).toBe('photo decoded by the browser');
    expect(await page.locator('#predictions li').count()).toBe(5);
    expect(pageErrors).toEqual([]);
  });

  it("'Load .safetensors weights': a torchvision-layout state dict is loaded and the photo classified again", async () => {
    const before = await page.$$eval('#predictions li', (lis) => lis.map((li) => li.dataset.probability));
    await init();
    const net = new GoogLeNet({ variant: 'torchvision', seed: 1 });
    const file = `${TMP}browser-example-weights.safetensors`;
    writeFileSync(file, saveSafetensors(net));
    net.dispose();
    try {
      await page.setInputFiles('#weights-input', file);
      await page.waitForFunction(() => document.body.dataset.state === 'done' && document.getElementById('weights-note')!.classList.contains('loaded'),
        undefined, { timeout: 30_000 });
    } finally {
      rmSync(file); // 26 MB
    }
    const note = await page.textContent('#weights-text');
    const after = await page.$$eval('#predictions li', (lis) => lis.map((li) => li.dataset.probability));
    console.log(`example page: ${note}`);
    expect(note).toMatch(/browser-example-weights\.safetensors \(torchvision layout, 6\.62 M parameters\)/);
    expect(after).toHaveLength(5);
    expect(after).not.toEqual(before);
    expect(pageErrors).toEqual([]);
  });
});
