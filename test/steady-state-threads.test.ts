// The threaded build needs the built package (its workers load dist/worker.js).
import { beforeAll } from 'vitest';
import * as lib from '../dist/index.js';
import type * as Sources from '../ts/index.js';
import { steadyStateTests } from './steady-state.js';

beforeAll(async () => {
  await lib.init({ threads: 2 });
  if (lib.threadCount() !== 2) throw new Error(`expected the threaded build with 2 threads, got ${lib.threadCount()}`);
});

// The same API as the sources (the declarations differ only in private fields).
steadyStateTests('steady state, threaded build (2 threads)', lib as unknown as typeof Sources);
