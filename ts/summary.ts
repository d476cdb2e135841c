import { ShapeError } from './errors.js';
import type { LayerRow, Module } from './nn/module.js';

export interface Summary {
  /** Every leaf layer in execution order (Inception branches one after another). */
  readonly rows: readonly LayerRow[];
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** Learnable parameters (`model.numParameters()`). */
  readonly totalParams: number;
  /** Multiply-accumulates of one forward pass at `inputShape` (convolutions and linear layers). */
  readonly totalMacs: number;
  /** The table, as printed by `torchsummary`. */
  toString(): string;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * Per-layer output shape, parameters and multiply-accumulates of `model` for an input
 * shape, computed from the architecture alone (nothing runs in WebAssembly). Seed
 * GoogLeNet at `[1, 3, 224, 224]`: 6,994,392 parameters, 1,569,826,816 MACs.
 */
export function summary(model: Module, inputShape: readonly number[]): Summary {
  if (!Array.isArray(inputShape) || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError('summary', `inputShape must be positive integers, but got ${JSON.stringify(inputShape)}`);
  }
  const rows: LayerRow[] = [];
  const outputShape = model.trace(inputShape, (r) => rows.push(r));
  const totalParams = model.numParameters();
  const totalMacs = rows.reduce((s, r) => s + r.macs, 0);
  return {
    rows,
    inputShape: [...inputShape],
    outputShape,
    totalParams,
    totalMacs,
    toString() {
      const head = ['Layer', 'Type', 'Output shape', 'Params', 'MACs'];
      const body = rows.map((r) => [r.name, r.type, `[${r.outputShape.join(', ')}]`, fmt(r.params), fmt(r.macs)]);
      const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
      const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
      const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
      return [
        line(head),
        rule,
        ...body.map(line),
        rule,
        `Input: [${inputShape.join(', ')}]  Output: [${outputShape.join(', ')}]`,
        `Total params: ${fmt(totalParams)}`,
        `Total MACs: ${fmt(totalMacs)} (${(totalMacs / 1e9).toFixed(3)} G)`,
      ].join('\n');
    },
  };
}
