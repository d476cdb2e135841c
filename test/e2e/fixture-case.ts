/**
 * What the end-to-end tests share: a fixture case (test/fixtures) turned into one
 * safetensors file that any runtime can run with the package alone, and the check of
 * what comes back — the same rule as test/fixtures.test.ts, `|got - ref| ≤ abs + rel·|ref|`
 * on every stored value (full outputs) or sample (sampled ones), plus the whole-tensor
 * statistics.
 *
 * The request file holds the case's weights (regenerated here with weyl-fmix32 and
 * checked against the fixture's checksums), its input as the tensor `input`, and in
 * `__metadata__`: `model` (a JSON spec: `{ type: 'inception', channels, activation }` or
 * `{ type: 'googlenet', numClasses, variant }`) and `output` (the name to answer under).
 * The safetensors writer/reader here are deliberately independent of the package's own.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { type Case, caseInput, caseParams, compareOutput, numel } from '../fixture-format.js';

export type { Case } from '../fixture-format.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
const fixturesDir = `${root}test/fixtures/`;

export interface F32Tensor { shape: number[]; data: Float32Array }

export function loadCase(name: string): Case {
  return JSON.parse(readFileSync(`${fixturesDir}${name}.json`, 'utf8')) as Case;
}


/** The model spec the runtimes build from (the two case types the e2e tests use). */
export function modelSpec(c: Case): Record<string, unknown> {
  const m = c.model;
  switch (c.type) {
    case 'inception':
      return { type: 'inception', channels: [m.in_channels, m.ch1x1, m.ch3x3red, m.ch3x3, m.ch5x5red, m.ch5x5, m.pool_proj], activation: m.relu ? 'relu' : null };
    case 'seed_googlenet':
      return { type: 'googlenet', numClasses: m.num_classes, variant: m.relu ? 'relu' : 'seed' };
    default:
      throw new Error(`e2e: case type ${c.type} is not supported here`);
  }
}

/** F32 safetensors: 8-byte header length, JSON header padded with spaces to 8 bytes, data. */
export function writeSafetensors(tensors: Map<string, F32Tensor>, metadata: Record<string, string>): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    expect(t.data.length, `${name} numel`).toBe(numel(t.shape));
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.from(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function readSafetensors(bytes: Uint8Array): { tensors: Map<string, F32Tensor>; metadata: Record<string, string> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, any>;
  const tensors = new Map<string, F32Tensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    expect(e.dtype, `${name} dtype`).toBe('F32');
    const [b, end] = e.data_offsets as [number, number];
    const raw = new Uint8Array(bytes.subarray(8 + n + b, 8 + n + end)); // a copy (aligned; a Buffer's slice would be a view)
    tensors.set(name, { shape: e.shape, data: new Float32Array(raw.buffer, 0, (end - b) / 4) });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

/** The case as one request file: regenerated weights and input (checksums checked). */
export function caseRequest(c: Case): Uint8Array<ArrayBuffer> {
  const tensors = new Map<string, F32Tensor>(caseParams(c));
  tensors.set('input', { shape: c.input.shape, data: caseInput(c) });
  const outputs = Object.keys(c.outputs);
  expect(outputs, 'e2e cases have one output').toHaveLength(1);
  return writeSafetensors(tensors, { case: c.case, model: JSON.stringify(modelSpec(c)), output: outputs[0]! });
}

/**
 * Checks a runtime's answer (a safetensors file holding the case's output) against the
 * case; returns the worst error/tolerance ratio.
 */
export function checkAnswer(c: Case, answer: Uint8Array, where: string): number {
  const { tensors } = readSafetensors(answer);
  const [name, rec] = Object.entries(c.outputs)[0]!;
  expect([...tensors.keys()], `${where}: answer tensors`).toEqual([name]);
  const y = tensors.get(name)!;
  expect(y.shape, `${where}: ${name} shape`).toEqual(rec.shape);
  return compareOutput(`${where}: ${c.case}.${name}`, rec, y.data);
}
