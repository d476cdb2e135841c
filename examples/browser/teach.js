// The teach page: your own classes on GoogLeNet's embedding. This file only runs the page —
// classes, thumbnails, the progress bar, the bars; every computation happens in the module
// worker teach-worker.js, which imports the package (../../dist/index.js) itself.
//
// The flow: each photo added to a class is posted to the worker at once, which computes its
// embedding (preprocess → base.forwardFeatures, the base frozen) while you add more; "Train"
// sends the examples' ids and labels, and the worker trains a new head on the standardised
// embeddings, posting each epoch's loss; a photo dropped on "Try it" comes back as one
// probability per class; "Save head" downloads head.safetensors.

const $ = (id) => document.getElementById(id);
const COLOURS = ['#3b5bdb', '#e8590c', '#2b8a3e', '#ae3ec9', '#c2255c', '#1098ad', '#f08c00', '#5c940d'];

const worker = new Worker(new URL('./teach-worker.js', import.meta.url), { type: 'module' });
let ready = false;
let nextId = 1;
let nextClass = 1;
/** [{ key, name, colour, examples: Set<id>, el }] in label order */
const classes = [];
/** id → { classKey, file, status: 'pending' | 'ready' | 'error', el } */
const examples = new Map();
/** What the head was trained on (null before): { classes: [names], colours } */
let head = null;
let tryFile = null;
let tryId = null;
/** The examples whose embeddings are being recomputed for new weights (restored if the weights fail). */
let weightsPending = [];

const post = (message, transfer) => worker.postMessage(message, transfer ?? []);

function showError(where, message) {
  const box = $(where);
  box.textContent = message;
  box.hidden = !message;
}

// ---------------------------------------------------------------- classes and examples

function addClass(name) {
  const key = nextClass++;
  const colour = COLOURS[(key - 1) % COLOURS.length];
  const el = document.createElement('section');
  el.className = 'card class';
  el.style.setProperty('--c', colour);
  el.dataset.key = String(key);
  el.innerHTML = `
    <div class="class-head">
      <span class="dot"></span>
      <input type="text" class="name" aria-label="class name" maxlength="40" spellcheck="false">
      <span class="count">no photos</span>
      <button type="button" class="icon-button remove-class" title="remove this class" aria-label="remove this class">×</button>
    </div>
    <label class="zone">
      <input type="file" accept="image/*" multiple>
      <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
        <rect x="3" y="4" width="18" height="16" rx="2.5"/><circle cx="9" cy="10" r="1.8"/><path d="m4 18 5-5 3.5 3.5L15 14l5 4.5"/>
      </svg>
      <span><strong>Drop photos</strong> or click to add</span>
    </label>
    <div class="thumbs"></div>`;
  const c = { key, name, colour, examples: new Set(), el };
  const input = el.querySelector('input.name');
  input.value = name;
  input.addEventListener('input', () => {
    c.name = input.value.trim();
    updateTrainable();
  });
  const files = el.querySelector('input[type=file]');
  files.addEventListener('change', () => {
    addExamples(c, files.files);
    files.value = ''; // the same files again are a change too
  });
  const zone = el.querySelector('.zone');
  dropTarget(zone, (dropped) => addExamples(c, dropped));
  el.querySelector('.remove-class').addEventListener('click', () => removeClass(c));
  classes.push(c);
  $('classes').insertBefore(el, $('add-class'));
  updateClasses();
  return c;
}

function removeClass(c) {
  if (classes.length <= 2) return;
  for (const id of c.examples) removeExample(id);
  classes.splice(classes.indexOf(c), 1);
  c.el.remove();
  updateClasses();
}

function addExamples(c, files) {
  for (const file of files ?? []) {
    if (!file.type.startsWith('image/') && !/\.(jpe?g|png|webp|gif|avif|bmp)$/i.test(file.name)) continue;
    const id = nextId++;
    const el = document.createElement('div');
    el.className = 'thumb';
    el.dataset.id = String(id);
    el.dataset.status = 'pending';
    el.title = file.name;
    const img = document.createElement('img');
    img.alt = file.name;
    img.src = URL.createObjectURL(file);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = '×';
    remove.title = 'remove this photo';
    remove.addEventListener('click', (e) => {
      e.preventDefault();
      removeExample(id);
    });
    el.append(img, remove);
    c.el.querySelector('.thumbs').append(el);
    c.examples.add(id);
    examples.set(id, { classKey: c.key, file, status: 'pending', el });
    post({ type: 'add', id, image: file }); // a File is structured-cloned, not copied into the worker's memory
  }
  updateClasses();
}

