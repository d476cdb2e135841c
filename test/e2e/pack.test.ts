/**
 * The package as published: `npm pack`, then publint and @arethetypeswrong/cli on the
 * tarball, then the tarball installed into a fresh project outside the repository
 * (`npm install <tarball> --offline`: it has no runtime dependencies) and a forward pass
 * from ESM and from CommonJS there — the fixture cases inception_3a_relu and
 * seed_googlenet_relu, weights and input handed over as safetensors files, answers
 * checked with the fixtures' tolerance.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Case, caseRequest, checkAnswer, loadCase, root } from './fixture-case.js';

const CASES = ['inception_3a_relu', 'seed_googlenet_relu'];
const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const exported = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, unknown> }).exports;

let work: string;
let tarball: string;
let files: string[];
let consumer: string;

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  work = realpathSync(mkdtempSync(path.join(tmpdir(), 'inception-wasm-pack-')));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=error'], { cwd: root, encoding: 'utf8' })) as
    { filename: string; size: number; files: { path: string }[] }[];
  tarball = path.join(work, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path);
  console.log(`pack: ${packed[0]!.filename}, ${packed[0]!.size} bytes, ${files.length} files`);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('holds the built package and nothing else', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/wasm/inception_wasm_bg.wasm', 'dist/wasm-image/inception_image_bg.wasm']) {
      expect(files, f).toContain(f);
    }
    // Every subpath of `exports` (each .wasm build and the threads' worker, for users to
    // import or copy by name) is a file of the tarball.
    for (const [subpath, target] of Object.entries(exported)) {
      if (typeof target === 'string') expect(files, subpath).toContain(target.replace(/^\.\//, ''));
    }
    expect(Object.keys(exported)).toEqual(expect.arrayContaining(['./wasm/inception_wasm_bg.wasm', './wasm-relaxed/inception_wasm_bg.wasm',
      './wasm-threads/inception_wasm_bg.wasm', './wasm-threads-relaxed/inception_wasm_bg.wasm', './wasm-image/inception_image_bg.wasm', './worker.js']));
    expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f))).toEqual([]);
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { dependencies?: object };
    expect(pkg.dependencies ?? {}, 'no runtime dependencies').toEqual({});
  });

  it('publint: no errors, warnings or suggestions', () => {
    const { status, out } = run(bin('publint'), ['run', tarball, '--strict', '--level', 'suggestion'], work);
    console.log(out.trim());
    expect(status, out).toBe(0);
    expect(out).toContain('All good!');
  });

  it('@arethetypeswrong/cli: no problems in any resolution mode', () => {
    // The .wasm subpaths are binary assets (imported by edge bundlers as compiled
    // modules, copied by the others), and ./worker.js is the threads' worker script, a file
    // to serve rather than a module to import: not entry points with types, attw cannot
    // judge them.
    const assets = Object.keys(exported).filter((k) => k.endsWith('.wasm') || k === './worker.js');
    const args = [tarball, '--exclude-entrypoints', ...assets];
    const table = run(bin('attw'), args, work);
    console.log(table.out.trim());
    expect(table.status, table.out).toBe(0);
    const json = JSON.parse(run(bin('attw'), [...args, '--format', 'json'], work).out) as { problems: object };
    expect(Object.values(json.problems).flat()).toEqual([]);
    expect(table.out).toContain('No problems found');
  });
});

/** The consumer's script: runs every request file named on the command line. */
const script = (format: 'esm' | 'cjs') => `${format === 'esm'
  ? `import * as lib from 'inception-wasm';\nimport { readFileSync, writeFileSync } from 'node:fs';\nconst resolved = import.meta.resolve('inception-wasm');`
  : `const lib = require('inception-wasm');\nconst { readFileSync, writeFileSync } = require('node:fs');\nconst resolved = require.resolve('inception-wasm');`}
function buildModel(spec) {
  if (spec.type === 'googlenet') return new lib.GoogLeNet({ numClasses: spec.numClasses, variant: spec.variant });
  const [inC, c1, c3r, c3, c5r, c5, pool] = spec.channels;
  return new lib.Inception(inC, c1, c3r, c3, c5r, c5, pool, { activation: spec.activation });
}
(async () => {
  await lib.init();
  for (const file of process.argv.slice(2)) {
    const { tensors, metadata } = lib.readSafetensors(readFileSync(file));
    const input = tensors.get('input');
    tensors.delete('input');
    const model = buildModel(JSON.parse(metadata.model));
    model.loadStateDict(tensors);
    const x = lib.Tensor.fromArray(input.data, input.shape);
    const y = model.forward(x);
    writeFileSync(file.replace('.safetensors', '.${format}.answer'), lib.saveSafetensors(new Map([[metadata.output, { shape: y.shape, data: y.toArray() }]])));
    for (const t of [model, x, y]) t.dispose();
  }
  // The image module: found next to the bundle (dist/wasm-image/) from either format.
  const [top] = await lib.classify(new lib.GoogLeNet({ seed: 0 }), readFileSync(${JSON.stringify(`${root}test/fixtures/images/chelsea_q90.jpg`)}));
  const { width, height } = await lib.decodeImage(readFileSync(${JSON.stringify(`${root}test/fixtures/images/horse_rgba_png.png`)}));
  console.log(JSON.stringify({ resolved: String(resolved), initialized: lib.isInitialized(), top, width, height }));
})();
`;

