// The benchmark page of `inception-wasm bench --serve`: 1-thread configurations on the
// page's main thread, more threads in a module Worker (cross-origin isolated pages only:
// the server sends COOP/COEP). Results drawn as an SVG chart and exposed as JSON
// (`window.benchResults`, `<pre id="results-json">`; `benchResults.done` once finished).
import * as lib from '../index.js';
import { parseModel, runConfig } from './suite.js';

const $ = (id) => document.getElementById(id);
const results = [];
const failures = [];
const environment = {
  userAgent: navigator.userAgent,
  hardwareConcurrency: navigator.hardwareConcurrency,
  crossOriginIsolated: globalThis.crossOriginIsolated === true,
  relaxedSimdSupported: lib.relaxedSimdSupported(),
  date: new Date().toISOString(),
};
window.benchResults = { done: false, environment, options: null, results, failures };

function setStatus(text, cls = '') {
  $('status').textContent = text;
  $('status').className = cls;
}

const list = (v) => String(v).split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n >= 1);

async function options() {
  let o = { model: 'googlenet', threads: [1], batch: [1], minTime: 3, minRuns: 10 };
  try {
    const r = await fetch('/config.json');
    if (r.ok) o = { ...o, ...(await r.json()) };
  } catch { /* served by something else: defaults and the URL */ }
  const q = new URLSearchParams(location.search);
  if (q.has('model')) o.model = q.get('model');
  if (q.has('threads')) o.threads = list(q.get('threads'));
  if (q.has('batch')) o.batch = list(q.get('batch'));
  // Bounded, so that a typo (NaN) or a huge count cannot keep the page sampling forever.
  const bounded = (v, lo, hi, fallback) => (Number.isFinite(v) && v >= lo && v <= hi ? v : fallback);
  if (q.has('min-time')) o.minTime = bounded(Number(q.get('min-time')), 0, 60, o.minTime);
  if (q.has('min-runs')) o.minRuns = Math.round(bounded(Number(q.get('min-runs')), 1, 200, o.minRuns));
  parseModel(o.model);
  return o;
}

const fmt = (n, d = 2) => (n == null ? '–' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(d));
const config = (r) => `${r.threads ?? r.threadsRequested} thread${(r.threads ?? r.threadsRequested) > 1 ? 's' : ''} · batch ${r.batch}`;
const label = (r) => `${r.model} · ${config(r)}`;
const COLORS = { 1: '#3b6fd8', 2: '#e07a1f', 3: '#2a9d6a', 4: '#a04bc8' };
const color = (t) => COLORS[t] ?? '#5c6578';

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

/** Horizontal bars: median ms per image, p10–p90 whiskers, GFLOP/s at the end. */
function drawChart() {
  const rows = results;
  const W = 1000;
  const left = 190;
  const right = 190;
  const top = 40;
  const rowH = 40;
  const H = top + Math.max(1, rows.length) * rowH + 44;
  const max = Math.max(1e-9, ...rows.map((r) => r.msPerImage.p90));
  const nice = (() => {
    const e = 10 ** Math.floor(Math.log10(max));
    return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * e).find((v) => v >= max);
  })();
  const x = (v) => left + (v / nice) * (W - left - right);
  const parts = [];
  const model = rows[0]?.model ?? window.benchResults.options?.model ?? '';
  parts.push(`<text x="8" y="20" font-size="15" font-weight="600" fill="#1d2330">${esc(model)}</text>`);
  parts.push(`<text x="${W - 8}" y="20" font-size="12" fill="#5c6578" text-anchor="end">median ms per image (bar) · p10–p90 (whisker) · GFLOP/s</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (nice * i) / 5;
    const gx = x(v);
    parts.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${H - 36}" stroke="#e6e9ef"/>`);
    parts.push(`<text x="${gx}" y="${H - 18}" font-size="12" fill="#5c6578" text-anchor="middle">${i === 0 ? '0' : `${+v.toPrecision(3)} ms`}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const c = color(r.threads);
    const m = r.msPerImage;
    parts.push(`<text x="${left - 10}" y="${y + 16}" font-size="13" fill="#1d2330" text-anchor="end">${esc(config(r))}</text>`);
    parts.push(`<text x="${left - 10}" y="${y + 30}" font-size="11" fill="#5c6578" text-anchor="end">${esc(r.simd)} · ${r.runs} runs · ${r.threads > 1 ? 'worker' : 'main thread'}</text>`);
    parts.push(`<rect x="${left}" y="${y + 6}" width="${Math.max(1, x(m.median) - left)}" height="22" rx="3" fill="${c}" opacity="0.85"/>`);
    parts.push(`<line x1="${x(m.p10)}" y1="${y + 17}" x2="${x(m.p90)}" y2="${y + 17}" stroke="#1d2330" stroke-width="1.5"/>`);
    for (const v of [m.p10, m.p90]) parts.push(`<line x1="${x(v)}" y1="${y + 11}" x2="${x(v)}" y2="${y + 23}" stroke="#1d2330" stroke-width="1.5"/>`);
    parts.push(`<text x="${x(m.p90) + 8}" y="${y + 21}" font-size="12" fill="#1d2330">${fmt(m.median)} ms</text>`);
    parts.push(`<text x="${W - 8}" y="${y + 21}" font-size="13" font-weight="600" fill="${c}" text-anchor="end">${fmt(r.gflops, 1)} GFLOP/s</text>`);
  });
  if (rows.length === 0) parts.push(`<text x="${left}" y="${top + 20}" font-size="13" fill="#5c6578">No results yet…</text>`);
  $('chart').innerHTML = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="benchmark chart" font-family="system-ui, sans-serif">${parts.join('')}</svg>`;
}

