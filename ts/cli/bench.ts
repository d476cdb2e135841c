/**
 * `inception-wasm bench`: speed of a model on this machine, one child process per
 * configuration (`init` is once per process: each thread count and SIMD build needs its
 * own), or the same suite as a page in a browser (`--serve`). Public API only.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UsageError } from './common.js';
import {
  Conv2d,
  GoogLeNet,
  Inception,
  INCEPTION_CONFIG,
  init,
  memoryInfo,
  type MemoryInfo,
  type Module,
  relaxedSimdSupported,
  simdFlavour,
  summary,
  Tensor,
  threadCount,
} from '../index.js';

export const usage = `Usage: inception-wasm bench [options]

Times forward passes of a model with random weights, one child process per
configuration (thread count × SIMD build × batch size).

Options:
  --model M         googlenet (default), inception3a, or conv:CIN,COUT,K,S,P,H,W
                    (one Conv2d: channels in/out, kernel, stride, padding, input size)
  --threads LIST    thread counts, each a separate run (default 1)
  --batch LIST      batch sizes, each a separate run (default 1)
  --relaxed MODE    on (default; relaxed SIMD where the runtime has it), off (plain
                    simd128), or both. Node 20 runs it with --experimental-wasm-relaxed-simd.
  --layers          also time each layer alone and name the kernel it runs
  --min-time S      seconds of timed runs per configuration (default 3; at least 10
                    runs, at most 200); warm-up is a third of it
  --quick           a short run for a first look: --min-time 0.3, at least 5 runs
  --json            print one JSON document on stdout (nothing else)
  --serve           serve the same suite as a web page (with COOP/COEP headers, so a
                    Worker can run threads) until Ctrl-C; prints its URL on stderr
  --port N          port for --serve on 127.0.0.1 (default 8360; 0: any free port)
  -h, --help        this text

Results go to stdout; progress (on a terminal only) and notices to stderr.
Exit code: 0 all runs done, 1 some runs failed, 2 bad usage.

Examples:
  npx inception-wasm bench
  npx inception-wasm bench --threads 1,2 --batch 1,8 --relaxed both
  npx inception-wasm bench --model conv:64,64,3,1,1,56,56 --layers --json
  npx inception-wasm bench --serve
`;

/** The internal flag of a child process: its configuration as JSON follows. */
const CHILD_FLAG = '--bench-child';
const RESULT_MARK = '@@inception-wasm-bench ';


export interface ModelSpec {
  name: string;
  kind: 'googlenet' | 'inception3a' | 'conv';
  conv?: { cin: number; cout: number; k: number; s: number; p: number; h: number; w: number };
}

interface ChildConfig {
  model: ModelSpec;
  threads: number;
  batch: number;
  relaxed: boolean;
  layers: boolean;
  minTime: number;
  minRuns: number;
  progress: boolean;
}

export interface Stats {
  median: number;
  p10: number;
  p90: number;
  mean: number;
  min: number;
}

export interface LayerTiming {
  name: string;
  type: string;
  kernel: string;
  inputShape: number[];
  outputShape: number[];
  macs: number;
  runs: number;
  medianMs: number;
  gflops: number | null;
}

export interface ConfigResult {
  model: string;
  threadsRequested: number;
  threads: number;
  batch: number;
  relaxedRequested: boolean;
  simd: string;
  /** The module in use, under the package's dist/: derived from threadCount() and simdFlavour(). */
  wasm: string;
  inputShape: number[];
  macsPerImage: number;
  warmupRuns: number;
  runs: number;
  msPerBatch: Stats;
  msPerImage: Stats;
  imagesPerSecond: number;
  gflops: number;
  coldStartMs: number;
  firstForwardMs: number;
  initMs: number;
  memory: MemoryInfo;
  layers?: LayerTiming[];
}

export interface ConfigFailure {
  model: string;
  threadsRequested: number;
  batch: number;
  relaxedRequested: boolean;
  error: { name: string; message: string };
}

// ------------------------------------------------------------------ options

function parseList(flag: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const items = value.split(',').map((s) => s.trim());
  const nums = items.map(Number);
  if (items.some((s) => s === '') || nums.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new UsageError(`${flag} takes a comma-separated list of positive integers, e.g. ${flag} 1,2 (got ${JSON.stringify(value)})`);
  }
  return [...new Set(nums)];
}

