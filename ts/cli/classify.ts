/** `inception-wasm classify <files or folders…>`: top-k ImageNet labels for photos. */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { IMAGENET_CLASSES, init, preprocess, softmax, Tensor, topk } from '../index.js';
import { buildModel, notice, parse, positiveInt, UsageError } from './common.js';

export const usage = `Usage: inception-wasm classify <files or folders…> [options]

Top-k ImageNet labels for each photo (JPEG or PNG). Folders are read recursively: files
with an image extension are classified, the rest listed as skipped.

Options:
  --weights FILE       torchvision-style weights (.pth / .pt or .safetensors); without it
                       the network has random weights and its labels mean nothing
  --variant NAME       relu (default), seed or torchvision; inferred from --weights
  --transform-input    torchvision's transform_input (its pretrained weights need it;
                       read from a safetensors file's metadata)
  --topk N             classes per photo (default 5)
  --threads N          threads to compute with (default 1)
  --batch N            photos per forward (default 8)
  --json               one JSON array on stdout: { file, top: [{ index, label, probability }] }
                       or { file, error: { name, message } } per file, in order
  --csv                file,rank,index,label,probability,error rows on stdout
  -h, --help           this text

Exit code: 0 all photos classified, 1 some could not be read, 2 bad usage.`;

/** Extensions tried as images (formats other than JPEG and PNG are then reported as such). */
const IMAGE_EXTENSIONS = /\.(jpe?g|jpe|jfif|png|apng|gif|webp|bmp|tiff?|heic|heif|avif)$/i;

interface Entry {
  file: string;
  top?: { index: number; label: string; probability: number }[];
  error?: { name: string; message: string };
}

/** The files to classify, in order (folders sorted, recursive); skipped ones reported on stderr. */
async function collect(inputs: string[]): Promise<Entry[]> {
  const entries: Entry[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>(); // real paths of the folders walked: symlink cycles end here
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      const real = await realpath(dir);
      if (seen.has(real)) return;
      seen.add(real);
      names = (await readdir(dir)).sort();
    } catch (e) {
      // An unreadable folder fails as an entry of its own; the others are still classified.
      entries.push({ file: dir, error: { name: (e as Error).name, message: (e as Error).message } });
      return;
    }
    for (const name of names) {
      const full = path.join(dir, name);
      // stat follows symlinks: a linked folder is walked, a linked photo classified.
      if ((await stat(full).catch(() => undefined))?.isDirectory()) await walk(full);
      else if (IMAGE_EXTENSIONS.test(name)) entries.push({ file: full });
      else skipped.push(full);
    }
  };
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined);
    if (info?.isDirectory()) await walk(input);
    else entries.push({ file: input }); // named on the command line: always attempted
  }
  if (skipped.length > 0) notice(`skipped ${skipped.length} file${skipped.length > 1 ? 's' : ''} without an image extension: ${skipped.join(', ')}`);
  return entries;
}

