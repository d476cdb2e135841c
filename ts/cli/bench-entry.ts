#!/usr/bin/env node
// `node dist/cli-bench.js [options]`: the bench command alone, until ts/cli/main.ts
// (dist/cli.js, `inception-wasm bench …`) imports `bench` from './bench.js'.
import { bench } from './bench.js';

process.exitCode = await bench(process.argv.slice(2));
