// The teach page's worker (a module worker: new Worker(url, { type: 'module' })). Everything
// that computes runs here, so the page stays responsive: GoogLeNet's embedding of every
// example as it arrives, the head's training, classifying new photos, saving the head.
//
// Messages in (the page's `post`), answered in order, one at a time:
//   { type: 'add', id, image }                 image: a File/Blob → { type: 'features', id, ms }
//   { type: 'remove', id }
//   { type: 'weights', bytes, name }           base weights (.safetensors or .pth) → { type: 'base', … }, then
//                                              'features' again for every example (the embedding changed)
//   { type: 'train', examples: [{ id, label }], classes, head, hidden, epochs, lr }
//                                              → { type: 'progress', epoch, epochs, loss, accuracy } per epoch,
//                                                then { type: 'trained', … }
//   { type: 'classify', id, image }            → { type: 'prediction', id, classes, probabilities, ms }
//   { type: 'save' }                           → { type: 'saved', bytes } (head.safetensors)
//   { type: 'load-head', bytes, name }         → { type: 'trained', loaded: true, … }
// and { type: 'error', id?, during, message } when one fails (the worker carries on).
import {
  Adam,
  crossEntropy,
  GoogLeNet,
  ImageError,
  init,
  Linear,
  loadPth,
  loadSafetensors,
  preprocess,
  readSafetensors,
  ReLU,
  saveSafetensors,
  Sequential,
  simdFlavour,
  softmax,
  Tensor,
  threadCount,
} from '../../dist/index.js';

const FEATURES = 1024; // GoogLeNet's pooled embedding: base.forwardFeatures(x) → [N, 1024]
const FORMAT = 'inception-wasm-teach/1'; // the saved head's metadata `format`

let base; // the frozen GoogLeNet (eval mode: forwardFeatures runs its inference plan)
let baseName = 'random weights: new GoogLeNet({ variant: "torchvision", seed: 0 })';
/** id → { image, features: Float32Array | undefined } */
const examples = new Map();
/** The trained (or loaded) head: { module, kind, hidden, classes, mean, std, base, examples, epochs }. */
let trained;

const post = (message, transfer = []) => self.postMessage(message, transfer);

/** A file the browser can decode but the package cannot (WebP, AVIF, GIF…) goes through createImageBitmap. */
async function toInput(image) {
  try {
    return await preprocess(image);
  } catch (e) {
    if (!(e instanceof ImageError && (e.reason === 'unknown-format' || e.reason === 'unsupported'))) throw e;
    let bitmap;
    try {
      bitmap = await createImageBitmap(image);
    } catch {
      throw e; // the browser cannot read it either: the package's message says why
    }
    try {
      return await preprocess(bitmap); // the browser's decode (as the classifier page's <img> fallback)
    } finally {
      bitmap.close();
    }
  }
}

/** The photo's 1024-value embedding (ImageNet transform → frozen GoogLeNet). */
async function embed(image) {
  const x = await toInput(image);
  try {
    const f = base.forwardFeatures(x);
    try {
      return f.toArray();
    } finally {
      f.dispose();
    }
  } finally {
    x.dispose();
  }
}

async function computeFeatures(id) {
  const example = examples.get(id);
  if (!example) return; // removed meanwhile
  const t0 = performance.now();
  example.features = undefined; // (after new weights: never the old embedding's)
  example.features = await embed(example.image);
  post({ type: 'features', id, ms: performance.now() - t0 });
}

/**
 * Trained weights: torchvision's layout (conv1.conv.weight, …; its aux heads skipped) or this
 * package's 'relu' GoogLeNet, as main.js reads them. fromStateDict reads the options from the
 * weights and never holds two models at once.
 */
function modelFromWeights(dict) {
  if (!dict.has('fc.weight')) throw new Error("the file has no 'fc.weight': it is not a GoogLeNet state dict");
  const torchvision = dict.has('conv1.conv.weight');
  // torchvision turns transform_input on for its pretrained weights; so do we.
  const net = GoogLeNet.fromStateDict(dict, torchvision ? { transformInput: true } : {});
  return { net, layout: torchvision ? 'torchvision layout' : "the package's 'relu' GoogLeNet" };
}

async function loadWeights({ bytes, name }) {
  const data = new Uint8Array(bytes);
  const dict = /\.(pth|pt)$/i.test(name) ? loadPth(data) : loadSafetensors(data);
  const { net, layout } = modelFromWeights(dict);
  base.dispose();
  base = net;
  base.eval();
  baseName = `${name} (${layout})`;
  forgetHead(); // trained on the old embedding: meaningless now
  post({ type: 'base', name: baseName, layout, parameters: base.numParameters() });
  for (const id of examples.keys()) await computeFeatures(id);
}

function forgetHead() {
  trained?.module.dispose();
  trained = undefined;
  post({ type: 'untrained' });
}

