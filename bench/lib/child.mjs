// The child side of the protocol between bench/run.mjs and bench/engines/*.mjs.
//
// The parent starts `node bench/engines/<engine>.mjs '<job JSON>'`; the child does the
// job and prints exactly one line `@@bench@@ <result JSON>` on stdout (anything else an
// engine prints is ignored). Each engine runs in its own process so that heaps, wasm
// memories and thread pools never mix, and so that every run is a cold start.
//
// Import this module first: it wraps WebAssembly.compile / instantiate (and the streaming
// forms) before any engine loads, to record the bytes of every module actually compiled.
import fs from 'node:fs';
import path from 'node:path';

export const MARK = '@@bench@@';
/** Lines a long-lived child (the `bursts` job) prints before its result line. */
export const BURST = '@@burst@@';

const compiled = [];
for (const name of ['compile', 'instantiate']) {
  const original = WebAssembly[name];
  WebAssembly[name] = function (source, ...rest) {
    // instantiate(Module) re-uses an already compiled module: nothing new to count.
    if (source && typeof source.byteLength === 'number') compiled.push(source.byteLength);
    return original.call(this, source, ...rest);
  };
}
for (const name of ['compileStreaming', 'instantiateStreaming']) {
  const original = WebAssembly[name];
  if (!original) continue;
  WebAssembly[name] = function (source, ...rest) {
    compiled.push(null); // size unknown without consuming the stream
    return original.call(this, source, ...rest);
  };
}

/** The modules compiled so far, each matched by size to one of `candidates` (file paths). */
export function wasmLoaded(candidates) {
  const sizes = new Map();
  for (const f of candidates) {
    try {
      sizes.set(fs.statSync(f).size, f);
    } catch {
      // a candidate that is not installed cannot have been loaded
    }
  }
  return compiled.map((bytes) => ({ bytes, file: bytes != null && sizes.has(bytes) ? path.relative(process.cwd(), sizes.get(bytes)) : null }));
}

/** Wall-clock time on the epoch scale with sub-millisecond resolution, comparable across processes. */
export const epochMs = () => performance.timeOrigin + performance.now();

/** Peak resident set of this process so far, in MiB (`maxRSS` is in KiB on Linux). */
export const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

/** Reads the job from argv, runs `handlers[job.kind]`, prints the result line, exits. */
export async function serve(engine, handlers) {
  let job;
  let result;
  try {
    job = JSON.parse(process.argv[2] ?? '{}');
    const handler = handlers[job.kind];
    if (!handler) throw new Error(`${engine}: unknown job kind ${JSON.stringify(job.kind)}`);
    result = { ok: true, engine, ...(await handler(job)) };
  } catch (e) {
    result = { ok: false, engine, error: String(e?.stack ?? e) };
  }
  result.peakRssMiB = peakRssMiB();
  result.node = process.version;
  process.stdout.write(`\n${MARK} ${JSON.stringify(result)}\n`, () => process.exit(0));
}

/**
 * Runs each micro case with `runCase(c) → { fn, output() }`: measures `fn`, then takes a
 * fingerprint of the output for the cross-engine check. A failing case is reported, the
 * others still run.
 */
export async function microCases(job, setupCase) {
  const cases = [];
  for (const c of job.cases) {
    try {
      const t0 = performance.now();
      const ctx = await setupCase(c);
      const setupMs = performance.now() - t0;
      const m = await import('./stats.mjs').then((s) => s.measure(ctx.fn, { warmup: job.warmup, warmupMs: job.warmupMs, samples: job.samples, minSampleMs: job.minSampleMs }));
      const check = await ctx.check();
      ctx.dispose?.();
      cases.push({ id: c.id, ok: true, times: m.times, iters: m.iters, cpuPerWall: m.cpuPerWall, bgCpus: m.bgCpus, setupMs, check, ...(ctx.meta ? { meta: ctx.meta } : {}) });
    } catch (e) {
      cases.push({ id: c.id, ok: false, error: String(e?.message ?? e) });
    }
  }
  return { cases };
}

/**
 * The end-to-end job, the same for every engine. `engine` adapts one library:
 *   importEngine(job)  load the JavaScript (timed as `importMs`)
 *   init(job)          instantiate the wasm, set threads (`initMs`; → info object)
 *   build(job)         make the network with its weights (`buildMs`)
 *   input(data, shape) an engine-resident NCHW input
 *   forward(net, x)    → logits as a Float32Array readable in JavaScript
 * The first forward of batch 1 ends the cold start; then each batch size is timed.
 */
export async function e2e(job, engine) {
  const { measure } = await import('./stats.mjs');
  const { inputNCHW } = await import('./data.mjs');
  const shape = [3, job.size, job.size];
  // Only the batch-1 image before the cold start: generating the others (1.2 M values for
  // batch 8, in JavaScript) would count as "boot" in every engine's cold start.
  const x1Data = inputNCHW(1, shape, job.inputSeed);

  const t = [performance.now()];
  await engine.importEngine(job);
  t.push(performance.now());
  const info = (await engine.init(job)) ?? {};
  t.push(performance.now());
  const net = await engine.build(job);
  t.push(performance.now());
  const x1 = engine.input(x1Data, [1, ...shape]);
  const logits = await engine.forward(net, x1);
  t.push(performance.now());
  const firstResultEpoch = epochMs();
  const cold = {
    // The child's clock starts at its process start (performance.timeOrigin); the parent
    // adds the time from spawn() to that origin.
    timeOrigin: performance.timeOrigin,
    firstResultEpoch,
    bootMs: t[0],
    importMs: t[1] - t[0],
    initMs: t[2] - t[1],
    buildMs: t[3] - t[2],
    firstForwardMs: t[4] - t[3],
    inProcessMs: t[4],
    peakRssMiB: peakRssMiB(),
  };
  engine.dispose?.(x1);

  const batches = [];
  for (const { batch, warmup, runs } of job.coldOnly ? [] : job.batches) {
    const x = engine.input(batch === 1 ? x1Data : inputNCHW(batch, shape, job.inputSeed), [batch, ...shape]);
    const rss0 = process.memoryUsage().rss / 2 ** 20;
    const m = await measure(() => engine.forward(net, x), { warmup, samples: runs });
    const rss1 = process.memoryUsage().rss / 2 ** 20;
    engine.dispose?.(x);
    batches.push({ batch, times: m.times, cpuPerWall: m.cpuPerWall, bgCpus: m.bgCpus, rssBeforeMiB: rss0, rssAfterMiB: rss1, peakRssMiB: peakRssMiB() });
  }
  return { info, cold, batches, logits: Array.from(logits.subarray(0, 1000)), wasm: wasmLoaded(job.wasmCandidates ?? []) };
}
