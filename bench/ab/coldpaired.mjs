// node coldpaired.mjs <rounds> <out.jsonl>: alternating cold-start processes, threads 1 and 2
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
const [R, out] = process.argv.slice(2);
// The two builds' dist/ folders (see README.md).
const D = { before: process.env.AB_BEFORE ?? '/work/ab-before/dist', after: process.env.AB_AFTER ?? '/work/ab-after/dist' };
for (let r = 0; r < Number(R); r++) {
  for (const [ti, threads] of [1, 2].entries()) {
    const order = (r + ti) % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const which of order) {
      const load = os.loadavg()[0];
      const res = JSON.parse(execFileSync('node', [new URL('./cold.mjs', import.meta.url).pathname, D[which], String(threads)], { encoding: 'utf8' }).trim().split('\n').pop());
      fs.appendFileSync(out, JSON.stringify({ round: r, which, load1: load, ...res }) + '\n');
      console.log(`r${r} t${threads} ${which.padEnd(6)} first logits at ${res.firstLogits.toFixed(1)} ms (init ${res.init.toFixed(1)})`);
    }
  }
}