/** The head: a Linear layer, or a small MLP (Linear → ReLU → Linear). */
function makeHead(kind, hidden, classes, seed = 1) {
  if (kind === 'mlp') {
    return new Sequential(
      new Linear({ inFeatures: FEATURES, outFeatures: hidden, seed }),
      new ReLU(),
      new Linear({ inFeatures: hidden, outFeatures: classes, seed: seed + 1 }),
    );
  }
  return new Linear({ inFeatures: FEATURES, outFeatures: classes, seed });
}

/**
 * Per-feature mean and spread over the training set. The raw features are large (‖f‖² of
 * order 1e4–1e5) and of very different sizes, so the head sees `(f − mean) / std`. The
 * spread gets a floor of a tenth of the average one: a feature that barely varies over a
 * few examples (a ReLU channel that is zero for all of them) would otherwise be divided by
 * almost nothing and swamp the rest when a new photo lights it up.
 */
function standardisation(rows) {
  const n = rows.length;
  const mean = new Float32Array(FEATURES);
  const std = new Float32Array(FEATURES);
  const sum = new Float64Array(FEATURES);
  for (const f of rows) for (let j = 0; j < FEATURES; j++) sum[j] += f[j];
  for (let j = 0; j < FEATURES; j++) mean[j] = sum[j] / n;
  const sq = new Float64Array(FEATURES);
  for (const f of rows) for (let j = 0; j < FEATURES; j++) sq[j] += (f[j] - mean[j]) ** 2;
  let average = 0;
  for (let j = 0; j < FEATURES; j++) average += Math.sqrt(sq[j] / n) / FEATURES;
  const floor = 0.1 * average || 1;
  for (let j = 0; j < FEATURES; j++) std[j] = Math.sqrt(sq[j] / n) + floor;
  return { mean, std };
}

function standardise(f, mean, std, out = new Float32Array(FEATURES), at = 0) {
  for (let j = 0; j < FEATURES; j++) out[at + j] = (f[j] - mean[j]) / std[j];
  return out;
}

/** A small deterministic generator for the shuffles (the same examples train the same head). */
function shuffler(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return (array) => {
    for (let i = array.length - 1; i > 0; i--) {
      const k = Math.floor(next() * (i + 1));
      [array[i], array[k]] = [array[k], array[i]];
    }
    return array;
  };
}

async function train({ examples: chosen, classes, head: kind, hidden, epochs, lr, batchSize = 16 }) {
  const rows = [];
  const labels = [];
  for (const { id, label } of chosen) {
    const f = examples.get(id)?.features;
    if (f) {
      rows.push(f);
      labels.push(label);
    }
  }
  const missing = classes.filter((_, c) => !labels.includes(c));
  if (missing.length > 0) throw new Error(`no readable photos for ${missing.map((m) => `"${m}"`).join(', ')}: give every class at least one`);
  trained?.module.dispose();
  trained = undefined;

  const t0 = performance.now();
  const { mean, std } = standardisation(rows);
  const n = rows.length;
  const x = new Float32Array(n * FEATURES);
  rows.forEach((f, i) => standardise(f, mean, std, x, i * FEATURES));

  const head = makeHead(kind, hidden, classes.length);
  head.train();
  const opt = new Adam(head.parameters(), { lr });
  const shuffle = shuffler(7);
  const order = rows.map((_, i) => i);
  let loss = NaN;
  let accuracy = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    shuffle(order);
    let total = 0;
    let correct = 0;
    for (let start = 0; start < n; start += batchSize) {
      const batch = order.slice(start, start + batchSize);
      const xb = new Float32Array(batch.length * FEATURES);
      batch.forEach((i, k) => xb.set(x.subarray(i * FEATURES, (i + 1) * FEATURES), k * FEATURES));
      const input = Tensor.fromArray(xb, [batch.length, FEATURES]);
      const target = batch.map((i) => labels[i]);
      opt.zeroGrad();
      const logits = head.forward(input); // training mode: recorded for backward
      const l = crossEntropy(logits, target);
      l.backward();
      opt.step();
      total += l.item() * batch.length;
      const values = logits.toArray();
      batch.forEach((_, k) => {
        const row = values.subarray(k * classes.length, (k + 1) * classes.length);
        if (row.indexOf(Math.max(...row)) === target[k]) correct++;
      });
      for (const t of [input, logits, l]) t.dispose();
    }
    loss = total / n;
    accuracy = correct / n;
    post({ type: 'progress', epoch, epochs, loss, accuracy });
    // Let the page's messages (and the progress bar) breathe between epochs.
    if (epoch % 5 === 0) await new Promise((resolve) => setTimeout(resolve));
  }
  head.eval(); // inference from now on: a compiled plan, nothing recorded
  trained = { module: head, kind, hidden, classes: [...classes], mean, std, base: baseName, examples: n, epochs, lr };
  post({ type: 'trained', classes: trained.classes, loss, accuracy, examples: n, epochs, ms: performance.now() - t0, kind, hidden });
}

