// The benchmark suite of `inception-wasm bench`, for a page or a Worker: one
// configuration (model × batch) timed on the loaded library `lib` (the package's
// dist/index.js). The same choices as the command line's (ts/cli/bench.ts).

export function parseModel(name) {
  if (name === 'googlenet' || name === 'inception3a') return { name, kind: name };
  const m = /^conv:(\d+),(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)$/.exec(name);
  if (!m) throw new Error(`model must be googlenet, inception3a or conv:CIN,COUT,K,S,P,H,W (got ${JSON.stringify(name)})`);
  const [cin, cout, k, s, p, h, w] = m.slice(1).map(Number);
  return { name, kind: 'conv', conv: { cin, cout, k, s, p, h, w } };
}

function buildModel(lib, spec, batch) {
  if (spec.kind === 'googlenet') return { model: new lib.GoogLeNet(), inputShape: [batch, 3, 224, 224] };
  if (spec.kind === 'inception3a') {
    const [i, a, b, c, d, e, g] = lib.INCEPTION_CONFIG.inception3a;
    return { model: new lib.Inception(i, a, b, c, d, e, g), inputShape: [batch, i, 28, 28] };
  }
  const c = spec.conv;
  return {
    model: new lib.Conv2d({ inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride: c.s, padding: c.p }),
    inputShape: [batch, c.cin, c.h, c.w],
  };
}

function randomTensor(lib, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return lib.Tensor.fromArray(data, shape);
}

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => {
    const x = (s.length - 1) * p;
    const lo = Math.floor(x);
    const hi = Math.ceil(x);
    return s[lo] + (s[hi] - s[lo]) * (x - lo);
  };
  return { median: q(0.5), p10: q(0.1), p90: q(0.9), mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0] };
}

const pause = () => new Promise((r) => setTimeout(r, 0));

/**
 * Warm-up: at least 3 runs and a third of `minTime` (stopping after `minTime`); then
 * timed runs until `minTime` seconds or 200 runs, and at least `minRuns`. Yields to the
 * event loop every ~100 ms so the page can draw its progress.
 */
async function measure(run, minTime, minRuns, onProgress) {
  const warmup = minTime / 3;
  let t0 = performance.now();
  let lastYield = t0;
  const breathe = async (phase, runs, elapsed) => {
    if (performance.now() - lastYield < 100) return;
    onProgress(phase, runs, elapsed);
    await pause();
    lastYield = performance.now();
  };
  let warmupRuns = 0;
  for (;;) {
    run();
    warmupRuns++;
    const elapsed = (performance.now() - t0) / 1000;
    if ((warmupRuns >= 3 && elapsed >= warmup) || elapsed >= 3 * warmup) break;
    await breathe('warm-up', warmupRuns, elapsed);
  }
  const samples = [];
  t0 = performance.now();
  for (;;) {
    const a = performance.now();
    run();
    samples.push(performance.now() - a);
    const elapsed = (performance.now() - t0) / 1000;
    if (samples.length >= minRuns && (elapsed >= minTime || samples.length >= 200)) break;
    // Time spent yielding is outside the samples (each is one forward).
    await breathe('timing', samples.length, elapsed);
  }
  return { warmupRuns, samples };
}

/** One configuration; `cold` is true for the realm's first (its cold start is reported). */
export async function runConfig(lib, { model: modelName, batch, threadsRequested, minTime, minRuns, cold }, onProgress) {
  const spec = parseModel(modelName);
  const { model, inputShape } = buildModel(lib, spec, batch);
  const table = lib.summary(model, inputShape);
  const x = randomTensor(lib, inputShape);
  const f0 = performance.now();
  model.forward(x).dispose();
  const firstLogits = performance.now();
  const { warmupRuns, samples } = await measure(() => model.forward(x).dispose(), minTime, minRuns, onProgress);
  x.dispose();
  const msPerBatch = stats(samples);
  const msPerImage = stats(samples.map((t) => t / batch));
  const result = {
    model: modelName,
    threadsRequested,
    threads: lib.threadCount(),
    batch,
    simd: lib.simdFlavour(),
    wasm: `wasm${lib.threadCount() > 1 ? '-threads' : ''}${lib.simdFlavour() === 'relaxed' ? '-relaxed' : ''}/inception_wasm_bg.wasm`,
    inputShape,
    macsPerImage: table.totalMacs / batch,
    warmupRuns,
    runs: samples.length,
    msPerBatch,
    msPerImage,
    imagesPerSecond: 1000 / msPerImage.median,
    gflops: (2 * table.totalMacs) / (msPerBatch.median * 1e6),
    // performance.now() counts from the page's navigation (a Worker's: its creation).
    coldStartMs: cold ? firstLogits : null,
    firstForwardMs: firstLogits - f0,
    memory: lib.memoryInfo(),
  };
  model.dispose();
  return result;
}