function drawTable() {
  const head = [window.benchResults.options?.model ?? 'configuration', 'simd', 'runs', 'ms/batch', 'p10', 'p90', 'ms/image', 'img/s', 'GFLOP/s', 'cold start ms', 'first fwd ms', 'wasm MiB'];
  const body = results.map((r) => [config(r), r.simd, r.runs, fmt(r.msPerBatch.median), fmt(r.msPerBatch.p10), fmt(r.msPerBatch.p90),
    fmt(r.msPerImage.median), fmt(r.imagesPerSecond, 1), fmt(r.gflops, 1), fmt(r.coldStartMs, 0), fmt(r.firstForwardMs, 1),
    (r.memory.wasmBytes / 2 ** 20).toFixed(1)]);
  for (const f of failures) body.push([`${f.model} · ${f.threadsRequested} threads · batch ${f.batch}`, `failed: ${f.error.message}`, '', '', '', '', '', '', '', '', '', '']);
  $('table').innerHTML = `<thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody>`;
}

function publish() {
  drawChart();
  drawTable();
  $('results-json').textContent = JSON.stringify(window.benchResults, null, 2);
}

function runWorker(threads, configs, onProgress) {
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const fail = (message) => {
      for (const config of configs) failures.push({ ...config, error: { name: 'WorkerError', message } });
      worker.terminate();
      resolve();
    };
    worker.onerror = (e) => fail(e.message || 'the worker failed to load');
    worker.onmessage = ({ data }) => {
      if (data.type === 'progress') onProgress(data.config, data.phase, data.runs, data.elapsed);
      else if (data.type === 'result') { results.push(data.result); publish(); }
      else if (data.type === 'failure') { failures.push({ ...data.config, error: data.error }); publish(); }
      else if (data.type === 'done') { worker.terminate(); resolve(); }
    };
    worker.postMessage({ threads, configs });
  });
}

async function main() {
  const o = await options();
  window.benchResults.options = o;
  $('env').textContent = `${navigator.userAgent} · ${navigator.hardwareConcurrency} logical cores · crossOriginIsolated: ${environment.crossOriginIsolated} · relaxed SIMD: ${environment.relaxedSimdSupported ? 'yes' : 'no'}`;
  const total = o.threads.length * o.batch.length;
  let n = 0;
  const progress = (config, phase, runs, elapsed) =>
    setStatus(`[${n + 1}/${total}] ${label(config)}: ${phase}, ${runs} runs, ${elapsed.toFixed(1)} s`);
  publish();
  const configsFor = (threads) => o.batch.map((batch) => ({ model: o.model, batch, threadsRequested: threads, minTime: o.minTime, minRuns: o.minRuns }));
  for (const threads of o.threads) {
    const configs = configsFor(threads);
    if (threads === 1) {
      // The page's main thread: one thread (a page may not block, which a pool needs).
      const t0 = performance.now();
      await lib.init();
      const initMs = performance.now() - t0;
      for (const config of configs) {
        setStatus(`[${n + 1}/${total}] ${label(config)}: starting`);
        try {
          const r = await runConfig(lib, { ...config, cold: results.every((x) => x.realm !== 'main thread') }, (...a) => progress(config, ...a));
          results.push({ ...r, initMs: results.some((x) => x.realm === 'main thread') ? null : initMs, realm: 'main thread' });
        } catch (e) {
          failures.push({ ...config, error: { name: e?.name ?? 'Error', message: String(e?.message ?? e) } });
        }
        n++;
        publish();
      }
    } else if (!environment.crossOriginIsolated) {
      for (const config of configs) failures.push({ ...config, error: { name: 'NotIsolated', message: 'threads need a cross-origin isolated page (COOP/COEP headers), as `inception-wasm bench --serve` sends' } });
      n += configs.length;
      publish();
    } else {
      setStatus(`[${n + 1}/${total}] ${label(configs[0])}: starting a Worker`);
      await runWorker(threads, configs, (config, ...a) => {
        n = results.length + failures.length;
        progress(config, ...a);
      });
      n = results.length + failures.length;
      publish();
    }
  }
  window.benchResults.done = true;
  publish();
  setStatus(failures.length ? `Done: ${results.length} configuration(s), ${failures.length} failed.` : `Done: ${results.length} configuration(s).`, failures.length ? 'failed' : 'done');
}

main().catch((e) => {
  window.benchResults.error = { name: e?.name ?? 'Error', message: String(e?.message ?? e) };
  window.benchResults.done = true;
  publish();
  setStatus(`Error: ${e?.message ?? e}`, 'failed');
});
