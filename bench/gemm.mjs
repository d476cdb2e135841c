#!/usr/bin/env node
// GEMM peak report: the in-cache microkernel ceiling, then GoogLeNet's 1×1 convolutions
// (bench/shapes.json) run as GEMMs, each as GFLOP/s and % of that ceiling, one thread.
//
//   node [--experimental-wasm-relaxed-simd] bench/gemm.mjs [--seconds S] [--convs] [--relaxed] [--json FILE]
//
//   --seconds S  time budget for the interleaved rounds (default 30)
//   --convs      also every conv shape through Conv2d::forward (conv1, 5×5, Winograd 3×3)
//   --relaxed    the relaxed-SIMD testing build (fused multiply-add); Node 20
//                needs --experimental-wasm-relaxed-simd
//   --json FILE  also write the results as JSON (bench/run.mjs reads them into its report)
//
// Uses the bench-only exports of the single-threaded testing build (crates/wasm/src/bench.rs:
// gemmPeak, gemmShape, ConvBench; feature `testing`, in target/testing/, never shipped),
// which loop inside wasm; so no per-call JavaScript, validation or allocation is timed.
// Needs `WASM_BUILDS=testing npm run build:wasm` (npm run build does it).
//
// This machine is shared: another job on the other vCPU slows this one by up to 40 %
// through the shared core. So every sample is bracketed by two short peak runs and kept
// only when both are within 7 % of the best peak seen; each sample follows one untimed
// call (warm caches, as the kernel GFLOP/s of any GEMM library); shapes are measured round-robin
// until the time budget is spent, and each reports its best kept sample (the median of
// the kept samples is printed too).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const argv = process.argv.slice(2);
const seconds = Number(argv[argv.indexOf('--seconds') + 1]) || 30;
const withConvs = argv.includes('--convs');
const build = argv.includes('--relaxed') ? 'target/testing/wasm-relaxed' : 'target/testing/wasm';

const glue = await import(path.join(ROOT, 'target/testing/wasm/inception_wasm.js'));
// A relaxed build's glue is its plain twin's (same exports).
await glue.default({ module_or_path: readFileSync(path.join(ROOT, build, 'inception_wasm_bg.wasm')) });
for (let i = 0; i < 50; i++) glue.gemmPeak(1000); // past V8's tier-up to optimised code

let bestPeak = 0;
/** GFLOP/s of a short in-cache run (about 2 ms). */
function canary() {
  const t = performance.now();
  const g = glue.gemmPeak(300) / ((performance.now() - t) * 1e6);
  bestPeak = Math.max(bestPeak, g);
  return g;
}

/** One warm sample of `run(reps)` (which returns flops) in GFLOP/s, or null if disturbed. */
function sample(run, reps) {
  const before = canary();
  run(1); // the shape's operands back in cache, as after the previous layer
  const t = performance.now();
  const flops = run(reps);
  const gflops = flops / ((performance.now() - t) * 1e6);
  const after = canary();
  return Math.min(before, after) >= 0.93 * bestPeak ? gflops : null;
}

const shapes = JSON.parse(readFileSync(path.join(ROOT, 'bench/shapes.json'), 'utf8')).convs;
const cases = [{ id: 'in-cache microkernel (4×8, k = 256)', uses: 0, flops: 0, run: (r) => glue.gemmPeak(r), reps: 1000 }];
for (const c of shapes) {
  const pointwise = c.k === 1 && c.s === 1 && c.p === 0;
  if (!pointwise && !withConvs) continue;
  const flops = 2 * c.macs;
  let run = (r) => glue.gemmShape(c.cout, c.cin, c.h * c.w, r);
  if (!pointwise) {
    const bench = new glue.ConvBench(c.cin, c.cout, c.k, c.s, c.p, c.h, c.w, 'auto');
    run = (r) => (bench.run(r), flops * r);
  }
  cases.push({ id: `${c.id}${pointwise ? ` (${c.cout}×${c.cin}·${c.cin}×${c.h * c.w})` : ''}`, uses: c.layers.length, flops, pointwise, run, reps: Math.max(2, Math.ceil(4e6 / flops)) });
}
for (const c of cases) {
  c.samples = [];
  c.run(c.reps); // builds the problem, warms it up
}

const start = performance.now();
let rounds = 0;
while (performance.now() - start < seconds * 1000 || rounds < 2) {
  for (const c of cases) {
    const g = sample(c.run, c.reps);
    if (g !== null) c.samples.push(g);
  }
  rounds++;
}

const peak = Math.max(...cases[0].samples, bestPeak);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const pad = Math.max(...cases.map((c) => c.id.length));
console.log(`${'case'.padEnd(pad)}  uses  best GFLOP/s  median  % of peak  kept`);
let flops1 = 0;
let ms1 = 0;
for (const c of cases) {
  const best = Math.max(...c.samples);
  if (c.pointwise) {
    flops1 += c.flops * c.uses;
    ms1 += (c.flops * c.uses) / (best * 1e6);
  }
  const pct = c.uses ? `${((100 * best) / peak).toFixed(1)} %` : '';
  console.log(`${c.id.padEnd(pad)}  ${String(c.uses || '').padStart(4)}  ${best.toFixed(1).padStart(12)}  ${median(c.samples).toFixed(1).padStart(6)}  ${pct.padStart(9)}  ${String(c.samples.length).padStart(4)}`);
}
const agg = flops1 / (ms1 * 1e6);
console.log(`\n${build}: peak ${peak.toFixed(1)} GFLOP/s; 1×1 layers (weighted by use): ${ms1.toFixed(2)} ms, ${agg.toFixed(1)} GFLOP/s = ${((100 * agg) / peak).toFixed(1)} % of peak (${rounds} rounds)`);
const jsonAt = argv.indexOf('--json');
if (jsonAt >= 0) {
  const pointwise = cases.filter((c) => c.pointwise).map((c) => ({ id: c.id, uses: c.uses, gflops: Math.max(...c.samples), percent: (100 * Math.max(...c.samples)) / peak, kept: c.samples.length }));
  const result = { build, peakGflops: peak, rounds, seconds, pointwise, weightedMs: ms1, weightedGflops: agg, weightedPercent: (100 * agg) / peak, worstPercent: Math.min(...pointwise.map((c) => c.percent)) };
  writeFileSync(argv[jsonAt + 1], JSON.stringify(result));
}
