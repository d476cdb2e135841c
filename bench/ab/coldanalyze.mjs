import fs from 'node:fs';
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); const i = (s.length - 1) * p; const lo = Math.floor(i), hi = Math.ceil(i); return s[lo] + (s[hi] - s[lo]) * (i - lo); };
const recs = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l));
for (const t of [1, 2]) {
  const row = {};
  for (const w of ['before', 'after']) {
    const rs = recs.filter((r) => r.threads === t && r.which === w);
    const m = (k) => q(rs.map((r) => r[k]), 0.5).toFixed(1);
    row[w] = rs.length;
    console.log(`threads ${t} ${w.padEnd(6)} n=${rs.length} median ms since process start: scriptStart ${m('scriptStart')} import ${m('import')} init ${m('init')} model ${m('model')} firstLogits ${m('firstLogits')} [p10 ${q(rs.map((r) => r.firstLogits), .1).toFixed(1)} p90 ${q(rs.map((r) => r.firstLogits), .9).toFixed(1)}]  sums ${[...new Set(rs.map((r) => r.sum))]}`);
  }
  const ratios = [...new Set(recs.map((r) => r.round))].map((rd) => { const b = recs.find((r) => r.round === rd && r.threads === t && r.which === 'before'); const a = recs.find((r) => r.round === rd && r.threads === t && r.which === 'after'); return a.firstLogits / b.firstLogits; });
  console.log(`threads ${t} per-round AFTER/BEFORE first-logits ratio: median ${q(ratios, .5).toFixed(3)} [p10 ${q(ratios, .1).toFixed(3)} p90 ${q(ratios, .9).toFixed(3)}]`);
}
