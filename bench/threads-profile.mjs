#!/usr/bin/env node
// Where a threaded GoogLeNet forward loses time, stage by stage.
//
//   node bench/threads-profile.mjs [--pairs N] [--threads T] [--batch B] [--size S] [--no-build] [--json FILE]
//
//   --pairs N    serial/threaded pairs of forwards (default 200; a multiple of 50)
//   --threads T  pool size (default 2)
//   --batch B    images per forward (default 1)
//   --size S     input height and width (default 224)
//   --variant V  GoogLeNet variant (default the library's; `torchvision` is bench/train.mjs's)
//   --no-build   reuse target/profile/ from the last run
//   --json FILE  also write the summed stages as JSON
//
// Builds the threaded module with the kernels' `profile` feature (WASM_BUILDS=profile →
// target/profile/wasm-threads, PROFILE_DIST=1 tsup → target/profile/dist; never shipped),
// then runs one GoogLeNet whose forwards alternate: every other one runs all its tasks on
// the calling thread (the same tasks, so the same work), the rest on the pool
// (crates/kernels/src/plan/profile.rs). The two halves of a pair are tens of
// milliseconds apart, so the machine's drift (seconds) hits both alike. Per stage:
//   serial    ms of the stage run alone
//   threaded  ms of wall time on the pool
//   busy      ms inside tasks, all threads: busy ÷ serial − 1 is how much slower tasks
//             ran side by side than alone ("inflation")
//   idle      threads × threaded − busy: waiting at the stage's barrier
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values: args } = parseArgs({
  options: {
    pairs: { type: 'string', default: '200' },
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '1' },
    size: { type: 'string', default: '224' },
    variant: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const [pairs, threads, batch, size] = [Number(args.pairs), Number(args.threads), Number(args.batch), Number(args.size)];
const PER_REPORT = 50; // profile::PAIRS
if (!(pairs > 0 && pairs % PER_REPORT === 0)) throw new Error(`--pairs must be a positive multiple of ${PER_REPORT}`);

if (!args['no-build']) {
  const run = (cmd, cmdArgs, env) => execFileSync(cmd, cmdArgs, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  run('bash', ['scripts/build-wasm.sh'], { WASM_BUILDS: 'profile' });
  run('npx', ['tsup', '--silent'], { PROFILE_DIST: '1' });
}

// The module reports through console.log, one JSON line per PER_REPORT pairs of one plan.
const reports = [];
const log = console.log;
console.log = (line, ...rest) => {
  if (typeof line === 'string' && line.startsWith('{"pairs"')) reports.push(JSON.parse(line));
  else log(line, ...rest);
};

const lib = await import(path.join(ROOT, 'target/profile/dist/index.js'));
await lib.init({ threads });
if (lib.threadCount() !== threads) throw new Error(`running ${lib.threadCount()} thread(s), ${threads} requested`);
const net = new lib.GoogLeNet({ numClasses: 1000, seed: 0, ...(args.variant ? { variant: args.variant } : {}) });
const x = lib.Tensor.fromArray(new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i)), [batch, 3, size, size]);
for (let i = 0; i < 2 * PER_REPORT; i++) net.forward(x).dispose(); // warm-up: one whole report
reports.length = 0;
for (let i = 0; i < 2 * pairs; i++) net.forward(x).dispose();
console.log = log;
if (reports.length !== pairs / PER_REPORT) throw new Error(`${reports.length} reports for ${pairs} pairs`);

// Per stage, per pair: serial, threaded wall (thread 0's), busy and tasks of each thread.
const stages = reports[0].stages.map((s, i) => {
  const sum = (f) => reports.reduce((acc, r) => acc + f(r.stages[i]), 0) / pairs;
  return {
    steps: s.steps,
    serial: sum((r) => r.serial),
    threaded: sum((r) => r.threads[0][0]),
    busy: s.threads.map((_, t) => sum((r) => r.threads[t][1])),
    tasks: s.threads.map((_, t) => sum((r) => r.threads[t][2])),
  };
});
const total = (f) => stages.reduce((acc, s) => acc + f(s), 0);
const busyOf = (s) => s.busy.reduce((a, b) => a + b, 0);
const f = (v, d = 2) => v.toFixed(d);

log(`GoogLeNet ${batch}×3×${size}×${size}, ${threads} threads, ${pairs} pairs of forwards (ms per forward)\n`);
log('| stage | steps (tasks) | serial | threaded | speed-up | busy ÷ serial | idle | tasks per thread |');
log('|---|---|---|---|---|---|---|---|');
stages.forEach((s, i) => {
  const idle = threads * s.threaded - busyOf(s);
  log(`| ${i} | ${s.steps.join('; ')} | ${f(s.serial)} | ${f(s.threaded)} | ${f(s.serial / s.threaded)}× | ${f(busyOf(s) / s.serial, 3)} | ${f(idle, 3)} | ${s.tasks.map((t) => f(t, 1)).join(' / ')} |`);
});
const [serial, wall, busy] = [total((s) => s.serial), total((s) => s.threaded), total(busyOf)];
log(`\nserial ${f(serial)} ms, threaded ${f(wall)} ms: speed-up ${f(serial / wall, 3)}×`);
log(`busy ${f(busy)} ms (${f(busy / serial, 3)}× the serial time), idle ${f(threads * wall - busy)} ms (${f((100 * (threads * wall - busy)) / (threads * wall), 1)} % of the threads' time)`);
log(`without idle: ${f((threads * serial) / busy, 3)}×; without inflation: ${f(serial / (wall - (busy - serial) / threads), 3)}×`);
if (args.json) writeFileSync(args.json, JSON.stringify({ batch, threads, pairs, stages }, null, 1));
