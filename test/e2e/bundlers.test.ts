/**
 * The package through each way an app may load it — Vite's dev server, `vite build`,
 * webpack 5, esbuild, no bundler — as a user would: the packed tarball installed as a
 * real dependency (node_modules/inception-wasm, a copy, so Vite pre-bundles it as any
 * dependency), the tiny app of test/e2e/bundlers/ (shared/ and the tool's own files)
 * built with the tool's own defaults and the config the README gives, served on
 * 127.0.0.1 and run in headless Chromium. The page calls `init()` with no arguments, runs
 * an Inception block and classifies a photo with `new GoogLeNet({ seed: 0 })`; Node
 * computes both from dist/ and the answers must agree (Chromium runs the relaxed-SIMD
 * build, so up to rounding). Where the bundler builds the app's worker (all but no
 * bundler), the page is cross-origin isolated and the worker runs the block with
 * `init({ threads: 2 })`. esbuild, which copies no assets, also shows what a user sees who
 * copied too little: the plain builds without their relaxed twins (a fallback, one
 * warning), no worker.js, nothing (each a WasmLoadError naming the URL and what to copy,
 * also where a server answers with its HTML page), and the plugin-free way,
 * `init({ wasm, imageWasm })`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromium } from './chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from './fixture-case.js';
import { type StaticServer, startStaticServer } from './static-server.js';

const APPS = `${root}test/e2e/bundlers/`;
const PHOTO = `${root}test/fixtures/images/chelsea_q90.jpg`;

interface Block { shape: number[]; sample: number[] }
interface Prediction { index: number; label: string; probability: number }
interface AppResult {
  ok: boolean;
  simd?: string;
  block?: Block;
  top5?: Prediction[];
  error?: { name: string; message: string; op?: string; url?: string; stack: string };
  isWasmLoadError?: boolean;
  warnings: string[];
  fetched: string[];
}
interface WorkerResult { ok: boolean; block?: Block; threads?: number; simd?: string; isolated?: boolean; warnings: string[]; error?: AppResult['error'] }

let work: string;
let installed: string;
let browser: Browser;
/** Node's answers from dist/ (the plain simd128 build). */
let reference: { block: Block; top5: Prediction[] };
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`).toBe(true);
  expect(existsSync(`${root}dist/index.js`), 'dist/ is missing: run npm run build').toBe(true);
  work = realpathSync(mkdtempSync(path.join(tmpdir(), 'inception-wasm-bundlers-')));
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=error'], { cwd: root, encoding: 'utf8' })) as { filename: string }[];
  execFileSync('tar', ['-xzf', path.join(work, packed!.filename), '-C', work]);
  installed = path.join(work, 'package');

  const m = await import('../../dist/index.js');
  await m.init();
  const { runBlock } = await import(pathToFileURL(`${APPS}shared/common.js`).href) as { runBlock: (pkg: unknown) => Block };
  const model = new m.GoogLeNet({ seed: 0 });
  reference = { block: runBlock(m), top5: await model.classify(readPhoto()) };
  model.dispose();
  expect(reference.top5[0]!.label).toBe('oboe');

  browser = await launchChromium();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

function readPhoto(): Uint8Array {
  return readFileSync(PHOTO);
}

/**
 * A fresh project for `tool`: shared/ and the tool's files, a package.json, the packed
 * package in node_modules/inception-wasm, the bundlers linked from this repository.
 */
function makeApp(tool: string): string {
  const app = path.join(work, tool);
  cpSync(`${APPS}shared`, app, { recursive: true });
  cpSync(`${APPS}${tool}`, app, { recursive: true });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `app-${tool}`, private: true, type: 'module', dependencies: { 'inception-wasm': '*' } }));
  mkdirSync(path.join(app, 'node_modules'));
  cpSync(installed, path.join(app, 'node_modules/inception-wasm'), { recursive: true });
  for (const dep of ['vite', 'webpack', 'esbuild']) symlinkSync(`${root}node_modules/${dep}`, path.join(app, 'node_modules', dep), 'dir');
  mkdirSync(path.join(app, 'public'));
  cpSync(PHOTO, path.join(app, 'public/chelsea_q90.jpg'));
  return app;
}

/** Serves a built app: its output folder, the page and the photo. */
async function serve(dir: string, page: string, options: { isolated?: boolean; fallback?: boolean; files?: Record<string, string> } = {}): Promise<string> {
  const server: StaticServer = await startStaticServer({
    dirs: { '/': dir },
    files: { '/': page, '/chelsea_q90.jpg': PHOTO, ...options.files },
    isolated: options.isolated ?? true,
    ...(options.fallback ? { fallback: page } : {}),
  });
  cleanups.push(() => server.close());
  return server.origin;
}

interface Opened { page: Page; consoleErrors: string[] }

async function open(origin: string): Promise<Opened> {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => (globalThis as { app?: unknown }).app !== undefined, undefined, { timeout: 60_000 });
  return { page, consoleErrors };
}

const runApp = (page: Page, options?: object): Promise<AppResult> => page.evaluate((o) => (globalThis as any).app.runApp(o), options);
const runInWorker = (page: Page, threads: number): Promise<WorkerResult> => page.evaluate((t) => (globalThis as any).app.runInWorker(t), threads);

function expectBlock(block: Block | undefined): void {
  expect(block?.shape).toEqual(reference.block.shape);
  block!.sample.forEach((v, i) => expect(Math.abs(v - reference.block.sample[i]!), `sample ${i}: ${v} vs Node's ${reference.block.sample[i]}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(v))));
}

