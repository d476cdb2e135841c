// 2,000 mutated safetensors files in `npm test` (more with `npm run fuzz`, FUZZ_CASES=N).
import { beforeAll, expect, it } from 'vitest';
import * as lib from '../ts/index.js';
import { fuzzSafetensors } from './safetensors-fuzz.js';

beforeAll(() => lib.init());

const cases = Number(process.env.FUZZ_CASES ?? 2000);

it(`${cases} mutated safetensors files: each loads or is refused with a typed error, the model unchanged, results bit-identical after`, () => {
  const outcomes = fuzzSafetensors(lib, 0, cases);
  console.log(`safetensors fuzz: ${cases} cases`, outcomes);
  expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(cases);
  // The mutations reach both checks: the parser's and the state dict's.
  expect(outcomes.SafetensorsError).toBeGreaterThan(cases / 4);
  expect(outcomes.StateDictError).toBeGreaterThan(0);
});
