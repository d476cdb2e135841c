/**
 * The package in workerd (Cloudflare's Workers runtime, from the npm `workerd` package):
 * the example worker, examples/cloudflare-worker/src/worker.js, served by the example's
 * own workerd.capnp, exactly as a user would copy them — the package's .wasm is a `wasm`
 * module there (a precompiled WebAssembly.Module: Workers refuse to compile from bytes)
 * and the worker calls `init({ wasm })`. The layout the config expects (src/ and
 * node_modules/inception-wasm → this repository's built package) is made in a temporary
 * directory; workerd listens on 127.0.0.1 on a port of its own choosing, reported on a
 * control pipe. The test runs fixture cases through POST /forward (weights and input
 * regenerated in Node, checksum-checked) and checks the answers with the fixtures'
 * tolerance, then stops workerd.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseRequest, checkAnswer, loadCase, root } from './fixture-case.js';

const example = `${root}examples/cloudflare-worker/`;
const workerdBinary: string = createRequire(import.meta.url)('workerd').default;

let dir: string;
let workerd: ChildProcess;
let origin: string;
let stderr = '';

beforeAll(async () => {
  expect(existsSync(`${root}dist/index.js`), 'dist/ is missing: run npm run build').toBe(true);
  dir = mkdtempSync(path.join(tmpdir(), 'inception-wasm-workerd-'));
  mkdirSync(path.join(dir, 'src'));
  mkdirSync(path.join(dir, 'node_modules'));
  copyFileSync(`${example}workerd.capnp`, path.join(dir, 'workerd.capnp'));
  copyFileSync(`${example}src/worker.js`, path.join(dir, 'src/worker.js'));
  symlinkSync(root, path.join(dir, 'node_modules/inception-wasm'), 'dir');

  // --socket-addr overrides the config's 127.0.0.1:8787 with a free port; workerd reports
  // it as {"event":"listen","socket":"http","port":N} on the control fd (3).
  workerd = spawn(workerdBinary, ['serve', 'workerd.capnp', '--socket-addr', 'http=127.0.0.1:0', '--control-fd=3'], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'pipe', 'pipe'],
  });
  workerd.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`workerd did not start within 60 s:\n${stderr}`)), 60_000);
    workerd.once('exit', (code) => reject(new Error(`workerd exited with ${code}:\n${stderr}`)));
    createInterface({ input: workerd.stdio[3] as Readable }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string; socket?: string; port?: number };
      if (event.event === 'listen' && event.socket === 'http') {
        clearTimeout(timer);
        resolve(event.port!);
      }
    });
  });
  origin = `http://127.0.0.1:${port}`;
  console.log(`workerd ${createRequire(import.meta.url)('workerd').version} listening on ${origin}`);
});

afterAll(async () => {
  if (workerd && workerd.exitCode === null) {
    const exited = new Promise((resolve) => workerd.once('exit', resolve));
    workerd.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('workerd: the example worker (examples/cloudflare-worker)', () => {
  it('GET / runs an Inception block (the .wasm is a precompiled module given to init)', async () => {
    const response = await fetch(`${origin}/`);
    expect(response.status).toBe(200);
    const body = await response.json() as { ok: boolean; runtime: string; outputShape: number[]; first: number[] };
    expect(body.ok).toBe(true);
    expect(body.runtime).toBe('Cloudflare-Workers');
    expect(body.outputShape).toEqual([1, 256, 28, 28]);

    // The same block and input in Node, from the same dist/ build: the same numbers.
    const m = await import('../../dist/index.js');
    await m.init();
    const block = new m.Inception(192, 64, 96, 128, 16, 32, 32, { seed: 0 });
    const x = m.Tensor.fromArray(new Float32Array(192 * 28 * 28).fill(0.1), [1, 192, 28, 28]);
    const y = block.forward(x);
    expect(body.first).toEqual(Array.from(y.data.subarray(0, 4)));
    for (const t of [block, x, y]) t.dispose();
  });

  for (const name of ['inception_3a_relu', 'seed_googlenet_relu']) {
    it(`POST /forward: fixture ${name}`, async () => {
      const c = loadCase(name);
      const request = caseRequest(c);
      const t0 = performance.now();
      const response = await fetch(`${origin}/forward`, { method: 'POST', body: request, headers: { 'content-type': 'application/octet-stream' } });
      const ms = performance.now() - t0;
      expect(response.status, await response.clone().text().then((t) => t.slice(0, 300))).toBe(200);
      const worst = checkAnswer(c, new Uint8Array(await response.arrayBuffer()), 'workerd');
      console.log(`workerd: ${name} (${(request.length / 1e6).toFixed(1)} MB request) answered in ${ms.toFixed(0)} ms, worst error/tolerance ${worst.toFixed(4)}`);
    });
  }

  it('POST /classify: a photo through decodeImage/preprocess/classify in workerd gives Node\'s answer', async () => {
    const photo = readFileSync(`${root}test/fixtures/images/chelsea_q90.jpg`);
    const response = await fetch(`${origin}/classify`, { method: 'POST', body: photo });
    expect(response.status, await response.clone().text().then((t) => t.slice(0, 300))).toBe(200);
    const body = await response.json() as { predictions: { index: number; label: string; probability: number }[]; ms: number };
    const m = await import('../../dist/index.js');
    await m.init();
    const model = new m.GoogLeNet({ seed: 0 });
    const node = await model.classify(photo);
    model.dispose();
    // The same .wasm builds in both runtimes: the same pixels, the same probabilities.
    expect(body.predictions).toEqual(node);
    console.log(`workerd: classify of a 451×300 JPEG in ${body.ms.toFixed(0)} ms (first call: builds GoogLeNet's plan), top-1 ${node[0]!.label}`);
    const refused = await fetch(`${origin}/classify`, { method: 'POST', body: photo.subarray(0, 5000) });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'ImageError', message: 'Error in classify: the JPEG data ends before the image does' });
  });

  it('a bad request gets the typed error, and the worker keeps working', async () => {
    const c = loadCase('inception_3a_relu');
    const request = caseRequest({ ...c, model: { ...c.model, ch1x1: 63 } }); // weights for 64 channels
    const response = await fetch(`${origin}/forward`, { method: 'POST', body: request });
    expect(response.status).toBe(400);
    const body = await response.json() as { error: string; message: string };
    expect(body.error).toBe('StateDictError');
    expect(body.message).toMatch(/branch1\.weight/);
    const again = await fetch(`${origin}/`);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { ok: boolean }).ok).toBe(true);
  });

  it('workerd logged no errors', () => {
    expect(stderr).not.toMatch(/error|uncaught|exception/i);
  });
});