/** The page's answers are Node's: the block up to rounding, the same top 5 with the same probabilities up to rounding. */
function expectAnswers(r: AppResult, simd: 'relaxed' | 'simd128'): void {
  expect(r.ok, JSON.stringify(r.error)).toBe(true);
  expect(r.simd).toBe(simd);
  expectBlock(r.block);
  expect(r.top5!.map((p) => p.label)).toEqual(reference.top5.map((p) => p.label));
  r.top5!.forEach((p, i) => expect(p.probability).toBeCloseTo(reference.top5[i]!.probability, 4));
}

/** The app's worker, init({ threads: 2 }) on a cross-origin isolated page: the threaded build. */
async function expectThreads(page: Page, simd: 'relaxed' | 'simd128' = 'relaxed'): Promise<WorkerResult> {
  const w = await runInWorker(page, 2);
  expect(w.ok, JSON.stringify(w.error)).toBe(true);
  expect([w.isolated, w.threads, w.simd]).toEqual([true, 2, simd]);
  expectBlock(w.block);
  return w;
}

const log = (tool: string, r: AppResult) => console.log(`${tool}: ${r.simd}, top-1 ${r.top5?.[0]?.label} ${r.top5?.[0]?.probability.toFixed(4)}; fetched ${r.fetched.filter((f) => f.endsWith('.wasm')).map((f) => new URL(f).pathname).join(', ')}`);

describe('no bundler: an import map to node_modules/inception-wasm/dist/index.js', () => {
  it('init() fetches the .wasm next to dist/index.js; forward and classify give Node\'s answers', async () => {
    const app = makeApp('none');
    const { page, consoleErrors } = await open(await serve(app, `${app}/index.html`));
    const r = await runApp(page);
    expectAnswers(r, 'relaxed');
    const origin = new URL(page.url()).origin;
    expect(r.fetched).toContain(`${origin}/node_modules/inception-wasm/dist/wasm-relaxed/inception_wasm_bg.wasm`);
    expect(r.fetched).toContain(`${origin}/node_modules/inception-wasm/dist/wasm-image/inception_image_bg.wasm`);
    expect([r.warnings, consoleErrors]).toEqual([[], []]);
    log('no bundler', r);
    // (The threads with no bundler: test/e2e/browser.test.ts — a worker imports dist/index.js by path, import maps do not reach workers.)
  });
});

