// Shared by the page (main.js) and its worker (app-worker.js) of every bundler's app.

/** An Inception block (seeded weights) on a fixed input: the shape and a sample of the output, for Node to compare. */
export function runBlock(pkg) {
  const block = new pkg.Inception(192, 64, 96, 128, 16, 32, 32, { seed: 0 });
  const x = pkg.Tensor.fromArray(Float32Array.from({ length: 192 * 28 * 28 }, (_, i) => Math.sin(i)), [1, 192, 28, 28]);
  const y = block.forward(x);
  const data = y.toArray();
  const answer = { shape: y.shape, sample: Array.from({ length: 16 }, (_, i) => data[i * 12_345]) };
  for (const t of [block, x, y]) t.dispose();
  return answer;
}

/** console.warn's messages from now on (still printed). */
export function captureWarnings() {
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => {
    warnings.push(args.join(' '));
    warn.apply(console, args);
  };
  return warnings;
}

/** An error, as plain data for the test. */
export function describeError(e) {
  return { name: e?.name, message: String(e?.message ?? e), op: e?.op, url: e?.url, stack: String(e?.stack ?? '') };
}
