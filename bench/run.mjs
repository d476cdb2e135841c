#!/usr/bin/env node
// The benchmark suite (`npm run bench`, `npm run bench:smoke`): inception-wasm against
// onnxruntime-web and tfjs-backend-wasm, side by side in one run, as ratios.
//
//   node bench/run.mjs [--smoke] [options]
//
//   --smoke               CI-sized run (< 2 minutes): fewer samples, one round, a subset of
//                         the conv shapes; writes to bench/results/smoke/
//   --engines a,b         subset of ours,ort,tfjs (default: all)
//   --threads 1,2         peer thread counts (default 1,2)
//   --ours-threads 1[,2]  thread counts for inception-wasm (default: 1, or 1,2 once
//                         dist/index.d.ts declares `threads` in init's options)
//   --rounds R            interleaved rounds (default 3; smoke 1)
//   --runs N              timed runs per batch size, summed over rounds (default 21; smoke 5)
//   --scaling-rounds R    rounds of the paired 2-thread speed-up (default 60; smoke 6; 0
//                         skips it)
//   --no-e2e, --no-micro, --no-soak, --no-train  skip a part
//   --no-relaxed          skip inception-wasm's relaxed-SIMD configurations (Node 20 runs
//                         them with --experimental-wasm-relaxed-simd)
//   --soak N              inferences of the memory soak run (default 10000; smoke 300)
//   --filter REGEX        micro cases whose id matches
//   --tfjs-plain          also run tfjs end-to-end with unfused ops (conv2d → add → relu);
//                         always on in the full run
//   --no-wait             do not wait for the machine to be quiet before each child
//   --write-shapes        (re)write bench/shapes.json from the library's architecture
//   --rerender            only rewrite the reports from the last run's raw results
//                         (bench/results/tmp/raw[-smoke].json)
//   --out DIR             results directory (default bench/results or bench/results/smoke)
//   --verbose             echo the children's stderr
//
// The training part is bench/train.mjs (`npm run bench:train`: a training step and an eval
// forward against PyTorch 1.13 CPU), run as a child: full counts in the full run (its
// train.json / train.md land next to results.json), `--quick` in the smoke run.
//
// Every engine runs in its own child process (bench/engines/*.mjs, protocol in
// bench/lib/child.mjs). End-to-end runs are repeated in R rounds, the engine order
// rotating each round, so that the machine's background load falls on all engines alike;
// each child is a fresh process, so each round also gives one cold-start sample.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkAgainstSummary, distinctShapes, googlenetGraph } from './lib/arch.mjs';
import { seedOf, unpackWeights } from './lib/data.mjs';
import { summarize, systemBusyMs } from './lib/stats.mjs';
import { encodeModel } from './lib/onnx.mjs';
import { writeReports } from './lib/report.mjs';
import { BURST, MARK } from './lib/child.mjs';
import { createInterface } from 'node:readline';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
process.chdir(ROOT);

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { flags: new Set(), values: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split('=', 2);
    if (['smoke', 'no-e2e', 'no-micro', 'no-soak', 'no-train', 'no-relaxed', 'no-wait', 'tfjs-plain', 'write-shapes', 'rerender', 'verbose', 'help'].includes(k)) o.flags.add(k);
    else o.values[k] = inline ?? argv[++i];
  }
  return o;
}
const args = parseArgs(process.argv.slice(2));
if (args.flags.has('help')) {
  const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
  console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const smoke = args.flags.has('smoke');
const list = (v, d) => (v === undefined ? d : String(v).split(',').map((s) => s.trim()).filter(Boolean));
const nums = (v, d) => list(v, d).map(Number);

/** `threads` appears in init's options once the threaded build lands (S3). */
function oursThreadsDefault() {
  try {
    const dts = fs.readFileSync('dist/index.d.ts', 'utf8');
    const m = /interface InitOptions\$?\d*\s*\{([\s\S]*?)\n\}/.exec(dts);
    return m && /\bthreads\??\s*:/.test(m[1]) ? [1, 2] : [1];
  } catch {
    return [1];
  }
}

const opts = {
  smoke,
  engines: list(args.values.engines, ['ours', 'ort', 'tfjs']),
  threads: nums(args.values.threads, [1, 2]),
  oursThreads: nums(args.values['ours-threads'], oursThreadsDefault()),
  rounds: Number(args.values.rounds ?? (smoke ? 1 : 3)),
  runs: Number(args.values.runs ?? (smoke ? 5 : 21)),
  e2e: !args.flags.has('no-e2e'),
  filter: args.values.filter ? new RegExp(args.values.filter) : null,
  tfjsPlain: args.flags.has('tfjs-plain') || !smoke,
  relaxed: !args.flags.has('no-relaxed'),
  scalingRounds: Number(args.values['scaling-rounds'] ?? (smoke ? 6 : 60)),
  soak: args.flags.has('no-soak') ? 0 : Number(args.values.soak ?? (smoke ? 300 : 10_000)),
  train: !args.flags.has('no-train'),
  verbose: args.flags.has('verbose'),
  out: path.resolve(args.values.out ?? path.join(BENCH, 'results', smoke ? 'smoke' : '')),
  size: 224,
  seed: 0,
  inputSeed: 1,
  // Micro samples: each sample repeats the kernel for at least minSampleMs.
  micro: {
    rounds: 1,
    samples: smoke ? 5 : 15,
    // Warm-up: at least 2 calls and 150 ms, so that a thread pool is up before timing.
    warmup: 2,
    warmupMs: 150,
    minSampleMs: smoke ? 4 : 10,
  },
};
opts.doMicro = !args.flags.has('no-micro');
// End-to-end children that other processes disturbed (≥ 0.5 CPU) are re-run up to this many times.
opts.retries = smoke ? 0 : 2;
// The machine is shared: before each child, wait (bounded) until other processes keep
// less than `threshold` CPUs busy, and record what they did during every measurement.
opts.quiet = args.flags.has('no-wait')
  ? null
  : { threshold: 0.3, sampleMs: smoke ? 500 : 1000, maxWaitMs: smoke ? 5_000 : 45_000, totalMaxWaitMs: smoke ? 20_000 : 240_000 };
const tmp = path.join(BENCH, 'results', 'tmp');
const modelDir = path.join(tmp, 'model');

const WASM_CANDIDATES = {
  ours: ['wasm', 'wasm-relaxed', 'wasm-threads', 'wasm-threads-relaxed'].map((d) => `dist/${d}/inception_wasm_bg.wasm`),
  ort: globWasm('node_modules/onnxruntime-web/dist'),
  tfjs: globWasm('node_modules/@tensorflow/tfjs-backend-wasm/dist'),
};
function globWasm(dir) {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.wasm')).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- children

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let waitedTotalMs = 0;

/** Waits (bounded) until other processes leave the CPUs idle; returns the CPUs they used last. */
async function waitForQuiet(what, { sampleMs } = {}) {
  const q = opts.quiet && { ...opts.quiet, sampleMs: sampleMs ?? opts.quiet.sampleMs };
  if (!q || systemBusyMs() === null) return null;
  const t0 = performance.now();
  let said = false;
  for (;;) {
    const b0 = systemBusyMs();
    await sleep(q.sampleMs);
    const bg = (systemBusyMs() - b0) / q.sampleMs;
    const waited = performance.now() - t0;
    if (bg <= q.threshold || waited >= q.maxWaitMs || waitedTotalMs + waited >= q.totalMaxWaitMs) {
      waitedTotalMs += waited;
      if (said) log(`    … ${bg <= q.threshold ? 'quiet' : 'still busy'} after ${fmt(waited / 1000)} s`);
      return bg;
    }
    if (!said) log(`    (other processes keep ${fmt(bg, 2)} CPUs busy: waiting up to ${fmt(q.maxWaitMs / 1000, 0)} s before ${what})`);
    said = true;
  }
}

const log = (...a) => console.log(...a);
const fmt = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toFixed(d));

/**
 * Runs one engine child on a job; resolves with its result (plus `spawnEpoch`, the
 * parent's wall clock just before spawn, for the cold start).
 */
async function runChild(engine, job, { timeoutMs = 10 * 60_000, quiet = true, nodeArgs = [] } = {}) {
  const bgBefore = quiet ? await waitForQuiet(`${engine} ${job.kind}`) : null;
  return new Promise((resolve) => {
    const spawnEpoch = performance.timeOrigin + performance.now();
    const child = spawn(process.execPath, [...nodeArgs, path.join(BENCH, 'engines', `${engine}.mjs`), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (opts.verbose) process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      let result;
      if (line) result = JSON.parse(line.slice(MARK.length + 1));
      else result = { ok: false, engine, error: `no result line (exit ${code}${signal ? `, ${signal}` : ''})\n${err.slice(-2000)}` };
      result.spawnEpoch = spawnEpoch;
      result.bgCpusBefore = bgBefore;
      if (!result.ok) result.stderr = err.slice(-2000);
      resolve(result);
    });
  });
}

// ---------------------------------------------------------------- preparation

function machineInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim();
  const flags = (/flags\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? '').split(/\s+/);
  const git = (a) => {
    try {
      return execFileSync('git', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const version = (p) => JSON.parse(fs.readFileSync(`node_modules/${p}/package.json`, 'utf8')).version;
  return {
    cpuModel: model,
    cpuFlags: ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f'].filter((f) => flags.includes(f)),
    logicalCpus: os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAvgStart: os.loadavg(),
    git: { commit: git(['rev-parse', '--short', 'HEAD']), dirty: (git(['status', '--porcelain', '--', 'ts', 'crates']) ?? '') !== '' },
    versions: { onnxruntimeWeb: version('onnxruntime-web'), tfjsCore: version('@tensorflow/tfjs-core'), tfjsBackendWasm: version('@tensorflow/tfjs-backend-wasm') },
  };
}

const SHAPES_FILE = path.join(BENCH, 'shapes.json');

/** bench/shapes.json: every distinct Conv2d (and max-pool) shape of GoogLeNet at 224×224. */
function shapesDocument(graph, summary) {
  const { convs, pools } = distinctShapes(graph);
  return {
    about:
      'Distinct Conv2d and MaxPool2d shapes of the default (ReLU) GoogLeNet at 1×3×224×224, batch 1, in first-use order; ' +
      'generated by `node bench/run.mjs --write-shapes` from the library architecture (INCEPTION_CONFIG) and checked against summary(). ' +
      'Read by the JS benches (bench/run.mjs) and meant for the Rust benches too. Convs: input [cin, h, w], cout, square kernel k, stride s, ' +
      'padding p (each side), output [oh, ow], macs per image, the layers (state-dict names) that have this shape; all have bias and a fused ReLU.',
    network: 'GoogLeNet (variant relu), input [1, 3, 224, 224]',
    totalMacs: summary.totalMacs,
    convs,
    maxpools: pools,
    inception: { id: 'inception3a_192x28x28', name: 'inception3a', cfg: [...summary.config.inception3a], h: 28, w: 28, macs: 0 },
  };
}

async function prepare(info) {
  fs.mkdirSync(modelDir, { recursive: true });
  const prep = await runChild('ours', { kind: 'prepare', seed: opts.seed, size: opts.size, modelDir }, { quiet: false });
  if (!prep.ok) throw new Error(`prepare (ours) failed:\n${prep.error}`);
  const graph = googlenetGraph(prep.config, { size: opts.size });
  checkAgainstSummary(graph, prep.rows, prep.totalMacs);
  info.library = { version: prep.version, totalMacs: prep.totalMacs, totalParams: prep.totalParams, wasmBytes: fs.statSync(WASM_CANDIDATES.ours[0]).size };

  // The shapes file: generated once, then only checked (a benchmark must not change its
  // cases silently). --write-shapes rewrites it.
  const doc = shapesDocument(graph, prep);
  const inc = graph.ops.filter((o) => o.op === 'conv' && o.name.startsWith('inception3a.'));
  doc.inception.macs = prep.rows.filter((r) => r.name.startsWith('inception3a.')).reduce((a, r) => a + r.macs, 0);
  if (inc.length !== 6) throw new Error('inception3a not found in the graph');
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  if (args.flags.has('write-shapes') || !fs.existsSync(SHAPES_FILE)) {
    fs.writeFileSync(SHAPES_FILE, text);
    log(`wrote ${path.relative(ROOT, SHAPES_FILE)} (${doc.convs.length} conv shapes, ${doc.maxpools.length} max-pool shapes)`);
  } else if (fs.readFileSync(SHAPES_FILE, 'utf8') !== text) {
    throw new Error(`${path.relative(ROOT, SHAPES_FILE)} no longer matches the library's architecture: run \`node bench/run.mjs --write-shapes\` and review the diff`);
  }

  // The peers get the library's own weights, so all three compute the same function.
  if (opts.engines.includes('ort') && opts.e2e) {
    const index = JSON.parse(fs.readFileSync(path.join(modelDir, 'weights.json'), 'utf8'));
    const buf = fs.readFileSync(path.join(modelDir, 'weights.bin'));
    const weights = unpackWeights(index, new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
    fs.writeFileSync(path.join(modelDir, 'googlenet.onnx'), encodeModel(graph, weights, { batch: 'N' }));
  }
  return { graph, prep, shapes: JSON.parse(text) };
}

// ---------------------------------------------------------------- end to end

const RELAXED_NODE_ARGS = ['--experimental-wasm-relaxed-simd'];

function e2eConfigs() {
  const configs = [];
  for (const engine of opts.engines) {
    const threads = engine === 'ours' ? opts.oursThreads : opts.threads;
    for (const t of threads) configs.push({ engine, threads: t, key: `${engine}@${t}` });
    // The relaxed-SIMD build (fused multiply-add): Chromium runs it by default, Node 20 behind a flag.
    if (engine === 'ours' && opts.relaxed) for (const t of threads) configs.push({ engine, threads: t, simd: 'relaxed', key: `ours-relaxed@${t}`, nodeArgs: RELAXED_NODE_ARGS });
    if (engine === 'tfjs' && opts.tfjsPlain && threads.includes(1)) configs.push({ engine, threads: 1, ops: 'plain', key: 'tfjs-plain@1', batches: [1] });
  }
  return configs;
}

async function runE2E(prep) {
  const configs = e2eConfigs();
  const perRound = Math.ceil(opts.runs / opts.rounds);
  const results = Object.fromEntries(configs.map((c) => [c.key, { ...c, rounds: [] }]));
  for (let r = 0; r < opts.rounds; r++) {
    const order = configs.map((_, i) => configs[(i + r) % configs.length]);
    for (const c of order) {
      const prev = results[c.key].rounds[0];
      if (prev && !prev.ok) continue; // a configuration that cannot run does not get retried
      const batches = (c.batches ?? [1, 8]).map((batch) => ({ batch, warmup: batch === 1 ? 2 : 1, runs: perRound }));
      const job = {
        kind: 'e2e',
        threads: c.threads,
        ops: c.ops,
        simd: c.simd ?? 'simd128',
        size: opts.size,
        seed: opts.seed,
        inputSeed: opts.inputSeed,
        modelDir,
        config: prep.config,
        batches,
        wasmCandidates: WASM_CANDIDATES[c.engine],
      };
      let res = await runChild(c.engine, job, { nodeArgs: c.nodeArgs });
      // Other processes took ≥ 0.5 CPU while this child was timed: run it again (at most
      // opts.retries times) and keep the best-conditioned run (the others stay in results.json).
      const bg = (x) => (x.ok ? Math.max(...x.batches.map((b) => b.bgCpus ?? 0)) : Infinity);
      const discarded = [];
      for (let retry = 0; retry < opts.retries && opts.quiet && res.ok && bg(res) >= 0.5; retry++) {
        log(`  [e2e ${r + 1}/${opts.rounds}] ${c.key.padEnd(13)} other processes used ${fmt(bg(res), 2)} CPUs meanwhile: again`);
        const again = await runChild(c.engine, job, { nodeArgs: c.nodeArgs });
        const [keep, drop] = bg(again) < bg(res) ? [again, res] : [res, again];
        discarded.push({ reason: 'background load', bgCpus: bg(drop), batches: drop.ok ? drop.batches.map((b) => ({ batch: b.batch, times: b.times, bgCpus: b.bgCpus })) : drop.error });
        res = keep;
      }
      if (discarded.length) res.discarded = discarded;
      results[c.key].rounds.push(res);
      if (res.ok && res.info?.distHash && res.info.distHash !== prep.distHash) log(`  warning: dist/ changed since the start of the run (rebuilt by someone else?): ${c.key} ran another build`);
      if (!res.ok) {
        log(`  [e2e ${r + 1}/${opts.rounds}] ${c.key.padEnd(13)} FAILED: ${res.error.split('\n')[0]}`);
        continue;
      }
      const cold = res.cold.firstResultEpoch - res.spawnEpoch;
      const med = (b) => {
        const t = [...b.times].sort((x, y) => x - y);
        return t[Math.floor(t.length / 2)];
      };
      log(
        `  [e2e ${r + 1}/${opts.rounds}] ${c.key.padEnd(13)} cold ${fmt(cold, 0)} ms; ` +
          res.batches.map((b) => `b${b.batch} ${fmt(med(b) / b.batch)} ms/img (cpu/wall ${fmt(b.cpuPerWall, 2)}, bg ${fmt(b.bgCpus, 2)})`).join(', '),
      );
    }
  }
  return results;
}

// ---------------------------------------------------------------- thread scaling, paired

/** Per round: batch size, GoogLeNet forwards and control forwards in each child's burst. */
const SCALING = { batch: 1, burst: 8, controlBurst: 40 };

/**
 * The 2-thread speed-up measured in pairs. It is a ratio of two runs of the same library,
 * and this machine's speed drifts over seconds (one process, one thread: 54 to 100 ms per
 * forward, in phases several seconds long), so two configurations timed a minute apart
 * measure the drift as much as the threads. Here a 1-thread and a 2-thread child stay
 * alive side by side and take turns: a burst of `burst` GoogLeNet forwards each (≈ 0.5 s)
 * and `controlBurst` of the control (see `bursts` in engines/ours.mjs), the one that goes
 * first alternating; then the native loop (lib/fp-loop.c) at 1 and at 2 threads. Each
 * round gives three ratios of medians: GoogLeNet's, the control's (the same kernels and
 * pool with nothing in the way) and the machine's own (no wasm, no memory).
 */
async function runScaling(rounds, { batch, burst, controlBurst } = SCALING) {
  const start = (threads) => {
    const job = { kind: 'bursts', threads, batch, size: opts.size, seed: opts.seed, inputSeed: opts.inputSeed, warmup: 5 };
    const child = spawn(process.execPath, [path.join(BENCH, 'engines', 'ours.mjs'), JSON.stringify(job)], { stdio: ['pipe', 'pipe', opts.verbose ? 'inherit' : 'ignore'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      for (;;) {
        const { value, done } = await lines.next();
        if (done) throw new Error(`bursts child (${threads} thread(s)) exited`);
        if (value.startsWith(MARK)) throw new Error(JSON.parse(value.slice(MARK.length + 1)).error ?? 'bursts child ended early');
        if (value.startsWith(BURST)) return value.slice(BURST.length + 1);
      }
    };
    return { threads, child, next, bursts: [], control: [] };
  };
  const native = nativeLoop();
  // Waits before starting the children: while they build their models they are the load.
  await waitForQuiet('paired thread scaling');
  const kids = [start(1), start(2)];
  const nativeMs = { 1: [], 2: [] };
  try {
    for (const k of kids) await k.next(); // ready
    for (let r = 0; r < rounds; r++) {
      for (const k of r % 2 ? [...kids].reverse() : kids) {
        k.child.stdin.write(`${burst} ${controlBurst}\n`);
        const times = JSON.parse(await k.next());
        k.bursts.push(times.net);
        k.control.push(times.control);
      }
      if (native.run) for (const t of r % 2 ? [2, 1] : [1, 2]) nativeMs[t].push(native.run(t));
    }
  } catch (e) {
    return { ok: false, error: String(e.message ?? e) };
  } finally {
    for (const k of kids) k.child.stdin.end('\n');
  }
  const pairRatios = (one, two) => one.map((m, i) => m / two[i]);
  const medians = (key) => kids.map((k) => k[key].map((times) => summarize(times).median));
  const ratios = pairRatios(...medians('bursts'));
  const controlRatios = pairRatios(...medians('control'));
  const nativeRatios = native.run ? pairRatios(nativeMs[1], nativeMs[2]) : null;
  const ms = (key) => Object.fromEntries(kids.map((k) => [k.threads, summarize(k[key].flat())]));
  return {
    ok: true,
    batch,
    burst,
    controlBurst,
    rounds,
    speedup: summarize(ratios),
    ms: ms('bursts'),
    ratios,
    control: { speedup: summarize(controlRatios), ms: ms('control'), ratios: controlRatios },
    // GoogLeNet's speed-up as a share of the control's in the same round.
    efficiency: summarize(ratios.map((v, i) => v / controlRatios[i])),
    native: nativeRatios ? { speedup: summarize(nativeRatios), ms: { 1: summarize(nativeMs[1]), 2: summarize(nativeMs[2]) }, ratios: nativeRatios } : { error: native.error },
    bursts: Object.fromEntries(kids.map((k) => [k.threads, k.bursts])),
  };
}

/**
 * lib/fp-loop.c compiled with the machine's C compiler (`run(threads)` → ms), or why
 * not (no compiler: the paired measurement then runs without it).
 */
function nativeLoop() {
  const exe = path.join(tmp, 'fp-loop');
  try {
    fs.mkdirSync(tmp, { recursive: true });
    execFileSync('cc', ['-O2', '-pthread', '-o', exe, path.join(BENCH, 'lib', 'fp-loop.c')], { stdio: 'pipe' });
  } catch (e) {
    return { error: `cc could not build bench/lib/fp-loop.c: ${String(e.stderr || e.message).split('\n')[0]}` };
  }
  return { run: (threads) => Number(execFileSync(exe, [String(threads)], { encoding: 'utf8' })) };
}

// ---------------------------------------------------------------- micro

function microCases(shapes) {
  const cases = [];
  const convs = shapes.convs;
  // Smoke: one shape of each kind (the stem convs, a 1×1, a 3×3, a 5×5) plus one pool of each stride.
  const pick = smoke
    ? new Set([convs.find((c) => c.k === 7), convs.find((c) => c.k === 3 && c.cin === 64), convs.find((c) => c.k === 1 && c.h === 14), convs.find((c) => c.k === 3 && c.h === 14), convs.find((c) => c.k === 5 && c.h === 28)].filter(Boolean).map((c) => c.id))
    : null;
  for (const c of convs) if (!pick || pick.has(c.id)) cases.push({ kind: 'conv', ...c, seed: seedOf(c.id) });
  const pools = shapes.maxpools;
  const pickPools = smoke ? new Set([pools.find((p) => p.s === 2)?.id, pools.find((p) => p.s === 1)?.id]) : null;
  for (const p of pools) if (!pickPools || pickPools.has(p.id)) cases.push({ kind: 'maxpool', ...p, seed: seedOf(p.id) });
  const inc = shapes.inception;
  cases.push({ kind: 'inception', id: inc.id, cfg: inc.cfg, h: inc.h, w: inc.w, macs: inc.macs, layers: [inc.name], seed: seedOf(inc.id) });
  return opts.filter ? cases.filter((c) => opts.filter.test(c.id)) : cases;
}

/**
 * Each case runs in a fresh process per engine configuration: kernels measured one after
 * another in one process disturb each other (onnxruntime-web's Inception-3a session ran
 * 10–60 ms depending on which sessions came before it). The configurations of one case
 * run back to back (order rotated per case), so a change of background load hits them alike.
 */
async function runMicro(shapes, e2eResults) {
  const cases = microCases(shapes);
  const configs = [];
  for (const engine of opts.engines) {
    for (const t of engine === 'ours' ? opts.oursThreads : opts.threads) {
      // A peer configuration that could not start end to end is not retried here.
      const failed = e2eResults?.[`${engine}@${t}`]?.rounds?.[0];
      if (failed && !failed.ok) continue;
      configs.push({ engine, threads: t, key: `${engine}@${t}` });
    }
  }
  const results = Object.fromEntries(configs.map((c) => [c.key, { ...c, rounds: [] }]));
  const m = opts.micro;
  const t0 = performance.now();
  for (let r = 0; r < m.rounds; r++) {
    for (const [i, mc] of cases.entries()) {
      await waitForQuiet(`micro ${mc.id}`, { sampleMs: 300 });
      const order = configs.map((_, j) => configs[(j + i + r) % configs.length]);
      const line = [];
      for (const c of order) {
        if (results[c.key].failed) continue;
        const job = { kind: 'micro', threads: c.threads, cases: [mc], samples: m.samples, warmup: m.warmup, warmupMs: m.warmupMs, minSampleMs: m.minSampleMs, wasmCandidates: WASM_CANDIDATES[c.engine] };
        const res = await runChild(c.engine, job, { quiet: false });
        results[c.key].rounds.push(res);
        if (!res.ok) {
          // The engine could not start at all: no point in trying it on the other cases.
          results[c.key].failed = true;
          log(`  [micro] ${c.key} FAILED: ${res.error.split('\n')[0]}`);
          continue;
        }
        const x = res.cases[0];
        const t = x.ok ? [...x.times].sort((a, b) => a - b)[Math.floor(x.times.length / 2)] : NaN;
        line.push(`${c.key} ${x.ok ? (mc.macs ? `${fmt((2 * mc.macs) / t / 1e6)}` : `${fmt(t, 3)} ms`) : `error: ${x.error}`}`);
      }
      const unit = mc.macs ? ' (GFLOP/s)' : '';
      log(`  [micro ${r * cases.length + i + 1}/${m.rounds * cases.length}] ${mc.id}${unit}: ${line.sort().join(', ')}`);
    }
  }
  log(`  micro: ${fmt((performance.now() - t0) / 1000, 0)} s`);
  for (const c of Object.values(results)) delete c.failed;
  return { cases, results };
}

// ---------------------------------------------------------------- main

const rawFile = path.join(tmp, `raw${smoke ? '-smoke' : ''}.json`);
if (args.flags.has('rerender')) {
  const raw = JSON.parse(fs.readFileSync(rawFile, 'utf8'));
  const files = writeReports({ ...raw, opts: { ...raw.opts, out: opts.out }, out: opts.out });
  log(`re-rendered ${files.written.map((f) => path.relative(ROOT, f)).join(', ')} from ${path.relative(ROOT, rawFile)}`);
  process.exit(0);
}

const started = new Date();
const t0 = performance.now();
const info = machineInfo();
info.command = process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}  (${process.env.npm_lifecycle_script})` : `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim();
info.date = started.toISOString();
log(`inception-wasm bench${smoke ? ' (smoke)' : ''}: ${info.cpuModel}, ${info.logicalCpus} CPUs, Node ${info.node}, load ${info.loadAvgStart.map((x) => x.toFixed(2)).join(' ')}`);
log(`engines ${opts.engines.join(', ')}; peer threads ${opts.threads.join(',')}; ours threads ${opts.oursThreads.join(',')}; ${opts.rounds} round(s), ${opts.runs} runs per batch size`);

const { prep, shapes } = await prepare(info);
log(`library ${info.library.version} (${info.git.commit}${info.git.dirty ? ', ts/ or crates/ modified' : ''}): ${info.library.totalParams.toLocaleString('en-US')} params, ${info.library.totalMacs.toLocaleString('en-US')} MACs; graph checked against summary()`);

let e2e = null;
if (opts.e2e) {
  log('end to end: GoogLeNet 224×224, batch 1 and 8');
  e2e = await runE2E(prep);
}
let scaling = null;
if (opts.scalingRounds > 0 && opts.engines.includes('ours') && opts.oursThreads.includes(2)) {
  log(`paired thread scaling: ${opts.scalingRounds} rounds of ${SCALING.burst} GoogLeNet forwards (batch ${SCALING.batch}), ${SCALING.controlBurst} of the control and the native loop, at 1 and at 2 threads, alternating`);
  scaling = await runScaling(opts.scalingRounds);
  if (scaling.ok) {
    log(`  speed-up ${fmt(scaling.speedup.median, 2)}× (p10 ${fmt(scaling.speedup.p10, 2)}, p90 ${fmt(scaling.speedup.p90, 2)}); ${fmt(scaling.ms[1].median)} → ${fmt(scaling.ms[2].median)} ms`);
    log(`  control ${fmt(scaling.control.speedup.median, 2)}×, native loop ${scaling.native.speedup ? `${fmt(scaling.native.speedup.median, 2)}×` : scaling.native.error}`);
  } else log(`  FAILED: ${scaling.error.split('\n')[0]}`);
}
let micro = null;
if (opts.doMicro) {
  log('micro: conv shapes, max-pools, inception 3a (batch 1)');
  micro = await runMicro(shapes, e2e);
}
// The GEMM against the in-cache microkernel peak (bench/gemm.mjs, bench exports of the module).
if (opts.doMicro && opts.engines.includes('ours')) {
  log('micro: GEMM on the 1×1 shapes vs the in-cache microkernel peak (bench/gemm.mjs)');
  await waitForQuiet('gemm');
  const file = path.join(tmp, 'gemm.json');
  try {
    execFileSync(process.execPath, [path.join(BENCH, 'gemm.mjs'), '--seconds', smoke ? '5' : '30', '--json', file], { stdio: ['ignore', 'ignore', 'inherit'] });
    micro.gemm = JSON.parse(fs.readFileSync(file, 'utf8'));
    log(`  peak ${fmt(micro.gemm.peakGflops)} GFLOP/s; 1×1 layers ${fmt(micro.gemm.weightedGflops)} GFLOP/s = ${fmt(micro.gemm.weightedPercent, 0)} % of it (worst shape ${fmt(micro.gemm.worstPercent, 0)} %)`);
  } catch (e) {
    micro.gemm = { error: String(e.message ?? e) };
    log(`  FAILED: ${micro.gemm.error.split('\n')[0]}`);
  }
}

let soak = null;
if (opts.soak > 0 && opts.engines.includes('ours')) {
  log(`memory soak: ${opts.soak.toLocaleString('en-US')} GoogLeNet inferences (inception-wasm, 1 thread, batch 1)`);
  soak = await runChild('ours', { kind: 'soak', seed: opts.seed, size: opts.size, inputSeed: opts.inputSeed, inferences: opts.soak }, { timeoutMs: 60 * 60_000, nodeArgs: ['--expose-gc'] });
  if (soak.ok) log(`  RSS ${fmt(soak.samples[0].rssMiB)} MiB after the first inference, ${fmt(soak.samples.at(-1).rssMiB)} MiB after ${soak.samples.at(-1).i}; ${fmt(soak.allocationsPerInference, 2)} allocations per inference`);
  else log(`  FAILED: ${soak.error.split('\n')[0]}`);
}
// Training against PyTorch (bench/train.mjs): its own pairs of fresh processes; its rows here.
let train = null;
if (opts.train && opts.engines.includes('ours')) {
  log(`training step and eval forward vs PyTorch 1.13 CPU (bench/train.mjs${smoke ? ' --quick' : ''})`);
  await waitForQuiet('train');
  try {
    const argv = [path.join(BENCH, 'train.mjs'), '--json', ...(smoke ? ['--quick'] : ['--out', opts.out]), ...(opts.quiet ? [] : ['--no-wait'])];
    const rows = JSON.parse(execFileSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 }));
    train = { ok: true, quick: smoke, rows };
    for (const r of rows) log(`  ${r.inference ? 'eval forward' : 'train step  '} b${r.batch} ${r.size}×${r.size} ${r.threads}t: ours ${fmt(r.oursMs)} ms, torch ${fmt(r.torchMs)} ms, ours ÷ torch ${fmt(r.ratio, 2)}×`);
  } catch (e) {
    // A failing case still prints its rows (with errors) and exits 1.
    let rows = null;
    try {
      rows = JSON.parse(e.stdout);
    } catch {
      // no rows
    }
    train = { ok: false, quick: smoke, rows, error: String(e.message ?? e).split('\n')[0] };
    log(`  FAILED: ${train.error}`);
  }
}

info.loadAvgEnd = os.loadavg();
info.waitedForQuietS = waitedTotalMs / 1000;
info.durationS = (performance.now() - t0) / 1000;

const reportOpts = { ...opts, filter: opts.filter?.source ?? null };
fs.mkdirSync(tmp, { recursive: true });
fs.writeFileSync(rawFile, JSON.stringify({ opts: reportOpts, info, prep, shapes, e2e, scaling, micro, soak, train }));
const files = writeReports({ opts: reportOpts, info, prep, shapes, e2e, scaling, micro, soak, train, out: opts.out });
log(`\n${files.summary}`);
log(`wrote ${files.written.map((f) => path.relative(ROOT, f)).join(', ')} in ${fmt(info.durationS, 0)} s`);
if (files.problems.length) {
  console.error(`\nbench: ${files.problems.length} problem(s):\n  ${files.problems.join('\n  ')}`);
  process.exitCode = 1;
}
