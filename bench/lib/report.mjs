// Turns the children's raw results into results.json, results.md and chart.svg.
import fs from 'node:fs';
import path from 'node:path';
import { summarize } from './stats.mjs';

const ENGINE_NAMES = { ours: 'inception-wasm', ort: 'onnxruntime-web', tfjs: 'tfjs-backend-wasm', 'tfjs-plain': 'tfjs-backend-wasm (unfused ops)' };
const label = (c) => `${ENGINE_NAMES[c.ops === 'plain' ? 'tfjs-plain' : c.engine]}${c.simd === 'relaxed' ? ' (relaxed SIMD)' : ''} @${c.threads}t`;
const median = (xs) => (xs.length ? summarize(xs).median : NaN);
const f = (x, d = 1) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x.toFixed(d));
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');
const firstLine = (e) => String(e ?? '').split('\n')[0];

// ---------------------------------------------------------------- aggregation

function aggregateE2E(raw, totalMacs) {
  const configs = [];
  for (const c of Object.values(raw)) {
    const ok = c.rounds.filter((r) => r.ok);
    const base = { key: c.key, engine: c.engine, threads: c.threads, ops: c.ops ?? null, simd: c.simd ?? null, label: label(c), roundsRun: c.rounds.length };
    if (!ok.length) {
      configs.push({ ...base, ok: false, error: firstLine(c.rounds[0]?.error), errorDetail: c.rounds[0]?.error });
      continue;
    }
    const batches = [];
    for (const batch of [...new Set(ok.flatMap((r) => r.batches.map((b) => b.batch)))]) {
      const per = ok.map((r) => r.batches.find((b) => b.batch === batch)).filter(Boolean);
      const s = summarize(per.flatMap((b) => b.times));
      batches.push({
        batch,
        runs: s.n,
        ms: s,
        msPerImage: { median: s.median / batch, p10: s.p10 / batch, p90: s.p90 / batch },
        gflops: (2 * totalMacs * batch) / s.median / 1e6,
        cpuPerWall: median(per.map((b) => b.cpuPerWall)),
        bgCpus: median(per.map((b) => b.bgCpus ?? NaN)),
        bgCpusMax: Math.max(...per.map((b) => b.bgCpus ?? NaN)),
        roundMedians: per.map((b) => summarize(b.times).median),
        samplesMs: per.map((b) => b.times.map((t) => +t.toFixed(3))),
        peakRssMiB: median(per.map((b) => b.peakRssMiB)),
        rssGrowthMiB: median(per.map((b) => b.rssAfterMiB - b.rssBeforeMiB)),
      });
    }
    const coldSamples = ok.map((r) => ({
      totalMs: r.cold.firstResultEpoch - r.spawnEpoch,
      spawnToProcessStartMs: r.cold.timeOrigin - r.spawnEpoch,
      bootMs: r.cold.bootMs,
      importMs: r.cold.importMs,
      initMs: r.cold.initMs,
      buildMs: r.cold.buildMs,
      firstForwardMs: r.cold.firstForwardMs,
    }));
    const coldMedian = Object.fromEntries(Object.keys(coldSamples[0]).map((k) => [k, median(coldSamples.map((s) => s[k]))]));
    const wasm = ok[0].wasm ?? [];
    configs.push({
      ...base,
      ok: true,
      failedRounds: c.rounds.length - ok.length,
      // Runs thrown away because other processes kept ≥ 0.5 CPU busy meanwhile (re-run instead).
      discardedRuns: ok.flatMap((r) => r.discarded ?? []),
      info: ok[0].info,
      distHashes: [...new Set(ok.map((r) => r.info?.distHash).filter(Boolean))],
      batches,
      cold: { ...coldMedian, min: Math.min(...coldSamples.map((s) => s.totalMs)), max: Math.max(...coldSamples.map((s) => s.totalMs)), samples: coldSamples },
      peakRssMiB: { coldStart: median(ok.map((r) => r.cold.peakRssMiB)), batch1: batches.find((b) => b.batch === 1)?.peakRssMiB ?? null, end: median(ok.map((r) => r.peakRssMiB)) },
      wasm: {
        files: wasm.filter((w) => w.file),
        bytes: wasm.filter((w) => w.file).reduce((a, w) => a + w.bytes, 0),
        // Modules compiled in the process that are no engine's file (e.g. Node's own undici).
        other: wasm.filter((w) => !w.file),
      },
      logits: ok[0].logits,
    });
  }
  // Output agreement with inception-wasm at one thread (same weights, same input).
  const ref = configs.find((c) => c.key === 'ours@1' && c.ok);
  for (const c of configs) {
    if (!c.ok || !ref) continue;
    let maxAbs = 0;
    let scale = 0;
    for (let i = 0; i < ref.logits.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(c.logits[i] - ref.logits[i]));
      scale = Math.max(scale, Math.abs(ref.logits[i]));
    }
    const top = (l) => l.indexOf(Math.max(...l));
    c.logitsCheck = { maxAbsDiff: maxAbs, relToMaxLogit: maxAbs / scale, top1Same: top(c.logits) === top(ref.logits) };
  }
  for (const c of configs) delete c.logits;

  const ratios = [];
  const byKey = Object.fromEntries(configs.filter((c) => c.ok).map((c) => [c.key, c]));
  const threadCounts = [...new Set(configs.filter((c) => c.engine !== 'ours').map((c) => c.threads))].sort();
  for (const t of threadCounts) {
    const ours = byKey[`ours@${t}`] ?? byKey['ours@1'];
    if (!ours) continue;
    for (const peer of configs.filter((c) => c.engine !== 'ours' && c.threads === t)) {
      for (const b of ours.batches) {
        const pb = peer.ok ? peer.batches.find((x) => x.batch === b.batch) : null;
        ratios.push({
          threads: t,
          batch: b.batch,
          ours: ours.key,
          oursAtSameThreads: ours.threads === t,
          peer: peer.key,
          peerLabel: peer.label,
          oursMsPerImage: b.msPerImage.median,
          peerMsPerImage: pb?.msPerImage.median ?? null,
          // > 1: inception-wasm is faster. timeRatio = ours time / peer time.
          speedup: pb ? pb.ms.median / b.ms.median : null,
          timeRatio: pb ? b.ms.median / pb.ms.median : null,
          peerError: peer.ok ? null : peer.error,
        });
      }
    }
  }
  return { configs, ratios };
}