describe('Vite 8', () => {
  let app: string;

  beforeAll(() => {
    app = makeApp('vite');
  });

  it('dev server, no optimizeDeps.exclude: the pre-bundled package finds its .wasm in node_modules; threads in the app\'s worker', async () => {
    const vite = await import('vite');
    const server = await vite.createServer({ root: app, clearScreen: false, logLevel: 'warn', server: { host: '127.0.0.1', port: 0 } });
    cleanups.push(() => server.close());
    await server.listen();
    const origin = server.resolvedUrls!.local[0]!.replace(/\/$/, '');
    const { page, consoleErrors } = await open(origin);
    const r = await runApp(page);
    expectAnswers(r, 'relaxed');
    // Pre-bundled into node_modules/.vite/deps/, the package's URLs still lead to its own files.
    expect(r.fetched.some((f) => f.startsWith(`${origin}/node_modules/.vite/deps/inception-wasm.js`))).toBe(true);
    expect(r.fetched).toContain(`${origin}/node_modules/inception-wasm/dist/wasm-relaxed/inception_wasm_bg.wasm`);
    const w = await expectThreads(page);
    expect([r.warnings, w.warnings, consoleErrors]).toEqual([[], [], []]);
    log('vite dev', r);
  });

  it('vite build + vite preview: the .wasm builds and the worker are emitted as assets; threads in the app\'s worker', async () => {
    const vite = await import('vite');
    const warnings: string[] = [];
    const logger = vite.createLogger('warn');
    const customLogger = { ...logger, warn: (msg: string, o?: object) => { warnings.push(msg); logger.warn(msg, o); }, warnOnce: (msg: string) => warnings.push(msg) };
    await vite.build({ root: app, clearScreen: false, logLevel: 'warn', customLogger });
    expect(warnings).toEqual([]);
    const assets = readdirSync(path.join(app, 'dist/assets'));
    expect(assets.filter((f) => f.endsWith('.wasm'))).toHaveLength(5);
    const preview = await vite.preview({ root: app, customLogger, preview: { host: '127.0.0.1', port: 0 } });
    cleanups.push(() => preview.close());
    const origin = preview.resolvedUrls!.local[0]!.replace(/\/$/, '');
    const { page, consoleErrors } = await open(origin);
    const r = await runApp(page);
    expectAnswers(r, 'relaxed');
    expect(r.fetched.filter((f) => f.endsWith('.wasm')).every((f) => f.startsWith(`${origin}/assets/`))).toBe(true);
    const w = await expectThreads(page);
    expect([r.warnings, w.warnings, consoleErrors]).toEqual([[], [], []]);
    log('vite build', r);
  });
});

describe('webpack 5', () => {
  it('a production build with no loader or plugin: the .wasm builds and the worker are asset modules; threads in the app\'s worker', async () => {
    const app = makeApp('webpack');
    const { default: webpack } = await import('webpack');
    const { default: config } = await import(pathToFileURL(path.join(app, 'webpack.config.js')).href) as { default: import('webpack').Configuration };
    const stats = await new Promise<import('webpack').Stats>((resolve, reject) => {
      const compiler = webpack(config);
      compiler.run((err, s) => compiler.close(() => (err ? reject(err) : resolve(s!))));
    });
    const info = stats.toJson({ all: false, errors: true, warnings: true, assets: true });
    expect(info.errors ?? []).toEqual([]);
    // Only webpack's size hints (the image module is 251 KiB, over its 244 KiB advice): no
    // unresolved file, no "critical dependency".
    expect((info.warnings ?? []).map((w) => w.message.split('\n')[0]).filter((m) => !/asset size limit|performance recommendations/.test(m!))).toEqual([]);
    expect(info.assets!.filter((a) => a.name.endsWith('.wasm'))).toHaveLength(5);
    const { page, consoleErrors } = await open(await serve(path.join(app, 'dist'), path.join(app, 'index.html')));
    const r = await runApp(page);
    expectAnswers(r, 'relaxed');
    const w = await expectThreads(page);
    expect([r.warnings, w.warnings, consoleErrors]).toEqual([[], [], []]);
    log('webpack', r);
  });
});

