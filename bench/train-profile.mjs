#!/usr/bin/env node
// Where a training step spends its time, op by op, forward and backward (issue 17: profile
// first, then fix what the profile shows).
//
//   node bench/train-profile.mjs [--batch 64] [--size 32] [--threads 2] [--steps 5] [--top 25] [--no-build]
//
// Builds the threaded module with the kernels' `profile` feature (as bench/threads-profile.mjs:
// WASM_BUILDS=profile, PROFILE_DIST=1 tsup → target/profile/; never shipped), then runs
// training steps of torchvision's GoogLeNet with both aux heads (10 classes, SGD) — the
// step of bench/train.mjs. Every graph run reports each stage's wall time (thread 0, up
// to the barrier's release) and all threads' time inside tasks (crates/kernels/src/plan/
// profile.rs `record_graph`). After one warm-up step, per step: the stages grouped by
// op kind and part (conv 3×3 Cols, batch_norm Whole, …), then the costliest stages,
// each with `busy ÷ (threads × wall)` — how well the threads were used.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { trainStep } from './lib/train-step.mjs';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values: a } = parseArgs({
  options: {
    batch: { type: 'string', default: '64' },
    size: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '5' },
    top: { type: 'string', default: '25' },
    'no-build': { type: 'boolean', default: false },
  },
});
const [batch, size, threads, steps, top] = ['batch', 'size', 'threads', 'steps', 'top'].map((k) => Number(a[k]));

if (!a['no-build']) {
  const run = (cmd, args, env) => execFileSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  run('bash', ['scripts/build-wasm.sh'], { WASM_BUILDS: 'profile' });
  run('npx', ['tsup', '--silent'], { PROFILE_DIST: '1' });
}

const reports = [];
const log = console.log;
console.log = (line, ...rest) => {
  if (typeof line === 'string' && line.startsWith('{"graph"')) reports.push(JSON.parse(line));
  else log(line, ...rest);
};

const lib = await import(path.join(ROOT, 'target/profile/dist/index.js'));
await lib.init({ threads });
const net = new lib.GoogLeNet({ variant: 'torchvision', numClasses: 10, auxLogits: true, seed: 0 }).train();
const opt = new lib.SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
const x = lib.Tensor.fromArray(new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i)), [batch, 3, size, size]);
const targets = Array.from({ length: batch }, (_, i) => i % 10);
const phases = { forward: 0, backward: 0, step: 0 };
const run = trainStep(lib, net, opt, x, targets);
const step = (timed) => {
  const { phases: p } = run();
  if (timed) [phases.forward, phases.backward, phases.step] = [phases.forward + p.forward + p.loss, phases.backward + p.backward, phases.step + p.step];
};
step(false);
reports.length = 0;
for (let i = 0; i < steps; i++) step(true);
console.log = log;

// A stage label is `op sizes Part` (several joined by " + " when they share a stage).
const kind = (label) => {
  const parts = label.split(' + ').map((l) => l.split(' '));
  const op = parts[0][0];
  if (label === 'prologue' || label === 'zero gradients') return label;
  return `${op} ${op === 'conv2d' ? `${parts[0][2]} ` : ''}${parts.map((p) => p.at(-1)).join('+')}`;
};
const rows = new Map();
for (const r of reports) {
  for (const [label, wall, busy] of r.stages) {
    const key = `${r.graph}|${label}`;
    const row = rows.get(key) ?? { graph: r.graph, label, wall: 0, busy: 0 };
    row.wall += wall / steps;
    row.busy += busy / steps;
    rows.set(key, row);
  }
}
const all = [...rows.values()];
const f = (v) => v.toFixed(1);
const total = (g) => all.filter((r) => r.graph === g).reduce((s, r) => s + r.wall, 0);
log(`GoogLeNet (torchvision, aux heads) training step, batch ${batch} at ${size}×${size}, ${threads} thread(s), ${steps} steps (ms per step)`);
log(`phases (JS clock): forward+loss ${f(phases.forward / steps)}, backward ${f(phases.backward / steps)}, step ${f(phases.step / steps)}`);
log(`graph stages: forward ${f(total('forward'))}, backward ${f(total('backward'))}\n`);
const groups = new Map();
for (const r of all) {
  const key = `${r.graph} ${kind(r.label)}`;
  const g = groups.get(key) ?? { wall: 0, busy: 0, n: 0 };
  g.wall += r.wall;
  g.busy += r.busy;
  g.n += 1;
  groups.set(key, g);
}
log('| group | stages | ms | use |');
log('|---|---|---|---|');
for (const [k, g] of [...groups].sort((p, q) => q[1].wall - p[1].wall)) log(`| ${k} | ${g.n} | ${f(g.wall)} | ${(g.busy / (threads * g.wall)).toFixed(2)} |`);
log('\n| graph | stage | ms | use |');
log('|---|---|---|---|');
for (const r of all.sort((p, q) => q.wall - p.wall).slice(0, top)) log(`| ${r.graph} | ${r.label} | ${f(r.wall)} | ${(r.busy / (threads * r.wall)).toFixed(2)} |`);