/** A progress line on stderr, only when stderr is a terminal. */
function progress(total: number): { update(done: number): void; end(): void } {
  if (!process.stderr.isTTY) return { update() {}, end() {} };
  const t0 = performance.now();
  return {
    update(done) {
      const seconds = (performance.now() - t0) / 1000;
      const rate = done / Math.max(seconds, 1e-3);
      const width = 24;
      const filled = Math.round((width * done) / total);
      const eta = done > 0 ? `ETA ${Math.ceil((total - done) / rate)} s` : '';
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(1)} img/s  ${eta}   `);
    },
    end() {
      process.stderr.write('\r\x1b[K');
    },
  };
}

const bar = (p: number) => '█'.repeat(Math.round(p * 20)).padEnd(20, '·');

function printText(e: Entry): void {
  if (e.error) {
    process.stdout.write(`${e.file}\n  error: ${e.error.name}: ${e.error.message}\n`);
    return;
  }
  process.stdout.write(`${e.file}\n`);
  for (const t of e.top!) process.stdout.write(`  ${bar(t.probability)} ${(100 * t.probability).toFixed(1).padStart(5)} %  ${t.label} (${t.index})\n`);
}

const csvCell = (v: string | number) => (typeof v === 'number' ? String(v) : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

function printCsv(e: Entry): void {
  if (e.error) {
    process.stdout.write(`${[e.file, '', '', '', '', `${e.error.name}: ${e.error.message}`].map(csvCell).join(',')}\n`);
    return;
  }
  e.top!.forEach((t, rank) => process.stdout.write(`${[e.file, rank + 1, t.index, t.label, t.probability, ''].map(csvCell).join(',')}\n`));
}

export async function classifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    weights: { type: 'string' },
    variant: { type: 'string' },
    'transform-input': { type: 'boolean' },
    topk: { type: 'string' },
    threads: { type: 'string' },
    batch: { type: 'string' },
    json: { type: 'boolean' },
    csv: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('no photos given: name files or folders, e.g. inception-wasm classify photo.jpg photos/');
  if (values.json && values.csv) throw new UsageError('--json and --csv exclude each other');
  const k = positiveInt('topk', values.topk, 5);
  const threads = positiveInt('threads', values.threads, 1);
  const batchSize = positiveInt('batch', values.batch, 8);

  const entries = await collect(positionals);
  if (entries.length === 0) notice('nothing to classify: no file with an image extension in the folders given');
  await init({ threads });
  const model = await buildModel({ weights: values.weights, variant: values.variant, transformInput: values['transform-input'] });
  const labels = model.numClasses === IMAGENET_CLASSES.length ? IMAGENET_CLASSES : undefined;
  const t0 = performance.now();
  const meter = progress(entries.length);
  if (values.csv) process.stdout.write('file,rank,index,label,probability,error\n');
  for (let start = 0; start < entries.length; start += batchSize) {
    const batch = entries.slice(start, start + batchSize);
    // Each photo alone through preprocess, so one bad file fails only itself.
    const inputs: { entry: Entry; x: Tensor }[] = [];
    for (const entry of batch.filter((e) => e.error === undefined)) {
      try {
        inputs.push({ entry, x: await preprocess(await readFile(entry.file)) });
      } catch (e) {
        entry.error = { name: (e as Error).name, message: (e as Error).message };
      }
    }
    if (inputs.length > 0) {
      const made: Tensor[] = inputs.map((i) => i.x);
      try {
        const plane = inputs[0]!.x.numel;
        const data = new Float32Array(plane * inputs.length);
        inputs.forEach(({ x }, i) => data.set(x.data, i * plane));
        const x = Tensor.fromArray(data, [inputs.length, 3, 224, 224]);
        made.push(x);
        const logits = model.forward(x);
        made.push(logits);
        const probabilities = softmax(logits);
        made.push(probabilities);
        topk(probabilities, Math.min(k, model.numClasses)).forEach((row, i) => {
          inputs[i]!.entry.top = row.map(({ index, value }) => ({ index, label: labels?.[index] ?? String(index), probability: value }));
        });
      } catch (e) {
        // The batch failed as a whole (out of memory with a large --batch): its photos are
        // reported, the run goes on.
        for (const { entry } of inputs) entry.error = { name: (e as Error).name, message: (e as Error).message };
      } finally {
        for (const t of made) t.dispose();
      }
    }
    meter.end(); // the results go to the terminal too: clear the line first
    if (!values.json) for (const e of batch) (values.csv ? printCsv : printText)(e);
    meter.update(start + batch.length);
  }
  meter.end();
  if (values.json) process.stdout.write(`${JSON.stringify(entries, null, 1)}\n`);
  const failed = entries.filter((e) => e.error).length;
  const seconds = (performance.now() - t0) / 1000;
  const summary = `${entries.length - failed} classified, ${failed} failed, in ${seconds.toFixed(1)} s (${((entries.length - failed) / Math.max(seconds, 1e-3)).toFixed(1)} images/s)`;
  if (values.json || values.csv) notice(summary);
  else process.stdout.write(`\n${summary}\n`);
  model.dispose();
  return failed > 0 || entries.length === 0 ? 1 : 0;
}