describe('esbuild', () => {
  let app: string;
  let out: string;
  /** The bundle alone, nothing copied: what esbuild gives without the copy step. */
  let bare: string;

  beforeAll(() => {
    app = makeApp('esbuild');
    const built = spawnSync(process.execPath, ['build.mjs'], { cwd: app, encoding: 'utf8' });
    expect(built.status, `${built.stdout}${built.stderr}`).toBe(0);
    out = path.join(app, 'dist');
    bare = path.join(work, 'esbuild-bare');
    mkdirSync(bare);
    for (const f of readdirSync(out).filter((f) => f.endsWith('.js') && f !== 'worker.js')) cpSync(path.join(out, f), path.join(bare, f));
  });

  it('the build script\'s copy step (dist/wasm*/ and dist/worker.js next to the bundle): Node\'s answers; threads in the app\'s worker', async () => {
    const { page, consoleErrors } = await open(await serve(out, path.join(app, 'index.html')));
    const r = await runApp(page);
    expectAnswers(r, 'relaxed');
    const origin = new URL(page.url()).origin;
    expect(r.fetched).toContain(`${origin}/wasm-relaxed/inception_wasm_bg.wasm`);
    const w = await expectThreads(page);
    expect([r.warnings, w.warnings, consoleErrors]).toEqual([[], [], []]);
    log('esbuild', r);
  });

  it('only the plain builds copied (no wasm-relaxed/): the plain build runs, with one warning', async () => {
    const plain = path.join(work, 'esbuild-plain');
    cpSync(out, plain, { recursive: true });
    for (const f of ['wasm-relaxed', 'wasm-threads-relaxed']) rmSync(path.join(plain, f), { recursive: true });
    const { page, consoleErrors } = await open(await serve(plain, path.join(app, 'index.html')));
    const origin = new URL(page.url()).origin;
    const r = await runApp(page);
    expectAnswers(r, 'simd128');
    expect(r.warnings).toEqual([`inception-wasm: the relaxed-SIMD build could not be loaded from ${origin}/wasm-relaxed/inception_wasm_bg.wasm (HTTP 404 Not Found); ` +
      'using the plain simd128 build (same results up to rounding). Copy dist/wasm-relaxed/ too, or pass init({ relaxedSimd: false }) to load only the plain one.']);
    const w = await expectThreads(page, 'simd128');
    expect(w.warnings).toHaveLength(1);
    expect(w.warnings[0]).toContain(`could not be loaded from ${origin}/wasm-threads-relaxed/inception_wasm_bg.wasm (HTTP 404 Not Found)`);
    // The browser's own report of each 404, nothing else.
    expect(consoleErrors.filter((e) => !/status of 404/.test(e))).toEqual([]);
  });

  it('the .wasm folders copied but not worker.js: init({ threads: 2 }) rejects with a WasmLoadError naming the worker\'s URL', async () => {
    const noWorker = path.join(work, 'esbuild-no-worker');
    cpSync(out, noWorker, { recursive: true });
    rmSync(path.join(noWorker, 'worker.js'));
    const { page } = await open(await serve(noWorker, path.join(app, 'index.html')));
    const origin = new URL(page.url()).origin;
    const w = await runInWorker(page, 2);
    expect(w.ok).toBe(false);
    expect(w.error!.name).toBe('WasmLoadError');
    expect(w.error!.url).toBe(`${origin}/worker.js`);
    expect(w.error!.message).toBe(`Error in init: could not load inception-wasm's thread-pool worker from ${origin}/worker.js: the worker script could not be loaded. ` +
      'The package starts it from ./worker.js next to the JavaScript file that holds its code (dist/index.js, or your bundle): copy node_modules/inception-wasm/dist/worker.js there ' +
      '(it is self-contained), or run with init({ threads: 1 }). See "Bundlers" in the README of inception-wasm.');
  });

  it('nothing copied: init() rejects with a WasmLoadError that names the URL it tried and what to copy where', async () => {
    const { page } = await open(await serve(bare, path.join(app, 'index.html')));
    const origin = new URL(page.url()).origin;
    const r = await runApp(page);
    expect(r.ok).toBe(false);
    expect(r.isWasmLoadError).toBe(true);
    expect(r.error!.url).toBe(`${origin}/wasm/inception_wasm_bg.wasm`);
    expect(r.error!.message).toBe(`Error in init: could not load inception-wasm's WebAssembly module from ${origin}/wasm/inception_wasm_bg.wasm: HTTP 404 Not Found. ` +
      'The package looks for ./wasm/inception_wasm_bg.wasm next to the JavaScript file that holds its code (dist/index.js, or your bundle): copy node_modules/inception-wasm/dist/wasm/ there, ' +
      'or serve the file anywhere and pass its URL: init({ wasm: \'/path/to/inception_wasm_bg.wasm\' }). See "Bundlers" in the README of inception-wasm.');
    console.log(`esbuild, nothing copied: ${r.error!.name}: ${r.error!.message}`);
  });

  it('nothing copied, a server that answers every path with its page: the WasmLoadError says an HTML page came instead', async () => {
    const { page } = await open(await serve(bare, path.join(app, 'index.html'), { fallback: true }));
    const r = await runApp(page);
    expect(r.isWasmLoadError).toBe(true);
    expect(r.error!.message).toMatch(/could not load inception-wasm's WebAssembly module from http:\/\/127\.0\.0\.1:\d+\/wasm\/inception_wasm_bg\.wasm: not a WebAssembly module but an HTML page, which is what a server sends in place of a file it does not have \(text\/html; charset=utf-8, \d+ bytes starting "<!doctype html>.*"\)\. The package looks for/);
  });

  it('nothing copied, init({ wasm }) only: init works, the first image call is a WasmLoadError naming the image module\'s URL', async () => {
    const wasm = `${installed}/dist/wasm/inception_wasm_bg.wasm`;
    const { page } = await open(await serve(bare, path.join(app, 'index.html'), { files: { '/static/inception_wasm_bg.wasm': wasm } }));
    const origin = new URL(page.url()).origin;
    const r = await runApp(page, { wasm: '/static/inception_wasm_bg.wasm' });
    expect(r.isWasmLoadError).toBe(true);
    expect(r.error!.op).toBe('classify');
    expect(r.error!.url).toBe(`${origin}/wasm-image/inception_image_bg.wasm`);
    expect(r.error!.message).toContain('copy node_modules/inception-wasm/dist/wasm-image/ there, or serve the file anywhere and pass its URL: init({ imageWasm: \'/path/to/inception_image_bg.wasm\' })');
  });

  it('nothing copied, the plugin-free way: init({ wasm, imageWasm }) with URLs the app serves gives Node\'s answers', async () => {
    const files = {
      '/static/inception_wasm_bg.wasm': `${installed}/dist/wasm/inception_wasm_bg.wasm`,
      '/static/inception_image_bg.wasm': `${installed}/dist/wasm-image/inception_image_bg.wasm`,
    };
    const { page, consoleErrors } = await open(await serve(bare, path.join(app, 'index.html'), { files }));
    const r = await runApp(page, { wasm: '/static/inception_wasm_bg.wasm', imageWasm: '/static/inception_image_bg.wasm' });
    expectAnswers(r, 'simd128');
    expect([r.warnings, consoleErrors]).toEqual([[], []]);
  });
});