function aggregateMicro(micro) {
  const configs = Object.values(micro.results).map((c) => {
    const ok = c.rounds.filter((r) => r.ok);
    return {
      key: c.key,
      engine: c.engine,
      threads: c.threads,
      label: label(c),
      ok: ok.length > 0,
      error: ok.length ? null : firstLine(c.rounds[0]?.error),
      info: ok[0]?.info ?? null,
      distHashes: [...new Set(ok.map((r) => r.info?.distHash).filter(Boolean))],
    };
  });
  const cases = micro.cases.map((mc) => {
    const row = { id: mc.id, kind: mc.kind, layers: mc.layers ?? [], macs: mc.macs ?? 0, shape: shapeOf(mc), results: {} };
    for (const c of Object.values(micro.results)) {
      const runs = c.rounds.filter((r) => r.ok).map((r) => r.cases.find((x) => x.id === mc.id)).filter(Boolean);
      const all = runs.filter((x) => x.ok);
      // Rounds during which other processes kept ≥ 0.3 CPU busy are left out when a quieter round exists.
      const quiet = all.filter((x) => (x.bgCpus ?? 0) < 0.3);
      const good = quiet.length ? quiet : all;
      if (!good.length) {
        if (runs.length) row.results[c.key] = { ok: false, error: runs[0].error };
        continue;
      }
      const s = summarize(good.flatMap((x) => x.times));
      row.results[c.key] = {
        ok: true,
        ms: s,
        gflops: row.macs ? (2 * row.macs) / s.median / 1e6 : null,
        cpuPerWall: median(good.map((x) => x.cpuPerWall)),
        bgCpus: median(good.map((x) => x.bgCpus ?? NaN)),
        itersPerSample: good[0].iters,
        samplesMs: good.map((x) => x.times.map((t) => +t.toFixed(4))),
        roundsUsed: `${good.length}/${all.length}`,
        check: good[0].check,
        meta: good[0].meta ?? null,
      };
    }
    const ref = row.results['ours@1'];
    row.ratios = {};
    for (const [key, r] of Object.entries(row.results)) {
      if (key.startsWith('ours') || !r.ok) continue;
      const t = Number(key.split('@')[1]);
      const ours = row.results[`ours@${t}`]?.ok ? row.results[`ours@${t}`] : ref;
      if (!ours?.ok) continue;
      row.ratios[key] = { speedup: r.ms.median / ours.ms.median, oursAtSameThreads: ours !== ref || t === 1 };
      // Same weights and input everywhere: sums of the outputs must agree to float32 accuracy.
      const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
      r.checkRelDiff = Math.max(rel(r.check.sum, ref.check.sum), rel(r.check.sumSq, ref.check.sumSq));
    }
    return row;
  });
  return { configs, cases, gemm: micro.gemm ?? null };
}

function shapeOf(c) {
  if (c.kind === 'conv') return { cin: c.cin, h: c.h, w: c.w, cout: c.cout, k: c.k, s: c.s, p: c.p, oh: c.oh, ow: c.ow };
  if (c.kind === 'maxpool') return { c: c.c, h: c.h, w: c.w, k: c.k, s: c.s, p: c.p, oh: c.oh, ow: c.ow };
  return { cfg: c.cfg, h: c.h, w: c.w };
}

const caseLabel = (c) =>
  c.kind === 'conv'
    ? `${c.shape.cin}×${c.shape.h}×${c.shape.w} → ${c.shape.cout}, ${c.shape.k}×${c.shape.k}/${c.shape.s} p${c.shape.p}`
    : c.kind === 'maxpool'
      ? `${c.shape.c}×${c.shape.h}×${c.shape.w}, ${c.shape.k}×${c.shape.k}/${c.shape.s} p${c.shape.p}`
      : `inception3a, 192×28×28 → 256`;

// ---------------------------------------------------------------- markdown

/**
 * The speed issue's targets, each with what this run measured and whether it is met
 * (null: not measured in this run).
 */
function targets({ info, e2e, scaling, micro, soak }) {
  const rows = [];
  const add = (target, measured, met) => rows.push({ target, measured, met });
  const cfg = (key) => e2e?.configs.find((c) => c.key === key && c.ok);
  const ratio = (t, b, peer) => e2e?.ratios.find((r) => r.threads === t && r.batch === b && r.peer === peer && r.oursAtSameThreads && r.timeRatio);
  for (const b of [1, 8]) {
    for (const peer of ['ort@1', 'tfjs@1']) {
      const r = ratio(1, b, peer);
      add(`1 thread, batch ${b}: ≤ 0.6× ${r?.peerLabel ?? peer}'s time`, r ? `${f(r.timeRatio, 2)}× (${f(r.oursMsPerImage)} vs ${f(r.peerMsPerImage)} ms)` : '—', r ? r.timeRatio <= 0.6 : null);
    }
  }
  const [one, two] = [cfg('ours@1'), cfg('ours@2')];
  for (const b of [1, 8]) {
    const [a, c] = [one?.batches.find((x) => x.batch === b), two?.batches.find((x) => x.batch === b)];
    const up = a && c ? a.ms.median / c.ms.median : null;
    add(`2 threads, batch ${b}: ≥ 1.8× 1 thread's speed (separate runs)`, up ? `${f(up, 2)}× (${f(a.msPerImage.median)} → ${f(c.msPerImage.median)} ms)` : '—', up ? up >= 1.8 : null);
    if (b === 1 && scaling) {
      const s = scaling.ok && scaling.speedup;
      const ceilings = s && `; control ${f(scaling.control.speedup.median, 2)}×${scaling.native.speedup ? `, native loop ${f(scaling.native.speedup.median, 2)}×` : ''}`;
      add('2 threads, batch 1: ≥ 1.8× 1 thread\'s speed (paired bursts, median)', s ? `${f(s.median, 2)}× (p10–p90 ${f(s.p10, 2)}–${f(s.p90, 2)}; ${f(scaling.ms[1].median)} → ${f(scaling.ms[2].median)} ms${ceilings})` : '—', s ? s.median >= 1.8 : null);
    }
    const r = ratio(2, b, 'ort@2');
    add(`2 threads, batch ${b}: faster than onnxruntime-web @2t`, r ? `${f(r.timeRatio, 2)}× its time` : '—', r ? r.timeRatio < 1 : null);
  }
  const g = micro?.gemm;
  if (g && !g.error) add('GEMM on GoogLeNet\'s 1×1 shapes: ≥ 85 % of the in-cache microkernel peak', `${f(g.weightedPercent, 0)} % (time-weighted; worst shape ${f(g.worstPercent, 0)} %)`, g.weightedPercent >= 85);
  else add('GEMM on GoogLeNet\'s 1×1 shapes: ≥ 85 % of the in-cache microkernel peak', '—', null);
  add('cold start (process start → first logits) ≤ 250 ms', one ? `${f(one.cold.totalMs, 0)} ms` : '—', one ? one.cold.totalMs <= 250 : null);
  add('.wasm ≤ 300 KB', `${int(info.library.wasmBytes)} bytes`, info.library.wasmBytes <= 300_000);
  add('peak RSS ≤ 120 MiB (batch 1)', one?.peakRssMiB.batch1 ? `${f(one.peakRssMiB.batch1, 0)} MiB` : '—', one?.peakRssMiB.batch1 ? one.peakRssMiB.batch1 <= 120 : null);
  if (soak?.ok) {
    const s = soak.samples;
    const warm = s.find((x) => x.i >= Math.min(100, soak.inferences)) ?? s[0];
    const growth = s.at(-1).rssMiB - warm.rssMiB;
    const heapGrowth = s.at(-1).heapTotalMiB - warm.heapTotalMiB;
    const wasmGrowth = s.at(-1).wasmBytes - warm.wasmBytes;
    const kept = soak.heapRetainedMiB;
    const keptGrowth = kept ? kept.last - kept.first : NaN;
    // Flat = nothing retained: WebAssembly memory unchanged, the JavaScript heap after a full
    // collection unchanged (< 1 MiB), and RSS growing by no more than V8's heap reserve does.
    add(
      `RSS flat over ${int(soak.inferences)} inferences`,
      `RSS ${f(warm.rssMiB)} MiB after ${warm.i} → ${f(s.at(-1).rssMiB)} MiB after ${int(s.at(-1).i)} (${growth >= 0 ? '+' : ''}${f(growth, 1)} MiB, of which V8's heap reserve ${heapGrowth >= 0 ? '+' : ''}${f(heapGrowth, 1)}); ` +
        `JS heap after a full GC ${f(kept?.first, 1)} → ${f(kept?.last, 1)} MiB; wasm memory ${wasmGrowth === 0 ? 'unchanged' : `+${int(wasmGrowth)} bytes`}`,
      wasmGrowth === 0 && keptGrowth < 1 && growth - heapGrowth < 1,
    );
  }
  return rows;
}