function removeExample(id) {
  const example = examples.get(id);
  if (!example) return;
  URL.revokeObjectURL(example.el.querySelector('img').src);
  example.el.remove();
  examples.delete(id);
  classes.find((c) => c.key === example.classKey)?.examples.delete(id);
  post({ type: 'remove', id });
  updateClasses();
}

function setExampleStatus(id, status, message) {
  const example = examples.get(id);
  if (!example) return;
  example.status = status;
  example.el.dataset.status = status;
  example.el.title = message ? `${example.file.name}: ${message}` : example.file.name;
  updateClasses();
}

function updateClasses() {
  for (const c of classes) {
    const all = [...c.examples].map((id) => examples.get(id));
    const ready = all.filter((e) => e.status === 'ready').length;
    const failed = all.filter((e) => e.status === 'error').length;
    const count = c.el.querySelector('.count');
    count.textContent = all.length === 0 ? 'no photos'
      : `${all.length} photo${all.length === 1 ? '' : 's'}${ready < all.length - failed ? ` · ${ready} embedded` : ''}${failed ? ` · ${failed} unreadable` : ''}`;
    c.el.querySelector('.remove-class').hidden = classes.length <= 2;
  }
  updateTrainable();
}

/** Why training cannot start yet, or null. */
function notTrainable() {
  if (!ready) return 'The worker is still starting.';
  const usable = (c) => [...c.examples].filter((id) => examples.get(id).status !== 'error').length;
  const empty = classes.filter((c) => usable(c) === 0);
  if (empty.length > 0) return `Add photos to ${empty.map((c) => `"${c.name || 'unnamed'}"`).join(', ')}.`;
  const names = classes.map((c) => c.name);
  if (names.some((n) => !n)) return 'Give every class a name.';
  if (new Set(names).size !== names.length) return 'Give the classes different names.';
  return null;
}

function updateTrainable() {
  const why = notTrainable();
  const training = $('train-card').dataset.phase === 'training';
  $('train-button').disabled = why !== null || training;
  const all = [...examples.values()];
  const pending = all.filter((e) => e.status === 'pending').length;
  $('examples-text').textContent = why ?? `${all.length - pending - all.filter((e) => e.status === 'error').length} of ${all.length} photos embedded` +
    `${pending ? ' (training waits for the rest)' : ''} · ${classes.length} classes.`;
}

// ---------------------------------------------------------------- train, save, load

function train() {
  if (notTrainable()) return;
  const chosen = [];
  classes.forEach((c, label) => {
    for (const id of c.examples) if (examples.get(id).status !== 'error') chosen.push({ id, label });
  });
  const epochs = Math.max(1, Math.min(2000, Math.round(Number($('epochs').value) || 50)));
  const lr = Number($('lr').value) > 0 ? Number($('lr').value) : 0.001;
  const kind = $('head-kind').value;
  setPhase('training');
  showError('train-error', '');
  $('trained-text').hidden = true;
  setProgress(0, `Waiting for ${chosen.length} embeddings…`, '');
  head = { classes: classes.map((c) => c.name), colours: classes.map((c) => c.colour) };
  post({ type: 'train', examples: chosen, classes: head.classes, head: kind, hidden: 64, epochs, lr });
}

function setPhase(phase) {
  $('train-card').dataset.phase = phase;
  $('save-button').disabled = phase !== 'trained';
  updateTrainable();
}

function setProgress(fraction, left, right) {
  $('progress-fill').style.width = `${(100 * fraction).toFixed(1)}%`;
  document.querySelector('.progress').setAttribute('aria-valuenow', String(Math.round(100 * fraction)));
  $('progress-epoch').textContent = left;
  $('progress-loss').textContent = right;
}

const pct = (p) => `${(100 * p).toFixed(1)}\u00a0%`; // (a no-break space: never '%' alone on a line)

/** 'a Linear head' / 'an MLP head (64 hidden units)' */
const headName = (m) => (m.kind === 'mlp' ? `an MLP head (${m.hidden} hidden units)` : 'a Linear head');

