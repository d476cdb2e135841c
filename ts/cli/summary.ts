/** `inception-wasm summary`: the layer table of a GoogLeNet, with the kernel each conv runs. */
import { Conv2d, GoogLeNet, init, summary } from '../index.js';
import { notice, parse, positiveInt, UsageError, variantOf } from './common.js';

export const usage = `Usage: inception-wasm summary [options]

The layer table of GoogLeNet (as summary() gives it): every leaf layer's output shape,
parameters and multiply-accumulates, and the kernel each convolution runs at that size.

Options:
  --variant NAME       relu (default), seed or torchvision
  --input N,C,H,W      input shape (default 1,3,224,224)
  --num-classes N      classes (default 1000)
  --json               { rows: [{ name, type, inputShape, outputShape, params, macs, kernel? }], totalParams, totalMacs }
  -h, --help           this text`;

export async function summaryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { variant: { type: 'string' }, input: { type: 'string' }, 'num-classes': { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`summary takes no files, but got ${positionals.join(' ')}`);
  const input = (values.input ?? '1,3,224,224').split(',').map(Number);
  if (input.length !== 4 || input.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError(`--input must be four positive integers N,C,H,W, but got ${JSON.stringify(values.input)}`);
  await init();
  const model = new GoogLeNet({ variant: variantOf(values.variant), numClasses: positiveInt('num-classes', values['num-classes'], 1000), seed: 0 });
  notice('weights do not matter for the table: random ones');
  let s;
  try {
    s = summary(model, input);
  } catch (e) {
    model.dispose();
    throw new UsageError(`--input ${input.join(',')}: ${(e as Error).message}`);
  }
  const modules = new Map(model.namedModules());
  const kernel = (name: string, inputShape: readonly number[]) => {
    const m = modules.get(name);
    return m instanceof Conv2d ? m.algorithmFor(inputShape[2]!, inputShape[3]!) : undefined;
  };
  const rows = s.rows.map((r) => ({ ...r, kernel: kernel(r.name, r.inputShape) }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ inputShape: s.inputShape, outputShape: s.outputShape, totalParams: s.totalParams, totalMacs: s.totalMacs, rows }, null, 1)}\n`);
  } else {
    const header = ['Layer', 'Type', 'Output shape', 'Params', 'MACs', 'Kernel'];
    const cells = rows.map((r) => [r.name, r.type, `[${r.outputShape.join(', ')}]`, r.params.toLocaleString('en'), r.macs.toLocaleString('en'), r.kernel ?? '']);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) => c.map((v, i) => (i >= 3 && i <= 4 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
    process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${cells.map(line).join('\n')}\n`);
    process.stdout.write(`\ninput [${s.inputShape.join(', ')}] → output [${s.outputShape.join(', ')}]; ${s.totalParams.toLocaleString('en')} parameters, ${(s.totalMacs / 1e9).toFixed(3)} G multiply-adds\n`);
  }
  model.dispose();
  return 0;
}
