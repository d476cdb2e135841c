#!/usr/bin/env node
// Test accuracy of the Fashion-MNIST runs against epochs and against wall time, ours and
// PyTorch's, as one SVG: node bench/fashion-plot.mjs [ours.json] [torch.json] [out.svg]
// (defaults: bench/results/fashion-ours.json, fashion-torch.json → fashion.svg).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [oursFile = 'bench/results/fashion-ours.json', torchFile = 'bench/results/fashion-torch.json', out = 'bench/results/fashion.svg'] = process.argv.slice(2);
const runs = [[oursFile, '#d62728'], [torchFile, '#1f77b4']].filter(([f]) => existsSync(f)).map(([f, color]) => ({ ...JSON.parse(readFileSync(f, 'utf8')), color }));
if (runs.length === 0) throw new Error(`no history in ${oursFile} or ${torchFile}`);

const W = 420, H = 300, M = { l: 52, r: 16, t: 34, b: 42 };
const lo = Math.min(0.8, ...runs.flatMap((r) => r.epochs.map((e) => e.testAccuracy))), hi = 0.95;
function panel(x0, title, xOf, xMax, xLabel) {
  const sx = (v) => x0 + M.l + ((W - M.l - M.r) * v) / xMax;
  const sy = (a) => M.t + (H - M.t - M.b) * (1 - (a - lo) / (hi - lo));
  let g = `<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`;
  for (let a = Math.ceil(lo * 100); a <= hi * 100; a += 2) {
    g += `<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(a / 100)}" y2="${sy(a / 100)}" stroke="#ddd"/><text x="${sx(0) - 6}" y="${sy(a / 100) + 4}" text-anchor="end">${a} %</text>`;
  }
  g += `<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(0.9)}" y2="${sy(0.9)}" stroke="#888" stroke-dasharray="4 3"/><text x="${sx(xMax) - 4}" y="${sy(0.9) - 4}" text-anchor="end" fill="#666">target 90 %</text>`;
  const ticks = xMax <= 12 ? 1 : Math.ceil(xMax / 8 / 5) * 5;
  for (let t = 0; t <= xMax; t += ticks) g += `<text x="${sx(t)}" y="${H - M.b + 16}" text-anchor="middle">${t}</text>`;
  g += `<text x="${x0 + M.l + (W - M.l - M.r) / 2}" y="${H - 8}" text-anchor="middle">${xLabel}</text>`;
  for (const r of runs) {
    const pts = r.epochs.map((e) => `${sx(xOf(e)).toFixed(1)},${sy(e.testAccuracy).toFixed(1)}`);
    g += `<polyline fill="none" stroke="${r.color}" stroke-width="2" points="${pts.join(' ')}"/>`;
    g += pts.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${r.color}"/>`).join('');
  }
  return g;
}
const maxEpoch = Math.max(...runs.flatMap((r) => r.epochs.map((e) => e.epoch)));
const maxMin = Math.max(...runs.flatMap((r) => r.epochs.map((e) => e.seconds / 60)));
const legend = runs.map((r, i) => `<rect x="${M.l + 10 + 400 * i}" y="${H + 12}" width="12" height="3" fill="${r.color}"/><text x="${M.l + 28 + 400 * i}" y="${H + 17}">${r.engine}, ${r.threads} threads, batch ${r.batch}: ${(100 * r.epochs.at(-1).testAccuracy).toFixed(2)} % in ${(r.epochs.at(-1).seconds / 60).toFixed(1)} min</text>`).join('');
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 30}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panel(0, 'Fashion-MNIST test accuracy by epoch', (e) => e.epoch, maxEpoch, 'epoch')}
${panel(W, 'by wall time', (e) => e.seconds / 60, Math.ceil(maxMin), 'minutes')}
${legend}
</svg>
`;
writeFileSync(out, svg);
console.log(`wrote ${out}`);
