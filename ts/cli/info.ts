/** `inception-wasm info`: what this machine's runtime offers the library, and what it chose. */
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { init, memoryInfo, relaxedSimdSupported, simdFlavour, threadCount } from '../index.js';
import { parse, UsageError } from './common.js';

export const usage = `Usage: inception-wasm info [--json]

The package version, the runtime, SIMD (relaxed available / chosen), threads (possible,
and why not), memory limits and the .wasm files in use.`;

export async function infoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`info takes no arguments, but got ${positionals.join(' ')}`);
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const cpus = availableParallelism();
  // init's warnings say why threads are not possible: keep them for the report.
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(' '));
  try {
    await init({ threads: Math.min(2, cpus) });
  } finally {
    console.warn = warn;
  }
  const threads = threadCount();
  const build = `wasm${threads > 1 ? '-threads' : ''}${simdFlavour() === 'relaxed' ? '-relaxed' : ''}`;
  const file = (folder: string, name: string) => {
    const url = new URL(`./${folder}/${name}`, import.meta.url);
    return { file: fileURLToPath(url), bytes: statSync(url, { throwIfNoEntry: false })?.size ?? null };
  };
  const mem = memoryInfo();
  const report = {
    version: pkg.version,
    runtime: `Node ${process.versions.node} (V8 ${process.versions.v8}), ${process.platform}-${process.arch}, ${cpus} CPUs`,
    simd: { relaxedAvailable: relaxedSimdSupported(), chosen: simdFlavour(), note: relaxedSimdSupported() ? undefined : 'Node 20 runs relaxed SIMD only with --experimental-wasm-relaxed-simd' },
    threads: { possible: threads > 1, tried: Math.min(2, cpus), running: threads, why: threads > 1 ? undefined : warnings.join('; ') || (cpus < 2 ? 'one CPU' : undefined) },
    memory: { wasmBytes: mem.wasmBytes, maximumBytes: mem.maximumBytes },
    wasm: { inference: file(build, 'inception_wasm_bg.wasm'), image: file('wasm-image', 'inception_image_bg.wasm') },
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
  } else {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    process.stdout.write(
      [
        `inception-wasm ${report.version}`,
        `runtime   ${report.runtime}`,
        `SIMD      ${report.simd.chosen}${report.simd.relaxedAvailable ? ' (relaxed SIMD available)' : ` (relaxed SIMD not available${report.simd.note ? `: ${report.simd.note}` : ''})`}`,
        `threads   ${threads > 1 ? `${threads} (of ${cpus} CPUs)` : `1${report.threads.why ? ` (${report.threads.why})` : ''}`}`,
        `memory    ${mib(report.memory.wasmBytes)} now, up to ${mib(report.memory.maximumBytes)}`,
        `inference ${report.wasm.inference.file} (${report.wasm.inference.bytes} bytes)`,
        `images    ${report.wasm.image.file} (${report.wasm.image.bytes} bytes, compiled on the first image call)`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}