function onTrained(m) {
  setPhase('trained');
  const text = $('trained-text');
  if (m.loaded) {
    head = { classes: m.classes, colours: m.classes.map((_, i) => classes[i]?.colour ?? COLOURS[i % COLOURS.length]) };
    setProgress(1, `Loaded ${m.name}`, '');
    const name = headName(m);
    text.textContent = `${name[0].toUpperCase()}${name.slice(1)} for ${m.classes.length} classes ` +
      `(${m.classes.join(', ')}), trained on ${m.examples} examples.` +
      (m.sameBase ? '' : ` Careful: it was trained on the embedding of ${m.base}, and this page runs another base network; its answers mean little here.`);
  } else {
    text.textContent = `Trained ${headName(m)} on ${m.examples} examples ` +
      `in ${Math.round(m.ms)} ms: loss ${m.loss.toFixed(4)}, ${pct(m.accuracy)} right on the training photos in the last epoch ` +
      '(that only says it fits them: try photos it has not seen).';
  }
  text.hidden = false;
  $('try-empty').hidden = true;
  if (tryFile) classify(tryFile);
}

function save() {
  post({ type: 'save' });
}

function download(bytes) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'head.safetensors';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function loadHead(file) {
  showError('train-error', '');
  try {
    const bytes = await file.arrayBuffer();
    post({ type: 'load-head', bytes, name: file.name }, [bytes]);
  } catch (e) {
    showError('train-error', `Could not read ${file.name}: ${e.message}`);
  }
}

/** True for a head.safetensors this page saved (its header's metadata says so), not base weights. */
async function isSavedHead(file) {
  if (!/\.safetensors$/i.test(file.name) || file.size < 8) return false;
  const length = new DataView(await file.slice(0, 8).arrayBuffer()).getBigUint64(0, true);
  if (length > 1_000_000n) return false;
  try {
    return JSON.parse(await file.slice(8, 8 + Number(length)).text()).__metadata__?.format?.startsWith('inception-wasm-teach/') === true;
  } catch {
    return false;
  }
}

async function loadWeights(file) {
  let bytes;
  try {
    if (await isSavedHead(file)) return loadHead(file); // the wrong button: a saved head, not weights
    $('weights-text').textContent = `Loading ${file.name}…`;
    bytes = await file.arrayBuffer();
  } catch (e) {
    $('weights-text').textContent = `Could not read ${file.name}: ${e.message}`;
    return undefined;
  }
  post({ type: 'weights', bytes, name: file.name }, [bytes]);
  weightsPending = [...examples].filter(([, e]) => e.status === 'ready').map(([id]) => id);
  for (const id of weightsPending) setExampleStatus(id, 'pending'); // embedded again with the new weights
}

// ---------------------------------------------------------------- try it

function classify(file) {
  tryFile = file;
  const photo = $('try-photo');
  if (photo.src) URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(file);
  $('try-zone').classList.add('has-photo');
  showError('try-error', '');
  if (!head || $('train-card').dataset.phase !== 'trained') {
    $('try-empty').hidden = false;
    return;
  }
  tryId = `try-${nextId++}`;
  $('verdict').dataset.predicted = '';
  $('verdict').dataset.for = '';
  post({ type: 'classify', id: tryId, image: file });
}

function showPrediction(m) {
  if (m.id !== tryId) return; // a newer photo is on its way
  const best = m.probabilities.indexOf(Math.max(...m.probabilities));
  const colour = (i) => head?.colours[i] ?? COLOURS[i % COLOURS.length];
  const verdict = $('verdict');
  verdict.textContent = `${m.classes[best]} `;
  verdict.style.color = colour(best);
  const small = document.createElement('small');
  small.textContent = `${pct(m.probabilities[best])} · ${Math.round(m.ms)} ms`;
  verdict.append(small);
  verdict.dataset.predicted = String(best);
  verdict.dataset.for = tryFile?.name ?? '';
  const list = $('probabilities');
  list.replaceChildren(...m.probabilities.map((p, i) => {
    const li = document.createElement('li');
    li.dataset.probability = String(p);
    li.style.setProperty('--c', colour(i));
    if (i === best) li.className = 'best';
    li.innerHTML = '<div class="row-head"><span class="label"></span><span class="prob"></span></div><div class="bar"><div class="fill"></div></div>';
    li.querySelector('.label').textContent = m.classes[i];
    li.querySelector('.prob').textContent = pct(p);
    li.querySelector('.fill').style.width = '0%';
    return li;
  }));
  requestAnimationFrame(() => requestAnimationFrame(() => {
    for (const li of list.children) li.querySelector('.fill').style.width = `${(100 * Number(li.dataset.probability)).toFixed(2)}%`;
  }));
}

