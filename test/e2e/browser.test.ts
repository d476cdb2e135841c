/**
 * The package in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
 * scripts/setup.sh) driven by playwright-core. A static server on 127.0.0.1 serves dist/
 * and a test page that imports dist/index.js as an ES module and calls `init()` with no
 * arguments, so the .wasm is fetched next to the bundle as in any app. The page runs the
 * fixture cases inception_3a_relu and seed_googlenet_relu (weights and input regenerated
 * in Node, checksum-checked, served as safetensors) on the page and again in a dedicated
 * worker with `init({ threads: 2 })`, and Node checks the answers with the fixtures'
 * tolerance. Everything runs twice: without COOP/COEP (the single-threaded build, also in
 * the worker, with a warning) and with them (the threaded build in the worker). Chromium
 * validates relaxed SIMD, so init() loads the relaxed-SIMD twin of each build.
 */
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromium } from './chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Case, caseRequest, checkAnswer, loadCase, root } from './fixture-case.js';
import { type StaticServer, startStaticServer } from './static-server.js';

const CASES = ['inception_3a_relu', 'seed_googlenet_relu'];

const cases = new Map<string, Case>();
const requests: Record<string, Uint8Array> = {};
let browser: Browser;

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`).toBe(true);
  expect(existsSync(`${root}dist/index.js`), 'dist/ is missing: run npm run build').toBe(true);
  for (const name of CASES) {
    const c = loadCase(name);
    cases.set(name, c);
    requests[`/case/${name}.safetensors`] = caseRequest(c);
  }
  browser = await launchChromium();
  console.log(`browser: Chromium ${browser.version()}`);
});

afterAll(async () => {
  await browser?.close();
});

for (const isolated of [false, true]) {
  describe(`Chromium, ${isolated ? 'with' : 'without'} COOP/COEP`, () => {
    let server: StaticServer;
    let page: Page;
    const pageErrors: string[] = [];

    beforeAll(async () => {
      server = await startStaticServer({
        dirs: { '/dist/': `${root}dist` },
        files: {
          '/': `${root}test/e2e/browser/index.html`,
          '/page.js': `${root}test/e2e/browser/page.js`,
          '/run-case.js': `${root}test/e2e/browser/run-case.js`,
          '/thread-worker.js': `${root}test/e2e/browser/thread-worker.js`,
          ...requests,
        },
        isolated,
      });
      const context = await browser.newContext();
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`); });
      await page.goto(`${server.origin}/`);
      await page.waitForFunction(() => (globalThis as any).pageReady === true, undefined, { timeout: 30_000 });
    });

    afterAll(async () => {
      await page?.context().close();
      await server?.close();
    });

    it('init() with no arguments fetches the relaxed-SIMD build (Chromium validates relaxed SIMD) and instantiates it', async () => {
      const state = await page.evaluate(() => (globalThis as any).initPackage());
      console.log(`browser (${isolated ? 'COOP/COEP' : 'no COOP/COEP'}): crossOriginIsolated=${state.crossOriginIsolated}, ` +
        `SharedArrayBuffer: ${state.sharedArrayBuffer}, init ${state.initMs.toFixed(1)} ms`);
      expect(state.before).toBe(false);
      expect(state.after).toBe(true);
      expect(state.crossOriginIsolated).toBe(isolated);
      expect(state.relaxedSimdSupported).toBe(true);
      expect(state.simd).toBe('relaxed');
      expect(state.wasmResources).toEqual([`${server.origin}/dist/wasm-relaxed/inception_wasm_bg.wasm`]);
      expect(server.log).toContain('GET /dist/wasm-relaxed/inception_wasm_bg.wasm 200 application/wasm');
      expect(server.log).toContain('GET /dist/index.js 200 text/javascript; charset=utf-8');
      expect(pageErrors).toEqual([]);
    });

    for (const name of CASES) {
      it(`fixture ${name}`, async () => {
        const { forwardMs, answer } = await page.evaluate((n) => (globalThis as any).runCase(n), name);
        const worst = checkAnswer(cases.get(name)!, Buffer.from(answer, 'base64'), 'chromium');
        console.log(`browser (${isolated ? 'COOP/COEP' : 'no COOP/COEP'}): ${name} forward ${forwardMs.toFixed(1)} ms, worst error/tolerance ${worst.toFixed(4)}`);
        expect(pageErrors).toEqual([]);
      });

      it(`fixture ${name} in a worker with init({ threads: 2 }): ${isolated ? 'the threaded build' : 'falls back to 1 thread with a warning'}`, async () => {
        const r = await page.evaluate((n) => (globalThis as any).runCaseInWorker(n, 2), name);
        const worst = checkAnswer(cases.get(name)!, Buffer.from(r.answer, 'base64'), 'chromium worker');
        console.log(`browser worker (${isolated ? 'COOP/COEP' : 'no COOP/COEP'}): ${name} threads=${r.threads} forward ${r.forwardMs.toFixed(1)} ms, worst error/tolerance ${worst.toFixed(4)}`);
        expect(r.crossOriginIsolated).toBe(isolated);
        expect(r.threads).toBe(isolated ? 2 : 1);
        expect(r.simd).toBe('relaxed');
        if (isolated) expect(r.warnings).toEqual([]);
        else expect(r.warnings.join('\n')).toMatch(/using 1 thread instead of 2: .*not cross-origin isolated/);
        expect(pageErrors).toEqual([]);
      });
    }
  });
}