export function parseModel(value: string): ModelSpec {
  if (value === 'googlenet' || value === 'inception3a') return { name: value, kind: value };
  const m = /^conv:(.*)$/.exec(value);
  if (m) {
    const parts = m[1]!.split(',').map((s) => Number(s.trim()));
    const ok = parts.length === 7 && parts.every((n) => Number.isInteger(n)) &&
      parts.every((n, i) => (i === 4 ? n >= 0 : n >= 1));
    if (ok) {
      const [cin, cout, k, s, p, h, w] = parts as [number, number, number, number, number, number, number];
      if (h + 2 * p < k || w + 2 * p < k) throw new UsageError(`--model ${value}: the kernel (${k}) is larger than the padded input (${h + 2 * p}×${w + 2 * p})`);
      return { name: value, kind: 'conv', conv: { cin, cout, k, s, p, h, w } };
    }
    throw new UsageError(`--model conv: needs seven integers CIN,COUT,K,S,P,H,W (padding may be 0), e.g. --model conv:64,64,3,1,1,56,56 (got ${JSON.stringify(value)})`);
  }
  throw new UsageError(`--model must be googlenet, inception3a or conv:CIN,COUT,K,S,P,H,W (got ${JSON.stringify(value)})`);
}

interface Options {
  model: ModelSpec;
  threads: number[];
  batch: number[];
  relaxed: boolean[];
  layers: boolean;
  json: boolean;
  minTime: number;
  minRuns: number;
  serve: boolean;
  port: number;
  help: boolean;
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        model: { type: 'string' },
        threads: { type: 'string' },
        batch: { type: 'string' },
        relaxed: { type: 'string' },
        layers: { type: 'boolean' },
        json: { type: 'boolean' },
        'min-time': { type: 'string' },
        quick: { type: 'boolean' },
        serve: { type: 'boolean' },
        port: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  const relaxedMode = v.relaxed ?? 'on';
  if (!['on', 'off', 'both'].includes(relaxedMode)) throw new UsageError(`--relaxed must be on, off or both (got ${JSON.stringify(relaxedMode)})`);
  let minTime = v.quick ? 0.3 : 3;
  if (v['min-time'] !== undefined) {
    minTime = Number(v['min-time']);
    if (!(minTime >= 0 && Number.isFinite(minTime))) throw new UsageError(`--min-time takes seconds, a number ≥ 0, e.g. --min-time 1.5 (got ${JSON.stringify(v['min-time'])})`);
  }
  let port = 8360;
  if (v.port !== undefined) {
    port = Number(v.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port takes a port number 0-65535 (got ${JSON.stringify(v.port)})`);
    if (!v.serve) throw new UsageError('--port only applies to --serve');
  }
  if (v.serve && (v.json || v.layers)) throw new UsageError('--serve runs the suite in the browser: --json and --layers do not apply (the page shows its JSON)');
  if (v.serve && v.relaxed !== undefined) throw new UsageError('--relaxed does not apply to --serve: the page runs the browser\'s default build (relaxed SIMD where the browser has it)');
  return {
    model: parseModel(v.model ?? 'googlenet'),
    threads: parseList('--threads', v.threads, [1]),
    batch: parseList('--batch', v.batch, [1]),
    relaxed: relaxedMode === 'both' ? [true, false] : [relaxedMode === 'on'],
    layers: v.layers ?? false,
    json: v.json ?? false,
    minTime,
    minRuns: v.quick ? 5 : 10,
    serve: v.serve ?? false,
    port,
    help: v.help ?? false,
  };
}

// ------------------------------------------------------------------ entry

export async function bench(argv: string[]): Promise<number> {
  const childAt = argv.indexOf(CHILD_FLAG);
  if (childAt >= 0) return runChild(JSON.parse(argv[childAt + 1] ?? '{}') as ChildConfig);
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`inception-wasm bench: ${e.message}\nRun 'inception-wasm bench --help' for the options.\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (options.serve) return serve(options);
  return runParent(options, argv);
}

// ------------------------------------------------------------------ parent

async function runParent(o: Options, argv: string[]): Promise<number> {
  // The child is this same script with the same leading arguments (e.g. the `bench`
  // command word of dist/cli.js): whatever came before our own argv.
  const script = process.argv[1];
  if (script === undefined) throw new Error('inception-wasm bench: cannot find the script to re-run (process.argv[1])');
  const lead = process.argv.slice(2, process.argv.length - argv.length);
  const relaxedHere = relaxedSimdSupported();
  const configs: ChildConfig[] = [];
  for (const relaxed of o.relaxed) {
    for (const threads of o.threads) {
      for (const batch of o.batch) {
        configs.push({ model: o.model, threads, batch, relaxed, layers: o.layers, minTime: o.minTime, minRuns: o.minRuns, progress: process.stderr.isTTY === true });
      }
    }
  }
  const results: ConfigResult[] = [];
  const failures: ConfigFailure[] = [];
  for (const [i, config] of configs.entries()) {
    const label = `${config.model.name}, ${config.threads} thread${config.threads > 1 ? 's' : ''}, batch ${config.batch}, ${config.relaxed ? 'relaxed SIMD' : 'simd128'}`;
    if (process.stderr.isTTY) process.stderr.write(`[${i + 1}/${configs.length}] ${label}\n`);
    const nodeFlags = config.relaxed && !relaxedHere ? ['--experimental-wasm-relaxed-simd'] : [];
    try {
      const r = await runInChild(process.execPath, [...nodeFlags, script, ...lead, CHILD_FLAG, JSON.stringify(config)]);
      if (config.relaxed && r.simd !== 'relaxed') process.stderr.write(`inception-wasm bench: relaxed SIMD was asked for but this Node runs ${r.simd} (${label})\n`);
      if (r.threads !== config.threads) process.stderr.write(`inception-wasm bench: ${config.threads} threads were asked for but ${r.threads} ran (${label})\n`);
      results.push(r);
    } catch (e) {
      const err = e as Error;
      process.stderr.write(`inception-wasm bench: ${label} failed: ${err.name}: ${err.message}\n`);
      failures.push({ model: config.model.name, threadsRequested: config.threads, batch: config.batch, relaxedRequested: config.relaxed, error: { name: err.name, message: err.message } });
    }
  }
  if (o.json) {
    const doc = { tool: 'inception-wasm bench', environment: environment(), minTime: o.minTime, results, failures };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(renderTable(results));
    if (o.layers) for (const r of results) process.stdout.write(`\n${renderLayers(r)}`);
    if (failures.length > 0) process.stdout.write(`\n${failures.length} configuration(s) failed (see stderr).\n`);
  }
  return failures.length > 0 ? 1 : 0;
}

function environment() {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    date: new Date().toISOString(),
  };
}

function runInChild(execPath: string, args: string[]): Promise<ConfigResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    // The child's progress line and warnings pass through; kept too, for the error message.
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      let doc: ConfigResult | { error: { name: string; message: string } } | undefined;
      try {
        doc = line === undefined ? undefined : (JSON.parse(line.slice(RESULT_MARK.length)) as typeof doc);
      } catch {
        doc = { error: { name: 'Error', message: `the child's result line is not JSON: ${line!.slice(0, 200)}` } };
      }
      if (doc !== undefined) {
        if ('error' in doc) {
          const err = new Error(doc.error.message);
          err.name = doc.error.name;
          reject(err);
        } else resolve(doc);
        return;
      }
      const last = stderr.trim().split('\n').filter((l) => !l.startsWith('\r')).slice(-3).join(' / ');
      reject(new Error(`child process exited with ${signal ?? `code ${code}`}${last ? `: ${last}` : ''}`));
    });
  });
}

