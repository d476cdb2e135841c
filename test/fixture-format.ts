/**
 * The fixture format (`../shared/fixtures/README.md`, `googlenet-fixtures/v1`) as the tests
 * use it: the case types, the weights and input regenerated with weyl-fmix32 (checked
 * against the recorded checksums), and the tolerance rule — `|got - ref| ≤ abs + rel·|ref|`
 * on every stored value (full outputs) or sample (sampled ones), plus the whole-tensor
 * statistics. Shared by test/fixtures.test.ts and the end-to-end tests.
 */
import { expect } from 'vitest';
import { checksum32, fillTensor } from './weyl.js';

interface Tolerance { abs: number; rel: number }
interface Stats { sum: number; sum_sq: number; min: number; max: number; mean: number }
export interface OutputRecord {
  shape: number[];
  numel: number;
  storage: 'full' | 'sampled';
  values?: number[];
  sample_indices?: number[];
  sample_values?: number[];
  stats: Stats;
  tolerance: Tolerance;
  stats_tolerance: Stats;
}
export interface ParamRecord {
  index: number; name: string; shape: number[]; kind: string;
  offset: number; scale: number; abs: boolean; checksum32: number; values?: number[];
}
export interface Case {
  case: string;
  type: string;
  model: Record<string, any>;
  generator?: { seed: number; weight_gain: number; bias_scale: number };
  input: { shape: number[]; seed: number; tensor_index: number; offset: number; scale: number; abs: boolean; checksum32: number };
  outputs: Record<string, OutputRecord>;
  params?: ParamRecord[];
  loss?: { target: number; main_ce: number; aux1_ce: number; aux2_ce: number; total: number; tolerance_abs: number };
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The case's weights by state-dict name, regenerated and checked against the recorded checksums. */
export function caseParams(c: Case): Map<string, { shape: number[]; data: Float32Array }> {
  const dict = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const p of c.params ?? []) {
    const data = p.kind === 'fixed'
      ? new Float32Array(p.values!)
      : fillTensor(c.generator!.seed, p.index, numel(p.shape), { offset: p.offset, scale: p.scale, abs: p.abs });
    expect(checksum32(data), `checksum32 of ${p.name}`).toBe(p.checksum32);
    dict.set(p.name, { shape: p.shape, data });
  }
  return dict;
}

/** The case's input, regenerated and checked against its checksum. */
export function caseInput(c: Case): Float32Array {
  const x = fillTensor(c.input.seed, c.input.tensor_index, numel(c.input.shape), c.input);
  expect(checksum32(x), 'input checksum32').toBe(c.input.checksum32);
  return x;
}

/** Worst |got - ref| / tolerance over the stored values; fails on any element over 1. */
export function compareOutput(label: string, rec: OutputRecord, got: Float32Array): number {
  expect(got.length, `${label} numel`).toBe(rec.numel);
  const tol = (ref: number) => rec.tolerance.abs + rec.tolerance.rel * Math.abs(ref);
  const [indices, refs] = rec.storage === 'full'
    ? [rec.values!.map((_, i) => i), rec.values!]
    : [rec.sample_indices!, rec.sample_values!];
  expect(indices.length, `${label}: stored values`).toBeGreaterThan(0);
  let worst = 0;
  let worstAt = -1;
  indices.forEach((idx, j) => {
    const ratio = Math.abs(got[idx]! - refs[j]!) / tol(refs[j]!);
    if (!(ratio <= worst)) [worst, worstAt] = [ratio, idx];
  });
  expect(worst, `${label}[${worstAt}]: got ${got[worstAt]}, worst error/tolerance`).toBeLessThanOrEqual(1);
  // Whole-tensor statistics (the only check of the unsampled elements of large outputs).
  let [sum, sumSq, min, max] = [0, 0, Infinity, -Infinity];
  for (const v of got) [sum, sumSq, min, max] = [sum + v, sumSq + v * v, Math.min(min, v), Math.max(max, v)];
  const st = rec.stats_tolerance;
  expect(Math.abs(sum - rec.stats.sum), `${label} sum`).toBeLessThanOrEqual(st.sum);
  expect(Math.abs(sumSq - rec.stats.sum_sq), `${label} sum_sq`).toBeLessThanOrEqual(st.sum_sq);
  expect(Math.abs(sum / got.length - rec.stats.mean), `${label} mean`).toBeLessThanOrEqual(st.mean);
  expect(Math.abs(min - rec.stats.min), `${label} min`).toBeLessThanOrEqual(st.min);
  expect(Math.abs(max - rec.stats.max), `${label} max`).toBeLessThanOrEqual(st.max);
  return worst;
}
