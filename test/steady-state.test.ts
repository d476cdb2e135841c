import { beforeAll } from 'vitest';
import * as lib from '../ts/index.js';
import { steadyStateTests } from './steady-state.js';

beforeAll(async () => {
  await lib.init();
});

steadyStateTests('steady state, single-threaded build', lib);
