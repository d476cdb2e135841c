// Hostile sizes and exhausted memory in the threaded build (the built package: its workers
// load dist/worker.js), with the shared memory capped by `init({ maximumMemory })`.
import { beforeAll } from 'vitest';
import * as lib from '../dist/index.js';
import type * as Sources from '../ts/index.js';
import { RELIABILITY_CAP, reliabilityTests } from './reliability.js';

beforeAll(async () => {
  await lib.init({ threads: 2, maximumMemory: RELIABILITY_CAP });
  if (lib.threadCount() !== 2) throw new Error(`expected the threaded build with 2 threads, got ${lib.threadCount()}`);
});

// The same API as the sources (the declarations differ only in private fields).
reliabilityTests('threaded build (2 threads)', lib as unknown as typeof Sources);
