#!/usr/bin/env node
// Training-step benchmark (`npm run bench:train`; issues 16 and 17): inception-wasm against
// PyTorch 1.13 CPU (Debian's /usr/bin/python3 with python3-torch and python3-torchvision),
// the same network, batch, input size and thread count, as ratios.
//
//   node bench/train.mjs [options]
//
// Network: torchvision's GoogLeNet with both auxiliary heads, 10 classes, in training mode
// (BatchNorm on batch statistics, dropout 0.2 / 0.7 as torchvision's defaults):
//   ours   new GoogLeNet({ variant: 'torchvision', numClasses: 10, auxLogits: true });
//          opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9 }); each step
//          opt.zeroGrad(); loss = googlenetLoss(net.forwardAll(x), t); loss.backward(); opt.step()
//   torch  torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False,
//          num_classes=10).train(); torch.optim.SGD(lr=0.01, momentum=0.9); the same step
//          with loss = CE(main) + 0.3·(CE(aux1) + CE(aux2))
// Inference rows (`inference: true`): the same network in eval mode — ours net.eval();
// net.forward(x) (the planned, BatchNorm-folded path), torch net.eval() under no_grad().
// Cases: batch 64 at 32×32 and batch 8 at 224×224, at 1 and 2 threads (ours
// init({ threads }), torch set_num_threads), training and inference.
//
// Method: every measurement is a fresh child process that runs one case — warm-up steps,
// then timed steps; its median is one sample. For each case the two engines run as a
// pair, one after the other, never at the same time (ours first in even pairs, torch first
// in odd ones); the pairs of all cases interleave (pair 1 of every case, then pair 2, …) so
// that the shared machine's drift falls on every case alike. Before each child the parent
// waits (bounded) for other processes to leave the CPUs idle. Reported: the median of the
// per-process medians per engine, their min–max, ratio = ours ÷ torch of those medians
// (> 1: inception-wasm slower) with the min–max of the per-pair ratios, each phase's
// median (zeroGrad / forward / loss / backward / step), ours' WebAssembly memory after the
// steps (it never shrinks: the peak) and both processes' max RSS.
//
// Options:
//   --pairs P              processes per engine and case (default 3; quick 1)
//   --steps N              timed training steps per process (default 5; quick 1)
//   --inference-steps N    timed inference forwards per process (default 10; quick 1)
//   --warmup W             untimed steps first (default 2, inference forwards at least 3;
//                          quick 0: the one timed step then includes the first step's set-up)
//   --threads 1,2          thread counts (default 1,2)
//   --cases 64x32,8x224    batch x size (default both)
//   --modes train,inference  (default both)
//   --quick                CI smoke: tiny counts, nothing written
//   --json                 print exactly one JSON array of rows on stdout (progress on stderr)
//   --out DIR              where train.json / train.md go (default bench/results)
//   --no-write             write nothing
//   --no-wait              do not wait for a quiet machine before each child
//   --verbose              echo the children's stderr
//   --rerender             only rewrite train.md from train.json (in --out)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MARK } from './lib/child.mjs';
import { summarize, systemBusyMs } from './lib/stats.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const PYTHON = '/usr/bin/python3';

