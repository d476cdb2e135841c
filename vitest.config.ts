import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/e2e (browsers, workerd, the packed tarball) has its own config and script:
    // npm run test:e2e (vitest.e2e.config.ts).
    exclude: [...configDefaults.exclude, 'test/e2e/**'],
    // Whole-network fixture cases run GoogLeNet several times; generous limits keep a
    // loaded CI machine from failing them on time alone (speed is the benchmarks' job).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // TEST_SIMD=relaxed (scripts/test.sh): Node 20 validates relaxed SIMD only with this
    // flag, and init() then loads the relaxed-SIMD build.
    execArgv: process.env.TEST_SIMD === 'relaxed' ? ['--experimental-wasm-relaxed-simd'] : [],
  },
});
