// node cold.mjs <dist> <threads>: ms from process start (performance.timeOrigin) to first logits
const t_start = performance.now(); // ms since timeOrigin (process start) when the script begins
const [dist, threadsS] = process.argv.slice(2);
const threads = Number(threadsS);
const m = await import(dist + '/index.js');
const t_import = performance.now();
await m.init({ threads, relaxedSimd: false });
const t_init = performance.now();
const net = new m.GoogLeNet({ seed: 1 });
const t_net = performance.now();
const len = 3 * 224 * 224, data = new Float32Array(len);
for (let i = 0; i < len; i++) data[i] = Math.sin(i);
const x = m.Tensor.fromArray(data, [1, 3, 224, 224]);
const y = net.forward(x);
const logits = y.toArray();
const t_first = performance.now();
let sum = 0; for (const v of logits) sum += v;
console.log(JSON.stringify({ dist, threads, scriptStart: t_start, import: t_import, init: t_init, model: t_net, firstLogits: t_first, sum }));
process.exit(0);
