// node analyze.mjs <file.jsonl>...: per (threads,batch): per-process medians, per-round AFTER/BEFORE ratios
import fs from 'node:fs';
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); const i = (s.length - 1) * p; const lo = Math.floor(i), hi = Math.ceil(i); return s[lo] + (s[hi] - s[lo]) * (i - lo); };
const LIM = Number(process.env.FOREIGN_MAX ?? 0.2); // exclude a pair if either process saw more foreign busy cores than this
let recs = process.argv.slice(2).flatMap((f, fi) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => ({ ...JSON.parse(l), file: fi })));
recs = recs.map((r) => ({ ...r, round: `${r.file}:${r.round}` }));
const groups = new Map();
for (const r of recs) {
  const k = `${r.threads}/${r.batch}`;
  if (!groups.has(k)) groups.set(k, new Map());
  const g = groups.get(k);
  if (!g.has(r.round)) g.set(r.round, {});
  g.get(r.round)[r.which] = r;
}
const f = (x, d = 1) => x.toFixed(d);
console.log('threads batch | BEFORE med [p10-p90] ms | AFTER med [p10-p90] ms | ratio med [p10-p90] | rounds | pooled-sample ratio | load1 range | actualThreads | checksums');
for (const [k, g] of groups) {
  const [threads, batch] = k.split('/');
  const all = [...g.values()].filter((x) => x.before && x.after);
  const rounds = all.filter((x) => x.before.cores.foreign <= LIM && x.after.cores.foreign <= LIM);
  const excl = all.filter((x) => !rounds.includes(x));
  if (excl.length) console.log(`   [${k}] excluded (foreign load > ${LIM} cores): ` + excl.map((x) => `${x.before.round} B ${q(x.before.times, .5).toFixed(1)}ms/f${x.before.cores.foreign.toFixed(2)} A ${q(x.after.times, .5).toFixed(1)}ms/f${x.after.cores.foreign.toFixed(2)}`).join('; '));
  const mb = rounds.map((x) => q(x.before.times, 0.5)), ma = rounds.map((x) => q(x.after.times, 0.5));
  const ratios = rounds.map((x, i) => ma[i] / mb[i]);
  const allB = rounds.flatMap((x) => x.before.times), allA = rounds.flatMap((x) => x.after.times);
  const loads = rounds.flatMap((x) => [x.before.load1, x.after.load1]);
  const fo = rounds.flatMap((x) => [x.before.cores.foreign, x.after.cores.foreign]);
  const sums = new Set(rounds.flatMap((x) => [`B:${x.before.sum}`, `A:${x.after.sum}`]));
  const at = new Set(rounds.flatMap((x) => [x.before.actualThreads, x.after.actualThreads]));
  console.log(`${threads} ${batch} | ${f(q(mb, .5))} [${f(q(mb, .1))}-${f(q(mb, .9))}] | ${f(q(ma, .5))} [${f(q(ma, .1))}-${f(q(ma, .9))}] | ${f(q(ratios, .5), 3)} [${f(q(ratios, .1), 3)}-${f(q(ratios, .9), 3)}] | ${rounds.length} | ${f(q(allA, .5) / q(allB, .5), 3)} (samples p10/p90 B ${f(q(allB, .1))}/${f(q(allB, .9))} A ${f(q(allA, .1))}/${f(q(allA, .9))}) | ${f(Math.min(...loads), 2)}-${f(Math.max(...loads), 2)} (med ${f(q(loads, .5), 2)}) foreign cores max ${f(Math.max(...fo), 2)} | ${[...at]} | ${[...sums].join(' ')}`);
  console.log('   per-round ratios: ' + ratios.map((r) => f(r, 3)).join(' '));
}
