// inception-wasm on a web page with no bundler and no dependencies: the package's ES module
// and its .wasm files straight from the repository's dist/ (init() fetches them next to
// index.js). Drop or pick a photo: the page shows GoogLeNet's five best classes, and how
// long the preprocessing and the forward pass took.
//
// `await classify(model, file)` does all of it in one call; the page runs the steps
// (preprocess → forward → softmax → top-k) one by one to time them and to show the crop.
import {
  GoogLeNet,
  IMAGENET_CLASSES,
  IMAGENET_MEAN,
  IMAGENET_STD,
  ImageError,
  init,
  loadSafetensors,
  preprocess,
  simdFlavour,
  softmax,
  topk,
} from '../../dist/index.js';

const $ = (id) => document.getElementById(id);
const ms = (t) => `${t < 10 ? t.toFixed(1) : Math.round(t)}<small> ms</small>`;
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)));

let model;
let photoFile; // the photo on show, classified again when weights are loaded
let queue = Promise.resolve(); // one photo at a time

/** 'loading', 'ready', 'running', 'done' or 'error' (the CSS and the e2e test read it). */
function setState(state) {
  document.body.dataset.state = state;
}

function showError(e) {
  const message = e instanceof ImageError ? `This image cannot be read (${e.reason}): ${e.message}` : String(e?.message ?? e);
  $('error').textContent = message;
  $('error').hidden = false;
  setState('error');
  console.warn(e);
}

/** Trained weights: torchvision's layout (conv1.conv.weight, …) or this package's 'relu' GoogLeNet. */
function modelFromWeights(dict) {
  const fc = dict.get('fc.weight');
  if (!fc) throw new Error("the file has no 'fc.weight': it is not a GoogLeNet state dict");
  const torchvision = dict.has('conv1.conv.weight');
  // torchvision turns transform_input on for its pretrained weights; so do we.
  const net = torchvision
    ? new GoogLeNet({ numClasses: fc.shape[0], variant: 'torchvision', transformInput: true })
    : new GoogLeNet({ numClasses: fc.shape[0] });
  try {
    net.loadStateDict(dict, { ignoreAux: true });
  } catch (e) {
    net.dispose();
    throw e;
  }
  return { net, layout: torchvision ? 'torchvision layout' : "the package's 'relu' GoogLeNet" };
}

