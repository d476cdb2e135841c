/**
 * A `.wasm` that cannot be loaded is a WasmLoadError naming the URL it tried and what to
 * do: a 404, an HTML page where the module should be (a dev server's fallback), bytes
 * that do not compile, a rejected promise, a missing file (Node) — for `init` and, on the
 * first image call, for the image module. A module served with the wrong MIME type still
 * loads, with one warning. (The package's own files missing from a bundle: the browser
 * cases of test/e2e/bundlers.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { classify, GoogLeNet, InceptionWasmError, init, isInitialized, Tensor, WasmLoadError } from '../ts/index.js';

const wasm = readFileSync(new URL('../ts/wasm/inception_wasm_bg.wasm', import.meta.url));
const routes: Record<string, [number, string, Uint8Array | string]> = {
  '/missing.wasm': [404, 'text/plain', 'Not Found'],
  '/page.wasm': [200, 'text/html; charset=utf-8', '<!doctype html><html><body>app</body></html>'],
  '/broken.wasm': [200, 'application/wasm', new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x05, 0xff])],
  '/octet.wasm': [200, 'application/octet-stream', wasm],
};
const server = createServer((req, res) => {
  const [status, type, body] = routes[req.url ?? ''] ?? routes['/missing.wasm']!;
  res.writeHead(status, { 'content-type': type }).end(body);
});
let origin: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function refusal(p: Promise<unknown>): Promise<WasmLoadError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(WasmLoadError);
  expect(e).toBeInstanceOf(InceptionWasmError);
  return e as WasmLoadError;
}

it('init: every failure is a WasmLoadError with the URL and what to do, and init can be retried', async () => {
  let e = await refusal(init({ wasm: `${origin}/missing.wasm` }));
  expect(e.op).toBe('init');
  expect(e.url).toBe(`${origin}/missing.wasm`);
  expect(e.problem).toBe('HTTP 404 Not Found');
  expect(e.message).toBe(`Error in init: could not load inception-wasm's WebAssembly module from ${origin}/missing.wasm: HTTP 404 Not Found. ` +
    'Check the value passed as init({ wasm }): it should be (or serve) the package\'s dist/wasm/inception_wasm_bg.wasm. See "Bundlers" in the README of inception-wasm.');

  e = await refusal(init({ wasm: `${origin}/page.wasm` }));
  expect(e.problem).toBe('not a WebAssembly module but an HTML page, which is what a server sends in place of a file it does not have ' +
    '(text/html; charset=utf-8, 44 bytes starting "<!doctype html><html><bo")');

  e = await refusal(init({ wasm: `${origin}/broken.wasm` }));
  expect(e.problem).toMatch(/^this runtime could not compile it \(.+\); is it the package's own file, of this version\?$/);
  expect(e.cause).toBeInstanceOf(WebAssembly.CompileError);

  e = await refusal(init({ wasm: new Uint8Array([1, 2, 3]) }));
  expect(e.url).toBeUndefined();
  expect(e.problem).toBe('not a WebAssembly module (3 bytes starting "...")');

  e = await refusal(init({ wasm: Promise.reject(new Error('offline')) }));
  expect(e.problem).toBe('the promise passed as init({ wasm }) rejected (offline)');

  e = await refusal(init({ wasm: '/nonexistent/inception_wasm_bg.wasm' }));
  expect([e.url, e.problem]).toEqual(['/nonexistent/inception_wasm_bg.wasm', 'no such file']);

  e = await refusal(init({ threads: 2, threadedWasm: `${origin}/missing.wasm` }));
  expect(e.message).toContain("could not load inception-wasm's threaded WebAssembly module");
  expect(e.message).toContain('init({ threadedWasm })');
  expect(isInitialized()).toBe(false);

  // The wrong MIME type: compiled from the bytes, with one warning.
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  try {
    await init({ wasm: `${origin}/octet.wasm`, imageWasm: `${origin}/missing.wasm` });
    expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
      `inception-wasm: ${origin}/octet.wasm was served as application/octet-stream, not application/wasm: compiled from its bytes instead of while it downloads (serve .wasm files as application/wasm)`,
    ]);
  } finally {
    warn.mockRestore();
  }
  using t = Tensor.fromArray([1, 2], [2]);
  expect(t.toArray()).toEqual(new Float32Array([1, 2]));
});

it('the image module: a WasmLoadError on the first image call (named by it), again on the next', async () => {
  using model = new GoogLeNet({ seed: 0 });
  const photo = readFileSync(new URL('fixtures/images/chelsea_q90.jpg', import.meta.url));
  for (let i = 0; i < 2; i++) {
    const e = await refusal(classify(model, photo));
    expect(e.op).toBe('classify');
    expect(e.url).toBe(`${origin}/missing.wasm`);
    expect(e.message).toContain("could not load inception-wasm's image module (decoders)");
    expect(e.message).toContain('init({ imageWasm })');
  }
});
