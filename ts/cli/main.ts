/**
 * `inception-wasm <command>` (package.json "bin"): the package's command-line tool. It uses
 * the public API only — '../index.js', which the CLI bundle maps to the package's own
 * dist/index.js. Results go to stdout, notices and progress to stderr; exit code 0 when all
 * went well, 1 when some inputs failed (the rest still reported), 2 for bad usage.
 */
import { bench, usage as benchUsage } from './bench.js';
import { classifyCommand, usage as classifyUsage } from './classify.js';
import { convertCommand, usage as convertUsage } from './convert.js';
import { UsageError } from './common.js';
import { infoCommand, usage as infoUsage } from './info.js';
import { summaryCommand, usage as summaryUsage } from './summary.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; usage: string; what: string }> = {
  classify: { run: classifyCommand, usage: classifyUsage, what: 'top-k ImageNet labels for photos (files or folders)' },
  summary: { run: summaryCommand, usage: summaryUsage, what: "GoogLeNet's layer table: shapes, parameters, MACs, kernels" },
  convert: { run: convertCommand, usage: convertUsage, what: 'weights to safetensors (from .pth without Python; --half)' },
  bench: { run: bench, usage: benchUsage, what: 'speed on this machine (or --serve: in a browser)' },
  info: { run: infoCommand, usage: infoUsage, what: 'version, SIMD, threads, memory, the .wasm files in use' },
};

const USAGE = `Usage: inception-wasm <command> [options]      (inception-wasm <command> --help for more)

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.what}`).join('\n')}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    (command === undefined ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  const c = COMMANDS[command];
  if (c === undefined) {
    process.stderr.write(`inception-wasm: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`inception-wasm ${command}: ${e.message}\n(see inception-wasm ${command} --help)\n`);
      return 2;
    }
    process.stderr.write(`inception-wasm ${command}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
    return 1;
  }
}

// A reader that stops early (`| head`): end quietly, as Unix tools do, not with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

// Exit explicitly (a thread pool's workers would otherwise keep the process alive), once
// stdout and stderr are drained: writes to a pipe are queued, and exit would drop them.
// (bench --serve resolves only when the server stops; its children re-run this file with
// `bench … --bench-child`, so `process.argv.slice(2)` is the whole command line.)
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
});
