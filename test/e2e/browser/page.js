// The browser side of test/e2e/browser.test.ts: loads the package's ESM entry, calls
// init() with no arguments (so the .wasm is fetched next to dist/index.js, the default
// path), and runs fixture cases whose weights and input Node serves as safetensors
// files. Answers go back to Node base64-encoded; Node checks them.
import { GoogLeNet, Inception, init, isInitialized, readSafetensors, saveSafetensors, Tensor } from 'inception-wasm';

function buildModel(spec) {
  if (spec.type === 'googlenet') return new GoogLeNet({ numClasses: spec.numClasses, variant: spec.variant });
  if (spec.type === 'inception') {
    const [inC, c1, c3r, c3, c5r, c5, pool] = spec.channels;
    return new Inception(inC, c1, c3r, c3, c5r, c5, pool, { activation: spec.activation });
  }
  throw new Error(`unknown model type ${spec.type}`);
}

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

globalThis.initPackage = async () => {
  const before = isInitialized();
  const t0 = performance.now();
  await init();
  return {
    before,
    after: isInitialized(),
    initMs: performance.now() - t0,
    crossOriginIsolated: globalThis.crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer,
    userAgent: navigator.userAgent,
    wasmResources: performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.wasm')).map((e) => e.name),
  };
};

globalThis.runCase = async (name) => {
  const response = await fetch(`/case/${name}.safetensors`);
  if (!response.ok) throw new Error(`/case/${name}.safetensors: HTTP ${response.status}`);
  const { tensors, metadata } = readSafetensors(new Uint8Array(await response.arrayBuffer()));
  const input = tensors.get('input');
  tensors.delete('input');
  const model = buildModel(JSON.parse(metadata.model));
  const x = Tensor.fromArray(input.data, input.shape);
  try {
    model.eval();
    model.loadStateDict(tensors);
    const t0 = performance.now();
    const y = model.forward(x);
    const forwardMs = performance.now() - t0;
    const answer = saveSafetensors(new Map([[metadata.output, { shape: y.shape, data: y.toArray() }]]));
    y.dispose();
    return { forwardMs, answer: base64(answer) };
  } finally {
    x.dispose();
    model.dispose();
  }
};

document.getElementById('status').textContent = 'ready';
globalThis.pageReady = true;
