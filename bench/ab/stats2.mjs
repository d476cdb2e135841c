// node stats2.mjs files...: per config, sign test and bootstrap 95% CI of the median per-round ratio (clean pairs only)
import fs from 'node:fs';
const med = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const recs = process.argv.slice(2).flatMap((f, fi) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => ({ ...JSON.parse(l), key: `${fi}:${JSON.parse(l).round}` })));
const g = new Map();
for (const r of recs) { const k = `${r.threads}/${r.batch}`; if (!g.has(k)) g.set(k, new Map()); const m = g.get(k); if (!m.has(r.key)) m.set(r.key, {}); m.get(r.key)[r.which] = r; }
const binom2 = (k, n) => { let p = 0; const c = (n, k) => { let r = 1; for (let i = 0; i < k; i++) r = r * (n - i) / (i + 1); return r; }; const lo = Math.min(k, n - k); for (let i = 0; i <= lo; i++) p += c(n, i); return Math.min(1, 2 * p / 2 ** n); };
let seed = 12345; const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
for (const [k, m] of g) {
  const ratios = [...m.values()].filter((x) => x.before && x.after && x.before.cores.foreign <= 0.2 && x.after.cores.foreign <= 0.2).map((x) => med(x.after.times) / med(x.before.times));
  const up = ratios.filter((r) => r > 1).length, down = ratios.filter((r) => r < 1).length;
  const boots = []; for (let b = 0; b < 5000; b++) boots.push(med(ratios.map(() => ratios[Math.floor(rnd() * ratios.length)])));
  boots.sort((a, b) => a - b);
  const gm = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
  console.log(`${k}: n=${ratios.length} median ratio ${med(ratios).toFixed(3)} bootstrap95 [${boots[125].toFixed(3)}, ${boots[4875].toFixed(3)}] geomean ${gm.toFixed(3)} AFTER slower in ${up}, faster in ${down}, sign-test p=${binom2(up, up + down).toFixed(3)}`);
}