async function classifyImage({ id, image }) {
  if (!trained) throw new Error('train the head first (or load a saved one)');
  const t0 = performance.now();
  const f = await embed(image);
  const input = Tensor.fromArray(standardise(f, trained.mean, trained.std), [1, FEATURES]);
  const logits = trained.module.forward(input);
  const probabilities = softmax(logits);
  const values = Array.from(probabilities.toArray());
  for (const t of [input, logits, probabilities]) t.dispose();
  post({ type: 'prediction', id, classes: trained.classes, probabilities: values, ms: performance.now() - t0 });
}

/**
 * head.safetensors: the head's state dict (`weight`, `bias` for a Linear head; `0.weight`,
 * `0.bias`, `2.weight`, `2.bias` for the MLP) and the standardisation as two more tensors,
 * `feature_mean` and `feature_std` ([1024] each); the class names and how to rebuild the
 * head in the metadata.
 */
function save() {
  if (!trained) throw new Error('nothing to save: train the head first');
  const dict = new Map(trained.module.stateDict());
  dict.set('feature_mean', { shape: [FEATURES], data: trained.mean });
  dict.set('feature_std', { shape: [FEATURES], data: trained.std });
  const metadata = {
    format: FORMAT,
    classes: JSON.stringify(trained.classes),
    head: trained.kind,
    ...(trained.kind === 'mlp' ? { hidden: String(trained.hidden) } : {}),
    in_features: String(FEATURES),
    input: 'standardised base.forwardFeatures(preprocess(photo)): (f - feature_mean) / feature_std',
    base: trained.base,
    examples: String(trained.examples),
    ...(trained.epochs ? { epochs: String(trained.epochs), optimizer: `Adam lr ${trained.lr}` } : {}),
  };
  const bytes = saveSafetensors(dict, metadata);
  post({ type: 'saved', bytes: bytes.buffer }, [bytes.buffer]);
}

function loadHead({ bytes, name }) {
  const { tensors, metadata } = readSafetensors(new Uint8Array(bytes));
  if (metadata.format !== FORMAT) throw new Error(`${name} is not a head saved by this page (metadata format "${metadata.format ?? ''}", expected "${FORMAT}")`);
  const classes = JSON.parse(metadata.classes);
  const hidden = Number(metadata.hidden ?? 0);
  const head = makeHead(metadata.head, hidden, classes.length);
  try {
    head.loadStateDict(tensors, { strict: false }); // feature_mean and feature_std are not the head's
  } catch (e) {
    head.dispose();
    throw e;
  }
  head.eval();
  const mean = tensors.get('feature_mean')?.data;
  const std = tensors.get('feature_std')?.data;
  if (mean?.length !== FEATURES || std?.length !== FEATURES) {
    head.dispose();
    throw new Error(`${name} has no feature_mean / feature_std of ${FEATURES} values`);
  }
  trained?.module.dispose();
  trained = { module: head, kind: metadata.head, hidden, classes, mean, std, base: metadata.base, examples: Number(metadata.examples) };
  post({ type: 'trained', loaded: true, name, classes, kind: metadata.head, hidden, examples: trained.examples, base: metadata.base, sameBase: metadata.base === baseName });
}

async function handle(message) {
  switch (message.type) {
    case 'add':
      examples.set(message.id, { image: message.image, features: undefined });
      return computeFeatures(message.id);
    case 'remove':
      examples.delete(message.id);
      return undefined;
    case 'weights':
      return loadWeights(message);
    case 'train':
      return train(message);
    case 'classify':
      return classifyImage(message);
    case 'save':
      return save();
    case 'load-head':
      return loadHead(message);
    default:
      throw new Error(`unknown message ${message.type}`);
  }
}

async function start() {
  const t0 = performance.now();
  // Threads need a cross-origin isolated page (COOP/COEP headers); serve.mjs does not send
  // them, so this runs on one thread there (init would warn, so it is not asked).
  const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  await init({ threads });
  base = new GoogLeNet({ variant: 'torchvision', seed: 0 }); // deterministic random weights
  base.eval(); // frozen: forwardFeatures runs the inference plan, nothing recorded
  // One black image through it, so that the first photo does not pay for compiling the plan.
  const x = await preprocess({ data: new Uint8Array(256 * 256 * 3), width: 256, height: 256 });
  base.forwardFeatures(x).dispose();
  x.dispose();
  post({ type: 'ready', ms: performance.now() - t0, simd: simdFlavour(), threads: threadCount(), parameters: base.numParameters(), base: baseName });
}

// One message at a time, in order: a 'train' sent after some 'add's sees their features.
let queue = start().catch((e) => post({ type: 'error', during: 'start', message: String(e?.message ?? e) }));
self.addEventListener('message', ({ data }) => {
  queue = queue.then(() => handle(data)).catch((e) => {
    post({ type: 'error', id: data.id, during: data.type, message: e instanceof ImageError ? `cannot read this image (${e.reason}): ${e.message}` : String(e?.message ?? e) });
  });
});
