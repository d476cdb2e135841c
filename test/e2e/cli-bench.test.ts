/**
 * `inception-wasm bench` from the built package: dist/cli.js (the package's bin) spawned
 * as a user would,
 * with short runs (`--quick`, `--min-time`). Then `--serve`: the real server as a child
 * process, its page opened in headless Chromium (/usr/bin/chromium), its JSON results
 * checked and a screenshot of the chart saved to bench/results/tmp/bench-page.png.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { CHROMIUM, launchChromium } from './chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = `${root}dist/cli.js`;
const SCREENSHOT = `${root}bench/results/tmp/bench-page.png`;
const CONV = 'conv:16,16,3,1,1,32,32';

interface Run { code: number; stdout: string; stderr: string }

function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'bench', ...args], { cwd: root, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  expect(existsSync(CLI), 'dist/cli.js is missing: run npx tsup').toBe(true);
  expect(existsSync(`${root}dist/bench-page/index.html`), 'dist/bench-page/ is missing: run npx tsup').toBe(true);
});

describe('bench on the command line', () => {
  it('--help: usage on stdout, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: inception-wasm bench/);
    for (const flag of ['--model', '--threads', '--batch', '--relaxed', '--layers', '--json', '--serve', '--port', '--min-time', '--quick']) expect(r.stdout).toContain(flag);
    expect(r.stderr).toBe('');
  });

  it.each([
    [['--threads', '0'], /--threads takes a comma-separated list of positive integers/],
    [['--batch', '1,x'], /--batch takes a comma-separated list/],
    [['--model', 'resnet'], /--model must be googlenet, inception3a or conv:/],
    [['--model', 'conv:16,16,3'], /--model conv: needs seven integers/],
    [['--relaxed', 'maybe'], /--relaxed must be on, off or both/],
    [['--min-time=-1'], /--min-time takes seconds/],
    [['--min-time', 'soon'], /--min-time takes seconds/],
    [['--port', '80'], /--port only applies to --serve/],
    [['--serve', '--json'], /--json and --layers do not apply/],
    [['--serve', '--relaxed', 'off'], /--relaxed does not apply to --serve/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['stray'], /positional/i],
  ])('bad usage %j: exit 2, a message on stderr that says what to do, nothing on stdout', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("Run 'inception-wasm bench --help'");
  });

  it('--json: one document on stdout; each thread count × SIMD build in its own process; medians, GFLOP/s, cold start, memory', async () => {
    const r = await run(['--model', CONV, '--threads', '1,2', '--batch', '1', '--relaxed', 'both', '--quick', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    // Not a TTY: no progress line.
    expect(r.stderr).not.toContain('\r');
    expect(doc.failures).toEqual([]);
    expect(doc.environment.node).toBe(process.version);
    expect(doc.results).toHaveLength(4);
    const configs = doc.results.map((x: any) => `${x.simd}@${x.threads}`).sort();
    expect(configs).toEqual(['relaxed@1', 'relaxed@2', 'simd128@1', 'simd128@2']);
    for (const x of doc.results) {
      expect(x.model).toBe(CONV);
      expect(x.batch).toBe(1);
      expect(x.inputShape).toEqual([1, 16, 32, 32]);
      expect(x.macsPerImage).toBe(16 * 16 * 9 * 32 * 32);
      expect(x.runs).toBeGreaterThanOrEqual(5);
      expect(x.runs).toBeLessThanOrEqual(200);
      expect(x.msPerBatch.median).toBeGreaterThan(0);
      expect(x.msPerBatch.p10).toBeLessThanOrEqual(x.msPerBatch.median);
      expect(x.msPerBatch.p90).toBeGreaterThanOrEqual(x.msPerBatch.median);
      expect(x.msPerImage.median).toBeCloseTo(x.msPerBatch.median, 10);
      expect(x.gflops).toBeCloseTo((2 * x.macsPerImage) / (x.msPerBatch.median * 1e6), 6);
      expect(x.firstForwardMs).toBeGreaterThan(0);
      expect(x.coldStartMs).toBeGreaterThan(x.firstForwardMs);
      expect(x.memory.wasmBytes).toBeGreaterThan(0);
      expect(x.memory.heldBytes).toBeGreaterThan(0);
      expect(x.wasm).toBe(`wasm${x.threads > 1 ? '-threads' : ''}${x.simd === 'relaxed' ? '-relaxed' : ''}/inception_wasm_bg.wasm`);
    }
  });

  it('a configuration that fails: exit 1, its error in failures, the others still measured', async () => {
    // 2^28 images of 4×8×8: the input alone cannot be allocated.
    const r = await run(['--model', 'conv:4,4,1,1,0,8,8', '--batch', '1,268435456', '--min-time', '0.05', '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.results.map((x: any) => x.batch)).toEqual([1]);
    expect(doc.failures).toEqual([expect.objectContaining({ batch: 268435456, threadsRequested: 1, error: { name: 'RangeError', message: expect.stringContaining('Invalid typed array length') } })]);
    expect(r.stderr).toContain('batch 268435456, relaxed SIMD failed: RangeError');
  });

  it('a table on stdout; batches per image; --layers times each layer and names its kernel', async () => {
    const r = await run(['--model', 'inception3a', '--batch', '1,2', '--min-time', '0.1', '--layers']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^model\s+simd\s+threads\s+batch\s+runs\s+ms\/batch median\s+p10\s+p90\s+ms\/image\s+img\/s\s+GFLOP\/s\s+cold start ms\s+first fwd ms\s+wasm MiB$/);
    expect(lines.filter((l) => l.startsWith('inception3a '))).toHaveLength(2);
    expect(r.stdout).toContain('Layers of inception3a, 1 thread, batch 2');
    // The 3×3 of branch 2 on 28×28 runs Winograd F(4×4,3×3); the 1×1s a GEMM.
    expect(r.stdout).toMatch(/branch2\.1\s+Conv2d\s+conv winograd4 \((relaxed|simd128)\)\s+1×96×28×28\s+1×128×28×28/);
    expect(r.stdout).toMatch(/branch1\s+Conv2d\s+conv gemm /);
    expect(r.stdout).toMatch(/branch4\.0\s+MaxPool2d\s+MaxPool2d/);
  });

  it('--layers --json: one timing per leaf layer, in execution order', async () => {
    const r = await run(['--model', 'inception3a', '--min-time', '0.1', '--layers', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [x] = JSON.parse(r.stdout).results;
    expect(x.layers.map((l: any) => l.name)).toEqual(['branch1', 'branch2.0', 'branch2.1', 'branch3.0', 'branch3.1', 'branch4.0', 'branch4.1']);
    for (const l of x.layers) {
      expect(l.medianMs).toBeGreaterThan(0);
      expect(l.inputShape[0]).toBe(1);
    }
    expect(x.layers.reduce((s: number, l: any) => s + l.macs, 0)).toBe(x.macsPerImage);
  });

  it('a progress line on stderr under a pseudo-terminal (script), results still on stdout', async () => {
    const command = `${process.execPath} ${CLI} bench --model ${CONV} --quick`;
    const r = await new Promise<Run>((resolve) => {
      execFile('script', ['-qec', command, '/dev/null'], { cwd: root, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      });
    });
    expect(r.code).toBe(0);
    // script merges both streams into the terminal's output.
    expect(r.stdout).toMatch(/\r\x1b\[2K {2}conv:16,16,3,1,1,32,32 ×1, 1T: (warm-up|timing) \d+ runs/);
    expect(r.stdout).toContain('[1/1] conv:16,16,3,1,1,32,32, 1 thread, batch 1');
    expect(r.stdout).toMatch(/conv:16,16,3,1,1,32,32\s+(relaxed|simd128)\s+1\s+1\s+\d+/);
  });
});

describe('bench --serve in headless Chromium', () => {
  let server: ChildProcess;
  let url: string;
  let browser: Browser;
  let serverStderr = '';

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`).toBe(true);
    server = spawn(process.execPath, [CLI, 'bench', '--serve', '--port', '0', '--model', CONV, '--threads', '1,2', '--batch', '1,4', '--quick'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      server.stderr!.setEncoding('utf8').on('data', (d: string) => {
        serverStderr += d;
        const m = /serving the benchmark page at (http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(serverStderr);
        if (m) resolve(m[1]!);
      });
      server.on('exit', (code) => reject(new Error(`the server exited (${code}): ${serverStderr}`)));
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) server.kill('SIGTERM');
  });

  it('serves with COOP/COEP; the page runs the suite (1 thread on the page, 2 in a Worker), draws a chart and exposes JSON', async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect((await fetch(new URL('/dist/index.js', url))).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(new URL('/dist/wasm/inception_wasm_bg.wasm', url))).headers.get('content-type')).toBe('application/wasm');
    expect((await fetch(new URL('/dist/../package.json', url))).status).toBe(404);

    const page = await browser.newPage({ viewport: { width: 1020, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console.error: ${m.text()}`); });
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as any).benchResults?.done === true, undefined, { timeout: 90_000 });
    const doc = await page.evaluate(() => (globalThis as any).benchResults);
    const pre = JSON.parse(await page.locator('#results-json').textContent() ?? '');
    expect(pre.results).toEqual(doc.results);
    expect(errors).toEqual([]);
    expect(doc.error).toBeUndefined();
    expect(doc.failures).toEqual([]);
    expect(doc.environment.crossOriginIsolated).toBe(true);
    expect(doc.options).toMatchObject({ model: CONV, threads: [1, 2], batch: [1, 4], minTime: 0.3 });
    expect(doc.results.map((r: any) => [r.threads, r.batch, r.realm])).toEqual([
      [1, 1, 'main thread'], [1, 4, 'main thread'], [2, 1, 'worker'], [2, 4, 'worker'],
    ]);
    for (const r of doc.results) {
      expect(r.simd).toBe('relaxed'); // Chromium validates relaxed SIMD
      expect(r.wasm).toBe(r.threads > 1 ? 'wasm-threads-relaxed/inception_wasm_bg.wasm' : 'wasm-relaxed/inception_wasm_bg.wasm');
      expect(r.msPerBatch.median).toBeGreaterThan(0);
      expect(r.msPerImage.median).toBeCloseTo(r.msPerBatch.median / r.batch, 10);
      expect(r.gflops).toBeGreaterThan(0);
      expect(r.firstForwardMs).toBeGreaterThan(0);
      expect(r.memory.wasmBytes).toBeGreaterThan(0);
    }
    // The first configuration of each realm reports its cold start.
    expect(doc.results[0].coldStartMs).toBeGreaterThan(0);
    expect(doc.results[2].coldStartMs).toBeGreaterThan(0);
    expect(await page.locator('#chart svg rect').count()).toBe(4);
    mkdirSync(`${root}bench/results/tmp`, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`bench page: ${doc.results.map((r: any) => `${r.threads}T×${r.batch} ${r.msPerImage.median.toFixed(3)} ms/img`).join(', ')}; screenshot ${SCREENSHOT}`);
    await page.close();
  });

  it('stops on SIGINT with exit 0', async () => {
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    server.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
