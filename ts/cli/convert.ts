/** `inception-wasm convert <in> <out.safetensors>`: weights between formats, without Python. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { saveSafetensors } from '../index.js';
import { notice, parse, readWeights, UsageError } from './common.js';

export const usage = `Usage: inception-wasm convert <in.pth|in.pt|in.safetensors> <out.safetensors> [options]

Converts weights to safetensors: PyTorch state dicts (torch.save, zip or legacy format,
training checkpoints) read without Python, every float tensor kept under its key.

Options:
  --half               write float16 (half the size; rounded to nearest even)
  --transform-input    record transform_input=true in the metadata (torchvision's
                       pretrained GoogLeNet needs it; GoogLeNet.fromStateDict reads it)
  -h, --help           this text`;

export async function convertCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { half: { type: 'boolean' }, 'transform-input': { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`convert needs an input and an output file, but got ${positionals.length} argument(s)`);
  const [input, output] = positionals as [string, string];
  if (!/\.safetensors$/i.test(output)) throw new UsageError(`the output must be a .safetensors file, but got ${output}`);
  const { tensors, metadata } = await readWeights(input);
  const meta: Record<string, string> = { source: path.basename(input), ...metadata };
  if (values['transform-input']) meta.transform_input = 'true';
  if (values.half) {
    // float16 ends at ±65504: larger values would become ±∞.
    const over = [...tensors].filter(([, t]) => t.data.some((v) => Math.abs(v) > 65504)).map(([key]) => key);
    if (over.length > 0) notice(`--half: ${over.join(', ')} hold values beyond ±65504, which float16 stores as ±Infinity`);
  }
  const bytes = saveSafetensors(tensors, meta, { dtype: values.half ? 'F16' : 'F32' });
  await writeFile(output, bytes);
  const values_ = [...tensors.values()].reduce((n, t) => n + t.data.length, 0);
  notice(`${input} → ${output}: ${tensors.size} tensors, ${values_.toLocaleString('en')} values, ${values.half ? 'F16' : 'F32'}, ${bytes.length.toLocaleString('en')} bytes`);
  return 0;
}
