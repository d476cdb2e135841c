// Image path timings (`npm run bench:image`): decodeImage and preprocess of a 12-megapixel
// JPEG (bench/images/photo_12mp.jpg, 4000×3000, q90) and of a small photo to the 224 crop,
// against jpeg-js (the pure-JavaScript decoder) and PIL 9.4 + torchvision (native
// libjpeg-turbo; the reference pipeline), in the same run. Medians with p10–p90; ratios
// are ours ÷ theirs (below 1: ours is faster). PIL runs when /usr/bin/python3 has it.
//
// usage: node bench/image.mjs [--samples N] [--json FILE]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import jpegJs from 'jpeg-js';
import { classify, decodeImage, GoogLeNet, init, preprocess } from '../dist/index.js';
import { measure, summarize } from './lib/stats.mjs';

const { values: args } = parseArgs({ options: { samples: { type: 'string', default: '11' }, json: { type: 'string' } } });
const samples = Number(args.samples);
const big = fs.readFileSync(new URL('./images/photo_12mp.jpg', import.meta.url));
const smallPath = new URL('../test/fixtures/images/chelsea_q90.jpg', import.meta.url);
const small = fs.readFileSync(smallPath);

await init();
const rows = [];
async function time(label, fn, n = samples) {
  const { times } = await measure(fn, { warmup: 2, samples: n });
  const s = summarize(times);
  rows.push({ label, ...s });
  console.log(`${label.padEnd(58)} ${s.median.toFixed(1).padStart(8)} ms  (p10 ${s.p10.toFixed(1)}, p90 ${s.p90.toFixed(1)})`);
  return s;
}

const decoded = await decodeImage(big);
console.log(`12-megapixel JPEG: ${decoded.width}×${decoded.height}, ${big.length} bytes; small photo: 451×300, ${small.length} bytes\n`);
const ours = {
  decode: await time('decodeImage (12 MP JPEG → RGB)', () => decodeImage(big)),
  preprocess: await time('preprocess (12 MP JPEG → [1,3,224,224])', async () => (await preprocess(big)).dispose()),
  resize: await time('preprocess (12 MP raw RGB → [1,3,224,224]: resize+crop+normalise)', async () => (await preprocess(decoded)).dispose()),
  small: await time('preprocess (451×300 JPEG → [1,3,224,224])', async () => (await preprocess(small)).dispose(), samples * 5),
};
const jpegJsDecode = await time('jpeg-js decode (12 MP JPEG → RGBA)', () => jpegJs.decode(big, { useTArray: true, maxMemoryUsageInMB: 1024 }), Math.max(3, Math.ceil(samples / 3)));
const model = new GoogLeNet({ seed: 0 });
await time('classify (451×300 JPEG: preprocess + forward + top-5)', () => classify(model, small), samples * 3);
model.dispose();

// PIL + torchvision, timed inside Python (interpreter start-up and imports excluded).
const PIL = `
import io, json, sys, time
from PIL import Image
import torchvision.transforms as T
tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
def med(f, n):
    f(); f()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1000)
    ts.sort(); return ts[len(ts) // 2]
big, small, n = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), int(sys.argv[3])
load = lambda b: Image.open(io.BytesIO(b)).convert('RGB')
print(json.dumps({'decode': med(lambda: load(big), n), 'preprocess': med(lambda: tf(load(big)), n), 'small': med(lambda: tf(load(small)), n * 5)}))
`;
let pil;
try {
  pil = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PIL, new URL('./images/photo_12mp.jpg', import.meta.url).pathname, smallPath.pathname, String(samples)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  console.log(`\nPIL 9.4 + torchvision (native, medians): decode ${pil.decode.toFixed(1)} ms, 12 MP preprocess ${pil.preprocess.toFixed(1)} ms, small preprocess ${pil.small.toFixed(1)} ms`);
} catch {
  console.log('\nPIL + torchvision: not available (/usr/bin/python3 with python3-pil and python3-torchvision)');
}
console.log('\nratios (ours ÷ theirs, medians of the same run):');
console.log(`  12 MP decode     vs jpeg-js: ${(ours.decode.median / jpegJsDecode.median).toFixed(2)}×${pil ? `   vs PIL: ${(ours.decode.median / pil.decode).toFixed(2)}×` : ''}`);
if (pil) {
  console.log(`  12 MP preprocess vs PIL + torchvision: ${(ours.preprocess.median / pil.preprocess).toFixed(2)}×`);
  console.log(`  small preprocess vs PIL + torchvision: ${(ours.small.median / pil.small).toFixed(2)}×`);
}
if (args.json) fs.writeFileSync(args.json, JSON.stringify({ rows, pil, date: new Date().toISOString() }, null, 1));