const { values: a } = parseArgs({
  options: {
    pairs: { type: 'string' },
    steps: { type: 'string' },
    'inference-steps': { type: 'string' },
    warmup: { type: 'string' },
    threads: { type: 'string', default: '1,2' },
    cases: { type: 'string', default: '64x32,8x224' },
    modes: { type: 'string', default: 'train,inference' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    'no-wait': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    rerender: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
  console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const quick = a.quick;
const int = (v, d) => {
  const n = v === undefined ? d : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${v}`);
  return n;
};
const opts = {
  quick,
  pairs: Math.max(1, int(a.pairs, quick ? 1 : 3)),
  steps: Math.max(1, int(a.steps, quick ? 1 : 5)),
  inferenceSteps: Math.max(1, int(a['inference-steps'], quick ? 1 : 10)),
  warmup: int(a.warmup, quick ? 0 : 2),
  threads: a.threads.split(',').map(Number),
  cases: a.cases.split(',').map((c) => {
    const m = /^(\d+)x(\d+)$/.exec(c.trim());
    if (!m) throw new Error(`--cases: expected BATCHxSIZE, got ${c}`);
    return { batch: Number(m[1]), size: Number(m[2]) };
  }),
  modes: a.modes.split(',').map((m) => m.trim()),
  write: !quick && !a['no-write'],
  out: path.resolve(a.out ?? path.join(BENCH, 'results')),
  wait: !a['no-wait'],
  // The network and the optimiser (the issue's configuration).
  classes: 10,
  lr: 0.01,
  momentum: 0.9,
  seed: 0,
  inputSeed: 1,
};
for (const m of opts.modes) if (!['train', 'inference'].includes(m)) throw new Error(`--modes: train or inference, got ${m}`);

// Progress goes to stderr, so that --json leaves stdout to the one array.
const log = (...x) => console.error(...x);
const fmt = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toFixed(d));

// ---------------------------------------------------------------- children

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const QUIET = { threshold: 0.3, sampleMs: quick ? 200 : 1000, maxWaitMs: quick ? 2_000 : 30_000, totalMaxWaitMs: quick ? 8_000 : 300_000 };
let waitedMs = 0;

/** Waits (bounded) until other processes leave the CPUs idle; returns the CPUs they used last. */
async function waitForQuiet(what) {
  if (!opts.wait || systemBusyMs() === null) return null;
  const t0 = performance.now();
  let said = false;
  for (;;) {
    const b0 = systemBusyMs();
    await sleep(QUIET.sampleMs);
    const bg = (systemBusyMs() - b0) / QUIET.sampleMs;
    const waited = performance.now() - t0;
    if (bg <= QUIET.threshold || waited >= QUIET.maxWaitMs || waitedMs + waited >= QUIET.totalMaxWaitMs) {
      waitedMs += waited;
      if (said) log(`    … ${bg <= QUIET.threshold ? 'quiet' : 'still busy'} after ${fmt(waited / 1000)} s`);
      return bg;
    }
    if (!said) log(`    (other processes keep ${fmt(bg, 2)} CPUs busy: waiting up to ${fmt(QUIET.maxWaitMs / 1000, 0)} s before ${what})`);
    said = true;
  }
}

/** Runs one child (`ours` or `torch`) on a job; resolves with its result line. */
async function runChild(engine, job, timeoutMs = 15 * 60_000) {
  const bgBefore = await waitForQuiet(`${engine} ${job.kind} b${job.batch} ${job.size}² ${job.threads}t`);
  const [cmd, argv, env] =
    engine === 'ours'
      ? [process.execPath, [path.join(BENCH, 'lib', 'train-ours.mjs'), JSON.stringify(job)], process.env]
      : // OMP/MKL variables as well as set_num_threads: no pool sized from the environment.
        [PYTHON, [path.join(BENCH, 'lib', 'train-torch.py'), JSON.stringify(job)], { ...process.env, OMP_NUM_THREADS: String(job.threads), MKL_NUM_THREADS: String(job.threads) }];
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (a.verbose) process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      const result = line ? JSON.parse(line.slice(MARK.length + 1)) : { ok: false, engine, error: `no result line (exit ${code}${signal ? `, ${signal}` : ''})\n${err.slice(-2000)}` };
      result.processS = (performance.now() - t0) / 1000;
      result.bgCpusBefore = bgBefore;
      if (!result.ok && !result.stderr) result.stderr = err.slice(-2000);
      resolve(result);
    });
  });
}

/** Whether /usr/bin/python3 has torch and torchvision (else the torch side is reported as unavailable). */
function torchAvailable() {
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision; print(torch.__version__, torchvision.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? { ok: true, versions: r.stdout.trim() } : { ok: false, error: (r.error?.message ?? r.stderr ?? '').trim().split('\n').at(-1) };
}

// ---------------------------------------------------------------- run

/**
 * When dist/ (what the children import) was built, and whether files under ts/ or crates/
 * changed after that — the tree may be edited while dist/ stays the last build.
 */
function distInfo() {
  const built = fs.statSync(path.join(ROOT, 'dist', 'index.js')).mtimeMs;
  const newer = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (fs.statSync(f).mtimeMs > built) newer.push(path.relative(ROOT, f));
    }
  };
  for (const d of ['ts', 'crates']) walk(path.join(ROOT, d));
  return { builtAt: new Date(built).toISOString(), sourcesChangedSince: newer };
}

function machineInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  let commit = null;
  const g = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (g.status === 0) commit = g.stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'ts', 'crates'], { cwd: ROOT, encoding: 'utf8' });
  return {
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim(),
    logicalCpus: os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    loadAvgStart: os.loadavg(),
    git: { commit, dirty: dirty.status === 0 ? dirty.stdout.trim() !== '' : null },
    dist: distInfo(),
    date: new Date().toISOString(),
    command: process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}` : `node bench/train.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  };
}

// The run's metadata and rows (the reports read them; --rerender takes them from train.json).
let info = null;
let rows = null;
if (a.rerender) {
  const file = path.join(opts.out, 'train.json');
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  Object.assign(opts, doc.settings);
  info = doc.machine;
  rows = doc.rows;
  const md = markdown();
  fs.writeFileSync(path.join(opts.out, 'train.md'), md);
  log(`re-rendered ${path.relative(ROOT, path.join(opts.out, 'train.md'))} from ${path.relative(ROOT, file)}`);
  process.exit(0);
}

const t0 = performance.now();
info = machineInfo();
const torch = torchAvailable();
const cases = [];
for (const mode of opts.modes) for (const c of opts.cases) for (const threads of opts.threads) cases.push({ kind: mode, ...c, threads });
log(`inception-wasm training benchmark${quick ? ' (quick)' : ''}: ${info.cpuModel}, ${info.logicalCpus} CPUs, Node ${info.node}, load ${info.loadAvgStart.map((x) => x.toFixed(2)).join(' ')}`);
log(`torch: ${torch.ok ? torch.versions : `not available (${torch.error})`}; ${cases.length} cases × ${opts.pairs} pair(s); ${opts.warmup} warm-up + ${opts.steps} timed training steps (${opts.inferenceSteps} inference forwards) per process`);

const results = cases.map((c) => ({ ...c, ours: [], torch: [] }));
for (let p = 0; p < opts.pairs; p++) {
  for (const r of results) {
    const job = {
      kind: r.kind,
      batch: r.batch,
      size: r.size,
      threads: r.threads,
      classes: opts.classes,
      lr: opts.lr,
      momentum: opts.momentum,
      seed: opts.seed,
      inputSeed: opts.inputSeed,
      warmup: r.kind === 'train' ? opts.warmup : quick ? opts.warmup : Math.max(opts.warmup, 3),
      steps: r.kind === 'train' ? opts.steps : opts.inferenceSteps,
    };
    const order = p % 2 === 0 ? ['ours', 'torch'] : ['torch', 'ours'];
    const line = [];
    for (const engine of order) {
      if (engine === 'torch' && !torch.ok) continue;
      const res = await runChild(engine, job);
      res.pair = p;
      r[engine].push(res);
      if (!res.ok) {
        line.push(`${engine} FAILED: ${res.error.trim().split('\n').at(-1)}`);
        continue;
      }
      const ph = Object.entries(res.phases).length > 1 ? ` [${['forward', 'backward', 'step'].map((k) => `${k[0]} ${fmt(res.phases[k], 0)}`).join(' ')}]` : '';
      line.push(`${engine} ${fmt(res.median)} ms${ph} (cpu/wall ${fmt(res.cpuPerWall, 2)}, bg ${fmt(res.bgCpus, 2)})`);
    }
    log(`  [pair ${p + 1}/${opts.pairs}] ${label(r).padEnd(26)} ${line.join('; ')}`);
  }
}

function label(r) {
  return `${r.kind === 'train' ? 'train' : 'infer'} b${r.batch} ${r.size}×${r.size} ${r.threads}t`;
}

// ---------------------------------------------------------------- rows

const r1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10) / 10);
const r3 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);

rows = results.map((r) => {
  const ok = (xs) => xs.filter((x) => x.ok);
  const [o, t] = [ok(r.ours), ok(r.torch)];
  const so = o.length ? summarize(o.map((x) => x.median)) : null;
  const st = t.length ? summarize(t.map((x) => x.median)) : null;
  // Per-pair ratios: the two processes of a pair ran one right after the other.
  const pairRatios = o.flatMap((x) => {
    const y = t.find((z) => z.pair === x.pair);
    return y ? [x.median / y.median] : [];
  });
  const sr = pairRatios.length ? summarize(pairRatios) : null;
  const phases = (xs) => (xs.length ? Object.fromEntries(Object.keys(xs[0].phases).map((k) => [k, r1(summarize(xs.map((x) => x.phases[k])).median)])) : null);
  const max = (xs) => (xs.length ? Math.max(...xs) : null);
  const row = {
    batch: r.batch,
    size: r.size,
    threads: r.threads,
    oursMs: r1(so?.median),
    torchMs: r1(st?.median),
    ratio: so && st ? r3(so.median / st.median) : null,
  };
  if (r.kind === 'inference') row.inference = true;
  Object.assign(row, {
    oursSpreadMs: so ? [r1(so.min), r1(so.max)] : null,
    torchSpreadMs: st ? [r1(st.min), r1(st.max)] : null,
    ratioSpread: sr ? [r3(sr.min), r3(sr.max)] : null,
    oursProcessMs: o.map((x) => r1(x.median)),
    torchProcessMs: t.map((x) => r1(x.median)),
    oursPhasesMs: phases(o),
    torchPhasesMs: phases(t),
    oursPeakMiB: r1(max(o.map((x) => x.memory.wasmMiB))),
    oursMaxRssMiB: r1(max(o.map((x) => x.memory.maxRssMiB))),
    torchMaxRssMiB: r1(max(t.map((x) => x.memory.maxRssMiB))),
    oursCpuPerWall: r3(max(o.map((x) => x.cpuPerWall))),
    torchCpuPerWall: r3(max(t.map((x) => x.cpuPerWall))),
    bgCpusMax: r3(max([...o, ...t].map((x) => x.bgCpus ?? 0))),
    processes: { ours: o.length, torch: t.length },
  });
  const failed = [...r.ours, ...r.torch].filter((x) => !x.ok);
  if (failed.length) row.errors = failed.map((x) => `${x.engine}: ${x.error.trim().split('\n').at(-1)}`);
  return row;
});

info.loadAvgEnd = os.loadavg();
info.waitedForQuietS = waitedMs / 1000;
info.durationS = (performance.now() - t0) / 1000;
const anyOurs = results.flatMap((r) => r.ours).find((x) => x.ok);
const anyTorch = results.flatMap((r) => r.torch).find((x) => x.ok);
info.library = anyOurs?.info ? { version: anyOurs.info.version, simd: anyOurs.info.simd, distHashes: [...new Set(results.flatMap((r) => r.ours).filter((x) => x.ok).map((x) => x.info.distHash))] } : null;
info.torch = anyTorch?.info ? { torch: anyTorch.info.torch, torchvision: anyTorch.info.torchvision, mkldnn: anyTorch.info.mkldnn, cpuCapability: anyTorch.info.cpuCapability } : torch.ok ? null : { unavailable: torch.error };
if (info.library?.distHashes.length > 1) log(`warning: dist/ changed during the run (${info.library.distHashes.length} builds loaded): re-run on a quiet tree`);

// ---------------------------------------------------------------- reports

function spread(s) {
  return s ? `${fmt(s[0])}–${fmt(s[1])}` : '—';
}
function table(md) {
  const L = [];
  const head = ['mode', 'batch', 'input', 'threads', 'ours ms (min–max)', 'torch ms (min–max)', 'ours ÷ torch (pairs min–max)', 'ours wasm MiB', 'ours / torch max RSS MiB'];
  const cells = rows.map((r) => [
    r.inference ? 'inference' : 'train step',
    String(r.batch),
    `${r.size}×${r.size}`,
    String(r.threads),
    `${fmt(r.oursMs)} (${spread(r.oursSpreadMs)})`,
    `${fmt(r.torchMs)} (${spread(r.torchSpreadMs)})`,
    `${r.ratio === null ? '—' : `${md ? '**' : ''}${fmt(r.ratio, 2)}×${md ? '**' : ''}`} (${r.ratioSpread ? `${fmt(r.ratioSpread[0], 2)}–${fmt(r.ratioSpread[1], 2)}` : '—'})`,
    fmt(r.oursPeakMiB, 0),
    `${fmt(r.oursMaxRssMiB, 0)} / ${fmt(r.torchMaxRssMiB, 0)}`,
  ]);
  if (md) {
    L.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const c of cells) L.push(`| ${c.join(' | ')} |`);
  } else {
    const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c) => c.map((x, i) => (i < 4 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
    L.push(line(head));
    for (const c of cells) L.push(line(c));
  }
  return L.join('\n');
}
function phaseTable(md) {
  const train = rows.filter((r) => !r.inference && (r.oursPhasesMs || r.torchPhasesMs));
  if (!train.length) return '';
  const ph = (p) => (p ? `${fmt(p.forward)} / ${fmt(p.backward)} / ${fmt(p.step)}` : '—');
  const head = ['batch', 'input', 'threads', 'ours forward / backward / step ms', 'torch forward / backward / step ms', 'backward ÷ torch\'s'];
  const cells = train.map((r) => [String(r.batch), `${r.size}×${r.size}`, String(r.threads), ph(r.oursPhasesMs), ph(r.torchPhasesMs), r.oursPhasesMs && r.torchPhasesMs ? `${fmt(r.oursPhasesMs.backward / r.torchPhasesMs.backward, 2)}×` : '—']);
  if (md) return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...cells.map((c) => `| ${c.join(' | ')} |`)].join('\n');
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  return [head, ...cells].map((c) => c.map((x, i) => (i < 3 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ')).join('\n');
}

function markdown() {
  const L = [];
  const p = (s = '') => L.push(s);
  p('# Training step: inception-wasm vs PyTorch 1.13 CPU');
  p();
  const dist = info.dist;
  const changed = dist?.sourcesChangedSince ?? [];
  p(`Made by \`${info.command}\` on ${info.date.slice(0, 16).replace('T', ' ')} UTC, in ${fmt(info.durationS, 0)} s (git ${info.git.commit}${info.git.dirty ? ', with uncommitted changes in ts/ or crates/' : ''}; dist/ built ${dist ? `${dist.builtAt.slice(0, 19).replace('T', ' ')} UTC${changed.length ? `, before later edits to ${changed.join(', ')} — those are not in what ran` : ', nothing in ts/ or crates/ changed since'}` : '—'}).`);
  p();
  p(`- Machine: ${info.cpuModel}, ${info.logicalCpus} logical CPUs, ${info.memGiB} GiB, shared (compare ratios, not absolute times); load average ${info.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${info.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at the end.`);
  p(`- inception-wasm ${info.library?.version ?? '—'} (package.json at the time) from dist/ (${info.library?.simd ?? '—'} build), Node ${info.node}; PyTorch ${info.torch?.torch ?? '—'} / torchvision ${info.torch?.torchvision ?? '—'} (Debian, oneDNN ${info.torch?.mkldnn ? 'on' : 'off'}, ${info.torch?.cpuCapability ?? '?'}).`);
  p(`- torchvision's GoogLeNet with both auxiliary heads, 10 classes; training step = zero grad, training-mode forward (BatchNorm on batch statistics, dropout), loss main + 0.3·(aux1 + aux2), backward, SGD (lr 0.01, momentum 0.9). Inference = eval-mode forward (ours: the planned, BatchNorm-folded path; torch: \`no_grad\`).`);
  p(`- ${opts.pairs} fresh process(es) per engine and case, alternating (never both at once); per process ${opts.warmup} warm-up + ${opts.steps} timed training steps (${Math.max(opts.warmup, 3)} + ${opts.inferenceSteps} inference forwards), its median one sample. ms = median of the per-process medians (min–max); ratio = ours ÷ torch of those medians, **> 1: inception-wasm slower** (min–max of the per-pair ratios). Waited ${fmt(info.waitedForQuietS, 0)} s in total for a quiet machine; worst CPUs used by other processes while a case was timed: ${fmt(Math.max(...rows.map((r) => r.bgCpusMax ?? 0)), 2)}.`);
  p(`- Memory: ours' WebAssembly memory after the steps (it never shrinks, so its peak); max RSS of each process (\`process.resourceUsage().maxRSS\`, \`resource.getrusage\`), interpreter and libraries included.`);
  p();
  p(table(true));
  p();
  const ph = phaseTable(true);
  if (ph) {
    p('Training step by phase (medians over processes of per-process medians; zero grad and the loss are left out, < 1 % here):');
    p();
    p(ph);
    p();
  }
  const errs = rows.flatMap((r) => (r.errors ?? []).map((e) => `${r.inference ? 'inference' : 'train'} b${r.batch} ${r.size}² ${r.threads}t ${e}`));
  if (errs.length) p(`Failures: ${errs.join('; ')}\n`);
  p('Raw numbers: `train.json` (same directory): `rows` as `node bench/train.mjs --json` prints them, `runs` every process.');
  return `${L.join('\n')}\n`;
}

const problems = rows.flatMap((r) => r.errors ?? []);
if (!torch.ok) log(`note: PyTorch is not available (${torch.error}): only inception-wasm ran`);

if (opts.write) {
  fs.mkdirSync(opts.out, { recursive: true });
  const doc = {
    about: 'inception-wasm vs PyTorch 1.13 CPU: a training step (and an eval forward, inference: true) of torchvision GoogLeNet with aux heads; ms = median of per-process medians; ratio = oursMs / torchMs (> 1: inception-wasm slower).',
    machine: info,
    settings: { pairs: opts.pairs, steps: opts.steps, inferenceSteps: opts.inferenceSteps, warmup: opts.warmup, threads: opts.threads, cases: opts.cases, modes: opts.modes, classes: opts.classes, lr: opts.lr, momentum: opts.momentum },
    rows,
    runs: results.map((r) => ({ kind: r.kind, batch: r.batch, size: r.size, threads: r.threads, ours: r.ours, torch: r.torch })),
  };
  fs.writeFileSync(path.join(opts.out, 'train.json'), `${JSON.stringify(doc, null, 1)}\n`);
  fs.writeFileSync(path.join(opts.out, 'train.md'), markdown());
  log(`wrote ${path.relative(ROOT, path.join(opts.out, 'train.json'))}, ${path.relative(ROOT, path.join(opts.out, 'train.md'))}`);
}

if (a.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
else {
  console.log(`\n${table(false)}\n`);
  const ph = phaseTable(false);
  if (ph) console.log(`training step by phase:\n${ph}\n`);
  console.log('ratio = ours ÷ torch (> 1: inception-wasm slower); ms = median of per-process medians (min–max)');
}
log(`${fmt(info.durationS, 0)} s`);
if (problems.length) {
  log(`\nbench:train: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
}