const f = (n: number, digits = 2) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(digits));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)}`;

function table(head: string[], rows: string[][], rightFrom: number): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

export function renderTable(results: readonly ConfigResult[]): string {
  if (results.length === 0) return 'No results.\n';
  const head = ['model', 'simd', 'threads', 'batch', 'runs', 'ms/batch median', 'p10', 'p90', 'ms/image', 'img/s', 'GFLOP/s', 'cold start ms', 'first fwd ms', 'wasm MiB'];
  const rows = results.map((r) => [
    r.model, r.simd, String(r.threads), String(r.batch), String(r.runs),
    f(r.msPerBatch.median), f(r.msPerBatch.p10), f(r.msPerBatch.p90), f(r.msPerImage.median), f(r.imagesPerSecond, 1),
    f(r.gflops, 1), f(r.coldStartMs, 0), f(r.firstForwardMs, 1), mib(r.memory.wasmBytes),
  ]);
  return table(head, rows, 2);
}

export function renderLayers(r: ConfigResult): string {
  const layers = r.layers ?? [];
  const total = layers.reduce((s, l) => s + l.medianMs, 0);
  const head = ['layer', 'type', 'kernel', 'input', 'output', 'MMACs', 'ms', '%', 'GFLOP/s'];
  const rows = layers.map((l) => [
    l.name, l.type, l.kernel, l.inputShape.join('×'), l.outputShape.join('×'), (l.macs / 1e6).toFixed(1),
    f(l.medianMs, 3), total > 0 ? (100 * l.medianMs / total).toFixed(1) : '-', l.gflops === null ? '-' : f(l.gflops, 1),
  ]);
  const title = `Layers of ${r.model}, ${r.threads} thread${r.threads > 1 ? 's' : ''}, batch ${r.batch}, ${r.simd} — each layer alone, median ms ` +
    `(sum ${f(total)} ms; the whole forward, ${f(r.msPerBatch.median)} ms, runs as one plan)\n`;
  return title + table(head, rows, 5);
}

// ------------------------------------------------------------------ child

export function buildModel(spec: ModelSpec, batch: number): { model: Module; inputShape: number[] } {
  if (spec.kind === 'googlenet') return { model: new GoogLeNet(), inputShape: [batch, 3, 224, 224] };
  if (spec.kind === 'inception3a') {
    const [i, a, b, c, d, e, g] = INCEPTION_CONFIG.inception3a;
    return { model: new Inception(i, a, b, c, d, e, g), inputShape: [batch, i, 28, 28] };
  }
  const c = spec.conv!;
  return {
    model: new Conv2d({ inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride: c.s, padding: c.p }),
    inputShape: [batch, c.cin, c.h, c.w],
  };
}

function randomTensor(shape: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return Tensor.fromArray(data, shape);
}

export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => {
    const x = (s.length - 1) * p;
    const lo = Math.floor(x);
    const hi = Math.ceil(x);
    return s[lo]! + (s[hi]! - s[lo]!) * (x - lo);
  };
  return { median: q(0.5), p10: q(0.1), p90: q(0.9), mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0]! };
}

/**
 * Warm-up: at least 3 runs and `warmup` seconds (but stops after 3× `warmup`); then
 * timed runs until `minTime` seconds or 200 runs, and at least `minRuns`.
 */
function measure(run: () => void, minTime: number, minRuns: number, onProgress?: (phase: string, runs: number, elapsed: number) => void) {
  const warmup = minTime / 3;
  let t0 = performance.now();
  let warmupRuns = 0;
  for (;;) {
    run();
    warmupRuns++;
    const elapsed = (performance.now() - t0) / 1000;
    onProgress?.('warm-up', warmupRuns, elapsed);
    if ((warmupRuns >= 3 && elapsed >= warmup) || elapsed >= 3 * warmup) break;
  }
  const samples: number[] = [];
  t0 = performance.now();
  for (;;) {
    const a = performance.now();
    run();
    samples.push(performance.now() - a);
    const elapsed = (performance.now() - t0) / 1000;
    onProgress?.('timing', samples.length, elapsed);
    if (samples.length >= minRuns && (elapsed >= minTime || samples.length >= 200)) break;
  }
  return { warmupRuns, samples };
}

function progressWriter(enabled: boolean, label: string) {
  let last = 0;
  return {
    update(phase: string, runs: number, elapsed: number) {
      if (!enabled) return;
      const now = performance.now();
      if (now - last < 100) return;
      last = now;
      process.stderr.write(`\r\x1b[2K  ${label}: ${phase} ${runs} runs, ${elapsed.toFixed(1)} s`);
    },
    done() {
      if (enabled) process.stderr.write('\r\x1b[2K');
    },
  };
}

/** The child's side: one configuration, its result (or error) as one marked JSON line on stdout. */
async function runChild(config: ChildConfig): Promise<number> {
  try {
    process.stdout.write(`${RESULT_MARK}${JSON.stringify(await measureConfig(config))}\n`);
    return 0;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    process.stdout.write(`${RESULT_MARK}${JSON.stringify({ error: { name: err.name, message: err.message } })}\n`);
    return 1;
  }
}

/** The `.wasm` that runs, from the public API's `threadCount()` and `simdFlavour()`. */
function wasmBuild(threads: number, simd: string): string {
  return `wasm${threads > 1 ? '-threads' : ''}${simd === 'relaxed' ? '-relaxed' : ''}/inception_wasm_bg.wasm`;
}

async function measureConfig(config: ChildConfig): Promise<ConfigResult> {
  const initStart = performance.now();
  await init({ threads: config.threads, relaxedSimd: config.relaxed });
  const initMs = performance.now() - initStart;
  const { model, inputShape } = buildModel(config.model, config.batch);
  const table = summary(model, inputShape);
  const x = randomTensor(inputShape);
  const f0 = performance.now();
  model.forward(x).dispose();
  const firstLogits = performance.now();
  // performance.now() counts from performance.timeOrigin, the process's start.
  const coldStartMs = firstLogits;
  const firstForwardMs = firstLogits - f0;
  const progress = progressWriter(config.progress, `${config.model.name} ×${config.batch}, ${config.threads}T`);
  const { warmupRuns, samples } = measure(() => model.forward(x).dispose(), config.minTime, config.minRuns, progress.update);
  progress.done();
  const msPerBatch = stats(samples);
  const msPerImage = stats(samples.map((t) => t / config.batch));
  const macsPerImage = table.totalMacs / config.batch;
  const result: ConfigResult = {
    model: config.model.name,
    threadsRequested: config.threads,
    threads: threadCount(),
    batch: config.batch,
    relaxedRequested: config.relaxed,
    simd: simdFlavour(),
    wasm: wasmBuild(threadCount(), simdFlavour()),
    inputShape,
    macsPerImage,
    warmupRuns,
    runs: samples.length,
    msPerBatch,
    msPerImage,
    imagesPerSecond: 1000 / msPerImage.median,
    gflops: (2 * table.totalMacs) / (msPerBatch.median * 1e6),
    coldStartMs,
    firstForwardMs,
    initMs,
    memory: memoryInfo(),
  };
  x.dispose();
  if (config.layers) result.layers = timeLayers(model, inputShape, config);
  return result;
}

/** Each leaf layer run alone on a tensor of its input shape (captured while tracing the summary). */
function timeLayers(model: Module, inputShape: number[], config: ChildConfig): LayerTiming[] {
  const leaves: { layer: Module; input: number[]; row: { name: string; type: string; outputShape: readonly number[]; macs: number } }[] = [];
  for (const [, m] of model.namedModules()) {
    if (m.children().length > 0) continue;
    const leaf = m;
    const own = leaf.trace.bind(leaf);
    leaf.trace = (input, emit) => own(input, (row) => {
      leaves.push({ layer: leaf, input: [...input], row });
      emit(row);
    });
  }
  summary(model, inputShape);
  const budget = Math.max(0.05, config.minTime / 10);
  const out: LayerTiming[] = [];
  const progress = progressWriter(config.progress, 'layers');
  for (const [i, { layer, input, row }] of leaves.entries()) {
    const x = randomTensor(input);
    try {
      layer.forward(x).dispose();
      const { samples } = measure(() => layer.forward(x).dispose(), budget, 5, (phase, runs, elapsed) => progress.update(`${i + 1}/${leaves.length} ${row.name} ${phase}`, runs, elapsed));
      const medianMs = stats(samples).median;
      const kernel = layer instanceof Conv2d ? `conv ${layer.algorithmFor(input[2]!, input[3]!)} (${simdFlavour()})` : row.type;
      out.push({
        name: row.name, type: row.type, kernel, inputShape: input, outputShape: [...row.outputShape], macs: row.macs, runs: samples.length, medianMs,
        gflops: row.macs > 0 ? (2 * row.macs) / (medianMs * 1e6) : null,
      });
    } finally {
      x.dispose();
    }
  }
  progress.done();
  return out;
}

// ------------------------------------------------------------------ --serve

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

async function serve(o: Options): Promise<number> {
  // This file is bundled into dist/ (dist/cli.js): the page is dist/bench-page/, the package dist/.
  const dist = path.dirname(fileURLToPath(import.meta.url));
  const pageDir = path.join(dist, 'bench-page');
  const config = JSON.stringify({ model: o.model.name, threads: o.threads, batch: o.batch, minTime: o.minTime, minRuns: o.minRuns });
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const headers: Record<string, string> = {
      'cache-control': 'no-store',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
    };
    let file: string | undefined;
    let body: Buffer | string | undefined;
    let p: string;
    try {
      p = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400, headers).end('malformed URL\n');
      return;
    }
    if (p === '/' || p === '/index.html') file = path.join(pageDir, 'index.html');
    else if (p === '/config.json') body = config;
    else if (p.startsWith('/dist/')) {
      const candidate = path.resolve(dist, `.${p.slice('/dist'.length)}`);
      if (candidate.startsWith(dist + path.sep)) file = candidate;
    }
    if (file !== undefined) {
      try {
        body = await readFile(file);
      } catch {
        body = undefined;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, headers).end();
      return;
    }
    if (body === undefined) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const type = TYPES[path.extname(file ?? p)] ?? 'application/octet-stream';
    res.writeHead(200, { ...headers, 'content-type': type }).end(req.method === 'HEAD' ? undefined : body);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, '127.0.0.1', resolve);
    });
  } catch (e) {
    process.stderr.write(`inception-wasm bench: cannot listen on 127.0.0.1:${o.port} (${(e as Error).message}); pick another with --port N (0: any free port)\n`);
    return 2;
  }
  const { port } = server.address() as AddressInfo;
  const query = new URLSearchParams({ model: o.model.name, threads: o.threads.join(','), batch: o.batch.join(',') });
  process.stderr.write(`inception-wasm bench: serving the benchmark page at http://127.0.0.1:${port}/?${query} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
