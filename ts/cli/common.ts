/** What the commands share: argument parsing with usage errors, notices, building the model. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GoogLeNet, type GoogLeNetVariant, loadPth, readSafetensors } from '../index.js';

/** Bad usage: exit code 2, the message and a pointer to `--help`. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/** `parseArgs`, strict, with `--help`; a parse error becomes a {@link UsageError}. */
export function parse<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Notices, warnings and progress: stderr only, so that stdout stays parseable. */
export function notice(message: string): void {
  process.stderr.write(`inception-wasm: ${message}\n`);
}

export function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, but got ${JSON.stringify(value)}`);
  return n;
}

export function variantOf(value: string | undefined): GoogLeNetVariant | undefined {
  if (value === undefined || value === 'relu' || value === 'seed' || value === 'torchvision') return value;
  throw new UsageError(`--variant must be relu, seed or torchvision, but got ${JSON.stringify(value)}`);
}

/** A weights file's contents: `.pth`/`.pt`/`.bin` through loadPth, else safetensors (with its metadata). */
export async function readWeights(file: string): Promise<{ tensors: Map<string, { shape: readonly number[]; data: Float32Array }>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new UsageError(`cannot read the weights file ${file}: ${(e as Error).message}`);
  }
  return isSafetensors(file, bytes) ? readSafetensors(bytes) : { tensors: loadPth(bytes), metadata: {} };
}

/**
 * The extension decides (.safetensors, or .pth / .pt / .bin / .ckpt); otherwise the bytes:
 * a safetensors file's JSON header starts at byte 8 with `{` (a zip or a pickle never has
 * one there). The first byte alone cannot tell: it is the header length's low byte.
 */
function isSafetensors(file: string, bytes: Uint8Array): boolean {
  if (/\.safetensors$/i.test(file)) return true;
  if (/\.(pth|pt|bin|ckpt|tar)$/i.test(file)) return false;
  return bytes.length > 8 && bytes[8] === 0x7b;
}

export interface ModelOptions {
  weights?: string;
  variant?: string;
  numClasses?: number;
  transformInput?: boolean;
}

/**
 * The model the options describe: `new GoogLeNet()` (the library's defaults: ReLU, 1,000
 * classes) with a notice that its random weights give meaningless labels, or built from a
 * weights file (variant inferred from its keys, aux heads skipped, `transformInput` from
 * its metadata unless given).
 */
export async function buildModel(options: ModelOptions): Promise<GoogLeNet> {
  const variant = variantOf(options.variant);
  const tvOnly = () => new UsageError(`--transform-input needs the torchvision variant (torchvision's weights), not ${variant ?? 'relu'}`);
  if (options.weights === undefined) {
    if (options.transformInput && variant !== 'torchvision') throw tvOnly();
    notice('no --weights: GoogLeNet with random weights, so the labels mean nothing (pass --weights googlenet.pth or .safetensors)');
    return new GoogLeNet({ variant, numClasses: options.numClasses, transformInput: options.transformInput });
  }
  const contents = await readWeights(options.weights);
  const torchvision = variant === 'torchvision' || (variant === undefined && contents.tensors.has('conv1.conv.weight'));
  if (options.transformInput && !torchvision) throw tvOnly();
  const model = GoogLeNet.fromStateDict(contents, { variant, numClasses: options.numClasses, transformInput: options.transformInput });
  const transformInput = model.children().some(([n]) => n === 'transform_input');
  if (model.variant === 'torchvision' && !transformInput) {
    notice("transform_input is off: torchvision's own pretrained GoogLeNet needs --transform-input (a .pth does not record it)");
  }
  notice(`weights ${path.basename(options.weights)}: variant ${model.variant}, ${model.numClasses} classes${transformInput ? ', transform_input on' : ''}`);
  return model;
}