/** The network's input drawn back as pixels: the 224×224 crop, de-normalised. */
function drawInput(x) {
  const [, , height, width] = x.shape;
  const canvas = $('crop');
  [canvas.width, canvas.height] = [width, height];
  const ctx = canvas.getContext('2d');
  const pixels = ctx.createImageData(width, height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) pixels.data[i * 4 + c] = (x.data[c * plane + i] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255;
    pixels.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}

function showPredictions(predictions) {
  const list = $('predictions');
  list.replaceChildren(...predictions.map(({ index, label, probability }) => {
    const li = document.createElement('li');
    li.dataset.index = String(index);
    li.dataset.probability = String(probability);
    li.innerHTML = '<div class="row-head"><span class="label"><span class="name"></span><small></small></span><span class="prob"></span></div>' +
      '<div class="bar"><div class="fill"></div></div>';
    li.querySelector('.name').textContent = label;
    li.querySelector('small').textContent = `#${index}`;
    li.querySelector('.prob').textContent = `${(probability * 100).toFixed(1)}%`;
    li.querySelector('.fill').style.width = '0%';
    return li;
  }));
  requestAnimationFrame(() => requestAnimationFrame(() => {
    for (const li of list.children) li.querySelector('.fill').style.width = `${(Number(li.dataset.probability) * 100).toFixed(2)}%`;
  }));
  $('empty').hidden = true;
}

async function showPhoto(file) {
  const photo = $('photo');
  if (photo.src) URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(file);
  $('drop').classList.add('has-photo');
  $('caption').hidden = false;
  $('again').hidden = false;
  $('photo-name').textContent = file.name || 'pasted image';
  $('photo-size').textContent = `${(file.size / 1024).toFixed(0)} KB`;
  try {
    await photo.decode();
    $('photo-size').textContent = `${photo.naturalWidth}×${photo.naturalHeight} · ${(file.size / 1024).toFixed(0)} KB`;
    return true;
  } catch {
    return false; // the browser cannot show it; the package's decoder may still read it
  }
}

function clearResults() {
  $('predictions').replaceChildren();
  $('empty').hidden = false;
  $('timings').hidden = true;
  $('seen').hidden = true;
}

async function classifyPhoto(file) {
  try {
    await classifySteps(file);
  } catch (e) {
    clearResults(); // no stale predictions next to a photo that could not be read
    throw e;
  }
}

async function classifySteps(file) {
  photoFile = file;
  $('error').hidden = true;
  setState('running');
  const shown = await showPhoto(file);
  await nextFrame(); // let the page paint before the main thread is busy

  const t0 = performance.now();
  let x;
  let how = 'photo decoded by inception-wasm (as PIL decodes it)';
  try {
    x = await preprocess(file);
  } catch (e) {
    // WebP, AVIF, GIF…: the package reads JPEG and PNG; the browser decoded the rest for the <img>.
    if (!(shown && e instanceof ImageError && (e.reason === 'unknown-format' || e.reason === 'unsupported'))) throw e;
    x = await preprocess($('photo'));
    how = 'photo decoded by the browser';
  }
  const t1 = performance.now();
  let logits;
  let probabilities;
  try {
    logits = model.forward(x);
    const t2 = performance.now();
    probabilities = softmax(logits);
    const [best] = topk(probabilities, 5);
    const t3 = performance.now();
    const names = logits.shape[1] === IMAGENET_CLASSES.length ? IMAGENET_CLASSES : undefined;
    showPredictions(best.map(({ index, value }) => ({ index, label: names?.[index] ?? `class ${index}`, probability: value })));
    drawInput(x);
    $('seen-how').textContent = how;
    $('t-preprocess').innerHTML = ms(t1 - t0);
    $('t-forward').innerHTML = ms(t2 - t1);
    $('t-total').innerHTML = ms(t3 - t0);
    $('timings').hidden = false;
    $('seen').hidden = false;
    setState('done');
  } finally {
    x.dispose();
    logits?.dispose();
    probabilities?.dispose();
  }
}

async function loadWeights(file) {
  setState('running');
  await nextFrame();
  const { net, layout } = modelFromWeights(loadSafetensors(new Uint8Array(await file.arrayBuffer())));
  model.dispose();
  model = net;
  await warmUp();
  $('weights-note').classList.add('loaded');
  $('weights-text').textContent = `Weights: ${file.name} (${layout}, ${(net.numParameters() / 1e6).toFixed(2)} M parameters).`;
  setState('ready');
  if (photoFile) await classifyPhoto(photoFile);
}

/** Runs one job after the previous one; errors are shown, not thrown. */
function enqueue(job) {
  queue = queue.then(job).catch(showError);
}

function pick(files, job, input) {
  const file = files?.[0];
  if (input) input.value = '';
  if (file) enqueue(() => job(file));
}

function wireUp() {
  const drop = $('drop');
  // (Cleared after each pick, so that picking the same file again is a change too.)
  $('file-input').addEventListener('change', (e) => pick(e.target.files, classifyPhoto, e.target));
  $('weights-button').addEventListener('click', () => $('weights-input').click());
  $('weights-input').addEventListener('change', (e) => pick(e.target.files, loadWeights, e.target));
  // Dropped anywhere on the page (the browser would otherwise open the file), or pasted.
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  document.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) drop.classList.remove('over');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    pick(e.dataTransfer?.files, (f) => (f.name.endsWith('.safetensors') ? loadWeights(f) : classifyPhoto(f)));
  });
  document.addEventListener('paste', (e) => pick(e.clipboardData?.files, classifyPhoto));
}

/** One black image through every step, so the times shown for photos are not the first call's (which compiles). */
async function warmUp() {
  const x = await preprocess({ data: new Uint8Array(256 * 256 * 3), width: 256, height: 256 });
  try {
    model.forward(x).dispose();
  } finally {
    x.dispose();
  }
}

async function start() {
  setState('loading');
  const t0 = performance.now();
  await init();
  model = new GoogLeNet({ seed: 0 }); // deterministic random weights
  await warmUp();
  const took = performance.now() - t0;
  wireUp();
  $('status').textContent = `GoogLeNet, ${(model.numParameters() / 1e6).toFixed(2)} M parameters, on ${simdFlavour()} SIMD ` +
    `WebAssembly: loaded, built and warmed up in ${Math.round(took)} ms.`;
  setState('ready');
}

start().catch(showError);