// ---------------------------------------------------------------- the worker's answers

worker.addEventListener('message', ({ data: m }) => {
  switch (m.type) {
    case 'ready':
      ready = true;
      $('status').textContent = `In the worker: GoogLeNet (${(m.parameters / 1e6).toFixed(2)} M parameters, frozen) on ${m.simd} SIMD ` +
        `WebAssembly, ${m.threads} thread${m.threads === 1 ? '' : 's'}: loaded, built and warmed up in ${Math.round(m.ms)} ms.`;
      document.body.dataset.state = 'ready';
      updateTrainable();
      break;
    case 'features':
      setExampleStatus(m.id, 'ready');
      break;
    case 'progress':
      setProgress(m.epoch / m.epochs, `epoch ${m.epoch} / ${m.epochs}`, `loss ${m.loss.toFixed(4)} · ${pct(m.accuracy)} of the training photos right`);
      break;
    case 'trained':
      onTrained(m);
      break;
    case 'untrained':
      if ($('train-card').dataset.phase === 'trained') {
        setPhase('idle');
        setProgress(0, 'The base network changed: train again.', '');
        $('trained-text').hidden = true;
        $('probabilities').replaceChildren();
        $('verdict').textContent = '';
        $('verdict').dataset.predicted = '';
      }
      break;
    case 'base':
      weightsPending = [];
      $('weights-note').classList.add('loaded');
      $('weights-text').textContent = `Base network: ${m.name}, ${(m.parameters / 1e6).toFixed(2)} M parameters. ` +
        'Every photo is embedded again with it; then train again.';
      break;
    case 'prediction':
      showPrediction(m);
      break;
    case 'saved':
      download(m.bytes);
      break;
    case 'error':
      if (m.during === 'add') setExampleStatus(m.id, 'error', m.message);
      else if (m.during === 'train' || m.during === 'load-head' || m.during === 'save') {
        if (m.during === 'train') setPhase('idle');
        showError('train-error', m.message);
      } else if (m.during === 'classify') showError('try-error', m.message);
      else if (m.during === 'weights') {
        // The worker keeps the base network (and the embeddings) it had.
        $('weights-text').textContent = `Could not load these weights, the base network is unchanged: ${m.message}`;
        for (const id of weightsPending) setExampleStatus(id, 'ready');
      }
      else {
        showError('error', m.during === 'start' ? `The worker could not start: ${m.message}` : m.message);
        if (m.during === 'start') document.body.dataset.state = 'error';
      }
      break;
    default:
      break;
  }
});
worker.addEventListener('error', (e) => {
  showError('error', `The worker failed: ${e.message ?? 'it could not be loaded'}`);
  document.body.dataset.state = 'error';
});

// ---------------------------------------------------------------- wiring

/** An element that takes dropped files (and highlights while they hover). */
function dropTarget(el, take) {
  el.addEventListener('dragover', (e) => {
    e.preventDefault();
    el.classList.add('over');
  });
  el.addEventListener('dragleave', () => el.classList.remove('over'));
  el.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation();
    el.classList.remove('over');
    take(e.dataTransfer?.files);
  });
}

function wireUp() {
  $('add-class').addEventListener('click', () => addClass(`Class ${nextClass}`));
  $('train-button').addEventListener('click', train);
  $('save-button').addEventListener('click', save);
  $('load-head-button').addEventListener('click', () => $('head-input').click());
  $('head-input').addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (file) loadHead(file);
  });
  $('weights-button').addEventListener('click', () => $('weights-input').click());
  $('weights-input').addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (file) loadWeights(file);
  });
  $('try-input').addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (file) classify(file);
  });
  dropTarget($('try-zone'), (files) => files?.[0] && classify(files[0]));
  // Dropped elsewhere: weights files (and saved heads) load, anything else is ignored (not opened by the browser).
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file && /\.(safetensors|pth|pt)$/i.test(file.name)) loadWeights(file); // (or a saved head: loadWeights tells)
  });
  document.addEventListener('paste', (e) => {
    const file = e.clipboardData?.files?.[0];
    if (file) classify(file);
  });
}

wireUp();
addClass('Class 1');
addClass('Class 2');