function markdown({ opts, info, e2e, scaling, micro, soak, train }) {
  const L = [];
  const p = (s = '') => L.push(s);
  p(`# inception-wasm benchmarks${opts.smoke ? ' (smoke)' : ''}`);
  p();
  p(`Made by \`${info.command}\` on ${info.date.slice(0, 16).replace('T', ' ')} UTC, in ${f(info.durationS, 0)} s.`);
  p();
  p(`- Machine: ${info.cpuModel} (${info.cpuFlags.join(', ')}), ${info.logicalCpus} logical CPUs, ${info.memGiB} GiB, ${info.os}; load average ${info.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${info.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at the end (a shared machine: compare ratios, not absolute times).`);
  p(`- Node ${info.node} (V8 ${info.v8}). inception-wasm ${info.library.version} from dist/ (git ${info.git.commit}${info.git.dirty ? ', with uncommitted changes in ts/ or crates/' : ''}), .wasm ${int(info.library.wasmBytes)} bytes; onnxruntime-web ${info.versions.onnxruntimeWeb}; tfjs-core / tfjs-backend-wasm ${info.versions.tfjsCore} / ${info.versions.tfjsBackendWasm}.`);
  const busy = (e2e?.configs ?? []).filter((c) => c.ok).flatMap((c) => c.batches.filter((b) => b.bgCpusMax >= 0.5).map((b) => `${c.label} batch ${b.batch}`));
  if (busy.length) p(`- **Warning: other processes kept ≥ 0.5 CPU busy during some end-to-end measurements** (${busy.join(', ')}): those numbers, the 2-thread ones above all, are slower than on a quiet machine. See "other processes" below.`);
  if (info.distBuilds?.length > 1)
    p(`- **Warning: dist/ was rebuilt during this run** (${info.distBuilds.length} different builds of inception-wasm were loaded, probably by someone else's \`npm run build\`): its rounds are not all the same code. Re-run on a quiet tree.`);
  p(`- GoogLeNet (ReLU variant) 224×224: ${int(info.library.totalParams)} parameters, ${int(info.library.totalMacs)} MACs = ${f((2 * info.library.totalMacs) / 1e9, 2)} GFLOP per image (library \`summary()\`). All engines run the same graph with the library's own weights; the graph is checked layer by layer against \`summary()\`.`);
  p(
    `- Each engine runs in its own Node process. End to end: ${opts.rounds} round(s), engine order rotated each round, ${opts.runs} timed runs per batch size in total (warm-up excluded); median and p10–p90 over all runs. ` +
      `Micro: every case in a fresh process per engine configuration, the configurations of a case back to back; ${opts.micro.rounds > 1 ? `${opts.micro.rounds} rounds × ` : ''}${opts.micro.samples} samples of ≥ ${opts.micro.minSampleMs} ms of repeated calls, after ≥ ${opts.micro.warmup} calls and ${opts.micro.warmupMs ?? 0} ms of warm-up.`,
  );
  p(
    opts.quiet
      ? `- Before each child the harness waited (at most ${f(opts.quiet.maxWaitMs / 1000, 0)} s) for other processes to use < ${opts.quiet.threshold} CPUs: ${f(info.waitedForQuietS, 0)} s waited in total.`
      : '- The harness did not wait for a quiet machine (`--no-wait`).',
  );
  p(`- **Speed-up** = peer time ÷ inception-wasm time, measured in the same run: **> 1 means inception-wasm is faster**. CPU/wall = process CPU time ÷ wall time while timing (≈ threads actually busy).`);
  p();
  const goals = targets({ info, e2e, scaling, micro, soak });
  if (goals.length) {
    p('## Targets (the speed and threads issues; single-threaded simd128 build, Node defaults)');
    p();
    p('| target | this run | met |');
    p('|---|---|---|');
    for (const g of goals) p(`| ${g.target} | ${g.measured} | ${g.met === null ? 'not measured' : g.met ? 'yes' : '**no**'} |`);
    p();
  }

  if (e2e) {
    p('## End to end: GoogLeNet 224×224');
    p();
    const ok = e2e.configs.filter((c) => c.ok);
    const threadCounts = [...new Set(e2e.ratios.map((r) => r.threads))];
    p('### Head to head (median ms per image; speed-up of inception-wasm)');
    p();
    p('| threads | batch | inception-wasm | onnxruntime-web | speed-up vs ORT | tfjs-backend-wasm | speed-up vs tfjs |');
    p('|---|---|---|---|---|---|---|');
    for (const t of threadCounts) {
      for (const batch of [...new Set(e2e.ratios.filter((r) => r.threads === t).map((r) => r.batch))]) {
        const rs = e2e.ratios.filter((r) => r.threads === t && r.batch === batch);
        const ort = rs.find((r) => r.peer === `ort@${t}`);
        const tfjs = rs.find((r) => r.peer === `tfjs@${t}`);
        const ours = rs[0];
        const oursCell = `${f(ours.oursMsPerImage)}${ours.oursAtSameThreads ? '' : ` (${ours.ours.split('@')[1]}t†)`}`;
        const cell = (r) => (r ? (r.peerError ? 'n/a‡' : f(r.peerMsPerImage)) : '—');
        const sp = (r) => (r && r.speedup ? `**${f(r.speedup, 2)}×**` : '—');
        p(`| ${t} | ${batch} | ${oursCell} | ${cell(ort)} | ${sp(ort)} | ${cell(tfjs)} | ${sp(tfjs)} |`);
      }
    }
    if (e2e.ratios.some((r) => !r.oursAtSameThreads)) p(`\n† no ${threadCounts.filter((t) => t > 1).join('/')}-thread result for inception-wasm in this run (no threaded build, or \`--ours-threads 1\`): its one-thread time is compared with the peers' ${threadCounts.filter((t) => t > 1).join('/')}-thread time.`);
    const failed = e2e.configs.filter((c) => !c.ok);
    if (failed.length) p(`\n‡ ${failed.map((c) => `${c.label}: ${c.error}`).join('; ')}`);
    const plain = e2e.ratios.find((r) => r.peer === 'tfjs-plain@1');
    const relaxed = ok.filter((c) => c.simd === 'relaxed');
    if (relaxed.length) {
      const line = relaxed.flatMap((c) => c.batches.map((b) => {
        const plainCfg = ok.find((x) => x.key === `ours@${c.threads}`)?.batches.find((x) => x.batch === b.batch);
        return `${c.threads}t batch ${b.batch}: ${f(b.msPerImage.median)} ms per image${plainCfg ? ` (${f(plainCfg.ms.median / b.ms.median, 2)}× the simd128 build's speed)` : ''}`;
      }));
      p(`\ninception-wasm's relaxed-SIMD build (fused multiply-add; Chromium's default, Node 20 with \`--experimental-wasm-relaxed-simd\`): ${line.join('; ')}. The table above compares the simd128 build, which Node runs by default.`);
    }
    if (plain?.speedup) p(`\ntfjs with unfused ops (tf.conv2d → tf.add → tf.relu, batch 1, 1 thread): ${f(plain.peerMsPerImage)} ms per image, speed-up of inception-wasm ${f(plain.speedup, 2)}×. The table above uses tf.fused.conv2d (bias and ReLU inside the conv), the stronger spelling.`);
    p();
    p('### All configurations');
    p();
    p('| engine | batch | ms per image: median | p10–p90 | ms per batch: median | GFLOP/s | CPU/wall | other processes, CPUs: median (max) | runs | round medians (ms per batch) |');
    p('|---|---|---|---|---|---|---|---|---|---|');
    for (const c of ok) for (const b of c.batches) p(`| ${c.label} | ${b.batch} | ${f(b.msPerImage.median)} | ${f(b.msPerImage.p10)}–${f(b.msPerImage.p90)} | ${f(b.ms.median)} | ${f(b.gflops)} | ${f(b.cpuPerWall, 2)} | ${f(b.bgCpus, 2)} (${f(b.bgCpusMax, 2)}) | ${b.runs} | ${b.roundMedians.map((x) => f(x, 0)).join(', ')} |`);
    p();
    const redone = ok.reduce((a, c) => a + c.discardedRuns.length, 0);
    if (redone) {
      p(`${redone} child run(s) were thrown away and re-run because other processes kept ≥ 0.5 CPU busy while they were timed (${ok.filter((c) => c.discardedRuns.length).map((c) => `${c.label}: ${c.discardedRuns.length}`).join(', ')}; kept in results.json).`);
      p();
    }
    p('"Other processes" = CPUs kept busy by the rest of the machine while this configuration was timed (from /proc/stat, minus the child\'s own CPU time; median and worst round). On 2 CPUs, anything well above 0 slows the 2-thread configurations first.');
    p();
    p('### Cold start, memory, .wasm');
    p();
    p('Cold start = from `spawn()` of a fresh `node` process to the first batch-1 logits in JavaScript, measured on one clock (`performance.timeOrigin`-based); it includes Node\'s own start-up. The phases are inside the child: `boot` = process start → harness ready; `import` = the engine\'s JavaScript; `init` = wasm compile/instantiate and threads; `build` = weights (inception-wasm: `new GoogLeNet({ seed })`, deterministic init + packing; ORT: read the .onnx file + `InferenceSession.create`, which also compiles ORT\'s wasm; tfjs: read the weights file + tensors); `first` = first forward. Peak RSS = `process.resourceUsage().maxRSS` of the child.');
    p();
    p('| engine | cold start: median (min–max) ms | spawn→process | boot | import | init | build | first forward | peak RSS after cold start / batch 1 / end (batch 8), MiB | .wasm compiled (bytes) |');
    p('|---|---|---|---|---|---|---|---|---|---|');
    for (const c of ok) {
      const w = c.wasm.files.map((x) => `${path.basename(x.file)} ${int(x.bytes)}`).join(', ') + (c.wasm.other.length ? ` (+ ${c.wasm.other.map((x) => int(x.bytes)).join(', ')} not from the engine§)` : '');
      p(
        `| ${c.label} | ${f(c.cold.totalMs, 0)} (${f(c.cold.min, 0)}–${f(c.cold.max, 0)}) | ${f(c.cold.spawnToProcessStartMs, 0)} | ${f(c.cold.bootMs, 0)} | ${f(c.cold.importMs, 0)} | ${f(c.cold.initMs, 0)} | ${f(c.cold.buildMs, 0)} | ${f(c.cold.firstForwardMs, 0)} | ` +
          `${f(c.peakRssMiB.coldStart, 0)} / ${f(c.peakRssMiB.batch1, 0)} / ${f(c.peakRssMiB.end, 0)} | ${w} |`,
      );
    }
    const oursCold = ok.find((c) => c.key === 'ours@1');
    const ortCold = ok.find((c) => c.key === 'ort@1');
    if (oursCold && ortCold) p(`\ninception-wasm ÷ onnxruntime-web (1 thread): cold start ${f(oursCold.cold.totalMs / ortCold.cold.totalMs, 2)}×, .wasm bytes ${f(oursCold.wasm.bytes / ortCold.wasm.bytes, 4)}×, peak RSS at batch 1 ${f(oursCold.peakRssMiB.batch1 / ortCold.peakRssMiB.batch1, 2)}×.`);
    if (ok.some((c) => c.wasm.other.length)) p(`\n§ A module compiled in the same process that matches none of the engine's files: in Node 20, reading \`globalThis.Response\` (the wasm-bindgen glue checks \`module instanceof Response\`) loads Node's bundled undici, which compiles its llhttp parser (48,643 bytes) — about 20–35 ms of the cold start here.`);
    p();
    p('### Same function? (batch-1 logits vs inception-wasm @1t, same weights and input)');
    p();
    p('| engine | max abs diff | ÷ max logit | same top-1 |');
    p('|---|---|---|---|');
    for (const c of ok) if (c.logitsCheck) p(`| ${c.label} | ${c.logitsCheck.maxAbsDiff.toExponential(2)} | ${c.logitsCheck.relToMaxLogit.toExponential(2)} | ${c.logitsCheck.top1Same ? 'yes' : '**no**'} |`);
    p();
    p('### Peer configurations');
    p();
    for (const c of e2e.configs) {
      if (c.ok) {
        const i = c.info ?? {};
        const detail =
          c.engine === 'ort'
            ? `runs: node build of onnxruntime-web (\`import 'onnxruntime-web'\` → dist/ort.node.min.mjs), wasm EP, \`env.wasm.numThreads = ${i.numThreads}\`, graph optimisation '${i.graphOptimizationLevel}', compiled ${c.wasm.files.map((x) => path.basename(x.file)).join(', ')}; CPU/wall ${c.batches.map((b) => f(b.cpuPerWall, 2)).join(' / ')}`
            : c.engine === 'tfjs'
              ? `runs: backend '${i.backend}', \`getThreadsCount()\` = ${i.threads}, SIMD ${i.simd}, ${i.ops} ops, compiled ${c.wasm.files.map((x) => path.basename(x.file)).join(', ')}; CPU/wall ${c.batches.map((b) => f(b.cpuPerWall, 2)).join(' / ')}`
              : `runs: dist/ (${c.wasm.files.map((x) => `${x.file} ${int(x.bytes)} bytes`).join(', ')}), \`init({ threads: ${c.threads} })\`, \`threadCount()\` = ${i.threads ?? 1}; CPU/wall ${c.batches.map((b) => f(b.cpuPerWall, 2)).join(' / ')}`;
        p(`- ${c.label}: ${detail}.`);
      } else {
        p(`- ${c.label}: **does not run** — ${c.error}`);
        if (c.engine === 'tfjs' && c.threads > 1)
          p(
            `  tfjs-backend-wasm disables threads in Node on purpose (\`WASM_HAS_MULTITHREAD_SUPPORT\` is false when \`IS_NODE\`, tensorflow/tfjs#3830), so \`setThreadsCount(2)\` silently runs one thread; ` +
              `the harness overrides the flag to find out, and the threaded build then fails because its Emscripten pthread workers are created from a \`blob:\` URL, which Node's \`worker_threads\` refuses (ERR_WORKER_PATH). No 2-thread tfjs number is reported.`,
          );
      }
    }
    p();
  }

  if (scaling) {
    p('## Two threads against one, paired');
    p();
    if (scaling.ok) {
      p(`A 1-thread and a 2-thread inception-wasm process alive side by side, taking turns, ${scaling.rounds} rounds: a burst of ${scaling.burst} batch-${scaling.batch} GoogLeNet forwards and ${scaling.controlBurst} of the *control* each, the one going first alternating, then the *native loop* at 1 and at 2 threads; each round gives one speed-up of each (1-thread median ÷ 2-thread median). The machine's speed drifts over seconds, which runs timed minutes apart (the end-to-end tables) measure as well; the halves of a round see the same drift.`);
      p();
      p('- *Control*: eight 1×1 convolutions 128 → 128 + ReLU on 128×32×32 through the same API, kernels and thread pool (134 M multiply-adds, 1.5 MB: in cache). Compute-bound and perfectly parallel: the best case of this library\'s threads on this machine at that moment.');
      p('- *Native loop* (`bench/lib/fp-loop.c`, built with the machine\'s `cc`): a floating-point loop in registers spread over the threads in 64 chunks taken from an atomic counter, no wasm and no memory traffic: what two threads get from this machine\'s two vCPUs at all.');
      p();
      p('| speed-up of 2 threads over 1 | median | p10–p90 | min–max |');
      p('|---|---|---|---|');
      const row = (label, s, b = '') => p(`| ${b}${label}${b} | ${b}${f(s.median, 2)}×${b} | ${f(s.p10, 2)}–${f(s.p90, 2)} | ${f(s.min, 2)}–${f(s.max, 2)} |`);
      row('GoogLeNet', scaling.speedup, '**');
      row('control', scaling.control.speedup);
      if (scaling.native.speedup) row('native loop', scaling.native.speedup);
      else p(`| native loop | — (${scaling.native.error}) | | |`);
      row('GoogLeNet ÷ control, per round', scaling.efficiency);
      p();
      p('| ms per run | median | p10–p90 | min–max |');
      p('|---|---|---|---|');
      const ms = (label, s) => p(`| ${label} | ${f(s.median)} | ${f(s.p10)}–${f(s.p90)} | ${f(s.min)}–${f(s.max)} |`);
      for (const t of [1, 2]) ms(`GoogLeNet forward, ${t} thread${t > 1 ? 's' : ''}`, scaling.ms[t]);
      for (const t of [1, 2]) ms(`control forward, ${t} thread${t > 1 ? 's' : ''}`, scaling.control.ms[t]);
      if (scaling.native.ms) for (const t of [1, 2]) ms(`native loop, ${t} thread${t > 1 ? 's' : ''}`, scaling.native.ms[t]);
    } else p(`Failed: ${firstLine(scaling.error)}`);
    p();
  }

  if (micro) {
    const keys = micro.configs.filter((c) => c.ok).map((c) => c.key);
    const peers = keys.filter((k) => !k.startsWith('ours'));
    const oursKeys = keys.filter((k) => k.startsWith('ours'));
    const name = (k) => ({ ort: 'ORT', tfjs: 'tfjs', ours: 'ours' })[k.split('@')[0]] + ` ${k.split('@')[1]}t`;
    p('## Micro-benchmarks (batch 1, shapes from bench/shapes.json)');
    p();
    p('Each conv has bias and a fused ReLU (inception-wasm `Conv2d({ activation: \'relu\' })`, an ONNX Conv→Relu graph that ORT fuses, `tf.fused.conv2d`). Input and weights are identical across engines (checked: sums of the outputs agree). ORT copies its input in and its output out of wasm memory on every `run()`; the others keep tensors in wasm memory. tfjs runs NHWC.');
    p();
    const convs = micro.cases.filter((c) => c.kind === 'conv');
    const sp = (c, k) => {
      const r = c.ratios[k];
      return r ? `${f(r.speedup, 2)}×${r.oursAtSameThreads ? '' : '†'}` : '—';
    };
    // `*`: every round of this case saw other processes use ≥ 0.3 CPU.
    const noisy = (r) => (r.bgCpus >= 0.3 ? '*' : '');
    const gf = (c, k) => (c.results[k]?.ok ? f(c.results[k].gflops) + noisy(c.results[k]) : c.results[k] ? 'err' : '—');
    const ms = (c, k) => (c.results[k]?.ok ? f(c.results[k].ms.median, 3) + noisy(c.results[k]) : c.results[k] ? 'err' : '—');
    if (convs.length) {
      p('### Convolutions: GFLOP/s (median) and speed-up of inception-wasm');
      p();
      p('"kernel": the algorithm inception-wasm\'s selection table picks for the shape (`Conv2d.algorithmFor(h, w)`).');
      p();
      p(`| shape (C×H×W → C_out, k/s pad) | layers | MFLOP | kernel | ${[...oursKeys, ...peers].map(name).join(' | ')} | ${peers.map((k) => `× vs ${name(k)}`).join(' | ')} |`);
      p(`|---|---|---|---|${[...oursKeys, ...peers].map(() => '---').join('|')}|${peers.map(() => '---').join('|')}|`);
      for (const c of convs) {
        const layers = c.layers.length > 2 ? `${c.layers[0]} +${c.layers.length - 1}` : c.layers.join(', ');
        const kernel = c.results['ours@1']?.meta?.kernel ?? '—';
        p(`| ${caseLabel(c)} | ${layers} | ${f((2 * c.macs) / 1e6, 1)} | ${kernel} | ${[...oursKeys, ...peers].map((k) => gf(c, k)).join(' | ')} | ${peers.map((k) => sp(c, k)).join(' | ')} |`);
      }
      // Weighted by how much of GoogLeNet each shape is: time-weighted totals.
      const total = (k) => convs.reduce((a, c) => a + (c.results[k]?.ok ? c.results[k].ms.median * c.layers.length : NaN), 0);
      const flops = convs.reduce((a, c) => a + 2 * c.macs * c.layers.length, 0);
      p(`| **all GoogLeNet convs** (each shape × its layer count) | ${convs.reduce((a, c) => a + c.layers.length, 0)} | ${f(flops / 1e6, 0)} | | ${[...oursKeys, ...peers].map((k) => f(flops / total(k) / 1e6)).join(' | ')} | ${peers.map((k) => f(total(k) / total(oursKeys.includes(`ours@${k.split('@')[1]}`) ? `ours@${k.split('@')[1]}` : 'ours@1'), 2) + '×').join(' | ')} |`);
      p();
      p(`Sum of the conv kernels as run one by one: ${[...oursKeys, ...peers].map((k) => `${name(k)} ${f(total(k), 1)} ms`).join(', ')}.`);
      if (peers.some((k) => k.endsWith('@2') && !oursKeys.includes('ours@2'))) p('\n† inception-wasm at 1 thread against the peer at 2 threads.');
      p();
    }
    const gemm = micro.gemm;
    if (gemm && !gemm.error) {
      p('### GEMM: GoogLeNet\'s 1×1 convolutions against the in-cache microkernel peak');
      p();
      p(`\`node bench/gemm.mjs\` (${gemm.build}, one thread, loops inside wasm; each sample bracketed by short peak runs and kept only when the machine was quiet): in-cache 4×8 microkernel peak **${f(gemm.peakGflops)} GFLOP/s**; the 1×1 layers, weighted by use, **${f(gemm.weightedGflops)} GFLOP/s = ${f(gemm.weightedPercent, 0)} % of peak**.`);
      p();
      p('| 1×1 shape (M×K·K×N) | layers | GFLOP/s (best kept) | % of peak |');
      p('|---|---|---|---|');
      for (const c of gemm.pointwise) p(`| ${c.id} | ${c.uses} | ${f(c.gflops)} | ${f(c.percent, 0)} % |`);
      p();
    }
    const pools = micro.cases.filter((c) => c.kind === 'maxpool');
    if (pools.length) {
      p('### Max-pool: median ms and speed-up of inception-wasm');
      p();
      p(`| shape | layers | ${[...oursKeys, ...peers].map(name).join(' | ')} | ${peers.map((k) => `× vs ${name(k)}`).join(' | ')} |`);
      p(`|---|---|${[...oursKeys, ...peers].map(() => '---').join('|')}|${peers.map(() => '---').join('|')}|`);
      for (const c of pools) p(`| ${caseLabel(c)} | ${c.layers.length > 2 ? `${c.layers[0]} +${c.layers.length - 1}` : c.layers.join(', ')} | ${[...oursKeys, ...peers].map((k) => ms(c, k)).join(' | ')} | ${peers.map((k) => sp(c, k)).join(' | ')} |`);
      p();
    }
    const inc = micro.cases.filter((c) => c.kind === 'inception');
    if (inc.length) {
      p('### One Inception block (3a on [1, 192, 28, 28])');
      p();
      p(`| block | MFLOP | ${[...oursKeys, ...peers].map((k) => `${name(k)} ms (GFLOP/s)`).join(' | ')} | ${peers.map((k) => `× vs ${name(k)}`).join(' | ')} |`);
      p(`|---|---|${[...oursKeys, ...peers].map(() => '---').join('|')}|${peers.map(() => '---').join('|')}|`);
      for (const c of inc) p(`| ${caseLabel(c)} | ${f((2 * c.macs) / 1e6, 1)} | ${[...oursKeys, ...peers].map((k) => `${ms(c, k)} (${gf(c, k)})`).join(' | ')} | ${peers.map((k) => sp(c, k)).join(' | ')} |`);
      p();
    }
    const all = micro.cases.flatMap((c) => Object.values(c.results).filter((r) => r.ok));
    const dropped = all.filter((r) => r.roundsUsed && r.roundsUsed.split('/')[0] !== r.roundsUsed.split('/')[1]).length;
    const starred = all.filter((r) => r.bgCpus >= 0.3).length;
    p(
      `Noise: ${starred} of ${all.length} results are marked \`*\`: other processes kept ≥ 0.3 CPU busy while they were timed` +
        (dropped ? `; ${dropped} left out a round that busy (a quieter round existed).` : '.'),
    );
    p();
    const bad = micro.cases.flatMap((c) => Object.entries(c.results).filter(([, r]) => r.ok && r.checkRelDiff > 1e-3).map(([k, r]) => `${c.id} ${k}: ${r.checkRelDiff.toExponential(1)}`));
    const worst = Math.max(0, ...micro.cases.flatMap((c) => Object.values(c.results).filter((r) => r.ok && r.checkRelDiff !== undefined).map((r) => r.checkRelDiff)));
    p(`Output check (relative difference of output sums vs inception-wasm, all cases): worst ${worst.toExponential(1)}${bad.length ? `; **above 1e-3: ${bad.join(', ')}**` : ''}.`);
    const errs = micro.cases.flatMap((c) => Object.entries(c.results).filter(([, r]) => !r.ok).map(([k, r]) => `${c.id} ${k}: ${r.error}`));
    if (errs.length) p(`\nFailed cases: ${errs.join('; ')}`);
    const cfgErr = micro.configs.filter((c) => !c.ok);
    if (cfgErr.length) p(`\nConfigurations that failed: ${cfgErr.map((c) => `${c.label}: ${c.error}`).join('; ')}`);
    p();
  }
  if (soak) {
    p(`## Memory over ${soak.ok ? int(soak.inferences) : '—'} inferences`);
    p();
    if (soak.ok) {
      p(`inception-wasm, 1 thread, GoogLeNet 224×224 batch 1, ${int(soak.inferences)} forwards in ${f(soak.seconds, 0)} s; sampled every ${int(soak.samples[1]?.i ?? 1)} inferences. Allocations inside WebAssembly per inference: ${f(soak.allocationsPerInference, 2)} (the returned logits tensor).`);
      p();
      p('| after inference | RSS, MiB | V8 heap reserved / used, MiB | WebAssembly memory, bytes |');
      p('|---|---|---|---|');
      const s2 = soak.samples;
      for (const x of [s2[0], s2[1], s2[Math.floor(s2.length / 4)], s2[Math.floor(s2.length / 2)], s2.at(-1)].filter((v, i, a) => v && a.indexOf(v) === i)) p(`| ${int(x.i)} | ${f(x.rssMiB)} | ${f(x.heapTotalMiB)} / ${f(x.heapUsedMiB)} | ${int(x.wasmBytes)} |`);
      if (soak.heapRetainedMiB) p(`\nJavaScript heap after a full collection: ${f(soak.heapRetainedMiB.first, 2)} MiB after the first inference, ${f(soak.heapRetainedMiB.last, 2)} MiB after the last.`);
    } else p(`Failed: ${firstLine(soak.error)}`);
    p();
  }
  if (train) {
    p(`## Training step vs PyTorch 1.13 CPU${train.quick ? ' (quick: one process, one step each — a smoke run, not a measurement)' : ''}`);
    p();
    p(
      "`bench/train.mjs` (`npm run bench:train`): torchvision's GoogLeNet with both auxiliary heads, 10 classes; a training step (zero grad, training-mode forward, main + 0.3·(aux1 + aux2), backward, SGD with momentum) and an eval forward, inception-wasm and PyTorch each in fresh processes taking turns. " +
        'ms = median of the per-process medians; **ours ÷ torch > 1: inception-wasm slower**.' +
        (train.quick ? '' : ' Details (spread, phases, memory): `train.md` / `train.json` in this directory.'),
    );
    p();
    if (train.rows?.length) {
      p('| | batch | input | threads | inception-wasm ms | PyTorch ms | ours ÷ torch | ours wasm MiB | torch max RSS MiB |');
      p('|---|---|---|---|---|---|---|---|---|');
      for (const r of train.rows) p(`| ${r.inference ? 'eval forward' : 'train step'} | ${r.batch} | ${r.size}×${r.size} | ${r.threads} | ${f(r.oursMs)} | ${f(r.torchMs)} | ${r.ratio === null ? '—' : `**${f(r.ratio, 2)}×**`} | ${f(r.oursPeakMiB, 0)} | ${f(r.torchMaxRssMiB, 0)} |`);
    }
    if (!train.ok) p(`\nFailed: ${firstLine(train.error)}`);
    p();
  }
  p('Raw numbers: `results.json` (same directory); chart: `chart.svg`.');
  return `${L.join('\n')}\n`;
}

// ---------------------------------------------------------------- chart

const COLORS = { 'ours@1': '#1b9e77', 'ours@2': '#0b6e4f', 'ours-relaxed@1': '#66c2a5', 'ours-relaxed@2': '#2b8c6c', 'ort@1': '#d95f02', 'ort@2': '#f4a259', 'tfjs@1': '#7570b3', 'tfjs@2': '#b3aee0', 'tfjs-plain@1': '#a6a6c8' };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function chart({ opts, info, e2e, micro }) {
  const W = 900;
  const parts = [];
  let y = 30;
  parts.push(`<text x="20" y="${y}" font-size="18" font-weight="bold">inception-wasm vs onnxruntime-web vs tfjs-backend-wasm${opts.smoke ? ' (smoke)' : ''}</text>`);
  y += 18;
  parts.push(`<text x="20" y="${y}" font-size="11" fill="#555">${esc(`${info.cpuModel}, ${info.logicalCpus} CPUs, Node ${info.node}, ${info.date.slice(0, 10)}`)}</text>`);
  y += 30;

  const left = 290;
  const plotW = W - left - 80;
  if (e2e) {
    const rows = [];
    for (const c of e2e.configs.filter((x) => x.ok)) for (const b of c.batches) rows.push({ key: c.key, label: `${c.label}, batch ${b.batch}`, v: b.msPerImage.median, lo: b.msPerImage.p10, hi: b.msPerImage.p90, batch: b.batch });
    rows.sort((a, b) => a.batch - b.batch || a.v - b.v);
    const max = Math.max(...rows.map((r) => r.hi)) * 1.05;
    parts.push(`<text x="20" y="${y}" font-size="14" font-weight="bold">GoogLeNet 224×224 end to end: ms per image (median, whisker p10–p90; shorter is better)</text>`);
    y += 14;
    const bh = 16;
    for (const r of rows) {
      const w = (r.v / max) * plotW;
      parts.push(`<text x="${left - 6}" y="${y + bh - 4}" font-size="11" text-anchor="end">${esc(r.label)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bh - 3}" fill="${COLORS[r.key] ?? '#999'}"/>`);
      parts.push(`<line x1="${left + (r.lo / max) * plotW}" x2="${left + (r.hi / max) * plotW}" y1="${y + (bh - 3) / 2}" y2="${y + (bh - 3) / 2}" stroke="#222" stroke-width="1"/>`);
      parts.push(`<text x="${left + Math.max(w, (r.hi / max) * plotW) + 4}" y="${y + bh - 4}" font-size="10" fill="#333">${f(r.v)} ms</text>`);
      y += bh;
    }
    const failed = e2e.configs.filter((c) => !c.ok);
    for (const c of failed) {
      parts.push(`<text x="${left - 6}" y="${y + bh - 4}" font-size="11" text-anchor="end">${esc(c.label)}</text>`);
      parts.push(`<text x="${left + 4}" y="${y + bh - 4}" font-size="10" fill="#a00">does not run in Node (see results.md)</text>`);
      y += bh;
    }
    y += 30;
  }

  if (micro) {
    const keys = micro.configs.filter((c) => c.ok).map((c) => c.key);
    const cases = micro.cases.filter((c) => c.kind === 'conv' || c.kind === 'inception');
    const max = Math.max(1, ...cases.flatMap((c) => keys.map((k) => c.results[k]?.gflops ?? 0))) * 1.08;
    parts.push(`<text x="20" y="${y}" font-size="14" font-weight="bold">Per conv shape (batch 1, bias + ReLU): GFLOP/s, median (longer is better)</text>`);
    y += 16;
    // legend
    let lx = left;
    for (const k of keys) {
      const cfg = micro.configs.find((c) => c.key === k);
      if (lx + 160 > W) {
        lx = left;
        y += 16;
      }
      parts.push(`<rect x="${lx}" y="${y - 9}" width="10" height="10" fill="${COLORS[k] ?? '#999'}"/><text x="${lx + 14}" y="${y}" font-size="11">${esc(cfg.label)}</text>`);
      lx += 165;
    }
    y += 10;
    const bh = 5;
    for (const c of cases) {
      const groupH = keys.length * bh + 6;
      parts.push(`<text x="${left - 6}" y="${y + groupH / 2 + 3}" font-size="10" text-anchor="end">${esc(caseLabel(c))}</text>`);
      keys.forEach((k, i) => {
        const v = c.results[k]?.gflops;
        if (!v) return;
        parts.push(`<rect x="${left}" y="${y + i * bh}" width="${((v / max) * plotW).toFixed(1)}" height="${bh - 1}" fill="${COLORS[k] ?? '#999'}"><title>${esc(`${k}: ${f(v)} GFLOP/s`)}</title></rect>`);
      });
      y += groupH;
    }
    // axis
    for (let g = 0; g <= max; g += max > 60 ? 20 : 10) {
      const x = left + (g / max) * plotW;
      parts.push(`<line x1="${x}" x2="${x}" y1="${y}" y2="${y + 4}" stroke="#333"/><text x="${x}" y="${y + 15}" font-size="10" text-anchor="middle">${g}</text>`);
    }
    parts.push(`<text x="${left + plotW / 2}" y="${y + 30}" font-size="11" text-anchor="middle">GFLOP/s</text>`);
    y += 45;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="Helvetica, Arial, sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}

// ---------------------------------------------------------------- entry

export function writeReports({ opts, info, prep, shapes, e2e, scaling, micro, soak, train = null, out }) {
  const E = e2e ? aggregateE2E(e2e, prep.totalMacs) : null;
  const M = micro ? aggregateMicro(micro) : null;
  info.distBuilds = [...new Set([prep.distHash, ...(E?.configs ?? []).flatMap((c) => c.distHashes ?? []), ...(M?.configs ?? []).flatMap((c) => c.distHashes ?? [])].filter(Boolean))];
  const results = {
    schema: 1,
    about: 'inception-wasm vs onnxruntime-web vs tfjs-backend-wasm; speedup = peer time / inception-wasm time (> 1: inception-wasm faster), timeRatio = the inverse; times in ms.',
    machine: info,
    settings: { smoke: opts.smoke, rounds: opts.rounds, runsPerBatch: opts.runs, peerThreads: opts.threads, oursThreads: opts.oursThreads, micro: opts.micro, filter: opts.filter, engines: opts.engines },
    shapesFile: 'bench/shapes.json',
    e2e: E,
    micro: M,
    scaling: scaling ?? null,
    soak: soak ?? null,
    // bench/train.mjs's rows (ratio = ours ÷ torch: > 1, inception-wasm slower).
    train,
    targets: targets({ info, e2e: E, scaling, micro: M, soak }),
  };
  fs.mkdirSync(out, { recursive: true });
  const files = { json: path.join(out, 'results.json'), md: path.join(out, 'results.md'), svg: path.join(out, 'chart.svg') };
  const ctx = { opts, info, e2e: E, scaling, micro: M, soak, train, shapes };
  fs.writeFileSync(files.json, `${JSON.stringify(results, null, 1)}\n`);
  const md = markdown(ctx);
  fs.writeFileSync(files.md, md);
  fs.writeFileSync(files.svg, chart(ctx));
  // The console summary: the head-to-head table.
  const start = md.indexOf('### Head to head');
  const summary = start >= 0 ? md.slice(start, md.indexOf('\n### ', start + 5)).trim() : md.slice(0, 2000);
  const trainProblems = train && !train.ok ? [`train: ${firstLine(train.error)}`, ...(train.rows ?? []).flatMap((r) => (r.errors ?? []).map((e) => `train b${r.batch} ${r.size}² ${r.threads}t: ${e}`))] : [];
  return { written: Object.values(files), summary, problems: [...problems(E, M, soak), ...(scaling && !scaling.ok ? [`paired thread scaling: ${firstLine(scaling.error)}`] : []), ...trainProblems] };
}

/**
 * What makes the run fail (exit 1), for CI: any configuration or case that did not run,
 * except tfjs with more than one thread (unsupported in Node, documented), and outputs
 * that disagree between engines.
 */
function problems(E, M, soak) {
  const out = [];
  if (soak && !soak.ok) out.push(`soak: ${firstLine(soak.error)}`);
  const expected = (c) => c.engine === 'tfjs' && c.threads > 1;
  for (const c of E?.configs ?? []) {
    if (!c.ok && !expected(c)) out.push(`${c.label}: ${c.error}`);
    if (c.ok && c.logitsCheck && (!c.logitsCheck.top1Same || c.logitsCheck.relToMaxLogit > 1e-3)) out.push(`${c.label}: logits differ from inception-wasm's (${c.logitsCheck.relToMaxLogit.toExponential(1)} of the largest logit)`);
  }
  for (const c of M?.configs ?? []) if (!c.ok && !expected(c)) out.push(`micro ${c.label}: ${c.error}`);
  for (const row of M?.cases ?? []) {
    for (const [k, r] of Object.entries(row.results)) {
      if (!r.ok) out.push(`micro ${row.id} ${k}: ${r.error}`);
      else if (r.checkRelDiff > 1e-3) out.push(`micro ${row.id} ${k}: output differs from inception-wasm's (${r.checkRelDiff.toExponential(1)})`);
    }
  }
  return out;
}