describe('the tarball installed into a fresh project', () => {
  const cases = new Map<string, Case>();

  beforeAll(() => {
    consumer = path.join(work, 'consumer');
    execFileSync('mkdir', [consumer]);
    writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const { status, out } = run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], consumer);
    expect(status, out).toBe(0);
    for (const name of CASES) {
      const c = loadCase(name);
      cases.set(name, c);
      writeFileSync(path.join(consumer, `${name}.safetensors`), caseRequest(c));
    }
    writeFileSync(path.join(consumer, 'run.mjs'), script('esm'));
    writeFileSync(path.join(consumer, 'run.cjs'), script('cjs'));
  });

  for (const [format, file, entry] of [['ESM', 'run.mjs', 'dist/index.js'], ['CommonJS', 'run.cjs', 'dist/index.cjs']] as const) {
    it(`${format}: forward passes match the fixtures`, () => {
      const t0 = performance.now();
      const { status, out } = run(process.execPath, [file, ...CASES.map((n) => `${n}.safetensors`)], consumer);
      const ms = performance.now() - t0;
      expect(status, out).toBe(0);
      const report = JSON.parse(out.trim().split('\n').at(-1)!) as { resolved: string; initialized: boolean; top: { label: string }; width: number; height: number };
      expect([report.width, report.height]).toEqual([400, 328]);
      expect(report.top.label).toBe('oboe'); // GoogLeNet({ seed: 0 })'s top-1 for this photo, as in Node from dist/
      const resolved = report.resolved.startsWith('file:') ? new URL(report.resolved).pathname : report.resolved;
      expect(resolved).toBe(path.join(consumer, 'node_modules/inception-wasm', entry));
      expect(report.initialized).toBe(true);
      const tag = format === 'ESM' ? 'esm' : 'cjs';
      for (const name of CASES) {
        const worst = checkAnswer(cases.get(name)!, readFileSync(path.join(consumer, `${name}.${tag}.answer`)), `installed package (${format})`);
        console.log(`pack (${format}): ${name} worst error/tolerance ${worst.toFixed(4)}`);
      }
      console.log(`pack (${format}): node process ${ms.toFixed(0)} ms`);
    });
  }

  // The declarations as a Node user's strict project sees them: lib ES2022 and @types/node,
  // no DOM, skipLibCheck off, noUncheckedIndexedAccess; ESM and CommonJS resolution.
  it('type-checks in a project with lib ES2022 + @types/node, no DOM, skipLibCheck false', () => {
    const use = `import { classify, decodeImage, GoogLeNet, ImageError, init, IMAGENET_CLASSES, loadPth, PthError, preprocess, softmax, Tensor, topk, type Prediction } from 'inception-wasm';
const fromPth = (bytes: Uint8Array) => { try { return GoogLeNet.fromStateDict(loadPth(bytes)); } catch (e) { if (e instanceof PthError) return undefined; throw e; } };
console.log(fromPth(new Uint8Array(4)));
await init({ maximumMemory: 2 ** 28 });
const model = GoogLeNet.fromStateDict(new GoogLeNet({ seed: 0 }).stateDict());
const top: Prediction[] = await classify(model, new Uint8Array(10)).catch((e: unknown) => (e instanceof ImageError ? [] : Promise.reject(e)));
const x: Tensor = await preprocess({ data: new Uint8Array(12), width: 2, height: 2 }, { resize: null, crop: null });
const { width } = await decodeImage(new ArrayBuffer(4)).catch(() => ({ width: 0 }));
const best = topk(softmax(model.forward(x)), 1)[0]?.[0];
console.log(top.length, width, best?.index, IMAGENET_CLASSES[0]?.length);
`;
    writeFileSync(path.join(consumer, 'use.mts'), use);
    writeFileSync(path.join(consumer, 'use.cts'), "import lib = require('inception-wasm');\nconst t: lib.Tensor | undefined = undefined;\nexport = t;\n");
    writeFileSync(path.join(consumer, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'],
        typeRoots: [`${root}node_modules/@types`], strict: true, noUncheckedIndexedAccess: true, skipLibCheck: false, noEmit: true,
      },
      files: ['use.mts', 'use.cts'],
    }));
    const { status, out } = run(bin('tsc'), ['-p', 'tsconfig.json'], consumer);
    expect(status, out).toBe(0);
  });
});
