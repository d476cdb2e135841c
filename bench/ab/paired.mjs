// node paired.mjs <rounds> <batch> <N> <warmup> <out.jsonl> [threads list, default 1,2]
// For each round, for each thread count, runs BEFORE and AFTER as separate node processes
// back to back; which one goes first alternates each round (and is flipped between the
// two thread counts within a round).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
const [R, batch, N, W, out, tl] = process.argv.slice(2);
const threadsList = (tl ?? '1,2').split(',').map(Number);
// The two builds' dist/ folders (see README.md).
const D = { before: process.env.AB_BEFORE ?? '/work/ab-before/dist', after: process.env.AB_AFTER ?? '/work/ab-after/dist' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Busy cores over 2 s while this driver is idle (from /proc/stat): the other jobs' load.
async function busyCores() {
  const rd = () => { const c = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number); return [c.slice(0, 8).reduce((a, b) => a + b, 0) - c[3] - c[4], Date.now()]; };
  const [b0, t0] = rd(); await sleep(2000); const [b1, t1] = rd();
  return ((b1 - b0) * 10) / (t1 - t0);
}
let quiet = { waitedS: 0, busy: 0 };
async function waitQuiet() {
  const start = Date.now();
  let b = 0;
  for (let i = 0; i < 15; i++) { // up to ~3 minutes
    b = await busyCores();
    if (b <= 0.5 && os.loadavg()[0] <= 2.5) break;
    await sleep(10000);
  }
  quiet = { waitedS: Math.round((Date.now() - start) / 1000), busy: b };
}
for (let r = 0; r < Number(R); r++) {
  await waitQuiet();
  for (const [ti, threads] of threadsList.entries()) {
    const order = (r + ti) % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const which of order) {
      const load = os.loadavg();
      const res = JSON.parse(execFileSync('node', [new URL('./bench.mjs', import.meta.url).pathname, D[which], String(threads), batch, N, W], { encoding: 'utf8' }).trim().split('\n').pop());
      const rec = { round: r, which, pos: order.indexOf(which), load1: load[0], quiet, ...res };
      fs.appendFileSync(out, JSON.stringify(rec) + '\n');
      const s = [...res.times].sort((a, b) => a - b);
      console.log(`r${r} t${threads} b${batch} ${which.padEnd(6)} median ${s[s.length >> 1].toFixed(1)} ms  load ${load[0].toFixed(2)} foreign ${res.cores.foreign.toFixed(2)} own ${res.cores.own.toFixed(2)} sum ${res.sum}`);
    }
  }
}
