/**
 * The built package (dist/, as published): loads from ESM and CommonJS through its own
 * package name, from bytes and from a precompiled WebAssembly.Module, and its .wasm
 * really contains simd128 code. Each case runs in a fresh Node process so that every
 * init() starts from nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const wasmPath = `${root}dist/wasm/inception_wasm_bg.wasm`;
const threadedWasmPath = `${root}dist/wasm-threads/inception_wasm_bg.wasm`;
const relaxedWasmPaths = ['wasm-relaxed', 'wasm-threads-relaxed'].map((d) => `${root}dist/${d}/inception_wasm_bg.wasm`);

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
}

// 1×1 conv 2→1, weights [2, -1], no bias, on [1,2,1,2] = [1,2 | 3,4] → [2·1−3, 2·2−4] = [-1, 0]
const forward = `
  await m.init(WASM);
  const c = new m.Conv2d({ inChannels: 2, outChannels: 1, kernelSize: 1, bias: false });
  c.loadStateDict({ weight: new Float32Array([2, -1]) });
  const y = c.forward(m.Tensor.fromArray([1, 2, 3, 4], [1, 2, 1, 2]));
  console.log(JSON.stringify(Array.from(y.data)));`;

describe('packaged build (dist/)', () => {
  it('has been built', () => {
    expect(existsSync(wasmPath), 'run `npm run build` first').toBe(true);
  });

  it('loads from ESM by package name', () => {
    expect(node(['--input-type=module', '-e', `const m = await import('inception-wasm'); const WASM = undefined; ${forward}`])).toBe('[-1,0]');
  });

  it('loads from CommonJS by package name', () => {
    const src = `const m = require('inception-wasm'); const WASM = undefined; (async () => { ${forward} })();`;
    expect(node(['-e', src])).toBe('[-1,0]');
  });

  it('loads from bytes and from a precompiled WebAssembly.Module (edge runtimes)', () => {
    const bytes = `const bytes = require('node:fs').readFileSync(${JSON.stringify(wasmPath)});`;
    for (const source of ['{ wasm: bytes }', '{ wasm: new WebAssembly.Module(bytes) }']) {
      const src = `${bytes} const m = require('inception-wasm'); const WASM = ${source}; (async () => { ${forward} })();`;
      expect(node(['-e', src]), source).toBe('[-1,0]');
    }
  });

  it('a failed load rejects and a later init() can still succeed', () => {
    const src = `const m = require('inception-wasm');
      (async () => {
        await m.init({ wasm: new Uint8Array([0, 1, 2]) }).then(() => console.log('resolved'), (e) => console.log('rejected:', e.constructor.name));
        await m.init();
        console.log('initialized:', m.isInitialized());
      })();`;
    expect(node(['-e', src])).toBe('rejected: WasmLoadError\ninitialized: true');
  });

  it('init({ threads: 2 }) runs the threaded build on worker_threads with results identical to 1 thread', () => {
    const run = (threads: number) => `
      const m = await import('inception-wasm');
      await m.init({ threads: ${threads} });
      const net = new m.Inception(64, 16, 24, 32, 8, 16, 16, { seed: 3 });
      const x = m.Tensor.fromArray(Float32Array.from({ length: 2 * 64 * 28 * 28 }, (_, i) => Math.sin(i)), [2, 64, 28, 28]);
      const y = net.forward(x);
      let h = 0;
      for (const v of new Uint32Array(y.toArray().buffer)) h = (Math.imul(h, 31) + v) >>> 0;
      console.log(m.threadCount(), y.shape.join('x'), h);`;
    const one = node(['--input-type=module', '-e', run(1)]).split(' ');
    const two = node(['--input-type=module', '-e', run(2)]).split(' ');
    expect(one[0]).toBe('1');
    expect(two[0]).toBe('2');
    expect(two.slice(1), 'bit-identical outputs').toEqual(one.slice(1));
  });

  it('the .wasm validates and contains simd128 multiply-adds', () => {
    const bytes = readFileSync(wasmPath);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const disassembly = execFileSync('wasm-objdump', ['-d', wasmPath], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const mul = disassembly.match(/f32x4\.mul/g)?.length ?? 0;
    const splat = disassembly.match(/v128\.load32_splat/g)?.length ?? 0;
    console.log(`.wasm: ${statSync(wasmPath).size} bytes, ${mul} f32x4.mul, ${splat} v128.load32_splat`);
    expect(mul).toBeGreaterThan(0);
    expect(splat).toBeGreaterThan(0);
  });

  it('the relaxed-SIMD builds fuse their multiply-adds (f32x4.relaxed_madd) and validate only where relaxed SIMD runs', () => {
    for (const path of relaxedWasmPaths) {
      const disassembly = execFileSync('wasm-objdump', ['-d', path], { encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(disassembly.match(/f32x4\.relaxed_madd/g)?.length ?? 0, path).toBeGreaterThan(0);
    }
    const check = (flags: string[]) => node([...flags, '-e', `console.log(WebAssembly.validate(require('node:fs').readFileSync(${JSON.stringify(relaxedWasmPaths[0])})))`]);
    expect(check([])).toBe('false'); // Node 20: relaxed SIMD is behind a flag
    expect(check(['--experimental-wasm-relaxed-simd'])).toBe('true');
  });

  it('init() picks the relaxed-SIMD build where the runtime validates it, and relaxedSimd: false keeps the plain one', () => {
    const src = (options: string) => `const m = await import('inception-wasm'); await m.init(${options}); console.log(m.relaxedSimdSupported(), m.simdFlavour());`;
    expect(node(['--input-type=module', '-e', src('')])).toBe('false simd128');
    expect(node(['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', src('')])).toBe('true relaxed');
    expect(node(['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', src('{ relaxedSimd: false }')])).toBe('true simd128');
    expect(node(['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', src('{ threads: 2 }')])).toBe('true relaxed');
  });

  it('the bundle names its files as bundlers can follow them: literal new URL(…, import.meta.url) paths, each a file of dist/', () => {
    // Vite and webpack copy (and Vite's dev optimizer redirects) only literal paths; a
    // computed one, or one to a file that is not there (wasm-bindgen's own default), would
    // be left behind or break the build.
    for (const file of ['index.js', 'worker.js']) {
      const code = readFileSync(`${root}dist/${file}`, 'utf8');
      const urls = [...code.matchAll(/new URL\(([^,()]*), import\.meta\.url\)/g)].map((m) => m[1]!);
      for (const url of urls) {
        expect(url, `${file}: a literal relative path`).toMatch(/^"\.\/[\w./-]+"$/);
        expect(existsSync(`${root}dist/${JSON.parse(url)}`), `${file}: ${url}`).toBe(true);
      }
      if (file === 'index.js') expect(urls.map((u) => JSON.parse(u) as string).sort()).toEqual(['./wasm-image/inception_image_bg.wasm', './wasm-relaxed/inception_wasm_bg.wasm',
        './wasm-threads-relaxed/inception_wasm_bg.wasm', './wasm-threads/inception_wasm_bg.wasm', './wasm/inception_wasm_bg.wasm', './worker.js']);
    }
  });

  // 300 KB for inference alone (0.3: 163 KB, 215 KB threaded); 0.4 added training — the
  // recorded graphs, backward kernels, optimisers (+110 KB) — in the same module, since a
  // model's tensors must live in one instance. Still 2.4 % of onnxruntime-web's 14.2 MB.
  it('every .wasm build stays within the 350 KB size budget (SPEC: a fraction of onnxruntime-web)', () => {
    for (const path of [wasmPath, threadedWasmPath, ...relaxedWasmPaths]) expect(statSync(path).size, path).toBeLessThan(350_000);
  });
});
