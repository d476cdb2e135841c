// Runs one fixture case with the package `pkg` (its module namespace), in a page or in a
// worker: weights and input come from /case/<name>.safetensors (made by Node), the
// answer goes back as safetensors bytes for Node to check.
function buildModel(pkg, spec) {
  if (spec.type === 'googlenet') return new pkg.GoogLeNet({ numClasses: spec.numClasses, variant: spec.variant });
  if (spec.type === 'inception') {
    const [inC, c1, c3r, c3, c5r, c5, pool] = spec.channels;
    return new pkg.Inception(inC, c1, c3r, c3, c5r, c5, pool, { activation: spec.activation });
  }
  throw new Error(`unknown model type ${spec.type}`);
}

export async function runCase(pkg, name) {
  const response = await fetch(`/case/${name}.safetensors`);
  if (!response.ok) throw new Error(`/case/${name}.safetensors: HTTP ${response.status}`);
  const { tensors, metadata } = pkg.readSafetensors(new Uint8Array(await response.arrayBuffer()));
  const input = tensors.get('input');
  tensors.delete('input');
  const model = buildModel(pkg, JSON.parse(metadata.model));
  const x = pkg.Tensor.fromArray(input.data, input.shape);
  try {
    model.eval();
    model.loadStateDict(tensors);
    const t0 = performance.now();
    const y = model.forward(x);
    const forwardMs = performance.now() - t0;
    const answer = pkg.saveSafetensors(new Map([[metadata.output, { shape: y.shape, data: y.toArray() }]]));
    y.dispose();
    return { forwardMs, answer };
  } finally {
    x.dispose();
    model.dispose();
  }
}
