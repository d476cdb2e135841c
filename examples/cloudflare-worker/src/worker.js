/**
 * inception-wasm in a Cloudflare Worker (or plain workerd).
 *
 * Workers refuse to compile WebAssembly from bytes at run time, so the .wasm is imported
 * as a module — wrangler turns `*.wasm` imports into CompiledWasm modules, and the
 * workerd config (workerd.capnp) declares it as a `wasm` module — and handed to init().
 *
 *   GET  /          a smoke test: one Inception 3a block with seeded weights
 *   POST /classify  body: a JPEG or PNG photo; answer: the top-5 ImageNet classes as JSON
 *                   ({ predictions: [{ index, label, probability }], ms }). The decoders
 *                   are the package's second .wasm, imported and handed to init() too.
 *                   GoogLeNet here has seeded random weights: load real ones (R2, KV, an
 *                   asset) for labels that mean something.
 *   POST /forward   body: a safetensors file with the model's weights (state-dict names),
 *                   the input tensor `input`, and in `__metadata__` a JSON `model` spec
 *                   ({"type":"googlenet","numClasses":1000,"variant":"relu"} or
 *                   {"type":"inception","channels":[192,64,96,128,16,32,32],"activation":"relu"})
 *                   and optionally `output` (the answer's tensor name, default "output");
 *                   answer: a safetensors file with that one tensor.
 *
 * To serve a fixed model, build it once per isolate and load its weights from R2, KV or
 * a static asset instead (README.md).
 */
import { GoogLeNet, Inception, init, readSafetensors, saveSafetensors, Tensor } from 'inception-wasm';
import wasm from 'inception-wasm/inception_wasm_bg.wasm';
import imageWasm from 'inception-wasm/inception_image_bg.wasm';

// Instantiating a precompiled module is synchronous and cheap; do it once per isolate.
const ready = init({ wasm, imageWasm });

// The classifier, built on the first /classify of this isolate and kept.
let classifier;

function buildModel(spec) {
  switch (spec.type) {
    case 'googlenet':
      return new GoogLeNet({ numClasses: spec.numClasses ?? 1000, variant: spec.variant ?? 'relu' });
    case 'inception': {
      const [inC, c1, c3r, c3, c5r, c5, pool] = spec.channels;
      return new Inception(inC, c1, c3r, c3, c5r, c5, pool, { activation: spec.activation === undefined ? 'relu' : spec.activation });
    }
    default:
      throw new Error(`unknown model type ${JSON.stringify(spec.type)}`);
  }
}

/** Runs a model described by a safetensors request; returns the answer file. */
function forward(bytes) {
  const { tensors, metadata } = readSafetensors(bytes);
  const input = tensors.get('input');
  if (!input || !metadata.model) throw new Error('the file needs an `input` tensor and a `model` in __metadata__');
  tensors.delete('input');
  const model = buildModel(JSON.parse(metadata.model));
  const x = Tensor.fromArray(input.data, input.shape);
  try {
    model.eval();
    model.loadStateDict(tensors);
    const y = model.forward(x);
    const out = { shape: y.shape, data: y.toArray() };
    y.dispose();
    return saveSafetensors(new Map([[metadata.output ?? 'output', out]]));
  } finally {
    x.dispose();
    model.dispose();
  }
}

export default {
  async fetch(request) {
    await ready;
    const { pathname } = new URL(request.url);
    try {
      if (request.method === 'GET' && pathname === '/') {
        const block = new Inception(192, 64, 96, 128, 16, 32, 32, { seed: 0 });
        const x = Tensor.fromArray(new Float32Array(192 * 28 * 28).fill(0.1), [1, 192, 28, 28]);
        const y = block.forward(x);
        const body = { ok: true, runtime: globalThis.navigator?.userAgent, block: 'inception3a', outputShape: y.shape, first: Array.from(y.data.subarray(0, 4)) };
        for (const t of [block, x, y]) t.dispose();
        return Response.json(body);
      }
      if (request.method === 'POST' && pathname === '/classify') {
        const photo = new Uint8Array(await request.arrayBuffer());
        classifier ??= new GoogLeNet({ seed: 0 });
        const t0 = performance.now();
        const predictions = await classifier.classify(photo);
        return Response.json({ predictions, ms: performance.now() - t0 });
      }
      if (request.method === 'POST' && pathname === '/forward') {
        const answer = forward(new Uint8Array(await request.arrayBuffer()));
        return new Response(answer, { headers: { 'content-type': 'application/octet-stream' } });
      }
      return new Response('not found\n', { status: 404 });
    } catch (e) {
      // The library's errors are typed and name the layer; the instance stays usable.
      return Response.json({ error: String(e?.name ?? 'Error'), message: String(e?.message ?? e) }, { status: 400 });
    }
  },
};
