// The README's examples: the Node ones run as written against the built package, in a
// fresh process, in a folder with a photo.jpg (as a user's project would be); every
// example type-checks as a TypeScript user's strict project would see it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');
/** Every ```js block of the README's user part (before "Developing inception-wasm"). */
const blocks = [...readme.split('\n# Developing inception-wasm')[0]!.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
const classes = JSON.parse(readFileSync(`${root}test/fixtures/imagenet_classes.json`, 'utf8')) as string[];
let project: string;

beforeAll(() => {
  project = mkdtempSync(path.join(tmpdir(), 'inception-wasm-readme-'));
  mkdirSync(path.join(project, 'node_modules'));
  symlinkSync(root, path.join(project, 'node_modules/inception-wasm'), 'dir');
  copyFileSync(`${root}test/fixtures/images/chelsea_q90.jpg`, path.join(project, 'photo.jpg'));
});

afterAll(() => rmSync(project, { recursive: true, force: true }));

/** The block that contains `marker`, run in the user's project folder; its output lines. */
function run(marker: string): string[] {
  const block = blocks.find((b) => b.includes(marker));
  expect(block, `a README block containing ${marker}`).toBeDefined();
  writeFileSync(path.join(project, 'example.mjs'), block!);
  return execFileSync(process.execPath, ['example.mjs'], { cwd: project, encoding: 'utf8' }).trim().split('\n');
}

it('the Node example classifies photo.jpg: five labels with probabilities', () => {
  const out = run("const top5 = await model.classify(await readFile('photo.jpg'));");
  expect(out).toHaveLength(5);
  for (const line of out) {
    const [, label, percent] = /^(.*): (\d+\.\d) %$/.exec(line)!;
    expect(classes).toContain(label);
    expect(Number(percent)).toBeLessThanOrEqual(100);
  }
});

it('the pieces, one by one: preprocess, decodeImage, forward, softmax', () => {
  const out = run('const x = await preprocess(photo);');
  expect(out).toEqual([expect.stringMatching(/^\[ 1, 3, 224, 224 \] 451 300 405900 \d+$/)]);
});

it('build your own network: prints what its comments say', () => {
  const out = run('const block = new Inception(192, 64, 96, 128, 16, 32, 32);');
  expect(out[0]).toBe('[ 1, 256, 28, 28 ]');
  expect(out[1]).toBe('6994392');
  const top5 = JSON.parse(out.slice(2).join('').replace(/\s/g, '')) as number[];
  expect(top5).toHaveLength(5);
  expect(new Set(top5).size).toBe(5);
});

it('training: three steps of the seed loss, a checkpoint; a head trained on frozen features', () => {
  const out = run('const loss = googlenetLoss(out, target);');
  expect(out).toHaveLength(3);
  out.forEach((line, i) => expect(line).toMatch(new RegExp(`^${i} \\d+\\.\\d{4} true$`)));
  expect(readFileSync(path.join(project, 'checkpoint.safetensors')).length).toBeGreaterThan(60_000_000) // ≈ 10 M weights and as many momentum values;
  const head = run('const features = base.forwardFeatures(photos);').map((l) => Number(l.split(' ')[1]));
  expect(head).toHaveLength(3);
  expect(head[2]!).toBeLessThan(head[0]!);
});

it('every example type-checks (strict, noUncheckedIndexedAccess, checkJs; DOM for the browser one)', () => {
  expect(blocks.length).toBeGreaterThanOrEqual(6);
  const files = blocks.map((b, i) => {
    const file = `block${i}.mjs`;
    writeFileSync(path.join(project, file), b);
    return file;
  });
  // What a Workers project declares for its .wasm imports (wrangler's CompiledWasm modules).
  writeFileSync(path.join(project, 'wasm.d.ts'), "declare module '*.wasm' { const module: WebAssembly.Module; export default module; }\n");
  writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM', 'ESNext.Disposable'], types: ['node'],
      typeRoots: [`${root}node_modules/@types`], strict: true, noUncheckedIndexedAccess: true, allowJs: true, checkJs: true, noEmit: true,
      skipLibCheck: false, noImplicitAny: false,
    },
    files: ['wasm.d.ts', ...files],
  }));
  let out = '';
  try {
    execFileSync(`${root}node_modules/.bin/tsc`, ['-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout);
  }
  expect(out).toBe('');
});
