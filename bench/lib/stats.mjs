// Order statistics, the timing loop shared by the engines, and the machine's background load.
import fs from 'node:fs';

/**
 * Busy time of all CPUs so far, in ms, from /proc/stat (USER_HZ = 100 on Linux: 10 ms
 * ticks). null where there is no /proc.
 */
export function systemBusyMs() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = f[3] + f[4]; // idle + iowait
    return (f.reduce((a, b) => a + b, 0) - idle) * 10;
  } catch {
    return null;
  }
}

/** Linear-interpolated quantile of a sorted array. */
export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

/** median / p10 / p90 / min / max of samples (ms). */
export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), min: s[0], max: s[s.length - 1] };
}

/**
 * Times `fn` (sync or async): `warmup` calls first (and more until `warmupMs` have passed), then `samples` samples of `iters`
 * calls each, where `iters` is chosen after warm-up so that one sample lasts at least
 * `minSampleMs` (short kernels would otherwise be below the timer's noise). Returns
 * per-call milliseconds of each sample, the process CPU time over wall time of the timed
 * part (≈ 1 for one busy thread, ≈ 2 for two: the evidence that threads ran), and the
 * CPUs that other processes kept busy meanwhile (`bgCpus`: the shared machine's noise).
 */
export async function measure(fn, { warmup = 2, warmupMs = 0, samples = 20, minSampleMs = 0 } = {}) {
  let last = 0;
  const w0 = performance.now();
  for (let i = 0; i < warmup || performance.now() - w0 < warmupMs; i++) {
    const t = performance.now();
    await fn();
    last = performance.now() - t;
  }
  let iters = 1;
  if (minSampleMs > 0) {
    if (!warmup) {
      const t = performance.now();
      await fn();
      last = performance.now() - t;
    }
    iters = Math.max(1, Math.ceil(minSampleMs / Math.max(last, 1e-3)));
  }
  const times = [];
  const busy0 = systemBusyMs();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    for (let j = 0; j < iters; j++) await fn();
    times.push((performance.now() - t) / iters);
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const busy1 = systemBusyMs();
  const ownMs = (cpu.user + cpu.system) / 1000;
  const bgCpus = busy0 === null ? null : Math.max(0, (busy1 - busy0 - ownMs) / wall);
  return { times, iters, cpuPerWall: ownMs / wall, bgCpus };
}
