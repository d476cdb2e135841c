// node bench.mjs <dist> <threads> <batch> <N> [warmup]
// Prints one JSON line: sample times (ms) of N individually timed forwards + logits checksum.
const [dist, threadsS, batchS, nS, warmS] = process.argv.slice(2);
const threads = Number(threadsS), batch = Number(batchS), N = Number(nS), W = Number(warmS ?? 10);
const m = await import(dist + '/index.js');
await m.init({ threads, relaxedSimd: false });
const net = new m.GoogLeNet({ seed: 1 });
const len = batch * 3 * 224 * 224;
const data = new Float32Array(len);
for (let i = 0; i < len; i++) data[i] = Math.sin(i);
const x = m.Tensor.fromArray(data, [batch, 3, 224, 224]);
let sum = 0, sumAbs = 0, first8 = [];
{
  const y = net.forward(x);
  const a = y.toArray();
  for (const v of a) { sum += v; sumAbs += Math.abs(v); }
  first8 = Array.from(a.slice(0, 8));
  y.dispose();
}
for (let i = 1; i < W; i++) net.forward(x).dispose();
import fs from 'node:fs';
const busy = () => { const c = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number); const idle = c[3] + c[4]; const tot = c.slice(0, 8).reduce((a, b) => a + b, 0); return { busy: (tot - idle) * 10, tot: tot * 10 }; }; // jiffies (USER_HZ=100) -> ms
const s0 = busy(), c0 = process.cpuUsage(), w0 = performance.now();
const times = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  const y = net.forward(x);
  const t1 = performance.now();
  y.dispose();
  times.push(t1 - t0);
}
const s1 = busy(), c1 = process.cpuUsage(), w1 = performance.now();
const cpu = ((c1.user - c0.user) + (c1.system - c0.system)) / 1000;
const wall = w1 - w0;
// cores busy during the timed loop: whole machine, this process, the rest (foreign)
const cores = { machine: (s1.busy - s0.busy) / wall, own: cpu / wall, foreign: (s1.busy - s0.busy - cpu) / wall };
const actual = m.threadCount();
console.log(JSON.stringify({ dist, threads, actualThreads: actual, batch, N, cores, sum, sumAbs, first8, times }));
process.exit(0);
