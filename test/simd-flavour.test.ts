/**
 * Which SIMD build the test run exercises: the plain simd128 build by default, the
 * relaxed-SIMD build when scripts/test.sh re-runs the kernel suites with TEST_SIMD=relaxed
 * (Node then validates relaxed SIMD, and init() picks that build by itself).
 */
import { expect, it } from 'vitest';
import { init, simdFlavour } from '../ts/index.js';

it(`init() loads the ${process.env.TEST_SIMD === 'relaxed' ? 'relaxed-SIMD' : 'simd128'} build`, async () => {
  await init();
  expect(simdFlavour()).toBe(process.env.TEST_SIMD === 'relaxed' ? 'relaxed' : 'simd128');
});
